//! The login process: everything a client can reach before it has logged in — TLS handshakes,
//! the greeting, CAPABILITY, STARTTLS, LOGIN and AUTHENTICATE parsing — in a process that runs
//! as an unprivileged user, chrooted to an empty directory, unable to gain privileges. It holds
//! the TLS key (it must, to terminate TLS) and nothing else: no mail, no password database.
//!
//! Passwords and SASL steps go to the auth process ([`AuthClient`]); a login that succeeds
//! hands the connection to the master ([`MasterHandOff`]), which has it served by the user's
//! own mail process. The login process keeps relaying the client's bytes between the client's
//! stream (TLS or not) and that process: TLS state never leaves this process (SECURITY.md).

use std::collections::HashMap;
use std::future::Future;
use std::os::fd::{AsFd as _, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth::sasl::Mechanism;
use auth::{AuthError, AuthOutcome, ExchangeStep, FailureKind, UserRecord};
use mail_store::{MailStore, StoreError};
use session_api::{BoxedStream, ConnectionInfo, LoggedIn, LoginHandOff, SaslExchange, UserBackend};
use tokio::sync::oneshot;

use super::ipc::{self, FrameReader, FrameWriter, IpcError, Sender};
use super::protocol::{Connection, Protocol, get_failure};
use crate::limits::PreLoginLimit;

/// The field of the login-side user record that carries the auth process's token to the
/// hand-off. It never leaves the login process except to the master, which strips it.
pub const TOKEN_FIELD: &str = "columba-login-token";

/// How long a request to the auth process may take (PAM and checkpassword have their own,
/// shorter limits inside it).
const AUTH_TIMEOUT: Duration = Duration::from_secs(60);

/// Requests to the auth process, multiplexed over one channel by request id.
pub struct AuthClient {
    tx: Sender,
    pending: Mutex<HashMap<u64, oneshot::Sender<(String, FrameReader)>>>,
    next_id: AtomicU64,
    runtime: tokio::runtime::Handle,
}

impl AuthClient {
    /// Starts reading the auth process's answers from `fd` (on the current runtime).
    pub fn start(fd: OwnedFd) -> std::io::Result<Arc<AuthClient>> {
        let (tx, mut rx) = ipc::channel(fd.into())?;
        let client = Arc::new(AuthClient {
            tx,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            runtime: tokio::runtime::Handle::current(),
        });
        let reader = Arc::downgrade(&client);
        tokio::spawn(async move {
            loop {
                let mut frame = match rx.recv().await {
                    Ok(Some(frame)) => frame,
                    Ok(None) => {
                        tracing::error!("login: the auth process closed its channel");
                        break;
                    }
                    Err(e) => {
                        tracing::error!("login: bad answer from the auth process: {e}");
                        break;
                    }
                };
                let Some(client) = reader.upgrade() else {
                    break;
                };
                // Every answer starts with its kind and the request id.
                let (Ok(kind), Ok(id)) = (frame.kind(), frame.u64()) else {
                    tracing::error!("login: an answer from the auth process without its id");
                    continue;
                };
                let waiter = lock(&client.pending).remove(&id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send((kind, frame));
                }
            }
            // Whoever still waits learns that no answer will come.
            if let Some(client) = reader.upgrade() {
                lock(&client.pending).clear();
            }
        });
        Ok(client)
    }

    fn new_request(&self, kind: &str) -> (u64, FrameWriter) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut w = FrameWriter::new(kind);
        w.u64(id);
        (id, w)
    }

    /// Sends a request and waits for its answer (whose kind and id are already read).
    async fn call(
        &self,
        id: u64,
        request: FrameWriter,
    ) -> Result<(String, FrameReader), AuthError> {
        let (done, answer) = oneshot::channel();
        lock(&self.pending).insert(id, done);
        let sent = self.tx.send(request).await;
        if let Err(e) = sent {
            lock(&self.pending).remove(&id);
            return Err(unavailable(e.to_string()));
        }
        match tokio::time::timeout(AUTH_TIMEOUT, answer).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(unavailable("the auth process went away".into())),
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(unavailable(
                    "the auth process did not answer in time".into(),
                ))
            }
        }
    }

    /// [`AuthClient::call`] from a thread that may block (the sessions run password checks
    /// and SASL steps on tokio's blocking pool).
    fn call_blocking(
        &self,
        id: u64,
        request: FrameWriter,
    ) -> Result<(String, FrameReader), AuthError> {
        self.runtime.block_on(self.call(id, request))
    }

    /// The mechanisms the auth process offers, asked once at start.
    pub async fn mechanisms(&self) -> Result<Vec<Mechanism>, AuthError> {
        let (id, w) = self.new_request("mechanisms");
        let (kind, mut frame) = self.call(id, w).await?;
        if kind != "mechanisms" {
            return Err(unavailable(format!("unexpected answer {kind:?}")));
        }
        let mut mechanisms = Vec::new();
        while let Ok(name) = frame.string() {
            if let Some(m) = Mechanism::from_name(&name) {
                mechanisms.push(m);
            }
        }
        Ok(mechanisms)
    }
}

