//! One IMAP connection from greeting to logout: the read loop, the state machine (RFC 3501 3) and
//! the rules for when untagged updates may be sent (RFC 3501 5.2, 7.4.1).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth::UserRecord;
use imap_proto::response::{self, Code, Status};
use imap_proto::{Command, CommandBody, Decoded, Decoder, Tag};
use mail_store::{ChangeListener, MailStore, MailboxView, StoreError, StoreErrorKind, ViewEvent};
use mail_types::SeqSet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use crate::capability;
use crate::cmd::append::AppendInProgress;
use crate::context::{BoxedStream, ConnectionInfo, SessionContext};
use session_api::LoggedIn;

/// Output is flushed once this much is buffered, so a large FETCH streams instead of piling up.
pub(crate) const FLUSH_THRESHOLD: usize = 256 * 1024;
const READ_CHUNK: usize = 64 * 1024;
/// What an idle connection's input and output buffers shrink back to.
const IDLE_BUFFER: usize = 4096;

/// The connection state (RFC 3501 3). Each state carries what it needs, so a handler for the
/// selected state cannot run without a selected mailbox.
pub(crate) enum State {
    NotAuthenticated,
    Authenticated(User),
    Selected(User, Selected),
    Logout,
}

/// A logged-in user and their mail.
pub(crate) struct User {
    pub record: UserRecord,
    pub store: Arc<dyn MailStore>,
    /// Held while logged in: this connection's place in the per-(user, address) limit.
    pub _slot: Option<session_api::ConnectionSlot>,
}

/// The selected mailbox.
pub(crate) struct Selected {
    pub view: MailboxView,
    /// Woken by the store when the mailbox changes (drives IDLE).
    pub wakeup: Arc<Wakeup>,
}

/// Adapts the store's change notification to a tokio wake-up. `Notify` keeps one permit, so a
/// change between a sync and the next wait is never lost.
pub(crate) struct Wakeup(pub Notify);

impl ChangeListener for Wakeup {
    fn mailbox_changed(&self) {
        self.0.notify_one();
    }
}

/// Whether the connection goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
    /// The user logged in and the connection goes to the process serving their mail.
    HandOff,
}

/// The tagged status response that ends a command.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: Status,
    pub code: Option<Code>,
    pub text: Cow<'static, str>,
}

impl Reply {
    pub fn ok(text: impl Into<Cow<'static, str>>) -> Self {
        Reply {
            status: Status::Ok,
            code: None,
            text: text.into(),
        }
    }
    pub fn no(text: impl Into<Cow<'static, str>>) -> Self {
        Reply {
            status: Status::No,
            code: None,
            text: text.into(),
        }
    }
    pub fn bad(text: impl Into<Cow<'static, str>>) -> Self {
        Reply {
            status: Status::Bad,
            code: None,
            text: text.into(),
        }
    }
    pub fn with_code(mut self, code: Code) -> Self {
        self.code = Some(code);
        self
    }
}

/// When a command may be followed by untagged EXPUNGE responses (RFC 3501 7.4.1): never during
/// FETCH, STORE, SEARCH (and COPY/MOVE by sequence number, whose numbers must stay stable);
/// the UID forms of those commands may see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdatePolicy {
    /// Send every pending update, EXPUNGE included.
    All,
    /// Send EXISTS, RECENT and flag changes, hold EXPUNGEs back.
    NoExpunge,
    /// Send nothing (the command already did, or changed the selection).
    None,
}

