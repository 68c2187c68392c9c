//! The auth process: the only process that reads password databases (`/etc/shadow`, PAM,
//! passwd-files, checkpassword). It runs as root, because those need it, and so it parses
//! nothing but [`super::ipc`] frames: never IMAP or POP3, never a client's bytes except the
//! credentials themselves.
//!
//! The login process asks it to check a password or to run a SASL step; on success it answers
//! with the user's name and a one-time token. The master redeems that token for the user's full
//! record before it starts serving them mail, so a compromised login process cannot make up a
//! login: it can only use tokens for logins that really happened, once, within a minute.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth::sasl::Mechanism;
use auth::{AuthOutcome, ExchangeStep, FailureKind, UserRecord};
use session_api::{SaslExchange, UserBackend};

use super::ipc::{self, FrameReader, FrameWriter, IpcError, Sender};
use super::protocol::{put_failure, put_record};

/// How long a login token may wait for the master to redeem it.
const TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// How long an unfinished SASL exchange is kept (a client that went away never ends it).
const EXCHANGE_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// SASL exchanges waiting for the client's next response, by id, with when they started.
type PendingExchanges = HashMap<u64, (Box<dyn SaslExchange>, Instant)>;

struct AuthService {
    backend: Arc<dyn UserBackend>,
    tokens: Mutex<HashMap<String, (UserRecord, Instant)>>,
    exchanges: Mutex<PendingExchanges>,
    next_exchange: AtomicU64,
}

/// Serves the login process on `from_login` and the master on `from_master` until either
/// closes its end.
pub async fn serve(
    backend: Arc<dyn UserBackend>,
    from_login: OwnedFd,
    from_master: OwnedFd,
) -> anyhow::Result<()> {
    let service = Arc::new(AuthService {
        backend,
        tokens: Mutex::new(HashMap::new()),
        exchanges: Mutex::new(HashMap::new()),
        next_exchange: AtomicU64::new(1),
    });
    let (login_tx, login_rx) = ipc::channel(from_login.into())?;
    let (master_tx, master_rx) = ipc::channel(from_master.into())?;
    tokio::select! {
        r = serve_login(service.clone(), login_tx, login_rx) => r?,
        r = serve_master(service, master_tx, master_rx) => r?,
    }
    Ok(())
}

async fn serve_login(
    service: Arc<AuthService>,
    tx: Sender,
    mut rx: ipc::Receiver,
) -> Result<(), IpcError> {
    while let Some(mut frame) = rx.recv().await? {
        service.expire();
        let kind = frame.kind()?;
        if kind == "sasl-abort" {
            let exchange = frame.u64()?;
            lock(&service.exchanges).remove(&exchange);
            continue;
        }
        let id = frame.u64()?;
        let service = service.clone();
        let tx = tx.clone();
        // Each request on its own task: a slow hash or PAM conversation holds up no one else.
        tokio::spawn(async move {
            let reply = match service.request(&kind, id, frame).await {
                Ok(reply) => reply,
                Err(e) => {
                    tracing::warn!("auth: bad request from the login process: {e}");
                    let mut w = FrameWriter::new("fail");
                    w.u64(id);
                    put_failure(&mut w, "", &FailureKind::Internal("bad request".into()));
                    w
                }
            };
            if let Err(e) = tx.send(reply).await {
                tracing::warn!("auth: cannot answer the login process: {e}");
            }
        });
    }
    Ok(())
}

async fn serve_master(
    service: Arc<AuthService>,
    tx: Sender,
    mut rx: ipc::Receiver,
) -> Result<(), IpcError> {
    while let Some(mut frame) = rx.recv().await? {
        if frame.kind()? != "redeem" {
            return Err(IpcError::Malformed("unknown request from the master"));
        }
        let id = frame.u64()?;
        let token = frame.string()?;
        let found = lock(&service.tokens).remove(&token);
        let mut w = FrameWriter::new("user");
        w.u64(id);
        match found {
            Some((record, issued)) if issued.elapsed() < TOKEN_LIFETIME => {
                w.u64(1);
                put_record(&mut w, &record);
            }
            _ => {
                w.u64(0);
            }
        }
        tx.send(w).await?;
    }
    Ok(())
}

