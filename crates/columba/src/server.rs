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
use session_api::{BoxedStream, ConnectionInfo, TlsUpgrade, UserBackend};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::limits::PreLoginLimit;
use crate::tls::{ClientCertAuth, StartTls, StartTlsVerified, client_user};
use auth::cert::CertUserField;

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

    /// What a cleartext client refused at accept reads before the connection closes.
    fn refusal(&self) -> &'static [u8] {
        match self {
            Service::Imap(_) => b"* BYE Too many connections from your address.\r\n",
            Service::Pop3(_) => b"-ERR [SYS/TEMP] Too many connections from your address.\r\n",
        }
    }

    /// The log prefix of connections that never reach a session (Dovecot's `imap-login`).
    fn login_process(&self) -> &'static str {
        match self {
            Service::Imap(_) => "imap-login",
            Service::Pop3(_) => "pop3-login",
        }
    }

    /// `tls_client_user`: whom the verified client certificate of an implicit-TLS
    /// connection names (SASL EXTERNAL).
    async fn serve(
        self,
        stream: BoxedStream,
        info: ConnectionInfo,
        tls_client_user: Option<String>,
    ) {
        match self {
            Service::Imap(ctx) => imap_session::serve_tls(stream, ctx, info, tls_client_user).await,
            Service::Pop3(ctx) => pop3_session::serve_tls(stream, ctx, info, tls_client_user).await,
        }
    }
}

/// The kinds of listener, as the configuration and the log name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    Imap,
    Imaps,
    Pop3,
    Pop3s,
}

impl ListenerKind {
    pub const ALL: [ListenerKind; 4] = [
        ListenerKind::Imap,
        ListenerKind::Imaps,
        ListenerKind::Pop3,
        ListenerKind::Pop3s,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Imap => "imap",
            ListenerKind::Imaps => "imaps",
            ListenerKind::Pop3 => "pop3",
            ListenerKind::Pop3s => "pop3s",
        }
    }

    pub fn from_name(name: &str) -> Option<ListenerKind> {
        ListenerKind::ALL.into_iter().find(|k| k.name() == name)
    }

    fn addresses(self, config: &Config) -> &[SocketAddr] {
        match self {
            ListenerKind::Imap => &config.imap.listen,
            ListenerKind::Imaps => &config.imap.listen_tls,
            ListenerKind::Pop3 => &config.pop3.listen,
            ListenerKind::Pop3s => &config.pop3.listen_tls,
        }
    }
}

/// Binds every configured listener, before anything else happens (and, started as root,
/// before privileges are dropped), so a port problem is reported first.
pub fn bind_listeners(
    config: &Config,
) -> anyhow::Result<Vec<(ListenerKind, std::net::TcpListener)>> {
    let mut listeners = Vec::new();
    for kind in ListenerKind::ALL {
        for addr in kind.addresses(config) {
            let listener =
                std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
            listener.set_nonblocking(true)?;
            listeners.push((kind, listener));
        }
    }
    if listeners.is_empty() {
        anyhow::bail!("no listeners configured");
    }
    Ok(listeners)
}

/// The IMAP settings the configuration gives.
pub fn imap_settings(config: &Config) -> ImapSettings {
    let mut imap = ImapSettings::default();
    imap.limits.max_line = config.imap.max_line_length;
    imap.limits.max_append = config.imap.max_message_size;
    imap.utf8_accept = config.imap.utf8_accept;
    imap.allow_plaintext_auth_without_tls = config.auth.allow_plaintext_without_tls;
    imap.login_timeout = Duration::from_secs(config.imap.login_timeout_secs);
    imap.idle_timeout = Duration::from_secs(config.imap.idle_timeout_secs);
    imap.auto_create = config.imap.auto_create.clone();
    imap.special_use = config.imap.special_use.clone().into_iter().collect();
    // CATENATE URLs may name this server by the machine's name, as Dovecot's `hostname`
    // defaults to it; without /proc only "localhost" and the listening address are known.
    if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let name = name.trim().to_ascii_lowercase();
        if !name.is_empty() && !imap.url_hosts.contains(&name) {
            imap.url_hosts.push(name);
        }
    }
    imap
}

/// The POP3 settings the configuration gives.
pub fn pop3_settings(config: &Config) -> anyhow::Result<Pop3Settings> {
    let uidl_format = UidlFormat::parse(&config.pop3.uidl_format).context("[pop3] uidl_format")?;
    Ok(Pop3Settings {
        max_line: config.pop3.max_line_length,
        allow_plaintext_auth_without_tls: config.auth.allow_plaintext_without_tls,
        login_timeout: Duration::from_secs(config.pop3.login_timeout_secs),
        idle_timeout: Duration::from_secs(config.pop3.idle_timeout_secs),
        uidl_format,
        lock_session: config.pop3.lock_session,
        ..Pop3Settings::default()
    })
}