pub(crate) struct Session {
    pub ctx: Arc<SessionContext>,
    pub info: ConnectionInfo,
    pub stream: BoxedStream,
    /// Bytes read from the client and not yet decoded.
    pub rbuf: Vec<u8>,
    /// Responses not yet written.
    pub out: Vec<u8>,
    pub decoder: Decoder,
    pub state: State,
    pub tls: bool,
    /// The user a verified TLS client certificate names (SASL EXTERNAL's identity): set by
    /// STARTTLS when the binary verifies client certificates.
    pub tls_client_user: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub bad_commands: u32,
    pub auth_failures: u32,
    /// RFC 7162 CONDSTORE is enabled (by ENABLE or a CONDSTORE-enabling command, 3.1).
    pub condstore: bool,
    /// RFC 7162 QRESYNC is enabled (ENABLE QRESYNC, 3.2.3): expunges are told as VANISHED.
    pub qresync: bool,
    /// What `$` stands for (RFC 5182 2.1): the UIDs the last `SEARCH RETURN (SAVE)` kept in the
    /// selected mailbox, ascending; emptied by SELECT and EXAMINE.
    pub saved_result: Vec<mail_types::Uid>,
    /// RFC 5267 4.3: the `SEARCH RETURN (UPDATE)` results being kept up to date.
    pub search_contexts: Vec<crate::cmd::search_context::SearchContext>,
    /// COMPRESS=DEFLATE (RFC 4978) is active: `stream` is a DeflateStream.
    pub compressed: bool,
    /// ENABLE IMAP4rev2 (RFC 9051): no RECENT or \Recent, ESEARCH for SEARCH, UTF-8 names.
    pub rev2: bool,
    /// Mailbox names are UTF-8 both ways, and 8-bit headers may be appended: IMAP4rev2 or
    /// UTF8=ACCEPT (RFC 6855 3, 4) is enabled.
    pub utf8: bool,
    /// ENABLE UTF8=ACCEPT was given: SEARCH may no longer name a CHARSET (RFC 6855 3).
    pub utf8_accept: bool,
    /// Who logged in, kept after LOGOUT for the disconnect log line.
    pub logged_in_as: Option<String>,
    pub append: Option<AppendInProgress>,
    pub started: Instant,
    /// Why the connection ends, for the disconnect log line.
    pub disconnect_reason: Cow<'static, str>,
    /// The selected mailbox's UIDVALIDITY changed: `* BYE` has been sent, no tagged reply
    /// follows it, and the connection ends.
    pub mailbox_lost: bool,
    /// A login succeeded in a process that does not serve mail: the connection is handed over
    /// after the login command instead of being answered here.
    pub hand_off: Option<LoggedIn>,
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
    let caps = capability::list(&session);
    let greeting = response::status_line(
        None,
        Status::Ok,
        Some(&Code::Capability(caps)),
        "Columba ready.",
    );
    session.out.extend_from_slice(&greeting);
    session.run().await;
}

/// Serves a connection whose user logged in in another process (privilege separation): opens
/// the user's mail, answers the login command that is still waiting for its tagged response,
/// and goes on as if the login had happened here (RFC 3501 6.2.2, 6.2.3).
pub async fn serve_logged_in(
    stream: BoxedStream,
    ctx: Arc<SessionContext>,
    info: ConnectionInfo,
    login: LoggedIn,
) {
    let mut session = Session::new(stream, ctx, info);
    session.tls = login.tls;
    session.rbuf = login.pending_input;
    let reply = session.finish_login(login.user, &login.method).await;
    let tag = Tag(login.tag.unwrap_or_else(|| "*".to_owned()));
    session.finish(&tag, reply, UpdatePolicy::None);
    if !session.is_authenticated() {
        session.disconnect_reason = Cow::Borrowed("Mail could not be opened");
        session.end().await;
        return;
    }
    session.run().await;
}

impl Session {
    fn new(stream: BoxedStream, ctx: Arc<SessionContext>, info: ConnectionInfo) -> Session {
        Session {
            decoder: Decoder::new(ctx.settings.limits.clone()),
            tls: info.implicit_tls,
            tls_client_user: None,
            ctx,
            info,
            stream,
            rbuf: Vec::with_capacity(4096),
            out: Vec::with_capacity(4096),
            state: State::NotAuthenticated,
            bytes_in: 0,
            bytes_out: 0,
            bad_commands: 0,
            auth_failures: 0,
            condstore: false,
            qresync: false,
            saved_result: Vec::new(),
            search_contexts: Vec::new(),
            compressed: false,
            rev2: false,
            utf8: false,
            utf8_accept: false,
            logged_in_as: None,
            append: None,
            started: Instant::now(),
            disconnect_reason: Cow::Borrowed("Connection closed"),
            mailbox_lost: false,
            hand_off: None,
        }
    }

