//! Privilege separation: the process model that serves system users safely (SECURITY.md).
//!
//! Started as root, `columba serve` binds its ports and becomes the **master**, which starts:
//! - the **auth** process (root: it reads `/etc/shadow`, talks to PAM), answering the login
//!   process's password checks and SASL steps and the master's token redemptions;
//! - the **login** process (an unprivileged user, chrooted to an empty directory,
//!   `no_new_privs`): TLS, greetings and everything before login, for every listener;
//! - one **mail** process per logged-in user, running as that user's uid and gid with no
//!   supplementary groups, serving all of the user's connections;
//! - with `[lmtp]` listeners, the **lmtp** process (root), which runs each recipient's
//!   delivery in a child that becomes that recipient ([`lmtp_process`]).
//!
//! The master parses nothing but frames from its children ([`ipc`]), holds the listeners (a
//! login or auth process that ends is replaced, the two together), and is the only process
//! left with the right to become another user. Its children reach it through the sockets it
//! made for them; there is no listening control socket.

mod auth_process;
mod ipc;
mod lmtp_process;
mod login;
mod master;
mod privileges;
mod protocol;
mod worker;

use std::io::Read as _;

use anyhow::Context as _;

use crate::config::{AuthConfig, Config, PassdbKind, ProcessModel, UserdbKind};
use crate::server::ListenerKind;

pub use lmtp_process::deliver_child;
pub use master::run as run_master;
pub use privileges::running_as_root;

/// The role of a process the master started (`columba internal ...`).
pub enum Role {
    Auth,
    Login {
        listeners: Vec<ListenerKind>,
        chroot: std::path::PathBuf,
        user: String,
    },
    Worker {
        user: String,
    },
    /// The LMTP server, with the listeners `listeners` names (see `lmtp::Listener::kind`).
    Lmtp {
        listeners: Vec<String>,
    },
}

/// Whether `config` asks for separated processes (and, for `auto`, whether this start allows
/// them: only root can switch to each user's uid).
pub fn separated(config: &Config) -> anyhow::Result<bool> {
    let system_users = config.auth.userdb == UserdbKind::Passwd
        || matches!(config.auth.passdb, PassdbKind::Shadow | PassdbKind::Pam);
    match config.server.process_model {
        ProcessModel::Single => Ok(false),
        ProcessModel::Separated if !running_as_root() => {
            anyhow::bail!("[server] process_model = \"separated\" needs to be started as root")
        }
        ProcessModel::Separated => Ok(true),
        ProcessModel::Auto => Ok(system_users && running_as_root()),
    }
}

/// The uid and gid that serve `record`'s mail: its own, or `mail_user`'s (`[server]
/// mail_user`) for a virtual user that has none. Never root.
pub fn mail_ids(
    record: &auth::UserRecord,
    mail_user: Option<&auth::system::SystemUser>,
) -> anyhow::Result<(u32, u32)> {
    let (uid, gid) = match (record.uid, record.gid, mail_user) {
        (Some(uid), Some(gid), _) => (uid, gid),
        (Some(uid), None, _) => match auth::system::lookup_user(&record.name)? {
            Some(u) if u.uid == uid => (uid, u.gid),
            _ => anyhow::bail!("user {} has a uid but no gid", record.name),
        },
        (None, _, Some(m)) => (m.uid, m.gid),
        (None, _, None) => anyhow::bail!(
            "user {} has no uid and [server] mail_user is not set",
            record.name
        ),
    };
    if uid == 0 || gid == 0 {
        anyhow::bail!("user {} would be served as root", record.name);
    }
    Ok((uid, gid))
}

/// Becomes `uid`/`gid` for good, as a mail process is (the local delivery agent started as
/// root, once it knows whose mail it writes).
pub fn become_mail_user(uid: u32, gid: u32) -> anyhow::Result<()> {
    privileges::become_user(uid, gid)?;
    privileges::forbid_new_privileges()
}

/// Runs a child process's role, with the configuration the master wrote to its stdin.
pub fn run_child(role: Role) -> anyhow::Result<()> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the configuration from the master")?;
    let config: Config = toml::from_str(&text).context("configuration from the master")?;
    crate::init_logging(&config.log.level);
    config.mail.fsync.apply();
    match role {
        Role::Auth => auth_main(config),
        Role::Login {
            listeners,
            chroot,
            user,
        } => login_main(config, listeners, &chroot, &user),
        Role::Worker { user } => worker::run(config, user),
        Role::Lmtp { listeners } => lmtp_process::run(config, listeners),
    }
}

/// The configuration a process that must not know secrets is given: the password databases'
/// settings are left out (a mail process's user could read its memory).
fn without_secrets(config: &Config) -> Config {
    let mut public = config.clone();
    public.auth = AuthConfig {
        allow_plaintext_without_tls: config.auth.allow_plaintext_without_tls,
        failure_delay_ms: config.auth.failure_delay_ms,
        failure_delay_max_ms: config.auth.failure_delay_max_ms,
        ..AuthConfig::default()
    };
    public
}

