//! Columba and a real Dovecot 2.3 read each other's Maildirs.
//!
//! (a) Dovecot writes (APPEND with flags and keywords, CREATE, SUBSCRIBE, EXPUNGE), then
//!     Columba's `MaildirStore` opens the same tree and must see the same UIDVALIDITY, UIDs,
//!     flags, keywords, folder names, subscriptions, dates, sizes and bodies.
//! (b) Columba writes a tree, then Dovecot serves it and must report the same values through
//!     FETCH, LIST, LSUB and STATUS; Dovecot then changes it and Columba picks that up.
//!
//! Dovecot runs with its own configuration in a temporary directory (`dovecot -F -c FILE`) on
//! 127.0.0.1 with the `listescape` plugin and `/` as separator, the layout Columba uses. It
//! refuses to deliver mail as root, so when the test runs as root the tree belongs to uid 65534.
//! Without a `dovecot` binary the test prints "skipping: dovecot not installed" and passes.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mail_store::maildir::MaildirStore;
use mail_store::{FlagChange, MailStore, Mailbox};
use mail_types::{Flag, Flags, Keyword, MailboxName, SystemFlags, Uid, utf7};

const USER: &str = "test";
const PASSWORD: &str = "secret";
/// Owner of the mail when the test runs as root (`nobody` on Debian).
const MAIL_ID: u32 = 65534;

fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A throwaway Dovecot; stopped when dropped.
struct Dovecot {
    child: Child,
    port: u16,
    dir: PathBuf,
    config: PathBuf,
}

/// The directory layout both servers share: `<dir>/mail/test/Maildir`.
struct Sandbox {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::Builder::new()
            .prefix("columba-interop-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_owned();
        // Dovecot's unprivileged processes must reach the config, the users file and the mail.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir_all(dir.join("mail").join(USER)).unwrap();
        Sandbox { _tmp: tmp, dir }
    }

    fn home(&self) -> PathBuf {
        self.dir.join("mail").join(USER)
    }

    fn maildir(&self) -> PathBuf {
        self.home().join("Maildir")
    }

    /// Hands the mail tree to the mail user (root may not own mail in Dovecot's eyes).
    fn give_mail_to_user(&self) {
        if running_as_root() {
            chown_tree(&self.dir.join("mail"), MAIL_ID);
        }
    }
}

fn chown_tree(path: &Path, id: u32) {
    std::os::unix::fs::lchown(path, Some(id), Some(id)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for entry in fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), id);
        }
    }
}

