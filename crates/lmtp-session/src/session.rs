//! One LMTP connection: the command loop, the transaction state and the replies
//! (RFC 2033 4, RFC 5321 4.1 and 4.3.2 for the command sequence).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use auth::UserRecord;
use lmtp_proto::{Address, Command, DataEnd, Decoded, Decoder, ParseError, Reply};
use session_api::quota::QUOTA_EXCEEDED_MESSAGE;
use session_api::{BoxedStream, ConnectionInfo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::trace::Trace;
use crate::{DeliveryFailure, SessionContext};

/// Serves one connection until QUIT, a timeout, too many bad commands or the client leaving.
pub async fn serve(stream: BoxedStream, ctx: Arc<SessionContext>, info: ConnectionInfo) {
    let mut session = Session {
        decoder: Decoder::new(ctx.settings.max_line),
        ctx,
        info,
        stream,
        out: Vec::new(),
        helo: None,
        transaction: None,
        transactions: 0,
        bad_commands: 0,
    };
    let reason = match session.run().await {
        Ok(reason) => reason,
        Err(e) => format!("Connection error: {e}"),
    };
    tracing::info!(
        "lmtp: Disconnect from {}: {reason} (session=<{}>)",
        remote_name(&session.info),
        session.info.session_id
    );
}

/// A recipient RCPT accepted.
struct Recipient {
    address: Address,
    user: UserRecord,
}

/// A mail transaction, from MAIL to the end of DATA or RSET (RFC 5321 3.3).
struct Transaction {
    /// The reverse-path without brackets; empty for `<>`.
    sender: String,
    recipients: Vec<Recipient>,
}

struct Session {
    ctx: Arc<SessionContext>,
    info: ConnectionInfo,
    stream: BoxedStream,
    decoder: Decoder,
    /// Replies not yet written.
    out: Vec<u8>,
    /// The client's LHLO name, once it has greeted.
    helo: Option<String>,
    transaction: Option<Transaction>,
    /// Transactions that reached DATA, for their ids.
    transactions: u32,
    bad_commands: u32,
}

/// What the loop does after a command.
enum Next {
    Continue,
    Close(String),
}

type Io<T> = std::io::Result<T>;

impl Session {
    async fn run(&mut self) -> Io<String> {
        let greeting = format!("{} Columba ready.", self.ctx.settings.hostname);
        Reply::plain(220, vec![greeting]).encode(&mut self.out);
        loop {
            // Every complete command (and a finished DATA section) that arrived is answered
            // before the replies are written: pipelined commands cost one write (RFC 2920).
            loop {
                if self.decoder.in_data() {
                    match self.decoder.decode_data() {
                        Some(end) => self.end_of_data(end).await?,
                        None => break,
                    }
                    continue;
                }
                let Some(decoded) = self.decoder.decode() else {
                    break;
                };
                if let Next::Close(reason) = self.execute(decoded).await {
                    self.flush().await?;
                    return Ok(reason);
                }
                // DATA's 354 goes out at once: the client waits for it.
                if self.decoder.in_data() {
                    self.flush().await?;
                }
            }
            self.flush().await?;
            let buf = self.decoder.buffer();
            let read = tokio::time::timeout(self.ctx.settings.timeout, self.stream.read_buf(buf));
            match read.await {
                Ok(Ok(0)) => return Ok("Client has quit the connection".to_owned()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    let text = format!("{} Disconnected for inactivity", self.hostname());
                    self.reply(Reply::new(421, "4.4.2", text));
                    self.flush().await?;
                    return Ok("Disconnected for inactivity".to_owned());
                }
            }
        }
    }

    fn hostname(&self) -> &str {
        &self.ctx.settings.hostname
    }

    fn reply(&mut self, reply: Reply) {
        reply.encode(&mut self.out);
    }

    async fn flush(&mut self) -> Io<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    async fn execute(&mut self, decoded: Decoded) -> Next {
        let command = match decoded {
            Decoded::Command(c) => c,
            Decoded::TooLong => return self.bad(Reply::new(500, "5.5.2", "Line too long")),
            Decoded::Error(e) => return self.bad(parse_error_reply(&e)),
        };
        match command {
            Command::Lhlo(name) => self.cmd_lhlo(name),
            Command::SmtpHello => self.bad(Reply::new(500, "5.5.1", "Use LHLO in LMTP")),
            Command::Mail { from, params } => self.cmd_mail(from, params.size),
            Command::Rcpt(address) => self.cmd_rcpt(address).await,
            Command::Data => self.cmd_data(),
            Command::Rset => {
                self.transaction = None;
                self.reply(Reply::new(250, "2.0.0", "OK"));
                Next::Continue
            }
            Command::Noop => {
                self.reply(Reply::new(250, "2.0.0", "OK"));
                Next::Continue
            }
            // RFC 5321 4.1.1.6: a server that does not verify answers 252.
            Command::Vrfy => {
                self.reply(Reply::new(252, "2.3.3", "Try RCPT instead"));
                Next::Continue
            }
            Command::Quit => {
                self.reply(Reply::new(221, "2.0.0", format!("{} Bye", self.hostname())));
                Next::Close("Client has quit the connection".to_owned())
            }
        }
    }

    /// A refused command; too many of them end the connection.
    fn bad(&mut self, reply: Reply) -> Next {
        self.reply(reply);
        self.bad_commands += 1;
        if self.bad_commands >= self.ctx.settings.max_bad_commands {
            let text = format!("{} Too many invalid commands", self.hostname());
            self.reply(Reply::new(421, "4.7.0", text));
            return Next::Close("Too many invalid commands".to_owned());
        }
        Next::Continue
    }

    /// LHLO (RFC 2033 4.1): the greeting with the extensions, which also ends any transaction
    /// (RFC 5321 4.1.4).
    fn cmd_lhlo(&mut self, name: String) -> Next {
        self.helo = Some(name);
        self.transaction = None;
        let lines = vec![
            self.hostname().to_owned(),
            "8BITMIME".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
            "PIPELINING".to_owned(),
            format!("SIZE {}", self.ctx.settings.max_message_size),
        ];
        self.reply(Reply::plain(250, lines));
        Next::Continue
    }

    /// MAIL (RFC 5321 4.1.1.2), with RFC 1870's SIZE checked against the limit up front.
    fn cmd_mail(&mut self, from: Option<Address>, size: Option<u64>) -> Next {
        if self.helo.is_none() {
            return self.bad(Reply::new(503, "5.5.1", "Send LHLO first"));
        }
        if self.transaction.is_some() {
            return self.bad(Reply::new(503, "5.5.1", "MAIL already given"));
        }
        if size.is_some_and(|s| s > self.ctx.settings.max_message_size) {
            self.reply(Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ));
            return Next::Continue;
        }
        self.transaction = Some(Transaction {
            sender: from.map(|a| a.to_string()).unwrap_or_default(),
            recipients: Vec::new(),
        });
        self.reply(Reply::new(250, "2.1.0", "OK"));
        Next::Continue
    }

    /// RCPT (RFC 5321 4.1.1.3): the recipient's user is looked up now, so that an unknown one
    /// is refused before the message is sent (`550 5.1.1`, Dovecot's wording).
    async fn cmd_rcpt(&mut self, address: Address) -> Next {
        let Some(transaction) = &self.transaction else {
            return self.bad(Reply::new(503, "5.5.1", "MAIL needed first"));
        };
        if transaction.recipients.len() >= self.ctx.settings.max_recipients {
            self.reply(Reply::new(452, "4.5.3", "Too many recipients"));
            return Next::Continue;
        }
        let names = user_names(&address, &self.ctx.settings.recipient_delimiter);
        let backend = self.ctx.backend.clone();
        let check_quota = self.ctx.settings.rcpt_check_quota;
        let lookup_names = names.clone();
        let found = tokio::task::spawn_blocking(move || {
            for name in &lookup_names {
                if let Some(user) = backend.lookup(name)? {
                    let over = check_quota && backend.over_quota(&user)?;
                    return Ok(Some((user, over)));
                }
            }
            Ok(None)
        })
        .await
        .unwrap_or_else(|e| Err(format!("lookup task failed: {e}")));
        let reply = match found {
            Ok(Some((_, true))) => self.quota_reply(&address),
            Ok(Some((user, false))) => {
                if let Some(t) = self.transaction.as_mut() {
                    t.recipients.push(Recipient {
                        address: address.clone(),
                        user,
                    });
                }
                Reply::new(250, "2.1.5", format!("<{address}> OK"))
            }
            Ok(None) => Reply::new(
                550,
                "5.1.1",
                format!("<{address}> User doesn't exist: {}", names[0]),
            ),
            Err(e) => {
                tracing::error!("lmtp: looking up <{address}> failed: {e}");
                Reply::new(
                    451,
                    "4.3.0",
                    format!("<{address}> Temporary internal error"),
                )
            }
        };
        self.reply(reply);
        Next::Continue
    }

    /// DATA (RFC 2033 4.2): refused without a recipient; otherwise 354 and the message.
    fn cmd_data(&mut self) -> Next {
        match &self.transaction {
            None => self.bad(Reply::new(503, "5.5.1", "MAIL needed first")),
            Some(t) if t.recipients.is_empty() => {
                self.bad(Reply::new(503, "5.5.1", "No valid recipients"))
            }
            Some(_) => {
                self.reply(Reply::plain(
                    354,
                    vec!["Start mail input; end with <CRLF>.<CRLF>".to_owned()],
                ));
                self.decoder.start_data(self.ctx.settings.max_message_size);
                Next::Continue
            }
        }
    }

    /// The end of DATA: one reply per accepted recipient, in RCPT order (RFC 2033 4.2), each
    /// written as soon as that recipient's delivery is durable, so an MTA that loses the
    /// connection knows exactly which ones it may not send again.
    async fn end_of_data(&mut self, end: DataEnd) -> Io<()> {
        let Some(transaction) = self.transaction.take() else {
            return Ok(());
        };
        self.transactions += 1;
        let id = match self.transactions {
            1 => self.info.session_id.clone(),
            n => format!("{}:{n}", self.info.session_id),
        };
        let body = match end {
            DataEnd::Message(body) => body,
            DataEnd::TooBig => {
                for rcpt in &transaction.recipients {
                    let text = format!(
                        "<{}> Message size exceeds fixed maximum message size",
                        rcpt.address
                    );
                    self.reply(Reply::new(552, "5.3.4", text));
                }
                return Ok(());
            }
        };
        let recipients: Vec<String> = transaction
            .recipients
            .iter()
            .map(|r| r.address.to_string())
            .collect();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut message = Trace {
            sender: &transaction.sender,
            recipients: &recipients,
            helo: self.helo.as_deref().unwrap_or(""),
            remote_ip: Some(self.info.remote.ip()).filter(|ip| !ip.is_unspecified()),
            hostname: self.hostname(),
            id: &id,
            now,
        }
        .headers();
        message.extend_from_slice(&body);
        drop(body);
        let message = Arc::new(message);
        // A user named by several RCPTs gets one copy, and each RCPT its reply (RFC 2033 4.2),
        // as Dovecot does with duplicate recipients.
        let mut done: HashMap<String, Result<(), DeliveryFailure>> = HashMap::new();
        for rcpt in transaction.recipients {
            let result = match done.get(&rcpt.user.name) {
                Some(earlier) => earlier.clone(),
                None => {
                    let backend = self.ctx.backend.clone();
                    let bytes = message.clone();
                    let user = rcpt.user.clone();
                    let result =
                        tokio::task::spawn_blocking(move || backend.deliver(&user, &bytes))
                            .await
                            .unwrap_or_else(|e| Err(DeliveryFailure::Temporary(format!("{e}"))));
                    done.insert(rcpt.user.name.clone(), result.clone());
                    result
                }
            };
            let address = &rcpt.address;
            let reply = match result {
                Ok(()) => {
                    tracing::info!(
                        "lmtp({}): session=<{id}>: saved mail to INBOX (from=<{}>, to=<{address}>, size={})",
                        rcpt.user.name,
                        transaction.sender,
                        message.len()
                    );
                    Reply::new(250, "2.0.0", format!("<{address}> {id} Saved"))
                }
                Err(DeliveryFailure::OverQuota) => {
                    tracing::info!(
                        "lmtp({}): session=<{id}>: rejected: {QUOTA_EXCEEDED_MESSAGE}",
                        rcpt.user.name
                    );
                    self.quota_reply(address)
                }
                Err(DeliveryFailure::Temporary(e)) => {
                    tracing::error!(
                        "lmtp({}): session=<{id}>: delivery failed: {e}",
                        rcpt.user.name
                    );
                    Reply::new(
                        451,
                        "4.3.0",
                        format!("<{address}> Temporary internal error"),
                    )
                }
            };
            self.reply(reply);
            self.flush().await?;
        }
        Ok(())
    }

    /// Over quota: permanent unless `quota_full_tempfail` (Dovecot's replies).
    fn quota_reply(&self, address: &Address) -> Reply {
        let text = format!("<{address}> {QUOTA_EXCEEDED_MESSAGE}");
        if self.ctx.settings.quota_full_tempfail {
            Reply::new(452, "4.2.2", text)
        } else {
            Reply::new(552, "5.2.2", text)
        }
    }
}

