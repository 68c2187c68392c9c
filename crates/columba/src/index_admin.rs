//! `columba index dump|check|rebuild USER MAILBOX`: what an operator needs to look at and repair
//! one mailbox's index files (`columba.index`, `columba.index.log`, `columba.index.cache`,
//! `columba.index.modseq`) — in the Maildir mailbox's directory, or in an mbox's control
//! directory (`<root>/.imap/<name>/`). They are caches of the mail files and `dovecot-uidlist`
//! (of the mbox file and its `X-UID`/`Status` headers): rebuilding loses no mail, no UID and no
//! flag, and mod-sequences keep growing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use mail_index::{MailboxIndex, MessageCache};
use mail_store::maildir::{self, CACHE_FILE, INDEX_FILE, LOG_FILE, MODSEQ_FILE, MaildirStore};
use mail_store::mbox::{self, MboxStore};
use mail_store::{MailStore, Mailbox};
use mail_types::MailboxName;

use crate::IndexAction;
use crate::backend::location::{self, Resolved};
use crate::config::Config;

pub fn run(config: &Config, action: IndexAction) -> anyhow::Result<()> {
    match action {
        IndexAction::Dump {
            user,
            mailbox,
            records,
        } => dump(config, &user, &mailbox, records),
        IndexAction::Check { user, mailbox } => check(config, &user, &mailbox),
        IndexAction::Rebuild { user, mailbox } => rebuild(config, &user, &mailbox),
    }
}

/// One mailbox of a user, found without opening it (which would bring its index up to date).
struct Located {
    store: Store,
    name: MailboxName,
    /// Where the index files are: the Maildir mailbox's directory, the mbox's control
    /// directory.
    dir: PathBuf,
}

enum Store {
    Maildir(MaildirStore),
    /// With the mbox file itself.
    Mbox(MboxStore, PathBuf),
}

impl Located {
    fn open(&self) -> anyhow::Result<Arc<dyn Mailbox>> {
        let opened = match &self.store {
            Store::Maildir(s) => s.open(&self.name),
            Store::Mbox(s, _) => s.open(&self.name),
        };
        opened.with_context(|| format!("opening {}", self.name))
    }

    /// Lets the mailbox go, so that it saves its index, as the server does when it closes it.
    fn close(&self, mb: Arc<dyn Mailbox>) {
        drop(mb);
        match &self.store {
            Store::Maildir(_) => maildir::release_idle_mailboxes(&self.dir),
            Store::Mbox(_, file) => mbox::release_idle_mailboxes(file),
        }
    }

    /// How many times opening it read the mail from disk: directory listings (Maildir, for the
    /// whole process) or scans of the file (mbox, for this opening).
    fn open_counting_reads(&self) -> anyhow::Result<(Arc<dyn Mailbox>, u64, &'static str)> {
        match &self.store {
            Store::Maildir(_) => {
                let before = maildir::directory_scans();
                let mb = self.open()?;
                Ok((
                    mb,
                    maildir::directory_scans() - before,
                    "directory listings",
                ))
            }
            Store::Mbox(s, _) => {
                let mb = s
                    .open_mbox(&self.name)
                    .with_context(|| format!("opening {}", self.name))?;
                let scans = mb.scans();
                Ok((mb, scans, "readings of the mbox file"))
            }
        }
    }
}

/// The user's mailbox from the configured userdb and mail location (Maildir or mbox).
fn locate(config: &Config, user: &str, mailbox: &str) -> anyhow::Result<Located> {
    let record = crate::backend::user_record(config, user)?;
    let resolved = location::resolve(
        &crate::backend::configured_location(config, &record),
        &record,
    )?;
    let name = MailboxName::new(mailbox).map_err(|e| anyhow::anyhow!("{mailbox:?}: {e}"))?;
    if let Resolved::Mbox {
        root,
        inbox,
        settings,
    } = resolved
    {
        // Run as root on a user's mail, the files this writes would be root's, and the user's
        // own mail process could no longer read them: become the mail's owner first.
        crate::privsep::become_owner_of(&root)?;
        let store = MboxStore::new(root.clone(), inbox, settings)
            .with_context(|| format!("opening {}", root.display()))?;
        let file = store
            .mailbox_path(&name)
            .with_context(|| format!("mailbox {mailbox}"))?;
        if !file.is_file() {
            anyhow::bail!("mailbox {mailbox} does not exist ({})", file.display());
        }
        let dir = store.control_dir(&name)?;
        return Ok(Located {
            store: Store::Mbox(store, file),
            name,
            dir,
        });
    }
    let root = crate::backend::user_mail_root(config, user)?;
    crate::privsep::become_owner_of(&root)?;
    let store =
        MaildirStore::new(root.clone()).with_context(|| format!("opening {}", root.display()))?;
    let path = store
        .mailbox_path(&name)
        .with_context(|| format!("mailbox {mailbox}"))?;
    if !path.join("cur").is_dir() {
        anyhow::bail!("mailbox {mailbox} does not exist ({})", path.display());
    }
    Ok(Located {
        store: Store::Maildir(store),
        name,
        dir: path,
    })
}