fn unavailable(reason: String) -> AuthError {
    AuthError::Backend {
        backend: "auth process",
        reason,
    }
}

fn bad_answer(e: IpcError) -> AuthError {
    unavailable(format!("bad answer: {e}"))
}

/// The record the login process knows of a user who logged in: the name, and the token that
/// lets the master fetch the rest from the auth process.
fn logged_in_record(frame: &mut FrameReader) -> Result<UserRecord, AuthError> {
    let token = frame.string().map_err(bad_answer)?;
    let name = frame.string().map_err(bad_answer)?;
    let mut record = UserRecord::named(name);
    record.extra.push((TOKEN_FIELD.to_owned(), token));
    Ok(record)
}

/// The [`UserBackend`] of the login process: passwords and SASL go to the auth process, and a
/// successful login is handed to the master.
pub struct LoginBackend {
    auth: Arc<AuthClient>,
    mechanisms: Vec<Mechanism>,
    hand_off: MasterHandOff,
}

impl LoginBackend {
    pub fn new(
        auth: Arc<AuthClient>,
        mechanisms: Vec<Mechanism>,
        protocol: Protocol,
        master: Sender,
        prelogin: Arc<PreLoginLimit>,
    ) -> LoginBackend {
        LoginBackend {
            auth,
            mechanisms,
            hand_off: MasterHandOff {
                protocol,
                master,
                prelogin,
            },
        }
    }
}

impl UserBackend for LoginBackend {
    fn authenticate(&self, username: &str, password: &[u8]) -> Result<AuthOutcome, AuthError> {
        let (id, mut w) = self.auth.new_request("verify");
        w.str(username).bytes(password);
        let (kind, mut frame) = self.auth.call_blocking(id, w)?;
        match kind.as_str() {
            "ok" => Ok(AuthOutcome::Success(logged_in_record(&mut frame)?)),
            "fail" => match get_failure(&mut frame).map_err(bad_answer)?.1 {
                FailureKind::UnknownUser => Ok(AuthOutcome::UnknownUser),
                FailureKind::WrongPassword | FailureKind::Malformed(_) => {
                    Ok(AuthOutcome::WrongPassword)
                }
                FailureKind::Internal(reason) => Err(unavailable(reason)),
            },
            _ => Err(unavailable(format!("unexpected answer {kind:?}"))),
        }
    }

    fn open_store(&self, user: &UserRecord) -> Result<Arc<dyn MailStore>, StoreError> {
        Err(StoreError::Internal(format!(
            "the login process does not open mail (user {})",
            user.name
        )))
    }

    fn mechanisms(&self) -> Vec<Mechanism> {
        self.mechanisms.clone()
    }

    fn sasl_exchange(&self, mechanism: Mechanism) -> Option<Box<dyn SaslExchange>> {
        Some(Box::new(RemoteExchange {
            auth: self.auth.clone(),
            mechanism,
            exchange: 0,
            tls_identity: None,
        }))
    }

    /// EXTERNAL: the identity comes from the client certificate this process verified (it
    /// terminates TLS), so for this mechanism the auth process trusts the login process's
    /// word on the certificate, as Dovecot's auth trusts its login processes (SECURITY.md).
    fn sasl_external(&self, identity: &str) -> Option<Box<dyn SaslExchange>> {
        Some(Box::new(RemoteExchange {
            auth: self.auth.clone(),
            mechanism: Mechanism::External,
            exchange: 0,
            tls_identity: Some(identity.to_owned()),
        }))
    }

