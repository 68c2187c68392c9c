//! `columba serve`: binds the listeners, then accepts connections and hands each to an IMAP or
//! POP3 session task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use auth::LoginPenalty;
use base64::Engine as _;
use imap_session::ImapSettings;
use pop3_session::{MaildropLocks, Pop3Settings, UidlFormat};
use session_api::{BoxedStream, ConnectionInfo, TlsUpgrade};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::backend::AuthBackend;
use crate::config::Config;
use crate::tls::{self, StartTls};

/// A protocol and what its sessions share.
#[derive(Clone)]
enum Service {
    Imap(Arc<imap_session::SessionContext>),
    Pop3(Arc<pop3_session::SessionContext>),
}

impl Service {
    fn login_timeout(&self) -> Duration {
        match self {
            Service::Imap(ctx) => ctx.settings.login_timeout,
            Service::Pop3(ctx) => ctx.settings.login_timeout,
        }
    }

    /// The log prefix of connections that never reach a session (Dovecot's `imap-login`).
    fn login_process(&self) -> &'static str {
        match self {
            Service::Imap(_) => "imap-login",
            Service::Pop3(_) => "pop3-login",
        }
    }

    async fn serve(self, stream: BoxedStream, info: ConnectionInfo) {
        match self {
            Service::Imap(ctx) => imap_session::serve(stream, ctx, info).await,
            Service::Pop3(ctx) => pop3_session::serve(stream, ctx, info).await,
        }
    }
}

/// Binds every listener (so a port problem is reported before anything else happens), then
/// serves until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let uidl_format = UidlFormat::parse(&config.pop3.uidl_format).context("[pop3] uidl_format")?;
    let acceptor = tls::acceptor(&config.cert_path(), &config.key_path())?;
    let backend = Arc::new(AuthBackend::from_config(&config)?);
    // One penalty for both protocols: failing over IMAP makes the next POP3 attempt wait too.
    let penalty = Arc::new(LoginPenalty::new(
        Duration::from_millis(config.auth.failure_delay_ms),
        Duration::from_millis(config.auth.failure_delay_max_ms),
    ));
    let starttls: Arc<dyn TlsUpgrade> = Arc::new(StartTls(acceptor.clone()));

    let mut imap = ImapSettings::default();
    imap.limits.max_line = config.imap.max_line_length;
    imap.limits.max_append = config.imap.max_message_size;
    imap.allow_plaintext_auth_without_tls = config.auth.allow_plaintext_without_tls;
    imap.login_timeout = Duration::from_secs(config.imap.login_timeout_secs);
    imap.idle_timeout = Duration::from_secs(config.imap.idle_timeout_secs);
    imap.auto_create = config.imap.auto_create.clone();
    imap.special_use = config.imap.special_use.clone().into_iter().collect();
    let imap_context = |starttls: Option<Arc<dyn TlsUpgrade>>| {
        Service::Imap(Arc::new(imap_session::SessionContext {
            settings: imap.clone(),
            backend: backend.clone(),
            starttls,
            penalty: penalty.clone(),
        }))
    };

    let pop3 = Pop3Settings {
        max_line: config.pop3.max_line_length,
        allow_plaintext_auth_without_tls: config.auth.allow_plaintext_without_tls,
        login_timeout: Duration::from_secs(config.pop3.login_timeout_secs),
        idle_timeout: Duration::from_secs(config.pop3.idle_timeout_secs),
        uidl_format,
        lock_session: config.pop3.lock_session,
        ..Pop3Settings::default()
    };
    let locks = Arc::new(MaildropLocks::new());
    let pop3_context = |starttls: Option<Arc<dyn TlsUpgrade>>| {
        Service::Pop3(Arc::new(pop3_session::SessionContext {
            settings: pop3.clone(),
            backend: backend.clone(),
            starttls,
            penalty: penalty.clone(),
            locks: locks.clone(),
        }))
    };

    // (addresses, service, implicit TLS, name in the log)
    let kinds = [
        (
            &config.imap.listen,
            imap_context(Some(starttls.clone())),
            None,
            "imap",
        ),
        (
            &config.imap.listen_tls,
            imap_context(None),
            Some(acceptor.clone()),
            "imaps",
        ),
        (
            &config.pop3.listen,
            pop3_context(Some(starttls.clone())),
            None,
            "pop3",
        ),
        (
            &config.pop3.listen_tls,
            pop3_context(None),
            Some(acceptor.clone()),
            "pop3s",
        ),
    ];
    let mut listeners = Vec::new();
    for (addrs, service, tls, name) in kinds {
        for addr in addrs {
            listeners.push((bind(*addr).await?, service.clone(), tls.clone(), name));
        }
    }
    if listeners.is_empty() {
        anyhow::bail!("no listeners configured");
    }
    for (listener, service, tls, name) in listeners {
        let addr = listener.local_addr()?;
        tracing::info!("{name}: listening on {addr}");
        tokio::spawn(accept_loop(listener, service, tls));
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    Ok(())
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))
}

async fn accept_loop(listener: TcpListener, service: Service, tls: Option<TlsAcceptor>) {
    loop {
        let (socket, remote) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                // Typically EMFILE: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = service.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let login_process = service.login_process();
            if let Err(e) = handle(socket, remote, service, tls).await {
                tracing::info!("{login_process}: Disconnected: {e}: rip={}", remote.ip());
            }
        });
    }
}

async fn handle(
    socket: TcpStream,
    remote: SocketAddr,
    service: Service,
    tls: Option<TlsAcceptor>,
) -> anyhow::Result<()> {
    // Small responses matter more than throughput here: a client waits for each reply line.
    socket.set_nodelay(true)?;
    let local = socket.local_addr()?;
    let info = ConnectionInfo {
        remote,
        local,
        implicit_tls: tls.is_some(),
        session_id: session_id(),
    };
    match tls {
        None => service.serve(Box::new(socket), info).await,
        Some(acceptor) => {
            let stream = tokio::time::timeout(service.login_timeout(), acceptor.accept(socket))
                .await
                .context("TLS handshake timed out")?
                .context("TLS handshake failed")?;
            service.serve(Box::new(stream), info).await;
        }
    }
    Ok(())
}
/// A short random id tying one connection's log lines together, like Dovecot's `session=<...>`.
fn session_id() -> String {
    let mut bytes = [0u8; 9];
    if getrandom::getrandom(&mut bytes).is_err() {
        // Only for log correlation: a clock-derived id is good enough if the OS refuses.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&nanos.to_le_bytes()[..9]);
    }
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
