//! The master: binds the ports as root, starts the auth and login processes, and gives each
//! logged-in connection to its user's mail process, starting that process (as the user) when
//! the user has none. It stays root for exactly that, and parses only its children's frames.

use std::collections::HashMap;
use std::os::fd::AsFd as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use auth::UserRecord;
use auth::system::SystemUser;
use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::ipc::{self, FrameReader, FrameWriter, Receiver, Sender};
use super::privileges::{self, DEFAULT_LOGIN_USER, pass_fds};
use super::protocol::{Connection, get_record, put_record};
use super::without_secrets;
use crate::config::Config;
use crate::server::{self, ListenerKind};

/// Runs the separated server until SIGINT or SIGTERM.
pub fn run(config: Config) -> anyhow::Result<()> {
    let mut config = config.effective();
    // The children start elsewhere (the login process in its chroot, mail processes in the
    // user's home): every path they are given must stand on its own.
    config.data_dir = std::path::absolute(&config.data_dir)?;
    let config = config.effective();
    // The auth process builds the same; a configuration mistake is reported here, before any
    // process starts.
    crate::backend::AuthBackend::from_config(&config)?;
    let listeners = server::bind_listeners(&config)?;
    let lmtp_listeners = crate::lmtp::bind(&config)?;
    if !lmtp_listeners.is_empty() {
        // The lmtp process builds the same; a userdb that cannot serve delivery stops here.
        crate::backend::delivery_users(&config)?;
    }
    let login_user_name = config
        .server
        .user
        .clone()
        .unwrap_or_else(|| DEFAULT_LOGIN_USER.to_owned());
    let login_user = privileges::service_user(&login_user_name)?;
    let mail_user = match &config.server.mail_user {
        Some(name) => {
            let user = auth::system::lookup_user(name)?
                .with_context(|| format!("[server] mail_user {name:?} does not exist"))?;
            if user.uid == login_user.uid {
                anyhow::bail!(
                    "[server] mail_user must not be the login user {login_user_name:?}: the login process would read mail"
                );
            }
            Some(user)
        }
        None => None,
    };
    let chroot = empty_dir(&config.data_dir.join("login-chroot"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut master =
            Master::start(config, listeners, &login_user_name, &chroot, mail_user).await?;
        master.lmtp_listeners = lmtp_listeners;
        master.lmtp_child = start_lmtp(&master.config_toml, &master.lmtp_listeners).await?;
        master.run().await
    })
}

/// A directory for the login process to be locked in: root's, empty, not writable by others.
fn empty_dir(path: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    let meta = std::fs::metadata(path)?;
    if meta.uid() != 0 {
        anyhow::bail!("{} must belong to root", path.display());
    }
    if std::fs::read_dir(path)?.next().is_some() {
        anyhow::bail!(
            "{} must be empty: it is the login process's whole filesystem",
            path.display()
        );
    }
    Ok(path.to_owned())
}

/// Something a child or a timer tells the master's loop.
enum Event {
    /// A mail process finished serving one connection.
    Ended { user: String, generation: u64 },
    /// A mail process exited.
    Exited { user: String, generation: u64 },
    /// A mail process has lingered idle long enough.
    Retire {
        user: String,
        generation: u64,
        idle_epoch: u64,
    },
}

struct MailProcess {
    tx: Sender,
    pid: Option<u32>,
    generation: u64,
    connections: usize,
    /// Bumped whenever the process gets a connection, so a retirement planned while it was idle
    /// is called off.
    idle_epoch: u64,
}

/// The processes that face clients before login, and the master's channels to them. They are
/// started, and restarted, together: each holds the other's end of a socket pair.
struct Front {
    auth_child: Child,
    login_child: Child,
    to_auth: Sender,
    from_auth: Receiver,
    from_login: Receiver,
}

/// Restarts of the login and auth processes allowed within [`RESTART_WINDOW`] before the
/// master gives up (a crash at every start is a configuration or system problem).
const MAX_RESTARTS: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(60);

struct Master {
    config: Config,
    /// The full configuration, for the auth process.
    config_toml: String,
    /// The configuration without secrets, for login and mail processes.
    public_toml: String,
    /// Kept to hand to a restarted login process.
    listeners: Vec<(ListenerKind, std::net::TcpListener)>,
    login_user: String,
    chroot: PathBuf,
    front: Front,
    restarts: Vec<std::time::Instant>,
    mail_user: Option<SystemUser>,
    workers: HashMap<String, MailProcess>,
    generation: u64,
    events_tx: mpsc::UnboundedSender<Event>,
    events: mpsc::UnboundedReceiver<Event>,
    next_request: u64,
    /// Kept to hand to a restarted lmtp process; empty without `[lmtp]` listeners.
    lmtp_listeners: Vec<crate::lmtp::Listener>,
    lmtp_child: Option<Child>,
}

