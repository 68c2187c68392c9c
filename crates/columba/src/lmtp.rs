//! The LMTP server's side in the binary: the listeners of `[lmtp]` (TCP and Unix sockets), the
//! session settings from `[lmtp]` and `[delivery]`, and the [`DeliveryBackend`] that stores
//! mail in this process through the same stores IMAP serves, so an IMAP session with the
//! mailbox selected sees a delivery at once (IDLE wakes up).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use auth::{UserLookup, UserRecord};
use lmtp_session::{
    ConnectionInfo, DeliveryBackend, DeliveryFailure, LmtpSettings, SessionContext,
};
use session_api::delivery::{DeliveryError, deliver};
use session_api::quota::QuotaLimits;
use tokio::sync::Semaphore;

use crate::backend::open_user_store;
use crate::config::Config;

/// Looks recipients up in the userdb and stores their mail in this process.
pub struct LocalDelivery {
    users: UserLookup,
    location: String,
}

impl LocalDelivery {
    pub fn from_config(config: &Config) -> anyhow::Result<LocalDelivery> {
        Ok(LocalDelivery {
            users: crate::backend::delivery_users(config)?,
            location: config.mail_location(),
        })
    }
}

impl DeliveryBackend for LocalDelivery {
    fn lookup(&self, username: &str) -> Result<Option<UserRecord>, String> {
        self.users.lookup(username).map_err(|e| e.to_string())
    }

    fn over_quota(&self, user: &UserRecord) -> Result<bool, String> {
        let store = open_user_store(&self.location, user).map_err(|e| e.to_string())?;
        QuotaLimits::of(user)
            .would_exceed(store.as_ref(), 0, 1)
            .map_err(|e| e.to_string())
    }

    fn deliver(&self, user: &UserRecord, message: &[u8]) -> Result<(), DeliveryFailure> {
        let store = open_user_store(&self.location, user)
            .map_err(|e| DeliveryFailure::Temporary(e.to_string()))?;
        match deliver(store.as_ref(), user, None, message) {
            Ok(_) => Ok(()),
            Err(DeliveryError::OverQuota) => Err(DeliveryFailure::OverQuota),
            Err(e) => Err(DeliveryFailure::Temporary(e.to_string())),
        }
    }
}

/// The session settings `[lmtp]` and `[delivery]` give.
pub fn settings(config: &Config) -> LmtpSettings {
    LmtpSettings {
        hostname: hostname(config),
        max_line: config.lmtp.max_line_length,
        max_message_size: config.delivery.max_message_size,
        max_recipients: config.lmtp.max_recipients.max(1),
        timeout: Duration::from_secs(config.lmtp.timeout_secs.max(1)),
        recipient_delimiter: config.delivery.recipient_delimiter.clone(),
        rcpt_check_quota: config.lmtp.rcpt_check_quota,
        quota_full_tempfail: config.delivery.quota_full_tempfail,
        ..LmtpSettings::default()
    }
}

/// `[delivery] hostname`, else the system's host name; only a plain name goes into headers.
pub fn hostname(config: &Config) -> String {
    let name = config.delivery.hostname.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default()
    });
    let name = name.trim();
    let plain = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
    if plain {
        name.to_owned()
    } else {
        "localhost".to_owned()
    }
}

/// A bound LMTP listener.
pub enum Listener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener, PathBuf),
}

impl Listener {
    /// How the master names the listener to the lmtp process (`tcp`, `unix:PATH`).
    pub fn kind(&self) -> String {
        match self {
            Listener::Tcp(_) => "tcp".to_owned(),
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }

    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd as _;
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l, _) => l.as_fd(),
        }
    }

    /// A listener handed over by the master, as [`Listener::kind`] named it.
    pub fn inherited(kind: &str, fd: std::os::fd::OwnedFd) -> anyhow::Result<Listener> {
        let listener = match kind.strip_prefix("unix:") {
            Some(path) => {
                let l = std::os::unix::net::UnixListener::from(fd);
                l.set_nonblocking(true)?;
                Listener::Unix(l, PathBuf::from(path))
            }
            None if kind == "tcp" => {
                let l = std::net::TcpListener::from(fd);
                l.set_nonblocking(true)?;
                Listener::Tcp(l)
            }
            None => anyhow::bail!("unknown LMTP listener kind {kind:?}"),
        };
        Ok(listener)
    }
}