/// The failed-login penalty the configuration gives. One for both protocols: failing over
/// IMAP makes the next POP3 attempt wait too.
pub fn login_penalty(config: &Config) -> Arc<LoginPenalty> {
    Arc::new(LoginPenalty::new(
        Duration::from_millis(config.auth.failure_delay_ms),
        Duration::from_millis(config.auth.failure_delay_max_ms),
    ))
}

/// What checks passwords for each protocol's sessions: the same [`crate::backend::AuthBackend`] in the single
/// process, a proxy to the auth process (one per protocol) in the login process.
pub struct Backends {
    pub imap: Arc<dyn UserBackend>,
    pub pop3: Arc<dyn UserBackend>,
}

/// Accepts connections on `listeners` and serves each with an IMAP or POP3 session until
/// SIGINT or SIGTERM.
pub async fn serve_listeners(
    config: &Config,
    listeners: Vec<(ListenerKind, std::net::TcpListener)>,
    acceptor: TlsAcceptor,
    backends: Backends,
    prelogin: Arc<PreLoginLimit>,
) -> anyhow::Result<()> {
    let penalty = login_penalty(config);
    // With `[tls] client_ca`, STARTTLS and implicit TLS both tell the session whom a verified
    // client certificate names.
    let client_field = ClientCertAuth::from_config(config).map(|c| c.username_field);
    let starttls: Arc<dyn TlsUpgrade> = match client_field {
        Some(username_field) => Arc::new(StartTlsVerified {
            acceptor: acceptor.clone(),
            username_field,
        }),
        None => Arc::new(StartTls(acceptor.clone())),
    };
    let imap = imap_settings(config);
    let imap_context = |starttls: Option<Arc<dyn TlsUpgrade>>| {
        Service::Imap(Arc::new(imap_session::SessionContext {
            settings: imap.clone(),
            backend: backends.imap.clone(),
            starttls,
            penalty: penalty.clone(),
        }))
    };
    let pop3 = pop3_settings(config)?;
    let locks = Arc::new(MaildropLocks::new());
    let pop3_context = |starttls: Option<Arc<dyn TlsUpgrade>>| {
        Service::Pop3(Arc::new(pop3_session::SessionContext {
            settings: pop3.clone(),
            backend: backends.pop3.clone(),
            starttls,
            penalty: penalty.clone(),
            locks: locks.clone(),
        }))
    };
    for (kind, listener) in listeners {
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        tracing::info!("{}: listening on {addr}", kind.name());
        let (service, tls) = match kind {
            ListenerKind::Imap => (imap_context(Some(starttls.clone())), None),
            ListenerKind::Imaps => (imap_context(None), Some(acceptor.clone())),
            ListenerKind::Pop3 => (pop3_context(Some(starttls.clone())), None),
            ListenerKind::Pop3s => (pop3_context(None), Some(acceptor.clone())),
        };
        tokio::spawn(accept_loop(
            listener,
            service,
            tls,
            prelogin.clone(),
            client_field,
        ));
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    service: Service,
    tls: Option<TlsAcceptor>,
    prelogin: Arc<PreLoginLimit>,
    client_field: Option<CertUserField>,
) {
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
        let session = session_id();
        let login_process = service.login_process();
        let Some(ticket) = prelogin.admit(remote.ip(), &session) else {
            tracing::info!(
                "{login_process}: Disconnected: Too many connections from this address before login: rip={}",
                remote.ip()
            );
            if tls.is_none() {
                // A cleartext client is told why; on a TLS port there is nothing to say it in.
                let _ = socket.try_write(service.refusal());
            }
            continue;
        };
        let service = service.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(socket, remote, service, tls, session, client_field).await {
                tracing::info!("{login_process}: Disconnected: {e}: rip={}", remote.ip());
            }
            drop(ticket);
        });
    }
}

async fn handle(
    socket: TcpStream,
    remote: SocketAddr,
    service: Service,
    tls: Option<TlsAcceptor>,
    session_id: String,
    client_field: Option<CertUserField>,
) -> anyhow::Result<()> {
    // Small responses matter more than throughput here: a client waits for each reply line.
    socket.set_nodelay(true)?;
    let local = socket.local_addr()?;
    let info = ConnectionInfo {
        remote,
        local,
        implicit_tls: tls.is_some(),
        session_id,
    };
    match tls {
        None => service.serve(Box::new(socket), info, None).await,
        Some(acceptor) => {
            let stream = tokio::time::timeout(service.login_timeout(), acceptor.accept(socket))
                .await
                .context("TLS handshake timed out")?
                .context("TLS handshake failed")?;
            let user = client_field.and_then(|field| client_user(stream.get_ref().1, field));
            service.serve(Box::new(stream), info, user).await;
        }
    }
    Ok(())
}
/// A short random id tying one connection's log lines together, like Dovecot's `session=<...>`.
pub fn session_id() -> String {
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

pub async fn shutdown_signal() {
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
