//! Durability under `kill -9`: several clients APPEND, STORE and EXPUNGE while the server is
//! killed with SIGKILL at random moments and restarted, round after round. After each restart
//! every acknowledged APPEND is present exactly once under its UID (unless its EXPUNGE may have
//! happened), acknowledged EXPUNGEs stay done, UIDs only grow and are never handed out twice,
//! and UIDVALIDITY never changes.
//!
//! `COLUMBA_CRASH_ROUNDS` sets the number of rounds (default 50, as CI runs it).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{PASSWORD, RawClient, Server, USER};

/// What the clients were told, across all rounds.
#[derive(Default)]
struct Ledger {
    /// UID -> message id of every APPEND that got its OK [APPENDUID].
    acked: BTreeMap<u32, String>,
    /// UIDs whose expunge was asked for but not confirmed: they may or may not be there.
    maybe_gone: BTreeSet<u32>,
    /// UIDs whose EXPUNGE was confirmed.
    gone: BTreeSet<u32>,
    uid_validity: Option<u32>,
}

/// A small deterministic generator, so a failing round can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn login(addr: SocketAddr) -> Option<RawClient> {
    let mut c = RawClient::try_connect(addr)?;
    let lines = c.command("l", &format!("LOGIN {USER} {PASSWORD}"));
    lines.last()?.starts_with("l OK").then_some(c)
}

