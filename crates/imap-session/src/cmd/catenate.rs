//! CATENATE (RFC 4469): APPEND (and each MULTIAPPEND message, and REPLACE, RFC 8508 4.2) with
//! a message built from TEXT literals and IMAP URLs (RFC 5092) naming messages or parts this
//! user already has, `;PARTIAL=` included (URL-PARTIAL, RFC 5550).
//!
//! The parts are written to the store's append writer as they arrive, so a large message is
//! never held in memory beyond one URL part's octets. The message joins the command's other
//! messages at its `)` and is committed with them, all or none (RFC 3502 3): a bad URL, a
//! message over APPENDLIMIT or over quota leaves nothing of the command behind.

use std::num::NonZeroU32;
use std::sync::Arc;

use imap_proto::response::{Code, continuation};
use imap_proto::url::{ImapUrl, UrlServer};
use imap_proto::{AppendHeader, Tag};
use mail_parse::ParsedMessage;
use mail_store::{Mailbox, PendingAppend, StoreErrorKind};
use mail_types::{Flags, MailboxName};

use crate::cmd::append::Catenation;
use crate::fetch::section;
use crate::session::{Flow, Reply, Session, State};

impl Session {
    /// `CATENATE (` (RFC 4469 3): checks the target as APPEND does before any literal and opens
    /// a writer for the message its parts make up.
    pub(crate) fn catenate_start(&mut self, tag: Tag, header: AppendHeader) {
        let mut progress = self.append.take().unwrap_or_default();
        progress.tag = Some(tag);
        // The size is not known yet: quota and APPENDLIMIT are checked again as parts arrive.
        self.begin_message(&mut progress, &header, 0);
        let mut writer = None;
        if progress.failed.is_none() {
            match self.open_append(&header, progress.mailbox.clone()) {
                Ok((mailbox, w)) => {
                    progress.mailbox = Some(mailbox);
                    writer = Some(w);
                }
                Err(reply) => progress.failed = Some(reply),
            }
        }
        progress.catenating = Some(Catenation {
            writer,
            flags: Flags::from_flags(header.flags.iter()),
            internal_date: header.date.map(|d| d.unix),
            size: 0,
            header_scan: self.header_scan(),
        });
        self.append = Some(progress);
    }

    /// A `URL` part (RFC 4469 3): the octets it names are appended unchanged. A URL that
    /// cannot be used fails the command with `NO [BADURL url]` (4.1), naming the first such.
    pub(crate) fn catenate_url(&mut self, url: &[u8]) {
        let Some(mut progress) = self.append.take() else {
            return;
        };
        if progress.failed.is_none() {
            let written = self.resolve_url(url).and_then(|data| {
                let Some(cat) = progress.catenating.as_mut() else {
                    return Err(Reply::no("APPEND failed."));
                };
                let size = cat.size.saturating_add(data.len() as u64);
                self.check_size(size)?;
                if let Some(writer) = cat.writer.as_mut() {
                    writer.write(&data).map_err(|e| self.store_error(e))?;
                }
                if let Some(scan) = cat.header_scan.as_mut() {
                    scan.feed(&data);
                }
                cat.size = size;
                Ok(())
            });
            if let Err(reply) = written {
                progress.fail(reply);
            }
        }
        self.append = Some(progress);
    }

    /// A `TEXT` part (RFC 4469 3): its literal is streamed into the message. A synchronizing
    /// literal that would go over APPENDLIMIT (RFC 4469 4.2 TOOBIG) or the quota is refused
    /// before the client sends it. NUL octets only come in a literal8 (RFC 3516 4.4).
    ///
    /// `utf8`: the part came as `UTF8 (~{n})` (RFC 6855 4), only for clients that enabled it.
    pub(crate) async fn catenate_text(
        &mut self,
        size: u64,
        sync: bool,
        binary: bool,
        utf8: bool,
    ) -> Flow {
        let mut progress = self.append.take().unwrap_or_default();
        let tag = progress.tag.clone().unwrap_or_else(|| Tag("*".to_owned()));
        if let (None, Some(reply)) = (&progress.failed, self.utf8_data_refusal(utf8)) {
            progress.fail(reply);
        }
        if progress.failed.is_none() {
            let total = progress
                .catenating
                .as_ref()
                .map_or(size, |cat| cat.size.saturating_add(size));
            let refusal = self.check_size(total).err().or_else(|| {
                let bytes = progress.pending_bytes.saturating_add(total);
                self.quota_refusal(bytes, progress.pending.len() as u64 + 1)
            });
            if let Some(reply) = refusal {
                progress.fail(reply);
            }
        }
        let writer = match progress.catenating.as_mut() {
            Some(cat) if progress.failed.is_none() => cat.writer.take(),
            _ => None,
        };
        let Some(writer) = writer else {
            if progress.failed.is_none() {
                progress.failed = Some(Reply::no("APPEND failed."));
            }
            return self.refuse_literal(&tag, size, sync, progress).await;
        };
        if sync {
            self.out.extend_from_slice(&continuation("OK"));
        }
        let mut writer = Some(writer);
        let mut scan = progress
            .catenating
            .as_mut()
            .and_then(|c| c.header_scan.take());
        let streamed = self
            .stream_literal(size, &mut writer, !binary, scan.as_mut())
            .await;
        if let Some(cat) = progress.catenating.as_mut() {
            cat.header_scan = scan;
        }
        match streamed {
            Err(()) => {
                self.disconnect_reason =
                    std::borrow::Cow::Borrowed("Connection closed during APPEND");
                return Flow::Close;
            }
            Ok(Some(reply)) => progress.fail(reply),
            Ok(None) => {
                if let Some(cat) = progress.catenating.as_mut() {
                    cat.writer = writer;
                    cat.size = cat.size.saturating_add(size);
                }
            }
        }
        self.decoder.append_literal_done();
        self.append = Some(progress);
        Flow::Continue
    }

