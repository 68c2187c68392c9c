//! One POP3 connection from greeting to QUIT: the read loop, the states of RFC 1939 3
//! (AUTHORIZATION, TRANSACTION, UPDATE) and which command is valid in which, and the log lines.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mail_store::{StoreError, StoreErrorKind};
use pop3_proto::response::{self, Code};
use pop3_proto::{Command, Decoded, Decoder};
use session_api::{BoxedStream, ConnectionInfo, LoggedIn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::context::SessionContext;
use crate::maildrop::Maildrop;

/// Output is flushed once this much is buffered, so a large RETR or UIDL streams.
pub(crate) const FLUSH_THRESHOLD: usize = 256 * 1024;

/// The connection state (RFC 1939 3). TRANSACTION carries the maildrop, so a handler that needs
/// messages cannot run without it; UPDATE happens inside QUIT and ends the session.
pub(crate) enum State {
    /// Before login; `user` is the name a USER command gave, awaiting PASS.
    Authorization {
        user: Option<String>,
    },
    Transaction(Box<Maildrop>),
    /// After QUIT: nothing more is read.
    Closed,
}

/// Whether the connection goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
    /// The user logged in and the connection goes to the process serving their mail.
    HandOff,
}

/// What the disconnect log line of a logged-in session reports, in Dovecot's
/// `pop3_logout_format` terms (`top=%t/%p, retr=%r/%b, del=%d/%m, size=%s`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stats {
    pub top_count: u64,
    pub top_bytes: u64,
    pub retr_count: u64,
    pub retr_bytes: u64,
    /// Messages expunged at QUIT.
    pub deleted: u64,
    /// Messages and their total size when the session started.
    pub messages: u64,
    pub size: u64,
}

pub(crate) struct Session {
    pub ctx: Arc<SessionContext>,
    pub info: ConnectionInfo,
    pub stream: BoxedStream,
    pub decoder: Decoder,
    /// Responses not yet written.
    pub out: Vec<u8>,
    pub state: State,
    pub tls: bool,
    /// The user a verified TLS client certificate names (SASL EXTERNAL's identity): set by
    /// STLS when the binary verifies client certificates.
    pub tls_client_user: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub bad_commands: u32,
    pub auth_failures: u32,
    /// Who logged in, kept after QUIT for the disconnect log line.
    pub logged_in_as: Option<String>,
    pub stats: Stats,
    pub started: Instant,
    /// Why the connection ends, for the disconnect log line.
    pub disconnect_reason: Cow<'static, str>,
    /// A login succeeded in a process that does not serve mail: the connection is handed over
    /// after the login command instead of being answered here.
    pub hand_off: Option<LoggedIn>,
    /// Held while logged in: this connection's place in the per-(user, address) limit.
    pub connection_slot: Option<session_api::ConnectionSlot>,
}

/// Serves one connection until it ends.
pub async fn serve(stream: BoxedStream, ctx: Arc<SessionContext>, info: ConnectionInfo) {
    serve_tls(stream, ctx, info, None).await;
}

/// [`serve`] for an implicit-TLS connection whose client presented a verified certificate
/// naming `tls_client_user`: the user SASL EXTERNAL may log in (RFC 4422 Appendix A).
pub async fn serve_tls(
    stream: BoxedStream,
    ctx: Arc<SessionContext>,
    info: ConnectionInfo,
    tls_client_user: Option<String>,
) {
    let mut session = Session::new(stream, ctx, info);
    session.tls_client_user = tls_client_user;
    // No timestamp banner: APOP is not offered (RFC 1939 7).
    response::ok(&mut session.out, "Columba ready.");
    session.run().await;
}

/// Serves a connection whose user logged in in another process (privilege separation): takes
/// the maildrop and answers the PASS or AUTH that is still waiting (RFC 1939 7, RFC 5034 4),
/// then goes on in the TRANSACTION state. If the maildrop cannot be had, the `-ERR` ends the
/// connection: there is no AUTHORIZATION state to return to in this process.
pub async fn serve_logged_in(
    stream: BoxedStream,
    ctx: Arc<SessionContext>,
    info: ConnectionInfo,
    login: LoggedIn,
) {
    let mut session = Session::new(stream, ctx, info);
    session.tls = login.tls;
    session
        .decoder
        .buffer()
        .extend_from_slice(&login.pending_input);
    session.finish_login(login.user, &login.method).await;
    if session.is_authorization() {
        session.disconnect_reason = Cow::Borrowed("Mail could not be opened");
        session.end().await;
        return;
    }
    session.run().await;
}