/// `[APPENDUID v uid]` out of a tagged OK.
fn append_uid(line: &str) -> Option<(u32, u32)> {
    let rest = line.split("[APPENDUID ").nth(1)?;
    let mut words = rest.split([' ', ']']);
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

/// One client's work until the connection dies: appends, flag changes and expunges of its own
/// messages, all recorded in the ledger as they are acknowledged.
fn client(addr: SocketAddr, id: usize, round: usize, ledger: Arc<Mutex<Ledger>>, seed: u64) {
    let mut rng = Rng(seed | 1);
    let Some(mut c) = login(addr) else { return };
    let selected = c.command("s", "SELECT INBOX");
    if !selected.last().is_some_and(|l| l.starts_with("s OK")) {
        return;
    }
    let mut mine: Vec<u32> = Vec::new();
    for n in 0.. {
        let tag = format!("c{n}");
        match rng.next() % 10 {
            0..=5 => {
                let msgid = format!("<r{round}-c{id}-{n}@crash.test>");
                let body = format!(
                    "Message-ID: {msgid}\r\nSubject: round {round} client {id} #{n}\r\n\r\n{}\r\n",
                    "line of text\r\n".repeat((rng.next() % 50) as usize)
                );
                c.send(format!("{tag} APPEND INBOX {{{}+}}\r\n", body.len()).as_bytes());
                c.send(body.as_bytes());
                c.send(b"\r\n");
                let lines = c.until_tagged(&tag);
                let Some(last) = lines.last() else { return };
                if !last.starts_with(&format!("{tag} OK")) {
                    return;
                }
                let Some((uv, uid)) = append_uid(last) else {
                    return;
                };
                let mut l = ledger.lock().unwrap();
                assert_eq!(*l.uid_validity.get_or_insert(uv), uv, "UIDVALIDITY changed");
                assert!(
                    l.acked.insert(uid, msgid).is_none(),
                    "UID {uid} acknowledged twice"
                );
                mine.push(uid);
            }
            6..=7 if !mine.is_empty() => {
                let uid = mine[(rng.next() % mine.len() as u64) as usize];
                let lines = c.command(&tag, &format!("UID STORE {uid} +FLAGS (\\Flagged)"));
                if !lines
                    .last()
                    .is_some_and(|l| l.starts_with(&format!("{tag} OK")))
                {
                    return;
                }
            }
            8 if !mine.is_empty() => {
                let uid = mine.swap_remove((rng.next() % mine.len() as u64) as usize);
                ledger.lock().unwrap().maybe_gone.insert(uid);
                let lines = c.command(&tag, &format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"));
                if !lines
                    .last()
                    .is_some_and(|l| l.starts_with(&format!("{tag} OK")))
                {
                    return;
                }
                let lines = c.command(&format!("{tag}x"), &format!("UID EXPUNGE {uid}"));
                if !lines
                    .last()
                    .is_some_and(|l| l.starts_with(&format!("{tag}x OK")))
                {
                    return;
                }
                let mut l = ledger.lock().unwrap();
                l.maybe_gone.remove(&uid);
                l.gone.insert(uid);
            }
            _ => {
                let lines = c.command(&tag, "NOOP");
                if !lines
                    .last()
                    .is_some_and(|l| l.starts_with(&format!("{tag} OK")))
                {
                    return;
                }
            }
        }
    }
}

/// Checks the mailbox against the ledger; returns the highest UID seen.
fn verify(addr: SocketAddr, ledger: &mut Ledger, round: usize) {
    let mut c = login(addr).expect("login after restart");
    let lines = c.command("v1", "SELECT INBOX");
    assert!(lines.last().unwrap().starts_with("v1 OK"), "{lines:?}");
    let uv: u32 = lines
        .iter()
        .find_map(|l| l.split("[UIDVALIDITY ").nth(1))
        .and_then(|r| r.split(']').next())
        .and_then(|v| v.parse().ok())
        .expect("UIDVALIDITY in SELECT");
    assert_eq!(
        *ledger.uid_validity.get_or_insert(uv),
        uv,
        "round {round}: UIDVALIDITY changed"
    );
    let uid_next: u32 = lines
        .iter()
        .find_map(|l| l.split("[UIDNEXT ").nth(1))
        .and_then(|r| r.split(']').next())
        .and_then(|v| v.parse().ok())
        .expect("UIDNEXT in SELECT");
    let lines = c.command(
        "v2",
        "UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
    );
    assert!(lines.last().unwrap().starts_with("v2 OK"), "{lines:?}");
    let mut present: BTreeMap<u32, String> = BTreeMap::new();
    let mut last_uid = 0;
    let mut pending_uid = None;
    for line in &lines {
        if let Some(rest) = line.split("(UID ").nth(1) {
            let uid: u32 = rest.split(' ').next().unwrap().parse().unwrap();
            assert!(uid > last_uid, "round {round}: UIDs not increasing");
            last_uid = uid;
            pending_uid = Some(uid);
        } else if let Some(id) = line.strip_prefix("Message-ID: ") {
            let uid = pending_uid.take().expect("Message-ID after its FETCH line");
            present.insert(uid, id.to_owned());
        }
    }
    for (uid, msgid) in &ledger.acked {
        if ledger.gone.contains(uid) {
            assert!(
                !present.contains_key(uid),
                "round {round}: expunged UID {uid} came back"
            );
        } else if !ledger.maybe_gone.contains(uid) {
            assert_eq!(
                present.get(uid),
                Some(msgid),
                "round {round}: acknowledged UID {uid} lost or changed"
            );
        }
    }
    let mut ids = BTreeSet::new();
    for (uid, id) in &present {
        assert!(
            ids.insert(id.clone()),
            "round {round}: {id} present twice (UID {uid})"
        );
        assert!(
            uid_next > *uid,
            "round {round}: UIDNEXT {uid_next} not above UID {uid}"
        );
    }
    // A UID the clients were given must never be given again: UIDNEXT stays above them all.
    if let Some((max, _)) = ledger.acked.iter().next_back() {
        assert!(
            uid_next > *max,
            "round {round}: UIDNEXT {uid_next} would reuse UID {max}"
        );
    }
    // Messages whose fate was unknown are settled now.
    let settled: Vec<u32> = ledger.maybe_gone.iter().copied().collect();
    for uid in settled {
        if !present.contains_key(&uid) {
            ledger.maybe_gone.remove(&uid);
            ledger.gone.insert(uid);
        }
    }
    c.command("v3", "LOGOUT");
}

#[test]
fn kill_9_at_random_moments_loses_nothing_acknowledged() {
    let rounds: usize = std::env::var("COLUMBA_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(50);
    let mut rng = Rng(0x05ee_dc01_u64);
    let mut server = Server::start();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let started = Instant::now();
    for round in 0..rounds {
        let addr = server.imap;
        let clients: Vec<_> = (0..3)
            .map(|id| {
                let ledger = ledger.clone();
                let seed = rng.next();
                std::thread::spawn(move || client(addr, id, round, ledger, seed))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(30 + rng.next() % 250));
        let data_dir = server.into_data_dir();
        for c in clients {
            c.join().expect("client thread");
        }
        server = Server::start_in(data_dir, &[]);
        let mut l = ledger.lock().unwrap();
        verify(server.imap, &mut l, round);
        // The index log survives kill -9 whole (a record cut short is cut off, not a reason to
        // rescan): the restarted server replays it.
        let fallbacks: Vec<&String> = server
            .log()
            .iter()
            .filter(|l| l.contains("index log unusable"))
            .collect();
        assert!(fallbacks.is_empty(), "round {round}: {fallbacks:?}");
    }
    let l = ledger.lock().unwrap();
    eprintln!(
        "{rounds} rounds in {:.1} s: {} appends acknowledged, {} expunged",
        started.elapsed().as_secs_f64(),
        l.acked.len(),
        l.gone.len()
    );
    assert!(
        l.acked.len() > rounds,
        "the clients got too little done to prove anything"
    );
}