impl Master {
    async fn start(
        config: Config,
        listeners: Vec<(ListenerKind, std::net::TcpListener)>,
        login_user: &str,
        chroot: &Path,
        mail_user: Option<SystemUser>,
    ) -> anyhow::Result<Master> {
        let config_toml = config.to_toml()?;
        let public_toml = without_secrets(&config).to_toml()?;
        let front = start_front(&config_toml, &public_toml, &listeners, login_user, chroot).await?;
        let (events_tx, events) = mpsc::unbounded_channel();
        Ok(Master {
            config,
            config_toml,
            public_toml,
            listeners,
            login_user: login_user.to_owned(),
            chroot: chroot.to_owned(),
            front,
            restarts: Vec::new(),
            mail_user,
            workers: HashMap::new(),
            generation: 0,
            events_tx,
            events,
            next_request: 1,
            lmtp_listeners: Vec::new(),
            lmtp_child: None,
        })
    }

    /// Counts a restart of a child process against the budget; an error once it is spent.
    fn count_restart(&mut self, why: &str) -> anyhow::Result<()> {
        let now = std::time::Instant::now();
        self.restarts
            .retain(|t| now.duration_since(*t) < RESTART_WINDOW);
        if self.restarts.len() >= MAX_RESTARTS {
            anyhow::bail!("{why}, {MAX_RESTARTS} times within {RESTART_WINDOW:?}: giving up");
        }
        self.restarts.push(now);
        Ok(())
    }

    /// The lmtp process ended: another takes its listeners. Deliveries it was running are
    /// unanswered, so the MTA sends them again.
    async fn restart_lmtp(&mut self, why: &str) -> anyhow::Result<()> {
        self.count_restart(why)?;
        tracing::warn!("master: {why}; restarting the lmtp process");
        self.lmtp_child = start_lmtp(&self.config_toml, &self.lmtp_listeners).await?;
        Ok(())
    }

    /// The login or auth process ended (or broke the protocol): both are replaced, since each
    /// holds the other's channel. Connections the login process was relaying are lost; users'
    /// mail processes go on. Too many restarts in a row stop the server instead.
    async fn restart_front(&mut self, why: &str) -> anyhow::Result<()> {
        self.count_restart(why)?;
        tracing::warn!("master: {why}; restarting the login and auth processes");
        let _ = self.front.login_child.start_kill();
        let _ = self.front.auth_child.start_kill();
        let _ = self.front.login_child.wait().await;
        let _ = self.front.auth_child.wait().await;
        self.front = start_front(
            &self.config_toml,
            &self.public_toml,
            &self.listeners,
            &self.login_user,
            &self.chroot,
        )
        .await?;
        Ok(())
    }

    async fn run(mut self) -> anyhow::Result<()> {
        let result = loop {
            let failure = tokio::select! {
                frame = self.front.from_login.recv() => match frame {
                    Ok(Some(frame)) => {
                        if let Err(e) = self.hand_off(frame).await {
                            tracing::warn!("master: hand-off refused: {e}");
                        }
                        None
                    }
                    Ok(None) => Some("the login process closed its channel".to_owned()),
                    Err(e) => Some(format!("the login process sent garbage: {e}")),
                },
                Some(event) = self.events.recv() => {
                    self.event(event);
                    None
                }
                status = self.front.auth_child.wait() => {
                    Some(format!("the auth process exited: {status:?}"))
                }
                status = self.front.login_child.wait() => {
                    Some(format!("the login process exited: {status:?}"))
                }
                status = wait_if_any(&mut self.lmtp_child) => {
                    let why = format!("the lmtp process exited: {status:?}");
                    if let Err(e) = self.restart_lmtp(&why).await {
                        break Err(e);
                    }
                    None
                }
                () = server::shutdown_signal() => break Ok(()),
            };
            if let Some(why) = failure
                && let Err(e) = self.restart_front(&why).await
            {
                break Err(e);
            }
        };
        tracing::info!("master: stopping");
        self.stop().await;
        result
    }