    async fn run(&mut self) {
        loop {
            let item = self.decoder.decode(&mut self.rbuf);
            let flow = match item {
                None => self.wait_for_input().await,
                Some(Decoded::Command(cmd)) => self.execute(cmd).await,
                Some(Decoded::NeedContinuation) => {
                    self.out.extend_from_slice(&response::continuation("OK"));
                    Flow::Continue
                }
                Some(Decoded::AppendStart {
                    tag,
                    header,
                    size,
                    synchronizing,
                }) => {
                    self.bad_commands = 0;
                    self.append_start(tag, header, size, synchronizing).await
                }
                Some(Decoded::CatenateStart { tag, header }) => {
                    self.bad_commands = 0;
                    self.catenate_start(tag, header);
                    Flow::Continue
                }
                Some(Decoded::CatenateUrl { url }) => {
                    self.catenate_url(&url);
                    Flow::Continue
                }
                Some(Decoded::CatenateText {
                    size,
                    synchronizing,
                    binary,
                    utf8,
                }) => self.catenate_text(size, synchronizing, binary, utf8).await,
                Some(Decoded::CatenateEnd) => {
                    self.catenate_end();
                    Flow::Continue
                }
                Some(Decoded::AppendDone { tag }) => {
                    let reply = self.append_done();
                    self.finish(&tag, reply, UpdatePolicy::All);
                    Flow::Continue
                }
                Some(Decoded::Bad { tag, message }) => {
                    // A MULTIAPPEND found bad after some of its messages keeps none of them.
                    self.append = None;
                    self.bad_command(tag.as_ref(), &message)
                }
                Some(Decoded::Fatal { message }) => {
                    self.out.extend_from_slice(&response::status_line(
                        None,
                        Status::Bye,
                        None,
                        &message,
                    ));
                    self.disconnect_reason = Cow::Owned(format!("Protocol error: {message}"));
                    Flow::Close
                }
            };
            if flow == Flow::HandOff {
                self.hand_over().await;
                return;
            }
            if flow == Flow::Close || self.mailbox_lost {
                break;
            }
            if self.out.len() >= FLUSH_THRESHOLD && self.flush().await.is_err() {
                self.disconnect_reason = Cow::Borrowed("Connection closed");
                break;
            }
        }
        self.end().await;
    }

    /// Flushes what is pending, closes the stream and logs the disconnect.
    async fn end(&mut self) {
        // A failed flush on the way out changes nothing: the connection is ending either way.
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
        login.pending_input = std::mem::take(&mut self.rbuf);
        let stream = std::mem::replace(&mut self.stream, Box::new(tokio::io::empty()));
        let info = self.info.clone();
        let backend = self.ctx.backend.clone();
        if let Some(hand_off) = backend.login_hand_off() {
            hand_off.hand_off(stream, info, login).await;
        }
    }

    fn log_disconnect(&self) {
        let secs = self.started.elapsed().as_secs();
        match &self.logged_in_as {
            Some(name) => tracing::info!(
                "imap({})<{}>: Disconnected: {} in={} out={}",
                name,
                self.info.session_id,
                self.disconnect_reason,
                self.bytes_in,
                self.bytes_out
            ),
            None => tracing::info!(
                "imap-login: Disconnected: {} ({} attempts in {} secs): rip={}, lip={}, {}session=<{}>, in={} out={}",
                self.disconnect_reason,
                self.auth_failures,
                secs,
                self.info.remote.ip(),
                self.info.local.ip(),
                if self.tls { "TLS, " } else { "" },
                self.info.session_id,
                self.bytes_in,
                self.bytes_out
            ),
        }
    }

    fn bad_command(&mut self, tag: Option<&Tag>, message: &str) -> Flow {
        self.bad_commands += 1;
        self.out
            .extend_from_slice(&response::status_line(tag, Status::Bad, None, message));
        if self.bad_commands >= self.ctx.settings.max_bad_commands {
            self.out.extend_from_slice(&response::status_line(
                None,
                Status::Bye,
                None,
                "Too many invalid IMAP commands.",
            ));
            self.disconnect_reason = Cow::Borrowed("Too many invalid IMAP commands");
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Flushes pending output and reads more input, within the timeout of the current state.
    async fn wait_for_input(&mut self) -> Flow {
        if self.flush().await.is_err() {
            return Flow::Close;
        }
        let timeout = self.input_timeout();
        match tokio::time::timeout(timeout, self.fill()).await {
            Ok(Ok(true)) => Flow::Continue,
            Ok(Ok(false)) => {
                self.disconnect_reason = Cow::Borrowed(if self.is_authenticated() {
                    "Connection closed"
                } else {
                    "Connection closed before login"
                });
                Flow::Close
            }
            Ok(Err(e)) => {
                self.disconnect_reason = Cow::Owned(format!("Connection error: {e}"));
                Flow::Close
            }
            Err(_) => {
                self.out.extend_from_slice(&response::status_line(
                    None,
                    Status::Bye,
                    None,
                    "Disconnected for inactivity.",
                ));
                self.disconnect_reason = Cow::Borrowed("Disconnected for inactivity");
                Flow::Close
            }
        }
    }

    pub(crate) fn input_timeout(&self) -> Duration {
        if self.is_authenticated() {
            self.ctx.settings.idle_timeout
        } else {
            self.ctx.settings.login_timeout
        }
    }

    pub(crate) fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated(_) | State::Selected(..))
    }

