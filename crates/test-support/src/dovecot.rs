//! A throwaway Dovecot 2.3 to compare Columba's IMAP answers with.
//!
//! [`Dovecot::start`] writes its own configuration under a temporary directory (never touching
//! `/etc/dovecot`), runs `dovecot -F -c FILE` on 127.0.0.1 with a free port, and waits for the
//! greeting. One passwd-file user ([`Dovecot::USER`] / [`Dovecot::PASSWORD`]) has a Maildir under
//! the same directory. Dropping the handle stops the server and removes everything.
//!
//! Dovecot refuses to give mail to uid 0, so when the tests run as root the mail belongs to
//! `nobody` (65534); otherwise Dovecot runs unprivileged as the current user.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::imap_client::ImapClient;

/// The uid/gid that owns the mail when running as root (`nobody` on Debian).
const UNPRIVILEGED_ID: u32 = 65534;

/// How long to wait for Dovecot's greeting before declaring the start failed.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running Dovecot; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Dovecot {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Dovecot {
    /// The one user of the passwd-file database.
    pub const USER: &'static str = "test";
    pub const PASSWORD: &'static str = "test";

    /// Starts a Dovecot, or returns `None` (printing "skipping: dovecot not installed") when the
    /// `dovecot` binary cannot be found, so tests can skip their comparison.
    ///
    /// Panics when Dovecot is installed but does not come up — a broken test environment is not
    /// a reason to skip silently — and when it is missing although `COLUMBA_REQUIRE_EXTERNAL=1`
    /// (CI, which installs it, sets that).
    pub fn start() -> Option<Dovecot> {
        let Some(binary) = find_binary("dovecot") else {
            if std::env::var("COLUMBA_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
                panic!("dovecot not installed, but COLUMBA_REQUIRE_EXTERNAL=1");
            }
            eprintln!("skipping: dovecot not installed");
            return None;
        };
        // The free port is found by binding and releasing it, which another process may grab
        // in between; a few attempts make that race harmless.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::try_start(&binary) {
                Ok(d) => return Some(d),
                Err(e) => last_error = e,
            }
        }
        panic!("dovecot is installed but did not start: {last_error}");
    }

    fn try_start(binary: &Path) -> Result<Dovecot, String> {
        let dir = tempfile::Builder::new()
            .prefix("columba-dovecot-")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        let root = dir.path();
        // Dovecot's unprivileged processes (auth as `dovecot`, mail as the mail owner) must be
        // able to reach the configuration, the users file and the mail below this directory.
        fs::set_permissions(root, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod: {e}"))?;
        let me = fs::metadata(root).map_err(|e| format!("stat: {e}"))?;
        let running_as_root = me.uid() == 0;
        let (uid, gid) = if running_as_root {
            (UNPRIVILEGED_ID, UNPRIVILEGED_ID)
        } else {
            (me.uid(), me.gid())
        };

        let mail = root.join("mail");
        let home = mail.join(Self::USER);
        fs::create_dir_all(&home).map_err(|e| format!("mkdir: {e}"))?;
        if running_as_root {
            for p in [&mail, &home] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid))
                    .map_err(|e| format!("chown: {e}"))?;
            }
        }

        let users = root.join("users");
        fs::write(
            &users,
            format!(
                "{user}:{{PLAIN}}{pass}:{uid}:{gid}::{home}::\n",
                user = Self::USER,
                pass = Self::PASSWORD,
                home = home.display()
            ),
        )
        .map_err(|e| format!("users: {e}"))?;

        let port = free_port().map_err(|e| format!("free port: {e}"))?;
        let config = root.join("dovecot.conf");
        fs::write(&config, config_text(root, &users, port, running_as_root))
            .map_err(|e| format!("config: {e}"))?;

        let child = Command::new(binary)
            .arg("-F")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let mut d = Dovecot { child, port, dir };
        d.wait_ready()?;
        Ok(d)
    }

    /// Polls until the server greets, the process dies, or [`START_TIMEOUT`] passes.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "dovecot exited with {status}; log:\n{}",
                    self.log()
                ));
            }
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut greeting = String::new();
                if BufReader::new(stream).read_line(&mut greeting).is_ok()
                    && greeting.starts_with("* OK")
                {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no greeting within {START_TIMEOUT:?}; log:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The IMAP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory holding configuration, mail and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far (useful in assertion messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// A new connection, logged in as [`Dovecot::USER`].
    pub fn connect(&self) -> std::io::Result<ImapClient> {
        let mut c = ImapClient::connect(("127.0.0.1", self.port))?;
        c.login(Self::USER, Self::PASSWORD)?;
        Ok(c)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its children; SIGKILL only if it does not exit in time.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration: the minimal one of `/work/shared/bench/README.md`, with every path under
/// `root` so nothing outside it is read or written.
fn config_text(root: &Path, users: &Path, port: u16, running_as_root: bool) -> String {
    let root = root.display();
    let users = users.display();
    // Without root Dovecot can neither switch users nor chroot.
    let login_chroot = if running_as_root { "" } else { "  chroot =\n" };
    let mut c = format!(
        "base_dir = {root}/run
state_dir = {root}/state
listen = 127.0.0.1
protocols = imap
disable_plaintext_auth = no
ssl = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u/Maildir
mail_fsync = never
log_path = {root}/dovecot.log
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
{login_chroot}}}
"
    );
    if !running_as_root {
        // Run every process as us, and give its sockets our group.
        let user = current_user_name().unwrap_or_else(|| "nobody".to_owned());
        let group = current_group_name().unwrap_or_else(|| "nogroup".to_owned());
        c.push_str(&format!(
            "default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
service anvil {{
  chroot =
}}
"
        ));
    }
    c
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `name` in `$PATH` or the sbin directories, which are often missing from a user's `$PATH`.
fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The name of our primary group, from /etc/group.
fn current_group_name() -> Option<String> {
    let gid = fs::metadata("/proc/self").ok()?.gid().to_string();
    fs::read_to_string("/etc/group")
        .ok()?
        .lines()
        .find(|l| l.split(':').nth(2) == Some(gid.as_str()))
        .and_then(|l| l.split(':').next().map(str::to_owned))
}

/// `$USER`, or the passwd entry of our uid.
fn current_user_name() -> Option<String> {
    if let Some(u) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        return Some(u);
    }
    let uid = fs::metadata("/proc/self").ok()?.uid();
    fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find(|l| l.split(':').nth(2) == Some(&uid.to_string()))
        .and_then(|l| l.split(':').next().map(str::to_owned))
}
