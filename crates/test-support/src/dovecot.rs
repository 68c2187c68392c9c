//! A throwaway Dovecot 2.3 to compare Columba with.
//!
//! [`Dovecot::start`] writes its own configuration under a temporary directory (never touching
//! `/etc/dovecot`), runs `dovecot -F -c FILE` on 127.0.0.1 with a free port, and waits for the
//! greeting. One passwd-file user ([`Dovecot::USER`] / [`Dovecot::PASSWORD`]) has its home in
//! `<dir>/mail/test` and its mail in `Maildir` below it. Dropping the handle stops the server and
//! removes everything.
//!
//! [`Dovecot::builder`] changes the defaults (mail plugins, the INBOX namespace's separator,
//! `mail_fsync`) and can stop before the start with [`DovecotBuilder::prepare`], so that a test
//! fills the Maildir first and then lets Dovecot serve it.
//!
//! Dovecot refuses to give mail to uid 0, so when the tests run as root the mail belongs to
//! `nobody` (65534, see [`Dovecot::mail_owner`]) and the mail tree is handed to it when the
//! server starts; otherwise Dovecot runs unprivileged as the current user. Dovecot runs with
//! `TZ=UTC`, so the dates it shows do not depend on the machine.

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
    home: DovecotHome,
}

/// What to change in the configuration; [`Dovecot::builder`] makes one.
#[derive(Debug, Clone)]
pub struct DovecotBuilder {
    mail_plugins: Vec<String>,
    inbox_separator: Option<char>,
    mail_fsync: String,
    mail_location: String,
}

/// The directory, configuration-to-be and users file of a Dovecot that has not started yet
/// ([`DovecotBuilder::prepare`]); [`DovecotHome::start`] starts it.
pub struct DovecotHome {
    dir: tempfile::TempDir,
    binary: PathBuf,
    options: DovecotBuilder,
    /// Who owns the mail: the unprivileged id when running as root, else us.
    uid: u32,
    gid: u32,
    running_as_root: bool,
}

impl Dovecot {
    /// The one user of the passwd-file database.
    pub const USER: &'static str = "test";
    pub const PASSWORD: &'static str = "test";

    /// Starts a Dovecot with the default configuration; see [`DovecotBuilder::start`].
    pub fn start() -> Option<Dovecot> {
        Dovecot::builder().start()
    }

    /// Options for a Dovecot other than the default one.
    pub fn builder() -> DovecotBuilder {
        DovecotBuilder {
            mail_plugins: Vec::new(),
            inbox_separator: None,
            mail_fsync: "never".to_owned(),
            mail_location: "maildir:~/Maildir".to_owned(),
        }
    }

    /// The IMAP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory holding configuration, mail and logs.
    pub fn dir(&self) -> &Path {
        self.home.dir()
    }

    /// The user's Maildir.
    pub fn maildir(&self) -> PathBuf {
        self.home.maildir()
    }

    /// The uid and gid the mail must belong to when they are not ours (the tests run as root),
    /// so that a test writing into the Maildir from another process can run as that user.
    pub fn mail_owner(&self) -> Option<(u32, u32)> {
        self.home.mail_owner()
    }

    /// The server's log so far (useful in assertion messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.home.dir().join("dovecot.log")).unwrap_or_default()
    }

    /// Log lines in which Dovecot complains about what it found (errors, warnings, "Broken"
    /// files): a test of files Columba wrote wants none.
    pub fn complaints(&self) -> Vec<String> {
        complaints(&self.log())
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
        stop(&mut self.child);
    }
}

impl DovecotBuilder {
    /// Adds a plugin to `mail_plugins` (e.g. `listescape`).
    pub fn mail_plugin(mut self, name: &str) -> Self {
        self.mail_plugins.push(name.to_owned());
        self
    }

    /// Declares the INBOX namespace with this hierarchy separator (Dovecot's default Maildir++
    /// separator is `.`).
    pub fn inbox_separator(mut self, separator: char) -> Self {
        self.inbox_separator = Some(separator);
        self
    }