impl Session {
    fn new(stream: BoxedStream, ctx: Arc<SessionContext>, info: ConnectionInfo) -> Session {
        Session {
            decoder: Decoder::new(ctx.settings.max_line),
            tls: info.implicit_tls,
            tls_client_user: None,
            ctx,
            info,
            stream,
            out: Vec::with_capacity(1024),
            state: State::Authorization { user: None },
            bytes_in: 0,
            bytes_out: 0,
            bad_commands: 0,
            auth_failures: 0,
            logged_in_as: None,
            stats: Stats::default(),
            started: Instant::now(),
            disconnect_reason: Cow::Borrowed("Connection closed"),
            hand_off: None,
            connection_slot: None,
        }
    }

    async fn run(&mut self) {
        loop {
            let flow = match self.decoder.decode() {
                None => self.wait_for_input().await,
                Some(Decoded::Command(cmd)) => self.execute(cmd).await,
                Some(Decoded::Error(e)) => self.bad_command(&format!("{e}.")),
                Some(Decoded::TooLong) => self.bad_command("Line too long."),
            };
            if flow == Flow::HandOff {
                self.hand_over().await;
                return;
            }
            if flow == Flow::Close {
                break;
            }
            if self.out.len() >= FLUSH_THRESHOLD && self.flush().await.is_err() {
                break;
            }
        }
        self.end().await;
    }

    /// Flushes what is pending, closes the stream and logs the disconnect.
    async fn end(&mut self) {
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
        self.log_disconnect();
    }

    /// Gives the connection of a user who just logged in to the process that serves their mail
    /// (see `UserBackend::login_hand_off`), with what the client sent after the login command.
    async fn hand_over(&mut self) {
        let Some(mut login) = self.hand_off.take() else {
            return;
        };
        if self.flush().await.is_err() {
            return;
        }
        login.pending_input = self.decoder.pending().to_vec();
        let stream = std::mem::replace(&mut self.stream, Box::new(tokio::io::empty()));
        let info = self.info.clone();
        let backend = self.ctx.backend.clone();
        if let Some(hand_off) = backend.login_hand_off() {
            hand_off.hand_off(stream, info, login).await;
        }
    }

    /// Runs one command and writes its response.
    async fn execute(&mut self, cmd: Command) -> Flow {
        if let Some(problem) = self.state_check(&cmd) {
            return self.bad_command(problem);
        }
        self.bad_commands = 0;
        match cmd {
            Command::Capa => self.cmd_capa(),
            Command::Quit => return self.cmd_quit().await,
            Command::Noop => response::ok(&mut self.out, ""),
            Command::User(name) => self.cmd_user(name),
            Command::Pass(password) => self.cmd_pass(password).await,
            Command::Apop { .. } => self.cmd_apop(),
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                if self
                    .cmd_auth(mechanism.as_deref(), initial_response)
                    .await
                    .is_none()
                {
                    self.disconnect_reason = Cow::Borrowed("Connection closed during AUTH");
                    return Flow::Close;
                }
            }
            Command::Stls => return self.cmd_stls().await,
            Command::Stat => self.cmd_stat(),
            Command::List(msg) => self.cmd_list(msg),
            Command::Retr(msg) => self.cmd_retr(msg).await,
            Command::Top { msg, lines } => self.cmd_top(msg, lines).await,
            Command::Dele(msg) => self.cmd_dele(msg),
            Command::Rset => self.cmd_rset(),
            Command::Uidl(msg) => self.cmd_uidl(msg),
        }
        if self.hand_off.is_some() {
            return Flow::HandOff;
        }
        if self.is_authorization() && self.auth_failures >= self.ctx.settings.max_auth_attempts {
            self.disconnect_reason = Cow::Borrowed("Too many failed authentication attempts");
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Which commands are valid in which state (RFC 1939 4-7, RFC 2449 5, RFC 2595 4,
    /// RFC 5034 4): `Some` with the reply when not.
    fn state_check(&self, cmd: &Command) -> Option<&'static str> {
        let any = matches!(cmd, Command::Capa | Command::Quit);
        let authorization_only = matches!(
            cmd,
            Command::User(_)
                | Command::Pass(_)
                | Command::Apop { .. }
                | Command::Auth { .. }
                | Command::Stls
        );
        match &self.state {
            _ if any => None,
            State::Authorization { .. } if authorization_only => None,
            State::Authorization { .. } => Some("Please log in first."),
            State::Transaction(_) if authorization_only => Some("Already logged in."),
            State::Transaction(_) => None,
            State::Closed => Some("Logging out."),
        }
    }

    /// An unknown, malformed or misplaced command. Too many in a row close the connection.
    pub(crate) fn bad_command(&mut self, message: &str) -> Flow {
        self.bad_commands += 1;
        response::err(&mut self.out, None, message);
        if self.bad_commands >= self.ctx.settings.max_bad_commands {
            response::err(&mut self.out, None, "Too many invalid commands.");
            self.disconnect_reason = Cow::Borrowed("Too many invalid commands");
            return Flow::Close;
        }
        Flow::Continue
    }

    pub(crate) fn is_authorization(&self) -> bool {
        matches!(self.state, State::Authorization { .. })
    }

    /// Flushes pending output and reads more input, within the timeout of the current state.
    async fn wait_for_input(&mut self) -> Flow {
        if self.flush().await.is_err() {
            self.disconnect_reason = Cow::Borrowed("Connection closed");
            return Flow::Close;
        }
        let timeout = self.input_timeout();
        match tokio::time::timeout(timeout, self.fill()).await {
            Ok(Ok(true)) => Flow::Continue,
            Ok(Ok(false)) => {
                // RFC 1939 6: a connection that ends without QUIT does not enter UPDATE.
                self.disconnect_reason = Cow::Borrowed(if self.is_authorization() {
                    "Connection closed before login"
                } else {
                    "Connection closed"
                });
                Flow::Close
            }
            Ok(Err(e)) => {
                self.disconnect_reason = Cow::Owned(format!("Connection error: {e}"));
                Flow::Close
            }
            Err(_) => {
                response::err(&mut self.out, None, "Disconnected for inactivity.");
                self.disconnect_reason = Cow::Borrowed("Disconnected for inactivity");
                Flow::Close
            }
        }
    }

    pub(crate) fn input_timeout(&self) -> Duration {
        if self.is_authorization() {
            self.ctx.settings.login_timeout
        } else {
            self.ctx.settings.idle_timeout
        }
    }

    /// Reads whatever the client has sent into the decoder. `Ok(false)` at end of stream.
    pub(crate) async fn fill(&mut self) -> std::io::Result<bool> {
        let n = self.stream.read_buf(self.decoder.buffer()).await?;
        self.bytes_in += n as u64;
        Ok(n > 0)
    }

    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self.stream.write_all(&self.out).await;
        self.bytes_out += self.out.len() as u64;
        self.out.clear();
        result?;
        self.stream.flush().await
    }