fn dump(config: &Config, user: &str, mailbox: &str, records: bool) -> anyhow::Result<()> {
    let at = locate(config, user, mailbox)?;
    at.close(at.open()?);
    let path = &at.dir;
    let is_mbox = matches!(at.store, Store::Mbox(..));
    println!("mailbox {mailbox} in {}", path.display());
    let index_path = path.join(INDEX_FILE);
    let loaded = MailboxIndex::read_file(&index_path)
        .with_context(|| format!("reading {}", index_path.display()))?
        .with_context(|| format!("{} is missing", index_path.display()))?;
    let ix = &loaded.index;
    let h = ix.header();
    println!(
        "{INDEX_FILE}: {} bytes, UIDVALIDITY {}, UIDNEXT {}, HIGHESTMODSEQ {}, {} messages, {} unclaimed \\Recent",
        file_len(&index_path),
        h.uid_validity,
        h.uid_next,
        h.highest_modseq,
        ix.len(),
        ix.unclaimed_recent_count()
    );
    let keywords: Vec<String> = ix.keywords().iter().map(|k| k.to_string()).collect();
    println!("keywords: {}", keywords.join(" "));
    let (cache, _) = MessageCache::open(&path.join(CACHE_FILE), h.uid_validity);
    let (live, garbage) = cache.sizes();
    println!(
        "{CACHE_FILE}: {} bytes, {} values, {live} bytes live, {garbage} bytes garbage",
        file_len(&path.join(CACHE_FILE)),
        cache.len()
    );
    match std::fs::read_to_string(path.join(MODSEQ_FILE)) {
        Ok(c) => println!("{MODSEQ_FILE}: ceiling {}", c.trim()),
        Err(_) => println!("{MODSEQ_FILE}: none"),
    }
    match mail_index::IndexLog::open(&path.join(LOG_FILE)) {
        Ok(log) => println!(
            "{LOG_FILE}: {} bytes, generation {}, UIDVALIDITY {}",
            file_len(&path.join(LOG_FILE)),
            log.generation(),
            log.uid_validity()
        ),
        Err(e) => println!("{LOG_FILE}: unusable ({e})"),
    }
    if records {
        println!(
            "uid\tmodseq\tsize\tinternaldate\tflags\t{}",
            if is_mbox { "offset" } else { "file" }
        );
        for r in ix.records() {
            let flags: Vec<String> = r.flags().iter().map(|f| f.to_string()).collect();
            let backend = match r.backend().get(..8).filter(|_| is_mbox) {
                // An mbox record starts with the offset of its `From ` line.
                Some(b) => u64::from_le_bytes(b.try_into().unwrap_or([0; 8])).to_string(),
                None if is_mbox => "-".to_owned(),
                None => String::from_utf8_lossy(r.backend()).into_owned(),
            };
            println!(
                "{}\t{}\t{}\t{}\t({})\t{}",
                r.uid(),
                r.modseq(),
                r.size().map_or("-".to_owned(), |s| s.to_string()),
                r.internal_date().map_or("-".to_owned(), |d| d.to_string()),
                flags.join(" "),
                // The reference is the directory letter, the file name and, after a NUL, the
                // dovecot-uidlist fields.
                backend.replace('\0', " ")
            );
        }
    }
    Ok(())
}