impl Dovecot {
    /// `None` (after printing why) when Dovecot is not installed.
    fn start(sandbox: &Sandbox) -> Option<Dovecot> {
        let Some(binary) = find_binary("dovecot") else {
            eprintln!("skipping: dovecot not installed");
            return None;
        };
        sandbox.give_mail_to_user();
        let dir = &sandbox.dir;
        let root = running_as_root();
        let (uid, gid) = if root {
            (MAIL_ID, MAIL_ID)
        } else {
            let m = fs::metadata(dir).unwrap();
            (m.uid(), m.gid())
        };
        let users = dir.join("users");
        fs::write(
            &users,
            format!(
                "{USER}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{}::\n",
                sandbox.home().display()
            ),
        )
        .unwrap();
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.join("dovecot.conf");
            fs::write(&config, config_text(dir, &users, port, root)).unwrap();
            let child = Command::new(&binary)
                .arg("-F")
                .arg("-c")
                .arg(&config)
                .env("TZ", "UTC")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn dovecot");
            let mut d = Dovecot {
                child,
                port,
                dir: dir.clone(),
                config,
            };
            match d.wait_ready() {
                Ok(()) => return Some(d),
                Err(e) => last_error = e,
            }
        }
        panic!("dovecot is installed but did not start: {last_error}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("dovecot exited with {status}: {}", self.log()));
            }
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut line = String::new();
                if BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("* OK") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no greeting: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }

    fn connect(&self) -> Client {
        let mut c = Client::connect(self.port);
        c.ok(&format!("LOGIN {USER} {PASSWORD}"));
        c
    }

    /// Log lines that show Dovecot disliked what it found.
    fn complaints(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| {
                l.contains("Error:")
                    || l.contains("Panic:")
                    || l.contains("Fatal:")
                    || l.contains("Broken")
                    || l.contains("Warning:")
            })
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let stopped = find_binary("doveadm").is_some_and(|doveadm| {
            Command::new(doveadm)
                .arg("-c")
                .arg(&self.config)
                .arg("stop")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        while stopped && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_text(dir: &Path, users: &Path, port: u16, root: bool) -> String {
    let d = dir.display();
    let users = users.display();
    let mut c = format!(
        "base_dir = {d}/run
state_dir = {d}/state
listen = 127.0.0.1
protocols = imap
disable_plaintext_auth = no
ssl = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
mail_plugins = listescape
log_path = {d}/dovecot.log
namespace inbox {{
  inbox = yes
  separator = /
}}
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
}}
"
    );
    if !root {
        // Everything runs as us: no chroot, and no sockets handed to Dovecot's own groups.
        let user = std::env::var("USER").unwrap_or_else(|_| "nobody".to_owned());
        c.push_str(&format!(
            "default_internal_user = {user}\ndefault_login_user = {user}\n\
             service imap-login {{\n  chroot =\n}}\nservice anvil {{\n  chroot =\n}}\n"
        ));
        for (service, listener) in [
            ("stats", "stats-writer"),
            ("imap-hibernate", "imap-hibernate"),
            ("dict", "dict"),
            ("dict-async", "dict-async"),
        ] {
            c.push_str(&format!(
                "service {service} {{\n  unix_listener {listener} {{\n    group =\n  }}\n}}\n"
            ));
        }
    }
    c
}

/// A tiny blocking IMAP client: one command at a time, literals in responses read whole.
struct Client {
    stream: BufReader<TcpStream>,
    tag: u32,
}

impl Client {
    fn connect(port: u16) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut c = Client {
            stream: BufReader::new(s),
            tag: 0,
        };
        let greeting = c.read_response();
        assert!(greeting.starts_with(b"* OK"));
        c
    }

    /// One response line including any literals it announces.
    fn read_response(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            self.stream.read_until(b'\n', &mut line).unwrap();
            assert!(!line.is_empty(), "connection closed");
            let literal = literal_size(&line);
            out.extend_from_slice(&line);
            match literal {
                Some(n) => {
                    let mut buf = vec![0; n];
                    self.stream.read_exact(&mut buf).unwrap();
                    out.extend_from_slice(&buf);
                }
                None => return out,
            }
        }
    }

    /// Sends a command (with optional literal parts after it) and returns the untagged lines;
    /// panics unless the tagged reply is OK.
    fn ok_parts(&mut self, text: &str, literals: &[(&str, &[u8])]) -> Vec<Vec<u8>> {
        self.tag += 1;
        let tag = format!("T{}", self.tag);
        let mut line = format!("{tag} {text}").into_bytes();
        for (before, lit) in literals {
            line.extend_from_slice(before.as_bytes());
            line.extend_from_slice(format!("{{{}}}\r\n", lit.len()).as_bytes());
            self.stream.get_mut().write_all(&line).unwrap();
            let cont = self.read_response();
            assert!(cont.starts_with(b"+"), "{}", String::from_utf8_lossy(&cont));
            line = lit.to_vec();
        }
        line.extend_from_slice(b"\r\n");
        self.stream.get_mut().write_all(&line).unwrap();
        let mut untagged = Vec::new();
        loop {
            let resp = self.read_response();
            if resp.starts_with(tag.as_bytes()) {
                let text = String::from_utf8_lossy(&resp);
                assert!(
                    text[tag.len()..].trim_start().starts_with("OK"),
                    "{tag} {}: {text}",
                    line_of(&line)
                );
                return untagged;
            }
            untagged.push(resp);
        }
    }

    fn ok(&mut self, text: &str) -> Vec<Vec<u8>> {
        self.ok_parts(text, &[])
    }

    fn append(&mut self, mailbox: &str, flags: &str, date: Option<&str>, msg: &[u8]) -> u32 {
        let date = date.map(|d| format!(" \"{d}\"")).unwrap_or_default();
        self.tag += 1;
        let tag = format!("T{}", self.tag);
        let head = format!(
            "{tag} APPEND {} ({flags}){date} {{{}}}\r\n",
            quote(mailbox),
            msg.len()
        );
        self.stream.get_mut().write_all(head.as_bytes()).unwrap();
        let cont = self.read_response();
        assert!(cont.starts_with(b"+"), "{}", String::from_utf8_lossy(&cont));
        self.stream.get_mut().write_all(msg).unwrap();
        self.stream.get_mut().write_all(b"\r\n").unwrap();
        loop {
            let resp = self.read_response();
            if resp.starts_with(tag.as_bytes()) {
                let text = String::from_utf8_lossy(&resp).into_owned();
                assert!(text.contains(" OK "), "{text}");
                // [APPENDUID <validity> <uid>]
                let after = text.split("APPENDUID ").nth(1).unwrap();
                return after.split([' ', ']']).nth(1).unwrap().parse().unwrap();
            }
        }
    }
}

