//! `columba serve`: binds the listeners, then accepts connections and hands each to an IMAP
//! session task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use imap_session::{ConnectionInfo, ImapSettings, LoginPenalty, SessionContext};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::backend::PasswdFileBackend;
use crate::config::Config;
use crate::tls::{self, StartTls};

/// Binds every listener (so a port problem is reported before anything else happens), then
/// serves until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let acceptor = tls::acceptor(&config.cert_path(), &config.key_path())?;
    let backend = Arc::new(PasswdFileBackend::new(
        config.passwd_path(),
        config.mail_location(),
    ));
    let mut settings = ImapSettings::default();
    settings.limits.max_line = config.imap.max_line_length;
    settings.limits.max_append = config.imap.max_message_size;
    settings.allow_plaintext_auth_without_tls = config.auth.allow_plaintext_without_tls;
    settings.login_timeout = Duration::from_secs(config.imap.login_timeout_secs);
    settings.idle_timeout = Duration::from_secs(config.imap.idle_timeout_secs);
    let penalty = Arc::new(LoginPenalty::new(
        Duration::from_millis(config.auth.failure_delay_ms),
        Duration::from_millis(config.auth.failure_delay_max_ms),
    ));
    let cleartext = Arc::new(SessionContext {
        settings: settings.clone(),
        backend: backend.clone(),
        starttls: Some(Arc::new(StartTls(acceptor.clone()))),
        penalty: penalty.clone(),
    });
    let implicit = Arc::new(SessionContext {
        settings,
        backend,
        starttls: None,
        penalty,
    });

    let mut listeners = Vec::new();
    for addr in &config.imap.listen {
        listeners.push((bind(*addr).await?, cleartext.clone(), None, "imap"));
    }
    for addr in &config.imap.listen_tls {
        listeners.push((
            bind(*addr).await?,
            implicit.clone(),
            Some(acceptor.clone()),
            "imaps",
        ));
    }
    if listeners.is_empty() {
        anyhow::bail!("no listeners configured");
    }
    for (listener, ctx, tls, name) in listeners {
        let addr = listener.local_addr()?;
        tracing::info!("{name}: listening on {addr}");
        tokio::spawn(accept_loop(listener, ctx, tls));
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

async fn accept_loop(listener: TcpListener, ctx: Arc<SessionContext>, tls: Option<TlsAcceptor>) {
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
        let ctx = ctx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(socket, remote, ctx, tls).await {
                tracing::info!("imap-login: Disconnected: {e}: rip={}", remote.ip());
            }
        });
    }
}

async fn handle(
    socket: TcpStream,
    remote: SocketAddr,
    ctx: Arc<SessionContext>,
    tls: Option<TlsAcceptor>,
) -> anyhow::Result<()> {
    // Small responses matter more than throughput here: a client waits for each tagged line.
    socket.set_nodelay(true)?;
    let local = socket.local_addr()?;
    let info = ConnectionInfo {
        remote,
        local,
        implicit_tls: tls.is_some(),
        session_id: session_id(),
    };
    match tls {
        None => imap_session::serve(Box::new(socket), ctx, info).await,
        Some(acceptor) => {
            let stream = tokio::time::timeout(ctx.settings.login_timeout, acceptor.accept(socket))
                .await
                .context("TLS handshake timed out")?
                .context("TLS handshake failed")?;
            imap_session::serve(Box::new(stream), ctx, info).await;
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