    fn login_hand_off(&self) -> Option<&dyn LoginHandOff> {
        Some(&self.hand_off)
    }
}

/// A SASL exchange that runs in the auth process, one request per step.
struct RemoteExchange {
    auth: Arc<AuthClient>,
    mechanism: Mechanism,
    /// The auth process's id for this exchange; 0 until its first challenge.
    exchange: u64,
    /// For EXTERNAL: whom the verified client certificate names.
    tls_identity: Option<String>,
}

impl SaslExchange for RemoteExchange {
    fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    fn step(&mut self, response: Option<&[u8]>) -> ExchangeStep {
        let (id, mut w) = self.auth.new_request("sasl");
        w.u64(self.exchange)
            .str(self.mechanism.name())
            .opt_bytes(response)
            .opt_str(self.tls_identity.as_deref());
        let failed = |reason: String| {
            ExchangeStep::Failure(auth::Failure {
                user: String::new(),
                kind: FailureKind::Internal(reason),
            })
        };
        let (kind, mut frame) = match self.auth.call_blocking(id, w) {
            Ok(answer) => answer,
            Err(e) => return failed(e.to_string()),
        };
        let step = match kind.as_str() {
            "challenge" => frame.u64().and_then(|exchange| {
                self.exchange = exchange;
                Ok(ExchangeStep::Challenge(frame.bytes()?))
            }),
            "ok" => {
                self.exchange = 0;
                return match logged_in_record(&mut frame) {
                    Ok(record) => ExchangeStep::Success(record),
                    Err(e) => failed(e.to_string()),
                };
            }
            "fail" => {
                self.exchange = 0;
                get_failure(&mut frame)
                    .map(|(user, kind)| ExchangeStep::Failure(auth::Failure { user, kind }))
            }
            _ => return failed(format!("unexpected answer {kind:?}")),
        };
        step.unwrap_or_else(|e| failed(e.to_string()))
    }
}

impl Drop for RemoteExchange {
    /// A client that cancels or disconnects mid-exchange: the auth process forgets it now
    /// instead of at its expiry.
    fn drop(&mut self) {
        if self.exchange == 0 {
            return;
        }
        let mut w = FrameWriter::new("sasl-abort");
        w.u64(self.exchange);
        let tx = self.auth.tx.clone();
        self.auth.runtime.spawn(async move {
            let _ = tx.send(w).await;
        });
    }
}

/// Hands a logged-in connection to the master and relays its bytes from then on.
pub struct MasterHandOff {
    protocol: Protocol,
    master: Sender,
    /// The connection stops counting as a pre-login one of its address.
    prelogin: Arc<PreLoginLimit>,
}

impl LoginHandOff for MasterHandOff {
    fn hand_off(
        &self,
        mut stream: BoxedStream,
        info: ConnectionInfo,
        mut login: LoggedIn,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.prelogin.logged_in(&info.session_id);
        let master = self.master.clone();
        let protocol = self.protocol;
        Box::pin(async move {
            let token = login
                .user
                .extra
                .iter()
                .position(|(k, _)| k == TOKEN_FIELD)
                .map(|i| login.user.extra.remove(i).1);
            let Some(token) = token else {
                tracing::error!("login: a login without a token cannot be handed over");
                return;
            };
            let (ours, theirs) = match std::os::unix::net::UnixStream::pair() {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::error!("login: socketpair: {e}");
                    return;
                }
            };
            let mut w = FrameWriter::new("hand-off");
            w.str(&token);
            Connection::new(protocol, info.clone(), &login).put(&mut w);
            if let Err(e) = master.send_fd(w, theirs.as_fd()).await {
                tracing::error!("login: cannot hand the connection to the master: {e}");
                return;
            }
            drop(theirs);
            let ours = match ours
                .set_nonblocking(true)
                .and_then(|()| tokio::net::UnixStream::from_std(ours))
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("login: {e}");
                    return;
                }
            };
            let mut ours = ours;
            // Until either side ends: the mail process answers the client from here on.
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut ours).await;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