fn line_of(line: &[u8]) -> String {
    String::from_utf8_lossy(line.split(|&b| b == b'\r').next().unwrap_or(&[])).into_owned()
}

fn literal_size(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?;
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&line[open + 1..]).ok()?.parse().ok()
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One message as a FETCH response shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fetched {
    uid: u32,
    flags: Vec<String>,
    internal_date: String,
    size: u64,
    body: Vec<u8>,
}

fn parse_fetch(resp: &[u8]) -> Fetched {
    let text = String::from_utf8_lossy(resp);
    let after = |key: &str| -> &str {
        text.split(key)
            .nth(1)
            .unwrap_or_else(|| panic!("{key} in {text}"))
    };
    let number = |s: &str| -> u64 {
        s.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap()
    };
    let mut flags: Vec<String> = after("FLAGS (")
        .split(')')
        .next()
        .unwrap()
        .split(' ')
        .filter(|f| !f.is_empty() && *f != "\\Recent")
        .map(str::to_owned)
        .collect();
    flags.sort();
    let body_start = resp
        .windows(8)
        .position(|w| w == b"BODY[] {")
        .expect("BODY[]");
    let size_text = &resp[body_start + 8..];
    let close = size_text.iter().position(|&b| b == b'}').unwrap();
    let len: usize = std::str::from_utf8(&size_text[..close])
        .unwrap()
        .parse()
        .unwrap();
    let body = size_text[close + 3..close + 3 + len].to_vec();
    Fetched {
        uid: number(after("UID ")) as u32,
        flags,
        internal_date: after("INTERNALDATE \"")
            .split('"')
            .next()
            .unwrap()
            .to_owned(),
        size: number(after("RFC822.SIZE ")),
        body,
    }
}

/// The FETCH view of a Columba message, in the same shape.
fn columba_fetched(mb: &dyn Mailbox, uid: Uid, flags: &Flags) -> Fetched {
    let info = mb.message_info(uid).unwrap();
    let mut names: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    names.sort();
    Fetched {
        uid: uid.get(),
        flags: names,
        internal_date: imap_date(info.internal_date),
        size: info.size,
        body: mb.read_message(uid).unwrap(),
    }
}

/// RFC 3501 `date-time` in UTC (Dovecot runs with TZ=UTC here).
fn imap_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{d:02}-{}-{y} {:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The mailbox name at the end of a LIST/LSUB line, decoded from modified UTF-7.
fn listed_name(resp: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(resp).trim_end().to_owned();
    let attrs = text
        .split('(')
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_owned();
    // `* LIST (...) "/" name`
    let rest = text.split_once(") \"/\" ").unwrap().1;
    let raw = if let Some(q) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = q.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                '"' => break,
                _ => out.push(c),
            }
        }
        out
    } else {
        rest.to_owned()
    };
    (utf7::decode(raw.as_bytes()).unwrap(), attrs)
}