/// Binds `[lmtp] listen` and `listen_unix` (before privileges are dropped). A Unix socket
/// left by an earlier run is replaced; anything else at its path is an error.
pub fn bind(config: &Config) -> anyhow::Result<Vec<Listener>> {
    let mut listeners = Vec::new();
    for addr in &config.lmtp.listen {
        if addr.port() == 25 {
            anyhow::bail!("[lmtp] listen {addr}: LMTP MUST NOT be used on port 25 (RFC 2033 5)");
        }
        let listener =
            std::net::TcpListener::bind(addr).with_context(|| format!("binding LMTP {addr}"))?;
        listener.set_nonblocking(true)?;
        listeners.push(Listener::Tcp(listener));
    }
    for path in &config.lmtp.listen_unix {
        listeners.push(bind_unix(path)?);
    }
    Ok(listeners)
}

fn bind_unix(path: &Path) -> anyhow::Result<Listener> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            anyhow::bail!("LMTP socket {}: something else is there", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("binding LMTP socket {}", path.display()))?;
    // Whoever may reach the directory may deliver, as anyone on the host may reach a
    // loopback port.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    listener.set_nonblocking(true)?;
    Ok(Listener::Unix(listener, path.to_owned()))
}

/// Accepts LMTP connections on `listeners` for as long as the runtime runs, at most
/// `max_connections` at once over all of them.
pub fn spawn(
    listeners: Vec<Listener>,
    ctx: Arc<SessionContext>,
    max_connections: usize,
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    for listener in listeners {
        let ctx = ctx.clone();
        let slots = slots.clone();
        match listener {
            Listener::Tcp(l) => {
                let l = tokio::net::TcpListener::from_std(l)?;
                tracing::info!("lmtp: listening on {}", l.local_addr()?);
                tokio::spawn(accept_tcp(l, ctx, slots));
            }
            Listener::Unix(l, path) => {
                let l = tokio::net::UnixListener::from_std(l)?;
                tracing::info!("lmtp: listening on {}", path.display());
                tokio::spawn(accept_unix(l, ctx, slots));
            }
        }
    }
    Ok(())
}

async fn accept_tcp(
    listener: tokio::net::TcpListener,
    ctx: Arc<SessionContext>,
    slots: Arc<Semaphore>,
) {
    loop {
        match listener.accept().await {
            Ok((socket, remote)) => {
                let _ = socket.set_nodelay(true);
                let local = socket
                    .local_addr()
                    .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
                serve(
                    Box::new(socket),
                    connection_info(remote, local),
                    &ctx,
                    &slots,
                );
            }
            Err(e) => accept_failed(e).await,
        }
    }
}

async fn accept_unix(
    listener: tokio::net::UnixListener,
    ctx: Arc<SessionContext>,
    slots: Arc<Semaphore>,
) {
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                // No address: the session names the peer "local" and leaves it out of headers.
                let none = SocketAddr::from(([0, 0, 0, 0], 0));
                serve(Box::new(socket), connection_info(none, none), &ctx, &slots);
            }
            Err(e) => accept_failed(e).await,
        }
    }
}

/// Starts a session when a slot is free; otherwise tells the client to come back later.
fn serve(
    mut stream: session_api::BoxedStream,
    info: ConnectionInfo,
    ctx: &Arc<SessionContext>,
    slots: &Arc<Semaphore>,
) {
    let Ok(slot) = slots.clone().try_acquire_owned() else {
        tracing::warn!("lmtp: too many connections; refusing one");
        let refusal = format!(
            "421 4.3.2 {} Too many concurrent connections\r\n",
            ctx.settings.hostname
        );
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            let _ = stream.write_all(refusal.as_bytes()).await;
        });
        return;
    };
    let ctx = ctx.clone();
    tokio::spawn(async move {
        lmtp_session::serve(stream, ctx, info).await;
        drop(slot);
    });
}

fn connection_info(remote: SocketAddr, local: SocketAddr) -> ConnectionInfo {
    ConnectionInfo {
        remote,
        local,
        implicit_tls: false,
        session_id: crate::server::session_id(),
    }
}

/// Typically EMFILE: back off instead of spinning.
async fn accept_failed(e: std::io::Error) {
    tracing::warn!("lmtp: accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