/// Validates every index file as it is on disk, then reads the mailbox as the server would
/// (which repairs what it can) and compares the saved index with what the mail files say now.
/// Fails (exit status 1) when a file was damaged.
fn check(config: &Config, user: &str, mailbox: &str) -> anyhow::Result<()> {
    // The files are read before the mailbox is opened: opening repairs them.
    let at = locate(config, user, mailbox)?;
    let path = &at.dir;
    let mut damaged = Vec::new();
    let index_path = path.join(INDEX_FILE);
    let saved = match MailboxIndex::read_file(&index_path) {
        Ok(Some(l)) => match l.index.check_references() {
            Ok(()) => {
                println!("{INDEX_FILE}: valid, {} messages", l.index.len());
                Some(l.index)
            }
            Err(e) => {
                println!("{INDEX_FILE}: DAMAGED: {e}");
                damaged.push(INDEX_FILE);
                None
            }
        },
        Ok(None) => {
            println!("{INDEX_FILE}: missing (the next open indexes the files)");
            None
        }
        Err(e) => {
            println!("{INDEX_FILE}: DAMAGED: {e}");
            damaged.push(INDEX_FILE);
            None
        }
    };
    // The log: header, then every record's checksum and body (a torn tail is normal after a
    // crash and cut by the next writer; damage in the middle is not).
    let log_path = path.join(LOG_FILE);
    match std::fs::read(&log_path) {
        Ok(bytes) => match mail_index::verify_file_bytes(&bytes) {
            Ok(summary) => {
                print!(
                    "{LOG_FILE}: valid, generation {}, {} transactions",
                    summary.generation, summary.transactions
                );
                match summary.torn {
                    Some((offset, what)) => {
                        println!(", torn tail at offset {offset} ({what}), cut by the next writer")
                    }
                    None => println!(),
                }
                if saved
                    .as_ref()
                    .is_some_and(|s| s.uid_validity() != summary.uid_validity)
                {
                    println!(
                        "{LOG_FILE}: DAMAGED: for UIDVALIDITY {}, the index is for another",
                        summary.uid_validity
                    );
                    damaged.push(LOG_FILE);
                }
            }
            Err(e) => {
                println!("{LOG_FILE}: DAMAGED: {e}");
                damaged.push(LOG_FILE);
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("{LOG_FILE}: missing (started by the next change)")
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", log_path.display())),
    }
    // The cache repairs itself when opened; look at a copy so that checking changes nothing.
    let scratch = tempfile_dir()?;
    let copy = scratch.join(CACHE_FILE);
    let cache_copied = std::fs::copy(path.join(CACHE_FILE), &copy).is_ok();
    // Reading the mailbox may rewrite the files checked above, not the copies.
    let mb = at.open()?;
    let current = mb.snapshot(false).context("reading the mailbox")?;
    let uid_validity = mb.uid_validity();
    drop(mb);
    match cache_copied {
        true => {
            let (cache, repairs) = MessageCache::open(&copy, uid_validity);
            if repairs.is_empty() {
                println!("{CACHE_FILE}: valid, {} values", cache.len());
            } else {
                for r in &repairs {
                    println!("{CACHE_FILE}: DAMAGED: {}", r.what);
                }
                damaged.push(CACHE_FILE);
            }
        }
        false => println!("{CACHE_FILE}: missing (filled as clients ask)"),
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if let Some(saved) = saved {
        let on_disk: Vec<(u32, String)> = current
            .messages
            .iter()
            .map(|m| (m.uid.get(), format!("{:?}", m.flags)))
            .collect();
        let in_index: Vec<(u32, String)> = saved
            .records()
            .map(|r| (r.uid().get(), format!("{:?}", r.flags())))
            .collect();
        if saved.uid_validity() != uid_validity {
            println!(
                "{INDEX_FILE}: for UIDVALIDITY {}, the mailbox has {uid_validity}",
                saved.uid_validity()
            );
        } else if on_disk == in_index {
            println!("{INDEX_FILE}: matches the mail files");
        } else {
            let only_saved = in_index
                .iter()
                .filter(|(u, _)| !on_disk.iter().any(|(d, _)| d == u))
                .count();
            let only_disk = on_disk
                .iter()
                .filter(|(u, _)| !in_index.iter().any(|(d, _)| d == u))
                .count();
            println!(
                "{INDEX_FILE}: behind the mail files ({only_saved} expunged, {only_disk} new, others changed); the next open catches up"
            );
        }
    }
    if damaged.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "damaged: {} (run `columba index rebuild`)",
            damaged.join(", ")
        )
    }
}

/// Throws the index and cache away and indexes the mailbox again from its files and
/// `dovecot-uidlist` (from the mbox file). The mod-sequence ceiling is kept, so mod-sequences
/// keep growing; the log starts a new generation.
fn rebuild(config: &Config, user: &str, mailbox: &str) -> anyhow::Result<()> {
    let at = locate(config, user, mailbox)?;
    let path = &at.dir;
    // Opening a saved index replays its log and saves it, so that the mod-sequences handed out
    // reach the ceiling file the rebuilt index starts above. Without a saved index that open
    // would index the whole mailbox only for the result to be thrown away (the rebuild below
    // does what it would).
    if path.join(INDEX_FILE).exists() {
        at.close(at.open()?);
    }
    for file in [INDEX_FILE, CACHE_FILE] {
        match std::fs::remove_file(path.join(file)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {file}")),
        }
    }
    println!("indexing {} ...", path.display());
    let started = Instant::now();
    let (mb, reads, what) = at.open_counting_reads()?;
    let status = mb.status().context("reading the mailbox")?;
    at.close(mb);
    println!(
        "indexed {} messages in {:.2} s ({reads} {what}); UIDVALIDITY {}, UIDNEXT {}",
        status.messages,
        started.elapsed().as_secs_f64(),
        status.uid_validity,
        status.uid_next
    );
    Ok(())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("columba-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