    /// Writes the reply for a storage failure a client may see; internal details go only to the
    /// log, tied to the reply by a timestamp (RFC 3206 `SYS/TEMP`, `SYS/PERM`; RFC 2449 `IN-USE`).
    pub(crate) fn store_error(&mut self, err: &StoreError) {
        let (code, text) = match err.kind() {
            StoreErrorKind::Expunged => (None, "Message was expunged by another session.".into()),
            StoreErrorKind::InUse => (
                Some(Code::InUse),
                "Mailbox is locked, try again later.".into(),
            ),
            StoreErrorKind::NoPermission => (Some(Code::SysPerm), "Permission denied.".into()),
            _ => {
                let stamp = timestamp();
                tracing::error!(session = %self.info.session_id, "internal error [{stamp}]: {err}");
                (
                    Some(Code::SysTemp),
                    format!(
                        "Internal error occurred. Refer to server log for more information. [{stamp}]"
                    ),
                )
            }
        };
        response::err(&mut self.out, code, &text);
    }

    fn log_disconnect(&self) {
        let secs = self.started.elapsed().as_secs();
        match &self.logged_in_as {
            Some(name) => {
                let s = &self.stats;
                tracing::info!(
                    "pop3({})<{}>: Disconnected: {} top={}/{}, retr={}/{}, del={}/{}, size={}",
                    name,
                    self.info.session_id,
                    self.disconnect_reason,
                    s.top_count,
                    s.top_bytes,
                    s.retr_count,
                    s.retr_bytes,
                    s.deleted,
                    s.messages,
                    s.size
                )
            }
            None => tracing::info!(
                "pop3-login: Disconnected: {} ({} attempts in {} secs): {}, in={} out={}",
                self.disconnect_reason,
                self.auth_failures,
                secs,
                self.info.log_fields(self.tls),
                self.bytes_in,
                self.bytes_out
            ),
        }
    }
}

/// Runs blocking work (password hashing, disk) on the runtime's blocking threads. A task that
/// panicked becomes an error like the work's own.
pub(crate) async fn blocking<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, TaskError<E>>
where
    T: Send + 'static,
    E: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(TaskError::Failed),
        Err(e) => Err(TaskError::Panicked(e.to_string())),
    }
}

/// Why blocking work gave no result.
#[derive(Debug)]
pub(crate) enum TaskError<E> {
    Failed(E),
    Panicked(String),
}

impl<E: std::fmt::Display> std::fmt::Display for TaskError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskError::Failed(e) => e.fmt(f),
            TaskError::Panicked(e) => write!(f, "blocking task failed: {e}"),
        }
    }
}

impl From<TaskError<StoreError>> for StoreError {
    fn from(e: TaskError<StoreError>) -> StoreError {
        match e {
            TaskError::Failed(e) => e,
            TaskError::Panicked(e) => StoreError::Internal(format!("blocking task failed: {e}")),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, to tie a client's error message to the log line.
pub(crate) fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    mail_types::date::utc_timestamp(now)
}
