//! Real Unix accounts: users made with `useradd -m` and `chpasswd` (yescrypt on Debian 12),
//! served with `passdb = "shadow"` and `userdb = "passwd"`, then through PAM; mail lands in
//! `~/Maildir`. Also the checkpassword passdb with `columba checkpassword-reply`.
//!
//! Creating users needs root: these tests run as root here and in CI, and skip otherwise
//! (failing instead under `COLUMBA_REQUIRE_EXTERNAL=1`). Every account is named after this
//! process and removed again with `userdel -r`, even when the test fails.
//!
//! Started as root with system users, the server separates itself (SECURITY.md): an
//! unprivileged, chrooted login process, a root auth process, and a mail process per user with
//! that user's uid; `separated_processes_serve_each_user_as_themselves` looks at each of them.

mod common;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{RawClient, Server};

/// Whether the test may create system users; prints why not when it may not.
fn root() -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("COLUMBA_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
        panic!("system user tests need root (COLUMBA_REQUIRE_EXTERNAL=1)");
    }
    eprintln!("skipping: creating system users needs root");
    false
}

/// Runs a user administration command, retrying while another one holds the passwd lock.
fn admin(args: &[&str], stdin: Option<&str>) {
    for attempt in 0..50 {
        let mut child = Command::new(args[0])
            .args(&args[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            return;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.contains("lock") || attempt == 49 {
            panic!("{args:?} failed: {err}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A system account that exists until dropped.
struct SystemUser {
    name: String,
    password: String,
}

impl SystemUser {
    fn create(tag: &str) -> SystemUser {
        let name = format!("colt{}{tag}", std::process::id());
        let password = format!("Pw-{name}-9!");
        admin(&["useradd", "-m", "-s", "/usr/sbin/nologin", &name], None);
        let user = SystemUser { name, password };
        admin(
            &["chpasswd"],
            Some(&format!("{}:{}\n", user.name, user.password)),
        );
        user
    }

    fn home(&self) -> PathBuf {
        PathBuf::from("/home").join(&self.name)
    }

    fn uid(&self) -> u32 {
        let out = Command::new("id")
            .args(["-u", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

impl Drop for SystemUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel")
            .args(["-r", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// A server with `config` (which starts with its `[auth]` section), failed logins delayed
/// only briefly.
fn server_with(config: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("columba.toml");
    let quick = "[auth]\nfailure_delay_ms = 20\nfailure_delay_max_ms = 100\n";
    std::fs::write(&path, config.replacen("[auth]\n", quick, 1)).unwrap();
    Server::start_in(dir, &["--config", path.to_str().unwrap()])
}

fn login(server: &Server, user: &str, password: &str) -> (RawClient, String) {
    let mut c = RawClient::connect(server.imap);
    let reply = c.command("a1", &format!("LOGIN {user} \"{password}\""));
    (c, reply.last().cloned().unwrap_or_default())
}

fn append(c: &mut RawClient, message: &str) {
    c.send(format!("a2 APPEND INBOX {{{}+}}\r\n", message.len()).as_bytes());
    c.send(message.as_bytes());
    c.send(b"\r\n");
    let reply = c.until_tagged("a2");
    assert!(
        reply.last().unwrap().starts_with("a2 OK [APPENDUID"),
        "{reply:?}"
    );
}

/// The files in `maildir`'s new/ and cur/.
fn messages(maildir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(maildir.join(sub)) {
            found.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
        }
    }
    found
}

#[test]
fn shadow_passdb_and_passwd_userdb() {
    if !root() {
        return;
    }
    let alice = SystemUser::create("a");
    let bob = SystemUser::create("b");
    let shadow = std::fs::read_to_string("/etc/shadow").unwrap();
    let entry = shadow
        .lines()
        .find(|l| l.starts_with(&format!("{}:", alice.name)))
        .unwrap();
    eprintln!("chpasswd wrote {}", &entry[..entry.len().min(40)]);
    let mut server = server_with("[auth]\npassdb = \"shadow\"\nuserdb = \"passwd\"\n");

    // A wrong password, then the right one; then mail.
    let (_, reply) = login(&server, &alice.name, "not-the-password");
    assert_eq!(reply, "a1 NO [AUTHENTICATIONFAILED] Authentication failed.");
    let (mut c, reply) = login(&server, &alice.name, &alice.password);
    assert!(reply.starts_with("a1 OK"), "{reply}");
    let message = "From: a@example.org\r\nSubject: system user\r\n\r\nHello home.\r\n";
    append(&mut c, message);
    c.command("a3", "LOGOUT");
    let maildir = alice.home().join("Maildir");
    let files = messages(&maildir);
    assert_eq!(files.len(), 1, "mail in {}: {files:?}", maildir.display());
    let stored = std::fs::read_to_string(&files[0]).unwrap();
    assert!(stored.contains("Subject: system user"), "{stored}");
    server.wait_for_log(&format!("imap-login: Login: user=<{}>", alice.name));
    server.wait_for_log(&format!(
        "imap-login: Authentication failed: user=<{}>",
        alice.name
    ));

    // User names are lower-cased, as Dovecot's default does.
    let (_, reply) = login(&server, &alice.name.to_uppercase(), &alice.password);
    assert!(reply.starts_with("a1 OK"), "{reply}");

    // POP3 for the other user, whose Maildir did not exist yet.
    let mut p = std::net::TcpStream::connect(server.pop3).unwrap();
    p.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = std::io::BufReader::new(p.try_clone().unwrap());
    let mut line = String::new();
    let mut read = |r: &mut std::io::BufReader<std::net::TcpStream>| {
        line.clear();
        std::io::BufRead::read_line(r, &mut line).unwrap();
        line.trim_end().to_owned()
    };
    assert!(read(&mut r).starts_with("+OK"));
    write!(
        p,
        "USER {}\r\nPASS {}\r\nSTAT\r\nQUIT\r\n",
        bob.name, bob.password
    )
    .unwrap();
    assert_eq!(read(&mut r), "+OK");
    assert_eq!(read(&mut r), "+OK Logged in.");
    assert_eq!(read(&mut r), "+OK 0 0");
    assert!(bob.home().join("Maildir").join("cur").is_dir());

    // A locked account, then an expired one: the right password no longer works.
    admin(&["usermod", "-L", &bob.name], None);
    let (_, reply) = login(&server, &bob.name, &bob.password);
    assert!(reply.starts_with("a1 NO"), "locked: {reply}");
    admin(&["usermod", "-U", &bob.name], None);
    let (_, reply) = login(&server, &bob.name, &bob.password);
    assert!(reply.starts_with("a1 OK"), "unlocked: {reply}");
    admin(&["chage", "-E", "0", &bob.name], None);
    let (_, reply) = login(&server, &bob.name, &bob.password);
    assert!(reply.starts_with("a1 NO"), "expired: {reply}");

    // Root never, and unknown users get the same answer as wrong passwords.
    for user in ["root", "daemon", "no-such-user-columba"] {
        let (_, reply) = login(&server, user, "whatever");
        assert_eq!(
            reply, "a1 NO [AUTHENTICATIONFAILED] Authentication failed.",
            "{user}"
        );
    }
}

#[test]
fn uid_range_keeps_users_out() {
    if !root() {
        return;
    }
    let carol = SystemUser::create("c");
    let above = carol.uid() + 1;
    let server = server_with(&format!(
        "[auth]\npassdb = \"shadow\"\nuserdb = \"passwd\"\nfirst_valid_uid = {above}\n"
    ));
    let (_, reply) = login(&server, &carol.name, &carol.password);
    assert!(reply.starts_with("a1 NO"), "{reply}");
    drop(server);
    let server = server_with(&format!(
        "[auth]\npassdb = \"shadow\"\nuserdb = \"passwd\"\nlast_valid_uid = {}\n",
        above - 1
    ));
    let (_, reply) = login(&server, &carol.name, &carol.password);
    assert!(reply.starts_with("a1 OK"), "{reply}");
}

/// A PAM service file that exists until dropped.
struct PamService {
    path: PathBuf,
    name: String,
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn pam_passdb() {
    if !root() {
        return;
    }
    let dave = SystemUser::create("d");
    let name = format!("columba-test-{}", std::process::id());
    let service = PamService {
        path: PathBuf::from("/etc/pam.d").join(&name),
        name,
    };
    std::fs::write(
        &service.path,
        "auth required pam_unix.so\naccount required pam_unix.so\n",
    )
    .unwrap();
    let server = server_with(&format!(
        "[auth]\npassdb = \"pam\"\nuserdb = \"passwd\"\n[auth.pam]\nservice = \"{}\"\n",
        service.name
    ));
    let (_, reply) = login(&server, &dave.name, "wrong password");
    assert!(reply.starts_with("a1 NO [AUTHENTICATIONFAILED]"), "{reply}");
    let (mut c, reply) = login(&server, &dave.name, &dave.password);
    assert!(reply.starts_with("a1 OK"), "{reply}");
    append(&mut c, "Subject: via PAM\r\n\r\nx\r\n");
    assert_eq!(messages(&dave.home().join("Maildir")).len(), 1);
    // pam_unix's account check: an expired account is refused after a right password.
    admin(&["chage", "-E", "0", &dave.name], None);
    let (_, reply) = login(&server, &dave.name, &dave.password);
    assert!(reply.starts_with("a1 NO"), "expired: {reply}");
    let (_, reply) = login(&server, "root", "whatever");
    assert!(reply.starts_with("a1 NO"), "{reply}");
}

#[test]
fn checkpassword_passdb_with_columbas_reply() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("cphome");
    let program = dir.path().join("checkpassword");
    std::fs::write(
        &program,
        format!(
            "#!/bin/bash\n\
             IFS= read -r -d '' user <&3; IFS= read -r -d '' pass <&3\n\
             [ \"$user\" = cpuser ] && [ \"$pass\" = 'cp pass' ] || exit 1\n\
             export USER=cpuser HOME={} userdb_uid=5000 userdb_gid=5000\n\
             export EXTRA='userdb_uid userdb_gid'\n\
             exec \"$@\"\n",
            home.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = server_with(&format!(
        "[auth]\npassdb = \"checkpassword\"\nuserdb = \"prefetch\"\n\
         [auth.checkpassword]\nprogram = \"{}\"\n",
        program.display()
    ));
    let (_, reply) = login(&server, "cpuser", "wrong");
    assert!(reply.starts_with("a1 NO [AUTHENTICATIONFAILED]"), "{reply}");
    let (mut c, reply) = login(&server, "cpuser", "cp pass");
    assert!(reply.starts_with("a1 OK"), "{reply}");
    append(&mut c, "Subject: checkpassword\r\n\r\nx\r\n");
    assert_eq!(messages(&home.join("Maildir")).len(), 1);
}

#[test]
fn impossible_configurations_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let shadow = dir.path().join("shadow");
    std::fs::write(&shadow, "x:*:19000::::::\n").unwrap();
    for (config, expected) in [
        (
            format!(
                "[auth]\npassdb = \"shadow\"\nmechanisms = [\"PLAIN\", \"SCRAM-SHA-256\"]\n\
                 [auth.shadow]\nfile = \"{}\"\n",
                shadow.display()
            ),
            "SCRAM-SHA-256 needs stored plaintext passwords or SCRAM keys",
        ),
        (
            "[auth]\nmechanisms = [\"DIGEST-MD5\"]\n".to_owned(),
            "unknown mechanism \"DIGEST-MD5\"",
        ),
        (
            "[auth]\nuserdb = \"static\"\n".to_owned(),
            "needs [auth.static] uid and gid",
        ),
        (
            "[auth]\npassdb = \"checkpassword\"\n".to_owned(),
            "needs [auth.checkpassword] program",
        ),
        (
            format!(
                "[auth]\npassdb = \"shadow\"\n[auth.shadow]\nfile = \"{}\"\n",
                dir.path().join("missing").display()
            ),
            "passdb \"shadow\"",
        ),
    ] {
        let path = dir.path().join("columba.toml");
        std::fs::write(&path, &config).unwrap();
        let out = common::columba()
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--config", path.to_str().unwrap()])
            .args(["serve", "--imap", "127.0.0.1:0", "--imaps", "127.0.0.1:0"])
            .args(["--pop3", "127.0.0.1:0", "--pop3s", "127.0.0.1:0"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{config} started");
        assert!(err.contains(expected), "{config}: {err}");
    }
}

/// The processes of the separated server whose command line contains `needle`.
fn processes(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(pid);
        }
    }
    found
}

/// `Uid`, `Gid`, `Groups` and `NoNewPrivs` of a process, from `/proc/PID/status`.
fn status_fields(pid: u32) -> std::collections::HashMap<String, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// The process of a user's mail, waited for (it starts at the first login).
fn mail_process(user: &str) -> u32 {
    let needle = format!("internal worker --user {user}");
    for _ in 0..100 {
        if let [pid] = processes(&needle)[..] {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "no single mail process for {user}: {:?}",
        processes(&needle)
    );
}

fn gid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-g", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn separated_processes_serve_each_user_as_themselves() {
    use std::os::unix::fs::MetadataExt as _;
    if !root() {
        return;
    }
    let alice = SystemUser::create("e");
    let bob = SystemUser::create("f");
    let mut server = server_with("[auth]\npassdb = \"shadow\"\nuserdb = \"passwd\"\n");
    let data_dir = server.data_dir.path().to_owned();

    // The login process: not root, no groups, no way to gain privileges, locked in an empty
    // directory where /etc/shadow does not exist.
    let login = processes(&format!("internal login --chroot {}", data_dir.display()));
    assert_eq!(login.len(), 1, "{login:?}");
    let fields = status_fields(login[0]);
    let login_uid: u32 = fields["Uid"]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(login_uid, 0, "{fields:?}");
    assert!(
        fields["Uid"]
            .split_whitespace()
            .all(|u| u == login_uid.to_string()),
        "real, effective, saved and fs uid all dropped: {fields:?}"
    );
    assert_eq!(fields["Groups"], "", "{fields:?}");
    assert_eq!(fields["NoNewPrivs"], "1", "{fields:?}");
    let root_dir = std::fs::read_link(format!("/proc/{}/root", login[0])).unwrap();
    assert_eq!(root_dir, data_dir.join("login-chroot"));
    assert!(!root_dir.join("etc/shadow").exists());
    assert_eq!(std::fs::read_dir(&root_dir).unwrap().count(), 0);

    // Alice logs in with her commands pipelined behind LOGIN: the mail process answers them.
    let mut c = RawClient::connect(server.imap);
    c.send(
        format!(
            "a1 LOGIN {} \"{}\"\r\na2 SELECT INBOX\r\n",
            alice.name, alice.password
        )
        .as_bytes(),
    );
    let reply = c.until_tagged("a1");
    assert!(
        reply
            .last()
            .unwrap()
            .starts_with("a1 OK [CAPABILITY IMAP4rev1"),
        "{reply:?}"
    );
    let reply = c.until_tagged("a2");
    assert!(
        reply.last().unwrap().starts_with("a2 OK [READ-WRITE]"),
        "{reply:?}"
    );
    append(
        &mut c,
        "From: a@example.org\r\nSubject: mine\r\n\r\nAlice's.\r\n",
    );

    // Her mail process runs as her, without supplementary groups.
    let worker = mail_process(&alice.name);
    let fields = status_fields(worker);
    let uid = alice.uid().to_string();
    let gid = gid_of(&alice.name).to_string();
    assert!(
        fields["Uid"].split_whitespace().all(|u| u == uid),
        "{fields:?}"
    );
    assert!(
        fields["Gid"].split_whitespace().all(|g| g == gid),
        "{fields:?}"
    );
    assert_eq!(fields["Groups"], "", "{fields:?}");
    assert_eq!(fields["NoNewPrivs"], "1", "{fields:?}");

    // What it wrote is hers, and hers alone.
    let maildir = alice.home().join("Maildir");
    let files = messages(&maildir);
    assert_eq!(files.len(), 1, "{files:?}");
    for path in [
        &files[0],
        &maildir,
        &maildir.join("cur"),
        &maildir.join("dovecot-uidlist"),
    ] {
        let meta = std::fs::metadata(path).unwrap();
        assert_eq!(meta.uid(), alice.uid(), "{}", path.display());
        assert_eq!(meta.gid().to_string(), gid, "{}", path.display());
    }
    assert_eq!(std::fs::metadata(&files[0]).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&maildir).unwrap().mode() & 0o777, 0o700);

    // A second connection of hers goes to the same process; AUTHENTICATE (a SASL exchange
    // run by the auth process) works as LOGIN does.
    let mut c2 = RawClient::connect(server.imap);
    c2.send(b"b1 AUTHENTICATE LOGIN\r\n");
    let user64 = base64(alice.name.as_bytes());
    let pass64 = base64(alice.password.as_bytes());
    assert!(c2.line().starts_with("+ "));
    c2.send(format!("{user64}\r\n").as_bytes());
    assert!(c2.line().starts_with("+ "));
    c2.send(format!("{pass64}\r\n").as_bytes());
    let reply = c2.until_tagged("b1");
    assert!(reply.last().unwrap().starts_with("b1 OK"), "{reply:?}");
    let reply = c2.command("b2", "STATUS INBOX (MESSAGES)");
    assert_eq!(reply[0], "* STATUS \"INBOX\" (MESSAGES 1)");
    assert_eq!(mail_process(&alice.name), worker);

    // Bob, over POP3, gets a process of his own, and no command of his reaches Alice's mail.
    let mut p = std::net::TcpStream::connect(server.pop3).unwrap();
    p.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = std::io::BufReader::new(p.try_clone().unwrap());
    let mut read = || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut r, &mut line).unwrap();
        line.trim_end().to_owned()
    };
    assert!(read().starts_with("+OK"));
    write!(p, "USER {}\r\nPASS {}\r\nSTAT\r\n", bob.name, bob.password).unwrap();
    assert_eq!(read(), "+OK");
    assert_eq!(read(), "+OK Logged in.");
    assert_eq!(read(), "+OK 0 0");
    let bob_worker = mail_process(&bob.name);
    assert_ne!(bob_worker, worker);
    let fields = status_fields(bob_worker);
    let bob_uid = bob.uid().to_string();
    assert!(
        fields["Uid"].split_whitespace().all(|u| u == bob_uid),
        "{fields:?}"
    );
    let mut b = RawClient::connect(server.imap);
    let reply = b.command("c1", &format!("LOGIN {} \"{}\"", bob.name, bob.password));
    assert!(reply.last().unwrap().starts_with("c1 OK"), "{reply:?}");
    let alice_maildir = maildir.display().to_string();
    for (tag, command) in [
        ("c2", format!("SELECT \"{alice_maildir}\"")),
        ("c3", format!("SELECT \"../../{}/Maildir\"", alice.name)),
        ("c4", format!("STATUS \"../{}\" (MESSAGES)", alice.name)),
        ("c5", format!("EXAMINE \"~{}/INBOX\"", alice.name)),
        ("c6", format!("RENAME \"../{0}\" \"stolen\"", alice.name)),
    ] {
        let reply = b.command(tag, &command);
        assert!(
            reply.last().unwrap().starts_with(&format!("{tag} NO")),
            "{command}: {reply:?}"
        );
    }
    let reply = b.command("c7", "LIST \"\" \"*\"");
    assert!(
        reply
            .iter()
            .all(|l| !l.contains(&alice.name) && !l.contains("Maildir")),
        "{reply:?}"
    );
    // Below the protocol, too: Bob's process could not open her files if it tried.
    let home_mode = std::fs::metadata(alice.home()).unwrap().mode() & 0o777;
    let mail_mode = std::fs::metadata(&files[0]).unwrap().mode() & 0o777;
    assert!(home_mode & 0o007 == 0 || mail_mode & 0o077 == 0);

    // Over TLS (implicit, and STARTTLS): the login process keeps the TLS session and relays.
    if common::have("curl") {
        let user = format!("{}:{}", alice.name, alice.password);
        for (url, extra) in [
            (format!("imaps://{}/", server.imaps), None),
            (format!("imap://{}/", server.imap), Some("--ssl-reqd")),
        ] {
            let out = common::run(
                Command::new("curl")
                    .args(["-s", "-k", "--user", &user])
                    .args(extra)
                    .arg(&url)
                    .args(["-X", "STATUS INBOX (MESSAGES)"]),
            );
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("(MESSAGES 1)"), "{url}: {text}");
        }
        // Bob's POP3 session still holds his maildrop (RFC 1939 8), in his one mail process.
        let pop3s = |bob: &SystemUser| {
            Command::new("curl")
                .args([
                    "-s",
                    "-k",
                    "--user",
                    &format!("{}:{}", bob.name, bob.password),
                ])
                .arg(format!("pop3s://{}/", server.pop3s))
                .output()
                .unwrap()
        };
        assert_eq!(
            pop3s(&bob).status.code(),
            Some(67),
            "login refused: [IN-USE]"
        );
        write!(p, "QUIT\r\n").unwrap();
        assert!(read().starts_with("+OK"));
        let out = pop3s(&bob);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "",
            "Bob's empty maildrop"
        );
    }

    // The admin command, run as root, works on her mail as her: the index it rewrites stays
    // hers (her mail process must go on reading it).
    let out = common::columba()
        .args([
            "--config",
            server
                .data_dir
                .path()
                .join("columba.toml")
                .to_str()
                .unwrap(),
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["index", "rebuild", &alice.name, "INBOX"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let index = maildir.join("columba.index");
    assert_eq!(
        std::fs::metadata(&index).unwrap().uid(),
        alice.uid(),
        "{}",
        index.display()
    );

    // A login process that dies is replaced (with its auth process); users' mail processes
    // go on, and the next client logs in as before.
    let needle = format!("internal login --chroot {}", data_dir.display());
    // SAFETY: kill with a pid this test found and a signal number.
    unsafe {
        libc::kill(login[0] as libc::pid_t, libc::SIGKILL);
    }
    let mut replaced = Vec::new();
    for _ in 0..100 {
        replaced = processes(&needle);
        if replaced.len() == 1 && replaced[0] != login[0] {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        replaced.len() == 1 && replaced[0] != login[0],
        "{replaced:?}"
    );
    server.wait_for_log("restarting the login and auth processes");
    let mut again = None;
    for _ in 0..100 {
        if let Some(mut c) = RawClient::try_connect(server.imap) {
            let reply = c.command(
                "r1",
                &format!("LOGIN {} \"{}\"", alice.name, alice.password),
            );
            again = reply.last().cloned();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        again.as_deref().is_some_and(|r| r.starts_with("r1 OK")),
        "{again:?}"
    );
    assert_eq!(
        mail_process(&alice.name),
        worker,
        "her mail process went on"
    );

    // The login and disconnect lines still come in Dovecot's shape.
    server.wait_for_log(&format!(
        "imap-login: Login: user=<{}>, method=PLAIN",
        alice.name
    ));
    server.wait_for_log(&format!("pop3-login: Login: user=<{}>", bob.name));
    drop((c, c2, p, b));
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn single_process_gives_up_root_after_binding() {
    use std::os::unix::fs::MetadataExt as _;
    if !root() {
        return;
    }
    // Virtual users, one process, `[server] user = "nobody"`: the data directory is the
    // nobody user's (the key may stay root's: it is read before root is given up).
    let dir = tempfile::tempdir().unwrap();
    common::add_user(dir.path(), common::USER, common::PASSWORD);
    let config = dir.path().join("columba.toml");
    std::fs::write(&config, "[server]\nuser = \"nobody\"\n").unwrap();
    admin(
        &[
            "chown",
            "-R",
            "nobody:nogroup",
            dir.path().to_str().unwrap(),
        ],
        None,
    );
    let mut server = Server::start_in(dir, &["--config", config.to_str().unwrap()]);
    server.wait_for_log("running as nobody");
    let fields = status_fields(server.pid());
    let nobody = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    let nobody = String::from_utf8_lossy(&nobody.stdout).trim().to_owned();
    assert!(
        fields["Uid"].split_whitespace().all(|u| u == nobody),
        "{fields:?}"
    );
    assert_eq!(fields["Groups"], "", "{fields:?}");
    assert_eq!(fields["NoNewPrivs"], "1", "{fields:?}");
    let (mut c, reply) = login(&server, common::USER, common::PASSWORD);
    assert!(reply.starts_with("a1 OK"), "{reply}");
    append(&mut c, "Subject: as nobody\r\n\r\nx\r\n");
    let files = messages(&server.maildir(common::USER));
    assert_eq!(files.len(), 1);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().uid().to_string(),
        nobody
    );
}

#[test]
fn external_with_a_client_certificate_through_the_separated_processes() {
    if !root() || !common::have("python3") {
        return;
    }
    // The login process verifies the certificate; the auth process starts EXTERNAL for the
    // user it names; her own mail process serves her.
    let erin = SystemUser::create("g");
    let certs = tempfile::tempdir().unwrap();
    common::client_certificates(certs.path(), &erin.name);
    let server = server_with(&format!(
        "[tls]\nclient_ca = \"{}\"\n[auth]\npassdb = \"shadow\"\nuserdb = \"passwd\"\n\
         mechanisms = [\"PLAIN\", \"LOGIN\", \"EXTERNAL\"]\n",
        certs.path().join("ca.pem").display()
    ));
    for mode in ["implicit", "starttls"] {
        assert_eq!(
            common::imaplib_external(&server, certs.path(), mode),
            "EXTERNAL offered: True\nauthenticate: OK\nselect: OK\n",
            "{mode}"
        );
    }
    let worker = mail_process(&erin.name);
    let fields = status_fields(worker);
    let uid = erin.uid().to_string();
    assert!(
        fields["Uid"].split_whitespace().all(|u| u == uid),
        "{fields:?}"
    );
}

#[test]
fn lmtp_in_the_separated_model_writes_as_each_recipient() {
    use std::os::unix::fs::MetadataExt as _;
    if !root() {
        return;
    }
    let alice = SystemUser::create("l");
    let bob = SystemUser::create("m");
    // rcpt_check_quota: each RCPT's quota is looked at by a child that became the user too.
    let mut server = server_with(
        "[auth]\npassdb = \"shadow\"\nuserdb = \"passwd\"\n\
         [lmtp]\nlisten = [\"127.0.0.1:0\"]\nrcpt_check_quota = true\n",
    );
    let mut lmtp = common::LmtpClient::connect(server.lmtp_addr());
    // The lmtp process is root (it starts deliveries as any user); no delivery runs in it.
    let replies = lmtp.transaction(
        &[&format!("{}@example.com", alice.name), &bob.name],
        "Subject: to two system users\r\n\r\nhello",
    );
    assert_eq!(replies.len(), 2, "{replies:?}");
    for reply in &replies {
        assert!(reply.starts_with("250 2.0.0 <"), "{replies:?}");
    }
    assert!(lmtp.command("RSET")[0].starts_with("250"));
    assert!(lmtp.command("MAIL FROM:<>")[0].starts_with("250"));
    let unknown = lmtp.command("RCPT TO:<colt-nobody-at-all@example.com>");
    assert!(unknown[0].starts_with("550 5.1.1 "), "{unknown:?}");
    for user in [&alice, &bob] {
        let files = messages(&user.home().join("Maildir"));
        assert_eq!(files.len(), 1, "{}: {files:?}", user.name);
        let meta = std::fs::metadata(&files[0]).unwrap();
        assert_eq!(meta.uid(), user.uid(), "{}", files[0].display());
        assert_eq!(meta.gid(), gid_of(&user.name));
        assert_eq!(meta.mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.starts_with("Return-Path: <s@example.org>\n"), "{text}");
        assert!(text.ends_with("\n\nhello\n"), "{text:?}");
    }
    // The user reads it over IMAP, through their mail process.
    let (mut c, reply) = login(&server, &alice.name, &alice.password);
    assert!(reply.starts_with("a1 OK"), "{reply}");
    let select = c.command("a2", "SELECT INBOX");
    assert!(select.contains(&"* 1 EXISTS".to_owned()), "{select:?}");
}