    /// Reads whatever the client has sent into `rbuf`. `Ok(false)` at end of stream.
    pub(crate) async fn fill(&mut self) -> std::io::Result<bool> {
        // Thousands of connections wait here: between commands each keeps only small buffers
        // (those that grew for a large FETCH or pipelined input are given back), and reading
        // fills spare capacity instead of zeroing a full chunk first.
        if self.rbuf.is_empty() {
            self.rbuf.shrink_to(IDLE_BUFFER);
            self.rbuf.reserve(IDLE_BUFFER);
        } else {
            self.rbuf.reserve(READ_CHUNK);
        }
        if self.out.is_empty() {
            self.out.shrink_to(IDLE_BUFFER);
        }
        let n = self.stream.read_buf(&mut self.rbuf).await?;
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

    /// Runs one complete command (RFC 3501 6) and writes its tagged response.
    async fn execute(&mut self, cmd: Command) -> Flow {
        let Command { tag, body } = cmd;
        if let Some(reply) = self.state_check(&body) {
            return self.bad_command(Some(&tag), &reply.text);
        }
        self.bad_commands = 0;
        if enables_condstore(&body) {
            // RFC 7162 3.1: any of these commands turns CONDSTORE on for the session.
            self.condstore = true;
        }
        let policy = update_policy(&body);
        if reads_messages(&body) {
            // Catch up first, so results reflect the mailbox as it is now; expunges stay held
            // back for the commands that forbid them.
            self.send_updates(policy == UpdatePolicy::All);
            if self.mailbox_lost {
                return Flow::Close;
            }
        }
        let reply = match body {
            CommandBody::Capability => self.cmd_capability(),
            CommandBody::Noop => self.cmd_noop(),
            CommandBody::Logout => self.cmd_logout(),
            CommandBody::Id(params) => self.cmd_id(params),
            CommandBody::StartTls => return self.cmd_starttls(tag).await,
            CommandBody::Compress { mechanism } => return self.cmd_compress(tag, &mechanism).await,
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                match self
                    .cmd_authenticate(&tag, &mechanism, initial_response)
                    .await
                {
                    Some(reply) => reply,
                    None => return Flow::Close,
                }
            }
            CommandBody::Login { username, password } => self.cmd_login(&username, &password).await,
            CommandBody::Select { mailbox, params } => self.cmd_select(&mailbox, params, false),
            CommandBody::Examine { mailbox, params } => self.cmd_select(&mailbox, params, true),
            CommandBody::Create { mailbox, uses } => self.cmd_create(&mailbox, &uses),
            CommandBody::Delete { mailbox } => self.cmd_delete(&mailbox),
            CommandBody::Rename { from, to } => self.cmd_rename(&from, &to),
            CommandBody::Subscribe { mailbox } => self.cmd_subscribe(&mailbox, true),
            CommandBody::Unsubscribe { mailbox } => self.cmd_subscribe(&mailbox, false),
            CommandBody::List { reference, pattern } => self.cmd_list(&reference, &pattern),
            CommandBody::ListExtended {
                select,
                reference,
                patterns,
                returns,
            } => self.cmd_list_extended(select, &reference, &patterns, &returns),
            CommandBody::Lsub { reference, pattern } => self.cmd_lsub(&reference, &pattern),
            CommandBody::Status { mailbox, items } => self.cmd_status(&mailbox, &items),
            CommandBody::Append(_) => Reply::bad("APPEND without a message literal."),
            CommandBody::Namespace => self.cmd_namespace(),
            CommandBody::GetQuota { root } => self.cmd_getquota(&root),
            CommandBody::GetQuotaRoot { mailbox } => self.cmd_getquotaroot(&mailbox),
            CommandBody::SetQuota { .. } => self.cmd_setquota(),
            CommandBody::Enable(caps) => self.cmd_enable(&caps),
            CommandBody::Idle => return self.cmd_idle(tag).await,
            CommandBody::Check => self.cmd_check(),
            CommandBody::Close => self.cmd_close(true),
            CommandBody::Unselect => self.cmd_close(false),
            CommandBody::CancelUpdate(tags) => self.cmd_cancelupdate(&tags),
            CommandBody::Expunge => self.cmd_expunge(None),
            CommandBody::UidExpunge(set) => self.cmd_expunge(Some(&set)),
            CommandBody::Search {
                uid,
                returns,
                charset,
                criteria,
            } => self.cmd_search(&tag, uid, returns.as_deref(), charset.as_deref(), &criteria),
            CommandBody::Sort {
                uid,
                returns,
                criteria,
                charset,
                search,
            } => self.cmd_sort(&tag, uid, returns.as_deref(), &criteria, &charset, &search),
            CommandBody::Thread {
                uid,
                algorithm,
                charset,
                search,
            } => self.cmd_thread(uid, algorithm, &charset, &search),
            CommandBody::Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
            } => {
                self.cmd_fetch(uid, &set, &items, changed_since, vanished)
                    .await
            }
            CommandBody::Store {
                uid,
                set,
                action,
                silent,
                flags,
                unchanged_since,
            } => self.cmd_store(uid, &set, action, silent, &flags, unchanged_since),
            CommandBody::Copy { uid, set, mailbox } => self.cmd_copy(uid, &set, &mailbox, false),
            CommandBody::Move { uid, set, mailbox } => self.cmd_copy(uid, &set, &mailbox, true),
        };
        if let Some(login) = &mut self.hand_off {
            // The process serving the user's mail answers the login command.
            login.tag = Some(tag.0);
            return Flow::HandOff;
        }
        self.finish(&tag, reply, policy);
        if self.mailbox_lost {
            return Flow::Close;
        }
        if !self.is_authenticated() && self.auth_failures >= self.ctx.settings.max_auth_attempts {
            self.out.extend_from_slice(&response::status_line(
                None,
                Status::Bye,
                None,
                "Too many failed authentication attempts.",
            ));
            self.disconnect_reason = Cow::Borrowed("Too many failed authentication attempts");
            return Flow::Close;
        }
        if matches!(self.state, State::Logout) {
            self.disconnect_reason = Cow::Borrowed("Logged out");
            return Flow::Close;
        }
        Flow::Continue
    }

    /// Which commands are valid in which state (RFC 3501 6.1-6.4): `Some` with the reason when not.
    fn state_check(&self, body: &CommandBody) -> Option<Reply> {
        use CommandBody::*;
        let any = matches!(body, Capability | Noop | Logout | Id(_));
        let not_auth_only = matches!(body, StartTls | Authenticate { .. } | Login { .. });
        let selected_only = matches!(
            body,
            Check
                | Close
                | Unselect
                | CancelUpdate(_)
                | Expunge
                | UidExpunge(_)
                | Search { .. }
                | Sort { .. }
                | Thread { .. }
                | Fetch { .. }
                | Store { .. }
                | Copy { .. }
                | Move { .. }
        );
        if any {
            return None;
        }
        match &self.state {
            State::NotAuthenticated if not_auth_only => None,
            State::NotAuthenticated => Some(Reply::bad("Please log in first.")),
            _ if not_auth_only => Some(Reply::bad("Already logged in.")),
            State::Authenticated(_) if selected_only => Some(Reply::bad("No mailbox selected.")),
            _ => None,
        }
    }

    /// Sends the untagged updates the policy allows, then the tagged response.
    /// Nothing is sent after a `* BYE` for a mailbox whose UIDVALIDITY changed.
    pub(crate) fn finish(&mut self, tag: &Tag, reply: Reply, policy: UpdatePolicy) {
        if policy != UpdatePolicy::None {
            self.send_updates(policy == UpdatePolicy::All);
        }
        if self.mailbox_lost {
            return;
        }
        self.out.extend_from_slice(&response::status_line(
            Some(tag),
            reply.status,
            reply.code.as_ref(),
            &reply.text,
        ));
    }

    /// Brings the selected mailbox's view up to date and writes the resulting untagged responses.
    ///
    /// If the mailbox got a new UIDVALIDITY meanwhile, the UIDs this client holds name other
    /// messages now, and RFC 3501 2.3.1.1 forbids reusing them silently: the session says
    /// `* BYE` and ends (`mailbox_lost`), as Dovecot ends a session whose state became
    /// inconsistent. The client logs in again and sees the new UIDVALIDITY.
    pub(crate) fn send_updates(&mut self, allow_expunge: bool) {
        let State::Selected(_, selected) = &mut self.state else {
            return;
        };
        match selected.view.sync(allow_expunge) {
            Ok(events) => {
                let updates = crate::cmd::search_context::update_contexts(
                    &mut self.search_contexts,
                    &selected.view,
                    &self.saved_result,
                    &events,
                );
                self.out.extend_from_slice(&updates.before);
                write_events(
                    &mut self.out,
                    &events,
                    self.condstore,
                    self.qresync,
                    self.rev2,
                );
                self.out.extend_from_slice(&updates.after);
            }
            Err(StoreError::UidValidityChanged { was, now }) => {
                tracing::warn!(
                    session = %self.info.session_id,
                    "UIDVALIDITY of the selected mailbox changed ({was} -> {now}); disconnecting"
                );
                self.out.extend_from_slice(&response::status_line(
                    None,
                    Status::Bye,
                    None,
                    "Mailbox UIDVALIDITY changed, please log in again.",
                ));
                self.state = State::Logout;
                self.mailbox_lost = true;
                self.disconnect_reason = Cow::Borrowed("Mailbox UIDVALIDITY changed");
            }
            Err(e) => {
                tracing::warn!(session = %self.info.session_id, "mailbox sync failed: {e}");
            }
        }
    }

    pub(crate) fn user(&self) -> Option<&User> {
        match &self.state {
            State::Authenticated(u) | State::Selected(u, _) => Some(u),
            _ => None,
        }
    }

    /// Maps a storage failure to the reply a client may see; internal details only go to the log
    /// (RFC 5530 codes; Dovecot's wording).
    pub(crate) fn store_error(&self, err: StoreError) -> Reply {
        match err.kind() {
            StoreErrorKind::NotFound => {
                Reply::no(format!("Mailbox doesn't exist: {}", error_subject(&err)))
                    .with_code(Code::NonExistent)
            }
            StoreErrorKind::AlreadyExists => {
                Reply::no("Mailbox already exists.").with_code(Code::AlreadyExists)
            }
            StoreErrorKind::InvalidName => Reply::no(format!("{err}")).with_code(Code::CanNot),
            StoreErrorKind::NotPossible => Reply::no(format!("{err}")).with_code(Code::CanNot),
            StoreErrorKind::Expunged => {
                Reply::no("Some of the requested messages no longer exist.")
                    .with_code(Code::ExpungeIssued)
            }
            StoreErrorKind::InUse => {
                Reply::no("Mailbox is locked, try again later.").with_code(Code::InUse)
            }
            StoreErrorKind::NoPermission => Reply::no("Permission denied.").with_code(Code::NoPerm),
            StoreErrorKind::OverQuota => Reply::no("Quota exceeded.").with_code(Code::OverQuota),
            StoreErrorKind::Internal => {
                let stamp = timestamp();
                tracing::error!(session = %self.info.session_id, "internal error [{stamp}]: {err}");
                Reply::no(format!(
                    "Internal error occurred. Refer to server log for more information. [{stamp}]"
                ))
                .with_code(Code::ServerBug)
            }
        }
    }
}