impl AuthService {
    async fn request(
        self: &Arc<Self>,
        kind: &str,
        id: u64,
        mut frame: FrameReader,
    ) -> Result<FrameWriter, IpcError> {
        match kind {
            "mechanisms" => {
                let mut w = FrameWriter::new("mechanisms");
                w.u64(id);
                for m in self.backend.mechanisms() {
                    w.str(m.name());
                }
                Ok(w)
            }
            "verify" => {
                let user = frame.string()?;
                let password = zeroize::Zeroizing::new(frame.bytes()?);
                let backend = self.backend.clone();
                let name = user.clone();
                let checked =
                    tokio::task::spawn_blocking(move || backend.authenticate(&name, &password))
                        .await;
                let step = match checked {
                    Ok(Ok(AuthOutcome::Success(record))) => ExchangeStep::Success(record),
                    Ok(Ok(AuthOutcome::UnknownUser)) => failure(&user, FailureKind::UnknownUser),
                    Ok(Ok(AuthOutcome::WrongPassword)) => {
                        failure(&user, FailureKind::WrongPassword)
                    }
                    Ok(Err(e)) => failure(&user, FailureKind::Internal(e.to_string())),
                    Err(e) => failure(&user, FailureKind::Internal(e.to_string())),
                };
                Ok(self.answer(id, 0, step))
            }
            "sasl" => {
                let exchange_id = frame.u64()?;
                let mechanism = frame.string()?;
                let response = frame.opt_bytes()?.map(zeroize::Zeroizing::new);
                let tls_identity = frame.opt_string()?;
                let exchange = if exchange_id == 0 {
                    match Mechanism::from_name(&mechanism) {
                        Some(Mechanism::External) => {
                            session_api::start_external_sasl(&self.backend, tls_identity.as_deref())
                        }
                        Some(m) => session_api::start_sasl(&self.backend, m),
                        None => None,
                    }
                } else {
                    lock(&self.exchanges)
                        .remove(&exchange_id)
                        .map(|(exchange, _)| exchange)
                };
                let Some(exchange) = exchange else {
                    let step = failure(
                        "",
                        FailureKind::Internal(format!("no SASL exchange {mechanism}")),
                    );
                    return Ok(self.answer(id, 0, step));
                };
                let (exchange, step) = session_api::sasl_step(exchange, response).await;
                let mut exchange_id = exchange_id;
                if let (Some(exchange), ExchangeStep::Challenge(_)) = (exchange, &step) {
                    if exchange_id == 0 {
                        exchange_id = self.next_exchange.fetch_add(1, Ordering::Relaxed);
                    }
                    lock(&self.exchanges).insert(exchange_id, (exchange, Instant::now()));
                }
                Ok(self.answer(id, exchange_id, step))
            }
            _ => Err(IpcError::Malformed("unknown request")),
        }
    }

    /// The reply to a step: a challenge, a failure, or a success whose record stays here
    /// behind a fresh token.
    fn answer(&self, id: u64, exchange: u64, step: ExchangeStep) -> FrameWriter {
        match step {
            ExchangeStep::Challenge(challenge) => {
                let mut w = FrameWriter::new("challenge");
                w.u64(id).u64(exchange).bytes(&challenge);
                w
            }
            ExchangeStep::Failure(f) => {
                let mut w = FrameWriter::new("fail");
                w.u64(id);
                put_failure(&mut w, &f.user, &f.kind);
                w
            }
            ExchangeStep::Success(record) => match new_token() {
                Ok(token) => {
                    let mut w = FrameWriter::new("ok");
                    w.u64(id).str(&token).str(&record.name);
                    lock(&self.tokens).insert(token, (record, Instant::now()));
                    w
                }
                Err(e) => {
                    let mut w = FrameWriter::new("fail");
                    w.u64(id);
                    put_failure(&mut w, &record.name, &FailureKind::Internal(e));
                    w
                }
            },
        }
    }

    /// Forgets tokens nobody redeemed and exchanges nobody finished.
    fn expire(&self) {
        lock(&self.tokens).retain(|_, (_, issued)| issued.elapsed() < TOKEN_LIFETIME);
        lock(&self.exchanges).retain(|_, (_, started)| started.elapsed() < EXCHANGE_LIFETIME);
    }
}

fn failure(user: &str, kind: FailureKind) -> ExchangeStep {
    ExchangeStep::Failure(auth::Failure {
        user: user.to_owned(),
        kind,
    })
}

/// 128 random bits, hex: unguessable, and one login's only.
fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no randomness for a token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A poisoned lock only means another request panicked; the maps are still consistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