    /// A login process's request to serve a logged-in connection: the token is redeemed with
    /// the auth process for the real user record; the login process's word counts for nothing.
    async fn hand_off(&mut self, mut frame: FrameReader) -> anyhow::Result<()> {
        if frame.kind()? != "hand-off" {
            anyhow::bail!("unknown message from the login process");
        }
        let token = frame.string()?;
        let connection = Connection::get(&mut frame)?;
        let socket = frame.take_fd()?;
        let Some(record) = self.redeem(&token).await? else {
            anyhow::bail!("a token the auth process does not know");
        };
        let (uid, gid) = self.ids(&record)?;
        for attempt in 0..2 {
            let process = match self.workers.get_mut(&record.name) {
                Some(p) => p,
                None => {
                    let p = self.spawn_worker(&record, uid, gid).await?;
                    self.workers.entry(record.name.clone()).or_insert(p)
                }
            };
            let mut w = FrameWriter::new("serve");
            put_record(&mut w, &record);
            connection.put(&mut w);
            match process.tx.send_fd(w, socket.as_fd()).await {
                Ok(()) => {
                    process.connections += 1;
                    process.idle_epoch += 1;
                    return Ok(());
                }
                Err(e) if attempt == 0 => {
                    tracing::warn!(
                        "master: mail process of {} unreachable ({e}); starting another",
                        record.name
                    );
                    self.workers.remove(&record.name);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn redeem(&mut self, token: &str) -> anyhow::Result<Option<UserRecord>> {
        let id = self.next_request;
        self.next_request += 1;
        let mut w = FrameWriter::new("redeem");
        w.u64(id).str(token);
        self.front.to_auth.send(w).await?;
        let Some(mut answer) = self.front.from_auth.recv().await? else {
            anyhow::bail!("the auth process closed its channel");
        };
        if answer.kind()? != "user" || answer.u64()? != id {
            anyhow::bail!("the auth process answered out of turn");
        }
        if answer.u64()? != 1 {
            return Ok(None);
        }
        Ok(Some(get_record(&mut answer)?))
    }

    /// The uid and gid that serve `record` (see [`super::mail_ids`]).
    fn ids(&self, record: &UserRecord) -> anyhow::Result<(u32, u32)> {
        super::mail_ids(record, self.mail_user.as_ref())
    }

    async fn spawn_worker(
        &mut self,
        record: &UserRecord,
        uid: u32,
        gid: u32,
    ) -> anyhow::Result<MailProcess> {
        let (ours, theirs) = UnixStream::pair()?;
        let mut command = child_command(&["worker", "--user", &record.name]);
        // std's Command drops supplementary groups (setgroups(0)) before setuid when root.
        command.uid(uid).gid(gid);
        let home = record.home.clone().filter(|h| h.is_dir());
        command.current_dir(home.as_deref().unwrap_or(Path::new("/")));
        if let Some(home) = &home {
            command.env("HOME", home);
        }
        command.env("USER", &record.name);
        pass_fds(command.as_std_mut(), &[theirs.as_fd()]);
        let mut child = spawn_with_config(command, &self.public_toml)
            .await
            .with_context(|| format!("starting the mail process of {}", record.name))?;
        drop(theirs);
        self.generation += 1;
        let generation = self.generation;
        let pid = child.id();
        tracing::info!(
            "master: mail process {pid:?} for {} (uid {uid}, gid {gid})",
            record.name
        );
        let (tx, mut rx) = ipc::channel(ours)?;
        let events = self.events_tx.clone();
        let user = record.name.clone();
        tokio::spawn(async move {
            while let Ok(Some(mut frame)) = rx.recv().await {
                if frame.kind().ok().as_deref() == Some("ended") {
                    let _ = events.send(Event::Ended {
                        user: user.clone(),
                        generation,
                    });
                }
            }
            let _ = child.wait().await;
            let _ = events.send(Event::Exited { user, generation });
        });
        Ok(MailProcess {
            tx,
            pid,
            generation,
            connections: 0,
            idle_epoch: 0,
        })
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Ended { user, generation } => {
                let linger = Duration::from_secs(self.config.server.worker_linger_secs);
                let Some(p) = self.workers.get_mut(&user) else {
                    return;
                };
                if p.generation != generation {
                    return;
                }
                p.connections = p.connections.saturating_sub(1);
                if p.connections == 0 {
                    let events = self.events_tx.clone();
                    let idle_epoch = p.idle_epoch;
                    tokio::spawn(async move {
                        tokio::time::sleep(linger).await;
                        let _ = events.send(Event::Retire {
                            user,
                            generation,
                            idle_epoch,
                        });
                    });
                }
            }
            Event::Retire {
                user,
                generation,
                idle_epoch,
            } => {
                let idle = self.workers.get(&user).is_some_and(|p| {
                    p.generation == generation && p.idle_epoch == idle_epoch && p.connections == 0
                });
                if let Some(p) = idle.then(|| self.workers.remove(&user)).flatten() {
                    // End of its channel: it exits once its sessions are done (none).
                    p.tx.close();
                }
            }
            Event::Exited { user, generation } => {
                if self
                    .workers
                    .get(&user)
                    .is_some_and(|p| p.generation == generation)
                {
                    tracing::warn!("master: the mail process of {user} exited while serving");
                    self.workers.remove(&user);
                }
            }
        }
    }

    async fn stop(&mut self) {
        let pids = self
            .workers
            .values()
            .filter_map(|p| p.pid)
            .chain(self.front.login_child.id())
            .chain(self.front.auth_child.id())
            .chain(self.lmtp_child.as_ref().and_then(Child::id));
        for pid in pids {
            // SAFETY: kill with a pid of our own child and a signal number.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        let wait = async {
            let _ = self.front.login_child.wait().await;
            let _ = self.front.auth_child.wait().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        // Mail processes save their indexes on the way out; give them the same grace.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !self.workers.is_empty() && tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Event::Exited { user, .. })) => {
                    self.workers.remove(&user);
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }
}

/// Waits for `child` to exit; never, when there is none.
async fn wait_if_any(child: &mut Option<Child>) -> std::io::Result<std::process::ExitStatus> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

/// Starts the lmtp process with `listeners` and the full configuration (it looks users up);
/// none without listeners.
async fn start_lmtp(
    config_toml: &str,
    listeners: &[crate::lmtp::Listener],
) -> anyhow::Result<Option<Child>> {
    if listeners.is_empty() {
        return Ok(None);
    }
    let mut args: Vec<String> = vec!["lmtp".into()];
    for listener in listeners {
        args.push("--listener".into());
        args.push(listener.kind());
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut command = child_command(&arg_refs);
    let fds: Vec<_> = listeners.iter().map(crate::lmtp::Listener::as_fd).collect();
    pass_fds(command.as_std_mut(), &fds);
    let child = spawn_with_config(command, config_toml)
        .await
        .context("starting the lmtp process")?;
    tracing::info!("master: lmtp process {:?}", child.id());
    Ok(Some(child))
}

/// Starts the auth and login processes, connected to each other and to the master.
async fn start_front(
    config_toml: &str,
    public_toml: &str,
    listeners: &[(ListenerKind, std::net::TcpListener)],
    login_user: &str,
    chroot: &Path,
) -> anyhow::Result<Front> {
    let (login_auth, auth_login) = UnixStream::pair()?;
    let (login_master, master_login) = UnixStream::pair()?;
    let (master_auth, auth_master) = UnixStream::pair()?;

    let mut auth = child_command(&["auth"]);
    pass_fds(
        auth.as_std_mut(),
        &[auth_login.as_fd(), auth_master.as_fd()],
    );
    let auth_child = spawn_with_config(auth, config_toml)
        .await
        .context("starting the auth process")?;

    let mut args: Vec<String> = vec![
        "login".into(),
        "--chroot".into(),
        chroot.display().to_string(),
        "--user".into(),
        login_user.to_owned(),
    ];
    let mut fds = vec![login_auth.as_fd(), login_master.as_fd()];
    for (kind, listener) in listeners {
        args.push("--listener".into());
        args.push(kind.name().into());
        fds.push(listener.as_fd());
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut login = child_command(&arg_refs);
    pass_fds(login.as_std_mut(), &fds);
    let login_child = spawn_with_config(login, public_toml)
        .await
        .context("starting the login process")?;
    drop((auth_login, auth_master, login_auth, login_master));

    let (to_auth, from_auth) = ipc::channel(master_auth)?;
    let (_, from_login) = ipc::channel(master_login)?;
    tracing::info!(
        "master: auth process {:?}, login process {:?}",
        auth_child.id(),
        login_child.id()
    );
    Ok(Front {
        auth_child,
        login_child,
        to_auth,
        from_auth,
        from_login,
    })
}

/// `columba internal ARGS...`: this program again, in a child role, with a clean environment
/// (only the log filter survives) and its configuration on stdin.
fn child_command(args: &[&str]) -> Command {
    let program = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let mut command = Command::new(program);
    command
        .arg("internal")
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .kill_on_drop(true);
    if let Ok(filter) = std::env::var("COLUMBA_LOG") {
        command.env("COLUMBA_LOG", filter);
    }
    command
}

async fn spawn_with_config(mut command: Command, config_toml: &str) -> anyhow::Result<Child> {
    let mut child = command.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(config_toml.as_bytes()).await?;
        stdin.shutdown().await?;
    }
    Ok(child)
}