fn error_subject(err: &StoreError) -> String {
    match err {
        StoreError::NotFound(name) => name.clone(),
        other => other.to_string(),
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, to tie a client's error message to the log line.
pub(crate) fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, m, d) = response::civil_from_days(now.div_euclid(86_400));
    let s = now.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

fn update_policy(body: &CommandBody) -> UpdatePolicy {
    match body {
        CommandBody::Fetch { uid: false, .. }
        | CommandBody::Store { uid: false, .. }
        | CommandBody::Search { uid: false, .. }
        | CommandBody::Sort { uid: false, .. }
        | CommandBody::Thread { uid: false, .. }
        | CommandBody::Copy { uid: false, .. }
        | CommandBody::Move { uid: false, .. } => UpdatePolicy::NoExpunge,
        CommandBody::Select { .. }
        | CommandBody::Examine { .. }
        | CommandBody::Close
        | CommandBody::Unselect
        | CommandBody::Logout => UpdatePolicy::None,
        _ => UpdatePolicy::All,
    }
}

/// Commands whose results depend on the messages' current state.
fn reads_messages(body: &CommandBody) -> bool {
    matches!(
        body,
        CommandBody::Fetch { .. }
            | CommandBody::Store { .. }
            | CommandBody::Search { .. }
            | CommandBody::Sort { .. }
            | CommandBody::Thread { .. }
            | CommandBody::Copy { .. }
            | CommandBody::Move { .. }
    )
}

/// Writes view events as untagged responses (RFC 3501 7.3.1, 7.3.2, 7.4.1, 7.4.2).
/// The untagged responses for what changed (RFC 3501 7.3, 7.4). With CONDSTORE the FETCH
/// responses carry MODSEQ (RFC 7162 3.1.4.1); with QRESYNC expunges are told as one VANISHED
/// of their UIDs instead of EXPUNGEs (3.2.10). IMAP4rev2 has no RECENT and no \Recent
/// (RFC 9051 appendix E item 12).
pub(crate) fn write_events(
    out: &mut Vec<u8>,
    events: &[ViewEvent],
    condstore: bool,
    qresync: bool,
    rev2: bool,
) {
    if qresync {
        let gone: Vec<u32> = events
            .iter()
            .filter_map(|e| match e {
                ViewEvent::Expunge(_, uid) => Some(uid.get()),
                _ => None,
            })
            .collect();
        if let Some(set) = SeqSet::from_values(gone) {
            out.extend_from_slice(format!("* VANISHED {set}\r\n").as_bytes());
        }
    }
    for ev in events {
        match ev {
            ViewEvent::Expunge(..) if qresync => {}
            ViewEvent::Expunge(seq, _) => {
                out.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes())
            }
            ViewEvent::Exists(n) => out.extend_from_slice(format!("* {n} EXISTS\r\n").as_bytes()),
            ViewEvent::Recent(_) if rev2 => {}
            ViewEvent::Recent(n) => out.extend_from_slice(format!("* {n} RECENT\r\n").as_bytes()),
            ViewEvent::Flags {
                seq,
                uid,
                flags,
                recent,
                modseq,
            } => {
                out.extend_from_slice(format!("* {seq} FETCH (UID {uid} FLAGS ").as_bytes());
                response::write_flag_list(out, flags.iter(), *recent && !rev2);
                if condstore {
                    out.extend_from_slice(format!(" MODSEQ ({modseq})").as_bytes());
                }
                out.extend_from_slice(b")\r\n");
            }
        }
    }
}