/// Descriptor `FIRST_CHILD_FD + n`, handed over by the master.
fn inherited_fd(n: i32) -> anyhow::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    let fd = privileges::FIRST_CHILD_FD + n;
    // SAFETY: fcntl(F_GETFD) only checks that the descriptor is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        anyhow::bail!("descriptor {fd} was not handed over");
    }
    // SAFETY: the master passed this descriptor for this process to own, and nothing else in
    // this process has taken it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

fn auth_main(config: Config) -> anyhow::Result<()> {
    let backend = std::sync::Arc::new(crate::backend::AuthBackend::from_config(&config)?);
    let from_login = inherited_fd(0)?;
    let from_master = inherited_fd(1)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(auth_process::serve(backend, from_login, from_master))
}

fn login_main(
    config: Config,
    kinds: Vec<ListenerKind>,
    chroot: &std::path::Path,
    user: &str,
) -> anyhow::Result<()> {
    let to_auth = inherited_fd(0)?;
    let to_master = inherited_fd(1)?;
    let mut listeners = Vec::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        let fd = inherited_fd(2 + i as i32)?;
        let listener = std::net::TcpListener::from(fd);
        listener.set_nonblocking(true)?;
        listeners.push((kind, listener));
    }
    // The key is read while still root; after this, nothing on disk is reachable.
    let acceptor = crate::tls::acceptor_with_client_auth(
        &config.cert_path(),
        &config.key_path(),
        crate::tls::ClientCertAuth::from_config(&config).as_ref(),
    )?;
    let account = privileges::service_user(user)?;
    privileges::chroot_to(chroot)?;
    privileges::become_user(account.uid, account.gid)?;
    privileges::forbid_new_privileges()?;
    // Changing credentials cleared the parent-death signal the master asked for; without it a
    // login process could outlive a killed master, holding the ports.
    privileges::die_with_parent(libc::SIGKILL)?;
    tracing::info!(
        "login process running as {user} (uid {}), chrooted to {}",
        account.uid,
        chroot.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let auth = login::AuthClient::start(to_auth)?;
        let mechanisms = auth.mechanisms().await?;
        let (master, mut from_master) = ipc::channel(to_master.into())?;
        // The master never writes here; the channel ending means it is gone, and so are the
        // processes this one hands users to.
        tokio::spawn(async move {
            let _ = from_master.recv().await;
            tracing::info!("login: the master process is gone; exiting");
            std::process::exit(0);
        });
        let prelogin =
            crate::limits::PreLoginLimit::new(config.server.max_prelogin_connections_per_ip);
        let backend = |protocol| {
            std::sync::Arc::new(login::LoginBackend::new(
                auth.clone(),
                mechanisms.clone(),
                protocol,
                master.clone(),
                prelogin.clone(),
            )) as std::sync::Arc<dyn session_api::UserBackend>
        };
        let backends = crate::server::Backends {
            imap: backend(protocol::Protocol::Imap),
            pop3: backend(protocol::Protocol::Pop3),
        };
        crate::server::serve_listeners(&config, listeners, acceptor, backends, prelogin).await
    })
}

/// The single-process model started as root: after the ports are bound and the TLS key is read,
/// become `[server] user`, or else the owner of the data directory. A data directory that root
/// owns leaves nobody to become: the server then stays root and says so (SECURITY.md).
pub fn drop_root_single_process(config: &Config) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    if !running_as_root() {
        return Ok(());
    }
    let (name, uid, gid) = match &config.server.user {
        Some(name) => {
            let user = auth::system::lookup_user(name)?
                .with_context(|| format!("[server] user {name:?} does not exist"))?;
            (name.clone(), user.uid, user.gid)
        }
        None => {
            let meta = std::fs::metadata(&config.data_dir)
                .with_context(|| format!("data directory {}", config.data_dir.display()))?;
            if meta.uid() == 0 {
                tracing::warn!(
                    "running as root: the data directory {} belongs to root; set [server] user, or give the directory to the user the server should run as",
                    config.data_dir.display()
                );
                return Ok(());
            }
            (format!("uid {}", meta.uid()), meta.uid(), meta.gid())
        }
    };
    privileges::become_user(uid, gid)?;
    privileges::forbid_new_privileges()?;
    tracing::info!("running as {name} (uid {uid}, gid {gid})");
    Ok(())
}

/// Started as root on mail that belongs to a user (the admin commands), becomes that user, so
/// that files written are theirs as the server's would be. Does nothing when not root, when
/// `path` is root's, or when it does not exist.
pub fn become_owner_of(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    if !running_as_root() {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.uid() == 0 {
        return Ok(());
    }
    privileges::become_user(meta.uid(), meta.gid())
        .with_context(|| format!("becoming the owner of {}", path.display()))
}