fn list_names(c: &mut Client, command: &str) -> BTreeMap<String, bool> {
    c.ok(command)
        .iter()
        .map(|l| {
            let (name, attrs) = listed_name(l);
            (name, !attrs.to_ascii_lowercase().contains("\\noselect"))
        })
        .collect()
}

fn uidvalidity_of(untagged: &[Vec<u8>]) -> u32 {
    for l in untagged {
        let t = String::from_utf8_lossy(l);
        if let Some(rest) = t.split("UIDVALIDITY ").nth(1) {
            return rest
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap();
        }
    }
    panic!("no UIDVALIDITY")
}

fn n(s: &str) -> MailboxName {
    MailboxName::new(s).unwrap()
}

fn kw(s: &str) -> Keyword {
    Keyword::new(s).unwrap()
}

const MSG1: &[u8] = b"From: a@example.org\r\nSubject: first\r\n\r\nHello\r\nWorld\r\n";
const MSG2: &[u8] = b"Subject: second\r\n\r\nto be expunged\r\n";
const MSG3: &[u8] = b"Subject: third\r\nX-Long: 0123456789\r\n\r\nflagged\r\n";
const MSG4: &[u8] = b"Subject: deep\r\n\r\nin a/b/c\r\n";

#[test]
fn columba_reads_what_dovecot_wrote() {
    let sandbox = Sandbox::new();
    let Some(dovecot) = Dovecot::start(&sandbox) else {
        return;
    };
    let mut c = dovecot.connect();
    let date = "14-Sep-2020 10:20:30 +0000";
    c.append("INBOX", "\\Seen $Forwarded Junk", Some(date), MSG1);
    c.append("INBOX", "", None, MSG2);
    c.append("INBOX", "\\Flagged \\Answered Later", None, MSG3);
    for name in ["Entw&APw-rfe", "a/b/c", "dot.ted", "back\\slash"] {
        c.ok(&format!("CREATE {}", quote(name)));
    }
    for name in ["Entw&APw-rfe", "a/b/c", "dot.ted", "INBOX"] {
        c.ok(&format!("SUBSCRIBE {}", quote(name)));
    }
    c.append("a/b/c", "\\Draft", Some(date), MSG4);
    let selected = c.ok("SELECT INBOX");
    let inbox_validity = uidvalidity_of(&selected);
    c.ok("STORE 2 +FLAGS (\\Deleted)");
    c.ok("EXPUNGE");
    let fetched: Vec<Fetched> = c
        .ok("FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        .iter()
        .map(|l| parse_fetch(l))
        .collect();
    let abc_validity = uidvalidity_of(&c.ok("STATUS \"a/b/c\" (UIDVALIDITY)"));
    let listed = list_names(&mut c, "LIST \"\" \"*\"");
    let subscribed = list_names(&mut c, "LSUB \"\" \"*\"");
    c.ok("LOGOUT");
    assert_eq!(fetched.len(), 2);

    // Columba opens the same tree while Dovecot still runs.
    let store = MaildirStore::new(sandbox.maildir()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    assert_eq!(inbox.uid_validity().get(), inbox_validity);
    let snap = inbox.snapshot(false).unwrap();
    let ours: Vec<Fetched> = snap
        .messages
        .iter()
        .map(|m| columba_fetched(inbox.as_ref(), m.uid, &m.flags))
        .collect();
    assert_eq!(ours, fetched);
    assert!(snap.messages[0].flags.has_keyword(&kw("$Forwarded")));
    assert_eq!(ours[0].internal_date, date);

    let abc = store.open(&n("a/b/c")).unwrap();
    assert_eq!(abc.uid_validity().get(), abc_validity);
    let snap = abc.snapshot(false).unwrap();
    assert_eq!(snap.messages.len(), 1);
    assert_eq!(snap.messages[0].uid.get(), 1);
    assert_eq!(snap.messages[0].flags, Flags::new(SystemFlags::DRAFT, []));
    assert_eq!(abc.read_message(snap.messages[0].uid).unwrap(), MSG4);

    let ours: BTreeMap<String, bool> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|e| (e.name.to_string(), e.selectable))
        .collect();
    assert_eq!(ours, listed);
    let ours: BTreeMap<String, bool> = store
        .subscriptions()
        .unwrap()
        .into_iter()
        .map(|name| (name.to_string(), true))
        .collect();
    assert_eq!(ours, subscribed);
    let complaints = dovecot.complaints();
    assert!(complaints.is_empty(), "{complaints:#?}");
}

#[test]
fn dovecot_serves_what_columba_wrote() {
    let sandbox = Sandbox::new();
    if find_binary("dovecot").is_none() {
        eprintln!("skipping: dovecot not installed");
        return;
    }
    let store = MaildirStore::new(sandbox.maildir()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let date = 1_600_000_000;
    let append = |mb: &dyn Mailbox, msg: &[u8], f: Flags, date: Option<i64>| -> Uid {
        let mut w = mb.begin_append().unwrap();
        // In two chunks, split inside a CRLF.
        let cut = msg.iter().position(|&b| b == b'\r').unwrap() + 1;
        w.write(&msg[..cut]).unwrap();
        w.write(&msg[cut..]).unwrap();
        w.commit(f, date).unwrap()
    };
    let u1 = append(
        inbox.as_ref(),
        MSG1,
        Flags::new(SystemFlags::SEEN, [kw("$Forwarded"), kw("Junk")]),
        Some(date),
    );
    let u2 = append(inbox.as_ref(), MSG2, Flags::default(), Some(date + 60));
    let u3 = append(
        inbox.as_ref(),
        MSG3,
        Flags::new(
            SystemFlags::FLAGGED.union(SystemFlags::ANSWERED),
            [kw("Later")],
        ),
        Some(date + 120),
    );
    inbox
        .store_flags(
            &[u2],
            &FlagChange::Add(Flags::new(SystemFlags::DELETED, [])),
        )
        .unwrap();
    assert_eq!(inbox.expunge(None).unwrap(), vec![u2]);
    // A session claims \Recent: u4 moves from new/ to cur/ (with the empty `:2,` info), as a
    // Dovecot session would move it. u5 comes later and stays in new/.
    let u4 = append(inbox.as_ref(), MSG4, Flags::default(), Some(date + 180));
    let view = mail_store::MailboxView::open(inbox.clone(), false).unwrap();
    assert_eq!(view.recent_count(), 3);
    let u5 = append(inbox.as_ref(), MSG2, Flags::default(), Some(date + 240));
    assert!(fs::read_dir(sandbox.maildir().join("new")).unwrap().count() == 1);
    for name in ["Entw\u{fc}rfe", "a/b/c", "dot.ted", "back\\slash", "x/~t"] {
        store.create(&n(name)).unwrap();
    }
    let abc = store.open(&n("a/b/c")).unwrap();
    let d1 = append(
        abc.as_ref(),
        MSG4,
        Flags::new(SystemFlags::DRAFT, []),
        Some(date),
    );
    // Copy by hard link, keeping flags and date.
    let copied = inbox.copy_to(&[u1], abc.as_ref()).unwrap();
    for name in ["Entw\u{fc}rfe", "a/b/c", "dot.ted", "INBOX", "x/~t"] {
        store.set_subscribed(&n(name), true).unwrap();
    }
    let expected_inbox: Vec<Fetched> = inbox
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| columba_fetched(inbox.as_ref(), m.uid, &m.flags))
        .collect();
    let expected_abc: Vec<Fetched> = abc
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| columba_fetched(abc.as_ref(), m.uid, &m.flags))
        .collect();
    assert_eq!(
        expected_inbox.iter().map(|f| f.uid).collect::<Vec<_>>(),
        [u1.get(), u3.get(), u4.get(), u5.get()]
    );
    assert_eq!(copied, vec![(u1, Uid::new(d1.get() + 1).unwrap())]);

    let Some(dovecot) = Dovecot::start(&sandbox) else {
        return;
    };
    let mut c = dovecot.connect();
    let selected = c.ok("SELECT INBOX");
    assert_eq!(uidvalidity_of(&selected), inbox.uid_validity().get());
    let fetched: Vec<Fetched> = c
        .ok("FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        .iter()
        .map(|l| parse_fetch(l))
        .collect();
    assert_eq!(fetched, expected_inbox);
    let status =
        String::from_utf8_lossy(&c.ok("STATUS \"a/b/c\" (UIDVALIDITY UIDNEXT MESSAGES)")[0])
            .into_owned();
    let item = |key: &str| -> u32 {
        status
            .split(&format!("{key} "))
            .nth(1)
            .and_then(|r| r.split([' ', ')']).next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {status}"))
    };
    assert_eq!(item("UIDVALIDITY"), abc.uid_validity().get());
    assert_eq!((item("UIDNEXT"), item("MESSAGES")), (3, 2));
    c.ok("EXAMINE \"a/b/c\"");
    let fetched: Vec<Fetched> = c
        .ok("FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
        .iter()
        .map(|l| parse_fetch(l))
        .collect();
    assert_eq!(fetched, expected_abc);

    let listed = list_names(&mut c, "LIST \"\" \"*\"");
    let ours: BTreeMap<String, bool> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|e| (e.name.to_string(), e.selectable))
        .collect();
    assert_eq!(listed, ours);
    let subscribed = list_names(&mut c, "LSUB \"\" \"*\"");
    let ours: BTreeMap<String, bool> = store
        .subscriptions()
        .unwrap()
        .into_iter()
        .map(|name| (name.to_string(), true))
        .collect();
    assert_eq!(subscribed, ours);

    // Dovecot changes the tree; Columba (still holding the mailbox) picks it up.
    c.ok("SELECT INBOX");
    c.ok(&format!(
        "UID STORE {} +FLAGS (\\Deleted NewFromDovecot)",
        u3
    ));
    let dove_uid = c.append("INBOX", "\\Seen", None, MSG2);
    assert_eq!(dove_uid, u5.get() + 1);
    c.ok("LOGOUT");
    let cursor = inbox.snapshot(false).unwrap().cursor;
    // Dovecot's changes may fall in the same mtime tick as our last scan; wait out the slack.
    std::thread::sleep(Duration::from_millis(1100));
    inbox.refresh().unwrap();
    let changes = inbox.changes_since(cursor, false).unwrap();
    assert_eq!(changes.appended.len(), 1);
    assert_eq!(changes.appended[0].uid.get(), dove_uid);
    assert!(changes.appended[0].flags.contains(&Flag::Seen));
    let changed = changes
        .flags
        .iter()
        .find(|m| m.uid == u3)
        .expect("u3 changed");
    assert!(changed.flags.contains(&Flag::Deleted));
    assert!(changed.flags.has_keyword(&kw("NewFromDovecot")));
    assert_eq!(
        inbox.read_message(Uid::new(dove_uid).unwrap()).unwrap(),
        MSG2
    );

    let complaints = dovecot.complaints();
    assert!(complaints.is_empty(), "{complaints:#?}");
}

#[test]
fn dates_format_like_imap() {
    assert_eq!(imap_date(1_600_000_000), "13-Sep-2020 12:26:40 +0000");
    assert_eq!(imap_date(0), "01-Jan-1970 00:00:00 +0000");
}

const CHILD_ENV: &str = "COLUMBA_INTEROP_CHILD";

/// The Columba side of the concurrent test: runs in a child process as the mail user (files it
/// creates must stay usable by Dovecot), appends and prints each UID.
fn columba_appender(maildir: &str) {
    let store = MaildirStore::new(maildir.into()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    for i in 0..30 {
        let mut w = inbox.begin_append().unwrap();
        w.write(format!("Subject: columba {i}\r\n\r\nbody\r\n").as_bytes())
            .unwrap();
        let flags = if i % 2 == 0 {
            Flags::default()
        } else {
            Flags::new(SystemFlags::SEEN, [kw("FromColumba")])
        };
        let uid = w.commit(flags, None).unwrap();
        println!("UID {} {i}", uid.get());
        if i % 5 == 0 {
            inbox.refresh().unwrap();
        }
    }
}

#[test]
fn columba_and_dovecot_append_at_the_same_time() {
    if let Ok(maildir) = std::env::var(CHILD_ENV) {
        columba_appender(&maildir);
        return;
    }
    let sandbox = Sandbox::new();
    let Some(dovecot) = Dovecot::start(&sandbox) else {
        return;
    };
    let mut c = dovecot.connect();
    c.ok("SELECT INBOX");

    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "columba_and_dovecot_append_at_the_same_time",
        "--nocapture",
    ])
    .env(CHILD_ENV, sandbox.maildir())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    if running_as_root() {
        use std::os::unix::process::CommandExt;
        cmd.uid(MAIL_ID).gid(MAIL_ID);
    }
    let child = cmd.spawn().unwrap();

    let mut dovecot_uids = BTreeMap::new();
    for i in 0..30 {
        let msg = format!("Subject: dovecot {i}\r\n\r\nbody\r\n");
        let uid = c.append(
            "INBOX",
            if i % 3 == 0 { "\\Flagged" } else { "" },
            None,
            msg.as_bytes(),
        );
        dovecot_uids.insert(uid, format!("dovecot {i}"));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut columba_uids = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if let Some(rest) = line.strip_prefix("UID ") {
            let (uid, i) = rest.split_once(' ').unwrap();
            columba_uids.insert(uid.parse::<u32>().unwrap(), format!("columba {i}"));
        }
    }
    assert_eq!(columba_uids.len(), 30);
    let mut all = dovecot_uids.clone();
    all.extend(columba_uids.clone());
    assert_eq!(all.len(), 60, "a UID was handed out twice");

    // Dovecot sees every message under the UID its writer was told.
    c.ok("NOOP");
    let fetched = c.ok("UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    let mut seen = BTreeMap::new();
    for l in &fetched {
        let text = String::from_utf8_lossy(l);
        // EXISTS/RECENT for the messages the other writer added come along too.
        if !text.contains("BODY[HEADER.FIELDS") {
            continue;
        }
        let uid: u32 = text
            .split("UID ")
            .nth(1)
            .unwrap()
            .split([' ', ')'])
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let subject = text
            .split("Subject: ")
            .nth(1)
            .unwrap()
            .split('\r')
            .next()
            .unwrap()
            .to_owned();
        seen.insert(uid, subject);
        if columba_uids
            .get(&uid)
            .is_some_and(|s| s.ends_with(['1', '3', '5', '7', '9']))
        {
            assert!(
                text.contains("FromColumba") && text.contains("\\Seen"),
                "{text}"
            );
        }
    }
    assert_eq!(seen, all);
    c.ok("LOGOUT");

    // And so does Columba.
    let store = MaildirStore::new(sandbox.maildir()).unwrap();
    let inbox = store.open(&MailboxName::inbox()).unwrap();
    let ours: BTreeMap<u32, String> = inbox
        .snapshot(false)
        .unwrap()
        .messages
        .iter()
        .map(|m| {
            let text = String::from_utf8(inbox.read_message(m.uid).unwrap()).unwrap();
            let subject = text["Subject: ".len()..]
                .split('\r')
                .next()
                .unwrap()
                .to_owned();
            (m.uid.get(), subject)
        })
        .collect();
    assert_eq!(ours, all);
    let complaints = dovecot.complaints();
    assert!(complaints.is_empty(), "{complaints:#?}");
}