/// The commands that enable CONDSTORE as a side effect (RFC 7162 3.1).
fn enables_condstore(body: &CommandBody) -> bool {
    match body {
        CommandBody::Select { params, .. } | CommandBody::Examine { params, .. } => {
            params.condstore || params.qresync.is_some()
        }
        CommandBody::Fetch {
            items,
            changed_since,
            ..
        } => changed_since.is_some() || items.contains(&imap_proto::FetchAttr::ModSeq),
        CommandBody::Store {
            unchanged_since, ..
        } => unchanged_since.is_some(),
        CommandBody::Search { criteria, .. } => has_modseq_key(criteria),
        CommandBody::Sort { search, .. } | CommandBody::Thread { search, .. } => {
            has_modseq_key(search)
        }
        CommandBody::Status { items, .. } => items.contains(&imap_proto::StatusItem::HighestModSeq),
        _ => false,
    }
}

pub(crate) fn has_modseq_key(key: &imap_proto::SearchKey) -> bool {
    use imap_proto::SearchKey as K;
    match key {
        K::ModSeq(_) => true,
        K::Not(k) => has_modseq_key(k),
        K::Or(a, b) => has_modseq_key(a) || has_modseq_key(b),
        K::And(keys) => keys.iter().any(has_modseq_key),
        _ => false,
    }
}