    /// The `)` that ends a CATENATE list: the message, now of known size, joins the command's
    /// others if the quota allows (RFC 9208 4.3), to be committed with them when the command
    /// ends.
    pub(crate) fn catenate_end(&mut self) {
        let Some(mut progress) = self.append.take() else {
            return;
        };
        if let Some(cat) = progress.catenating.take()
            && progress.failed.is_none()
        {
            let bytes = progress.pending_bytes.saturating_add(cat.size);
            let over_quota = self.quota_refusal(bytes, progress.pending.len() as u64 + 1);
            let eight_bit = cat.header_scan.and_then(|s| s.refusal());
            match cat.writer {
                Some(_) if eight_bit.is_some() => progress.failed = eight_bit,
                Some(_) if cat.size == 0 => {
                    progress.failed = Some(Reply::no("Can't save a zero byte message."));
                }
                Some(_) if over_quota.is_some() => progress.failed = over_quota,
                Some(writer) => {
                    progress.pending_bytes = progress.pending_bytes.saturating_add(cat.size);
                    progress.pending.push(PendingAppend {
                        writer,
                        flags: cat.flags,
                        internal_date: cat.internal_date,
                    });
                }
                None => progress.failed = Some(Reply::no("APPEND failed.")),
            }
        }
        self.append = Some(progress);
    }

    /// The octets a CATENATE URL names (RFC 4469 3, RFC 5092 6): a message of this user, read
    /// without setting `\Seen` or claiming `\Recent`, cut to its section and partial range as
    /// `UID FETCH uid BODY.PEEK[section]<partial>` would.
    ///
    /// References are resolved against `imap://user@server/` or, in the selected state,
    /// `imap://user@server/mailbox` with the mailbox inherited as a whole (RFC 5092 7), so
    /// `;UID=n` names a message of the selected mailbox. An absolute or network-path URL is
    /// used only when it names this user on this server; RFC 4469 3 leaves other URLs out of
    /// scope, and they are BADURL.
    fn resolve_url(&self, raw: &[u8]) -> Result<Vec<u8>, Reply> {
        let bad = |why: &str| {
            Reply::no(format!("Invalid IMAP URL: {why}")).with_code(Code::BadUrl(raw.to_vec()))
        };
        let url = ImapUrl::parse(raw).map_err(|e| bad(&e.to_string()))?;
        let Some(user) = self.user() else {
            return Err(Reply::bad("Please log in first."));
        };
        if let Some(server) = &url.server {
            if server.user.as_deref() != Some(user.record.name.as_str()) {
                return Err(bad("URL is for another user"));
            }
            if !self.is_this_server(server) {
                return Err(bad("URL is for another server"));
            }
        }
        let name = match (&url.mailbox, &self.state) {
            (Some(name), _) => MailboxName::new(name).map_err(|_| bad("invalid mailbox name"))?,
            (None, State::Selected(_, selected)) => selected.view.mailbox().name(),
            (None, _) => return Err(bad("relative URL without a selected mailbox")),
        };
        let uid = url.uid.ok_or_else(|| bad("URL names no message UID"))?;
        let mailbox: Arc<dyn Mailbox> = user.store.open(&name).map_err(|e| match e.kind() {
            StoreErrorKind::NotFound => bad("mailbox does not exist"),
            _ => self.store_error(e),
        })?;
        mailbox.refresh().map_err(|e| self.store_error(e))?;
        if url
            .uid_validity
            .is_some_and(|v| v.get() != mailbox.uid_validity().get())
        {
            return Err(bad("UIDVALIDITY does not match"));
        }
        let message = mailbox.read_message(uid).map_err(|e| match e.kind() {
            StoreErrorKind::Expunged | StoreErrorKind::NotFound => bad("no message with that UID"),
            _ => self.store_error(e),
        })?;
        let mut data = match &url.section {
            None => message,
            Some(wanted) => {
                let parsed = ParsedMessage::parse(&message);
                section::bytes(&message, &parsed, wanted)
                    .ok_or_else(|| bad("no such body part"))?
                    .into_owned()
            }
        };
        if let Some(p) = url.partial {
            let range = section::partial_range(data.len(), p.origin, p.length.map(NonZeroU32::get));
            data.truncate(range.end);
            data.drain(..range.start);
        }
        Ok(data)
    }

    /// Whether an absolute URL's host (and port, when given) is this server: one of the
    /// configured names, or the address the client connected to.
    fn is_this_server(&self, server: &UrlServer) -> bool {
        let local = self.info.local;
        if server.port.is_some_and(|p| p != local.port()) {
            return false;
        }
        let address = match local.ip() {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        server.host == address
            || self
                .ctx
                .settings
                .url_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&server.host))
    }
}

impl crate::cmd::append::AppendInProgress {
    /// Records the first failure of the command; later ones change nothing (RFC 4469 4.1: the
    /// BADURL names the first URL that failed).
    pub(crate) fn fail(&mut self, reply: Reply) {
        if self.failed.is_none() {
            self.failed = Some(reply);
        }
        if let Some(cat) = self.catenating.as_mut() {
            cat.writer = None;
        }
    }
}