    /// Dovecot's `mail_fsync`: `never` by default (fast), `optimized` is Dovecot's own default.
    pub fn mail_fsync(mut self, value: &str) -> Self {
        self.mail_fsync = value.to_owned();
        self
    }

    /// Dovecot's `mail_location` (`maildir:~/Maildir` by default), e.g.
    /// `mbox:~/mail:INBOX=~/mail/inbox` for mbox tests.
    pub fn mail_location(mut self, value: &str) -> Self {
        self.mail_location = value.to_owned();
        self
    }

    /// Creates the directory and the user's home without starting the server, or returns
    /// `None` (printing "skipping: dovecot not installed") when the `dovecot` binary cannot be
    /// found, so tests can skip their comparison.
    ///
    /// Panics when Dovecot is missing although `COLUMBA_REQUIRE_EXTERNAL=1` (CI, which installs
    /// it, sets that), and when the directory cannot be made.
    pub fn prepare(self) -> Option<DovecotHome> {
        let Some(binary) = find_binary("dovecot") else {
            if std::env::var("COLUMBA_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
                panic!("dovecot not installed, but COLUMBA_REQUIRE_EXTERNAL=1");
            }
            eprintln!("skipping: dovecot not installed");
            return None;
        };
        match DovecotHome::new(binary, self) {
            Ok(home) => Some(home),
            Err(e) => panic!("cannot prepare a directory for dovecot: {e}"),
        }
    }

    /// Prepares and starts a Dovecot, or returns `None` when it is not installed (see
    /// [`DovecotBuilder::prepare`]). Panics when Dovecot is installed but does not come up: a
    /// broken test environment is not a reason to skip silently.
    pub fn start(self) -> Option<Dovecot> {
        Some(self.prepare()?.start())
    }
}

impl DovecotHome {
    fn new(binary: PathBuf, options: DovecotBuilder) -> Result<DovecotHome, String> {
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
        let home = DovecotHome {
            dir,
            binary,
            options,
            uid,
            gid,
            running_as_root,
        };
        fs::create_dir_all(home.home()).map_err(|e| format!("mkdir: {e}"))?;
        Ok(home)
    }

