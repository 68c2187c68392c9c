//! A throwaway PostgreSQL server on 127.0.0.1 for the SQL passdb tests: a cluster made by
//! Debian's `initdb` in a temporary directory, started on a free port with password (SCRAM)
//! authentication for one role, stopped and deleted when dropped. Run as root (as CI is), the
//! server runs as the `postgres` user, which PostgreSQL insists on.

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The role, its password and the database the server is made with.
pub const ROLE: &str = "columba";
pub const PASSWORD: &str = "pg-test-Secret";
pub const DATABASE: &str = "columba";

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    child: Option<Child>,
    pub port: u16,
    /// `Some(uid, gid)` of `postgres` when run as root.
    run_as: Option<(u32, u32)>,
}

impl Postgres {
    /// Makes and starts a cluster; `None` when PostgreSQL's server programs are not installed
    /// (the caller skips, or fails under `COLUMBA_REQUIRE_EXTERNAL=1`). Panics when they are
    /// installed but the server does not start.
    pub fn start() -> Option<Postgres> {
        let bin = server_bin_dir()?;
        let dir = tempfile::tempdir().expect("temporary directory");
        let run_as = if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() == Some(0) {
            let uid = id("-u")?;
            let gid = id("-g")?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown to postgres");
            Some((uid, gid))
        } else {
            None
        };
        let mut pg = Postgres {
            dir,
            bin,
            child: None,
            port: 0,
            run_as,
        };
        let pwfile = pg.dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("password file");
        if let Some((uid, gid)) = pg.run_as {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).expect("chown to postgres");
        }
        let data = pg.data_dir();
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                ROLE,
                "--auth=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
            ])
            .args(["--locale=C", "--no-instructions"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("running initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A port picked by the OS and released is very likely still free; try a few.
        for _ in 0..5 {
            if pg.start_on_free_port() {
                pg.psql_on("postgres", &format!("CREATE DATABASE {DATABASE}"));
                return Some(pg);
            }
        }
        panic!("PostgreSQL did not start; see {}", pg.log_path().display());
    }

    /// A libpq connection string for the test database.
    pub fn connect_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={ROLE} password={PASSWORD} dbname={DATABASE}",
            self.port
        )
    }

    /// [`Postgres::connect_string`] without the password, which [`PASSWORD`] then supplies.
    pub fn connect_string_without_password(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={ROLE} dbname={DATABASE}",
            self.port
        )
    }

    /// Runs SQL in the test database with `psql`; panics when it fails.
    pub fn psql(&self, sql: &str) {
        self.psql_on(DATABASE, sql);
    }

    /// Stops the server (fast shutdown): connections to it fail from now on.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT: PostgreSQL's fast shutdown, which ends the backends too.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn start_on_free_port(&mut self) -> bool {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let log = std::fs::File::create(self.log_path()).expect("server log");
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "fsync=off", "-c", "shared_buffers=16MB"])
            .args(["-c", "max_connections=20"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting postgres");
        self.child = Some(child);
        self.port = port;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && self.psql_ok("postgres", "SELECT 1")
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop();
        false
    }

    fn psql_on(&self, database: &str, sql: &str) {
        let out = self
            .psql_command(database, sql)
            .output()
            .expect("running psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn psql_ok(&self, database: &str, sql: &str) -> bool {
        self.psql_command(database, sql)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn psql_command(&self, database: &str, sql: &str) -> Command {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", ROLE])
            .args(["-d", database, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "5");
        cmd
    }

    /// A server program, as `postgres` when run as root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.run_as {
            None => Command::new(path),
            Some((uid, gid)) => {
                let mut cmd = Command::new("setpriv");
                cmd.args([
                    &format!("--reuid={uid}"),
                    &format!("--regid={gid}"),
                    "--clear-groups",
                    "--",
                ])
                .arg(path)
                .current_dir(self.dir.path());
                cmd
            }
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where `initdb`, `postgres` and `psql` are: Debian's versioned directory (the newest), or
/// the `PATH`.
fn server_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .find(|dir| is_file(&dir.join("initdb")) && is_file(&dir.join("postgres")))
}

fn is_file(path: &Path) -> bool {
    path.is_file()
}

/// `id -u postgres` / `id -g postgres`.
fn id(flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}