/// The user names a recipient may be, in the order they are tried: the whole address without
/// its detail (what Dovecot's default `auth_username_format` looks up), then its local part
/// alone (system users, and the Debian setup `auth_username_format = %n`).
fn user_names(address: &Address, delimiters: &str) -> Vec<String> {
    let local = address.local_part_without_detail(delimiters);
    match address.domain() {
        Some(domain) => vec![format!("{local}@{domain}"), local.to_owned()],
        None => vec![local.to_owned()],
    }
}

fn parse_error_reply(e: &ParseError) -> Reply {
    match e {
        ParseError::Unknown => Reply::new(500, "5.5.1", "Unknown command"),
        ParseError::Syntax => Reply::new(501, "5.5.4", "Invalid parameters"),
        ParseError::Address(a) => Reply::new(501, "5.5.4", format!("Invalid address: {a}")),
        ParseError::UnsupportedParameter(p) => {
            Reply::new(555, "5.5.4", format!("Unsupported parameter {p}"))
        }
        ParseError::InvalidParameter(p) => {
            Reply::new(501, "5.5.4", format!("Invalid parameter {p}"))
        }
    }
}

fn remote_name(info: &ConnectionInfo) -> String {
    if info.remote.ip().is_unspecified() {
        "local".to_owned()
    } else {
        info.remote.ip().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_name_users() {
        let a = Address::parse_path("<Bob+lists@example.com>").unwrap();
        assert_eq!(user_names(&a, "+"), ["Bob@example.com", "Bob"]);
        assert_eq!(user_names(&a, ""), ["Bob+lists@example.com", "Bob+lists"]);
        let p = Address::parse_path("<postmaster>").unwrap();
        assert_eq!(user_names(&p, "+"), ["postmaster"]);
    }
}