    /// The temporary directory that will hold configuration, mail and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The user's home directory (it exists).
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("mail").join(Dovecot::USER)
    }

    /// The user's Maildir (not created here: whoever writes first creates it).
    pub fn maildir(&self) -> PathBuf {
        self.home().join("Maildir")
    }

    /// See [`Dovecot::mail_owner`].
    pub fn mail_owner(&self) -> Option<(u32, u32)> {
        self.running_as_root.then_some((self.uid, self.gid))
    }

    /// Writes the configuration and starts the server; when running as root, the mail tree
    /// written so far is handed to the mail user first. Panics when the server does not come up.
    pub fn start(self) -> Dovecot {
        if let Err(e) = self.give_mail_to_user() {
            panic!("cannot hand the mail to the mail user: {e}");
        }
        if let Err(e) = self.write_users() {
            panic!("cannot write the users file: {e}");
        }
        // The free port is found by binding and releasing it, which another process may grab
        // in between; a few attempts make that race harmless.
        let mut last_error = String::new();
        for _ in 0..3 {
            match self.try_start() {
                Ok((child, port)) => {
                    return Dovecot {
                        child,
                        port,
                        home: self,
                    };
                }
                Err(e) => last_error = e,
            }
        }
        panic!("dovecot is installed but did not start: {last_error}");
    }

    /// One attempt: the running server and its port.
    fn try_start(&self) -> Result<(Child, u16), String> {
        let port = free_port().map_err(|e| format!("free port: {e}"))?;
        let config = self.dir().join("dovecot.conf");
        fs::write(&config, self.config_text(port)).map_err(|e| format!("config: {e}"))?;
        let mut child = Command::new(&self.binary)
            .arg("-F")
            .arg("-c")
            .arg(&config)
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let log = || fs::read_to_string(self.dir().join("dovecot.log")).unwrap_or_default();
        match wait_ready(&mut child, port, log) {
            Ok(()) => Ok((child, port)),
            Err(e) => {
                stop(&mut child);
                Err(e)
            }
        }
    }

    fn write_users(&self) -> std::io::Result<()> {
        fs::write(
            self.dir().join("users"),
            format!(
                "{user}:{{PLAIN}}{pass}:{uid}:{gid}::{home}::\n",
                user = Dovecot::USER,
                pass = Dovecot::PASSWORD,
                uid = self.uid,
                gid = self.gid,
                home = self.home().display()
            ),
        )
    }

    /// Root may not own mail in Dovecot's eyes: everything below `mail/` goes to the mail user.
    fn give_mail_to_user(&self) -> std::io::Result<()> {
        if self.running_as_root {
            chown_tree(&self.dir().join("mail"), self.uid, self.gid)?;
        }
        Ok(())
    }

    /// The configuration: the minimal one of `/work/shared/bench/README.md`, with every path
    /// under our directory so nothing outside it is read or written, plus the options.
    fn config_text(&self, port: u16) -> String {
        let root = self.dir().display();
        let users = self.dir().join("users");
        let users = users.display();
        let fsync = &self.options.mail_fsync;
        let location = &self.options.mail_location;
        // Without root Dovecot can neither switch users nor chroot.
        let login_chroot = if self.running_as_root {
            ""
        } else {
            "  chroot =\n"
        };
        let mut c = format!(
            "base_dir = {root}/run
state_dir = {root}/state
listen = 127.0.0.1
protocols = imap
disable_plaintext_auth = no
ssl = no
auth_mechanisms = plain login
mail_location = {location}
mail_fsync = {fsync}
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
        if !self.options.mail_plugins.is_empty() {
            c.push_str(&format!(
                "mail_plugins = {}\n",
                self.options.mail_plugins.join(" ")
            ));
        }
        if let Some(sep) = self.options.inbox_separator {
            c.push_str(&format!(
                "namespace inbox {{\n  inbox = yes\n  separator = {sep}\n}}\n"
            ));
        }
        if !self.running_as_root {
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
}

/// Polls until the server greets, the process dies, or [`START_TIMEOUT`] passes.
fn wait_ready(child: &mut Child, port: u16, log: impl Fn() -> String) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("dovecot exited with {status}; log:\n{}", log()));
        }
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
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
                log()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the server: SIGTERM lets the master stop its children; SIGKILL only if it does not
/// exit in time.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The complaining lines of a Dovecot log.
fn complaints(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            ["Error:", "Panic:", "Fatal:", "Broken", "Warning:"]
                .iter()
                .any(|w| l.contains(w))
        })
        .map(str::to_owned)
        .collect()
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complaints_are_the_lines_that_complain() {
        let log = "Nov 29 imap(test): Info: Logged out\n\
                   Nov 29 imap(test): Error: Broken file dovecot-uidlist line 2\n\
                   Nov 29 master: Warning: Killed with signal 15\n\
                   Nov 29 imap(test): Info: Disconnected\n";
        assert_eq!(complaints(log).len(), 2);
    }

    #[test]
    fn the_configuration_carries_the_options() {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("tempdir")
        };
        let home = DovecotHome {
            dir,
            binary: PathBuf::from("/usr/sbin/dovecot"),
            options: Dovecot::builder()
                .mail_plugin("listescape")
                .inbox_separator('/')
                .mail_fsync("optimized"),
            uid: 65534,
            gid: 65534,
            running_as_root: true,
        };
        let c = home.config_text(1143);
        assert!(c.contains("mail_plugins = listescape\n"), "{c}");
        assert!(c.contains("  separator = /\n"), "{c}");
        assert!(c.contains("mail_fsync = optimized\n"), "{c}");
        assert!(c.contains("port = 1143\n"), "{c}");
        assert!(!c.contains("default_internal_user"), "{c}");
        assert_eq!(home.mail_owner(), Some((65534, 65534)));
    }
}
