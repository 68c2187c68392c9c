//! `columba migrate --from LOCATION --to LOCATION`: copies a user's mail into another format
//! (mbox ⇄ Maildir), keeping UIDVALIDITY, UIDNEXT, UIDs, flags, keywords, INTERNALDATE, POP3
//! UIDLs, subscriptions and (Maildir to Maildir) special-use attributes, with the bodies as
//! clients see them.
//!
//! The source is read through `mail_store::migrate`'s readers, which write nothing; the
//! destination is written through `MailStore::import`. A mailbox is created, resumed (a killed
//! run left it partial), skipped (an earlier run completed it: same UIDVALIDITY and UIDs) or
//! refused (it holds other messages: nothing is ever merged). Each mailbox written is read back
//! before it counts as migrated: UIDVALIDITY, UIDNEXT, and every message's UID, flags,
//! INTERNALDATE, UIDL and size are compared with the source's.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use auth::UserRecord;
use mail_store::migrate::{ImportPlan, MailboxMeta, MaildirSource, MboxSource, SourceStore};
use mail_store::{MailStore, StoreErrorKind};
use mail_types::{MailboxName, UidValidity};

use crate::backend::location::{self, Resolved};
use crate::config::Config;

/// The command line of `columba migrate`.
#[derive(Debug, Clone)]
pub struct Args {
    pub from: Option<String>,
    pub to: String,
    pub user: Option<String>,
    pub dry_run: bool,
    pub mailboxes: Vec<String>,
}

/// What happens to one mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Create,
    /// An interrupted run committed this many of the source's messages, under this
    /// UIDVALIDITY (the source's, or the one it chose for a source that has none).
    Resume(usize, UidValidity),
    /// An earlier run completed it.
    Done,
    Refuse(String),
}

/// One source mailbox as it was when the plan was made, and what to do with it. The mailbox
/// is opened again for the copy: an mbox stays locked only while it is copied.
struct Planned {
    meta: MailboxMeta,
    action: Action,
    special_use: Vec<String>,
}

pub fn run(config: &Config, args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let user = match &args.user {
        Some(name) => crate::backend::user_record(config, name)?,
        None => invoking_user(),
    };
    let from = match (&args.from, &args.user) {
        (Some(from), _) => from.clone(),
        (None, Some(_)) => crate::backend::configured_location(config, &user),
        (None, None) => anyhow::bail!("--from is needed unless --user names whose mail to move"),
    };
    let source_at = location::resolve(&from, &user).context("--from")?;
    let dest_at = location::resolve(&args.to, &user).context("--to")?;
    if same_place(&source_at, &dest_at) {
        anyhow::bail!("--from and --to name the same mail");
    }
    // Run as root on a user's mail, the files written would be root's, and the user's own
    // mail process could no longer change them: become the owner of the source first.
    let owned = [source_at.root().to_owned(), mbox_inbox(&source_at)];
    if let Some(path) = owned.iter().find(|p| p.exists()) {
        crate::privsep::become_owner_of(path)?;
    }

    let source = reader(&source_at)?.with_context(|| {
        format!(
            "--from {from}: no mail there ({})",
            source_at.root().display()
        )
    })?;
    let dest = reader(&dest_at)?;
    let mut problems: Vec<String> = Vec::new();
    let listing = source.list().context("listing the source's mailboxes")?;
    for skipped in &listing.skipped {
        problems.push(format!("not migrated: {skipped}"));
    }
    let wanted: Vec<MailboxName> = args
        .mailboxes
        .iter()
        .map(|m| MailboxName::new(m).map_err(|e| anyhow::anyhow!("--mailbox {m:?}: {e}")))
        .collect::<anyhow::Result<_>>()?;
    for name in &wanted {
        if !listing
            .mailboxes
            .iter()
            .any(|e| e.name == *name && e.selectable)
        {
            anyhow::bail!("--mailbox {name}: no such mailbox in the source");
        }
    }
    let dest_is_mbox = matches!(dest_at, Resolved::Mbox { .. });

    let mut planned: Vec<Planned> = Vec::new();
    for entry in listing.mailboxes.iter().filter(|e| e.selectable) {
        if !wanted.is_empty() && !wanted.contains(&entry.name) {
            continue;
        }
        let opened = match source.open(&entry.name) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("mailbox {}: {e}", entry.name));
                continue;
            }
        };
        let mut special_use = source.special_use(&entry.name);
        if dest_is_mbox && !special_use.is_empty() {
            eprintln!(
                "note: {}: mbox keeps no special-use attributes; {} is not carried over",
                entry.name,
                special_use.join(" ")
            );
            special_use.clear();
        }
        let meta = opened.meta().clone();
        drop(opened);
        let action = match &dest {
            Some(d) => decide(&meta, d.as_ref())?,
            None => Action::Create,
        };
        if let Action::Refuse(why) = &action {
            problems.push(format!("mailbox {}: {why}", entry.name));
        }
        planned.push(Planned {
            meta,
            action,
            special_use,
        });
    }
    // The destination's readers keep mbox files locked; the import takes its own locks.
    drop(dest);

    let subscriptions: Vec<MailboxName> = source
        .subscriptions()
        .context("reading the source's subscriptions")?
        .into_iter()
        .filter(|n| wanted.is_empty() || wanted.contains(n))
        .collect();

    if args.dry_run {
        print_plan(&planned, &subscriptions);
    } else {
        let store = dest_at
            .open()
            .with_context(|| format!("opening --to {}", args.to))?;
        let totals = Totals::of(&planned);
        let mut progress = Progress::new(totals.messages);
        let mut copied = Totals::default();
        for p in &planned {
            match &p.action {
                Action::Refuse(_) => {}
                Action::Done => println!("{}: already migrated", p.meta.name),
                Action::Create | Action::Resume(..) => {
                    let copied_one =
                        copy_mailbox(source.as_ref(), store.as_ref(), &dest_at, p, &mut progress);
                    match copied_one {
                        Ok(done) => {
                            copied.mailboxes += 1;
                            copied.messages += done.messages;
                            copied.bytes += done.bytes;
                        }
                        Err(e) => problems.push(format!("{e:#}")),
                    }
                }
            }
        }
        progress.clear();
        subscribe(store.as_ref(), &subscriptions, &mut problems);
        println!(
            "migrated {} mailboxes, {} messages, {} bytes in {:.1} s",
            copied.mailboxes,
            copied.messages,
            copied.bytes,
            started.elapsed().as_secs_f64()
        );
    }
    if problems.is_empty() {
        return Ok(());
    }
    for p in &problems {
        eprintln!("columba migrate: {p}");
    }
    anyhow::bail!(
        "{} problem(s); the source was not changed{}",
        problems.len(),
        if args.dry_run {
            ""
        } else {
            ", and running the same command again resumes or skips what was done"
        }
    )
}

/// The user running the command, for locations with `~` or `%u` and no `--user`.
fn invoking_user() -> UserRecord {
    let name = std::env::var("USER").unwrap_or_else(|_| "nobody".to_owned());
    let mut record = UserRecord::named(name);
    record.home = std::env::var_os("HOME").map(PathBuf::from);
    record
}

fn mbox_inbox(at: &Resolved) -> PathBuf {
    match at {
        Resolved::Mbox { inbox, .. } => inbox.clone(),
        Resolved::Maildir(root) => root.clone(),
    }
}

fn same_place(a: &Resolved, b: &Resolved) -> bool {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
    canonical(a.root()) == canonical(b.root())
        || canonical(&mbox_inbox(a)) == canonical(&mbox_inbox(b))
}

/// A reader of the mail at `at`; `None` when there is none.
fn reader(at: &Resolved) -> anyhow::Result<Option<Box<dyn SourceStore>>> {
    Ok(match at {
        Resolved::Maildir(root) => match MaildirSource::new(root.clone()) {
            Ok(r) => Some(Box::new(r)),
            Err(e) if e.kind() == StoreErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        },
        Resolved::Mbox {
            root,
            inbox,
            settings,
        } => (root.exists() || inbox.exists()).then(|| {
            Box::new(MboxSource::new(
                root.clone(),
                inbox.clone(),
                settings.clone(),
            )) as Box<dyn SourceStore>
        }),
    })
}

/// What to do with `source` given what the destination holds under its name.
fn decide(source: &MailboxMeta, dest: &dyn SourceStore) -> anyhow::Result<Action> {
    let there = match dest.open(&source.name) {
        Ok(m) => m,
        Err(e) if e.kind() == StoreErrorKind::NotFound => return Ok(Action::Create),
        Err(e) => {
            return Ok(Action::Refuse(format!(
                "the destination's mailbox cannot be read: {e}"
            )));
        }
    };
    let d = there.meta();
    // A source that has no UIDVALIDITY of its own got a new one from this read; the one an
    // earlier run gave the destination is as good.
    let same_validity = source.uid_validity_chosen || d.uid_validity == source.uid_validity;
    let uids = |m: &MailboxMeta| m.messages.iter().map(|x| x.uid).collect::<Vec<_>>();
    let (have, want) = (uids(d), uids(source));
    if d.partial {
        if !same_validity {
            return Ok(Action::Refuse(format!(
                "an interrupted migration of another mailbox is there (UIDVALIDITY {}, the source has {}); remove it",
                d.uid_validity, source.uid_validity
            )));
        }
        if !want.starts_with(&have) {
            return Ok(Action::Refuse(
                "the messages an interrupted migration left there are not the source's first ones; remove it and start over"
                    .to_owned(),
            ));
        }
        return Ok(Action::Resume(have.len(), d.uid_validity));
    }
    if have.is_empty() && d.numbered_here == 0 {
        return Ok(Action::Create);
    }
    if same_validity && have == want && d.uid_next >= source.uid_next {
        return Ok(Action::Done);
    }
    Ok(Action::Refuse(format!(
        "the destination already holds {} messages (UIDVALIDITY {}, the source has {}); not merging",
        d.messages.len(),
        d.uid_validity,
        source.uid_validity
    )))
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    mailboxes: usize,
    messages: u64,
    bytes: u64,
}

impl Totals {
    /// What the planned copies move.
    fn of(planned: &[Planned]) -> Totals {
        let mut t = Totals::default();
        for p in planned {
            let skip = match p.action {
                Action::Create => 0,
                Action::Resume(n, _) => n,
                Action::Done | Action::Refuse(_) => continue,
            };
            let m = &p.meta;
            t.mailboxes += 1;
            t.messages += m.messages.len().saturating_sub(skip) as u64;
            t.bytes += m.messages.iter().skip(skip).map(|x| x.size).sum::<u64>();
        }
        t
    }
}

fn print_plan(planned: &[Planned], subscriptions: &[MailboxName]) {
    for p in planned {
        let m = &p.meta;
        let what = match &p.action {
            Action::Create => "would create".to_owned(),
            Action::Resume(n, _) => format!("would resume after {n} messages in"),
            Action::Done => "already migrated:".to_owned(),
            Action::Refuse(why) => format!("would refuse ({why}):"),
        };
        let mut notes = Vec::new();
        if m.numbered_here > 0 {
            notes.push(format!(
                "{} messages without a UID get UIDs from UIDNEXT",
                m.numbered_here
            ));
        }
        if m.uid_validity_chosen {
            notes.push("the source has no UIDVALIDITY: a new one is given".to_owned());
        }
        if !p.special_use.is_empty() {
            notes.push(format!("special-use {}", p.special_use.join(" ")));
        }
        println!(
            "{what} {}: {} messages, {} bytes, UIDVALIDITY {}, UIDNEXT {}{}",
            m.name,
            m.messages.len(),
            m.bytes(),
            m.uid_validity,
            m.uid_next,
            if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join("; "))
            }
        );
    }
    for s in subscriptions {
        println!("would subscribe {s}");
    }
    let t = Totals::of(planned);
    println!(
        "dry run: {} mailboxes, {} messages, {} bytes would be copied; nothing was written",
        t.mailboxes, t.messages, t.bytes
    );
}

/// Copies one mailbox and checks what was written; the error names the mailbox and the UID.
fn copy_mailbox(
    source: &dyn SourceStore,
    store: &dyn MailStore,
    dest_at: &Resolved,
    p: &Planned,
    progress: &mut Progress,
) -> anyhow::Result<Totals> {
    let dest_is_mbox = matches!(dest_at, Resolved::Mbox { .. });
    let name = &p.meta.name;
    let opened = source
        .open(name)
        .with_context(|| format!("mailbox {name}: reading the source"))?;
    let m = opened.meta();
    let (skip, uid_validity) = match p.action {
        Action::Resume(n, uid_validity) => (n, uid_validity),
        _ => (0, m.uid_validity),
    };
    let uids = |meta: &MailboxMeta| {
        meta.messages
            .iter()
            .take(skip)
            .map(|x| x.uid)
            .collect::<Vec<_>>()
    };
    if uids(m) != uids(&p.meta) || m.uid_validity != p.meta.uid_validity && !m.uid_validity_chosen {
        anyhow::bail!(
            "mailbox {name}: the source changed while the migration was being planned; run it again"
        );
    }
    let plan = ImportPlan {
        uid_validity,
        uid_next: m.uid_next,
        keywords: m.keywords.clone(),
        special_use: p.special_use.clone(),
        resume: matches!(p.action, Action::Resume(..)),
        modseq_floor: m.modseq_floor,
    };
    let mut import = store
        .import(name, &plan)
        .with_context(|| format!("mailbox {name}: starting the copy"))?;
    let mut done = Totals::default();
    // The size each message must have in the destination; `None` where mbox changes it (a
    // line break added to a message that lacks one, the X-UIDL line where it keeps a UIDL).
    // A Maildir file name may state a wrong size: the bytes read count.
    let mut sizes = Vec::with_capacity(m.messages.len());
    for (i, msg) in m.messages.iter().enumerate() {
        if i < skip {
            sizes.push(Some(msg.size));
            continue;
        }
        let body = opened
            .read(msg.uid)
            .with_context(|| format!("mailbox {name} UID {}: reading the source", msg.uid))?;
        import
            .add(msg, &body)
            .with_context(|| format!("mailbox {name} UID {}: writing", msg.uid))?;
        let exact =
            !dest_is_mbox || (msg.uidl.is_none() && (body.is_empty() || body.ends_with(b"\r\n")));
        sizes.push(exact.then_some(body.len() as u64));
        done.messages += 1;
        done.bytes += body.len() as u64;
        progress.step(name, i + 1, m.messages.len());
    }
    import
        .finish()
        .with_context(|| format!("mailbox {name}: finishing the copy"))?;
    let written =
        reader(dest_at)?.with_context(|| format!("mailbox {name}: the destination vanished"))?;
    verify(written.as_ref(), m, uid_validity, &sizes)?;
    progress.mailbox_done(name, m.messages.len());
    Ok(done)
}

/// Compares what the destination holds now with the source.
fn verify(
    dest: &dyn SourceStore,
    source: &MailboxMeta,
    uid_validity: UidValidity,
    sizes: &[Option<u64>],
) -> anyhow::Result<()> {
    let name = &source.name;
    let there = dest
        .open(name)
        .with_context(|| format!("mailbox {name}: reading back what was written"))?;
    let d = there.meta();
    // An mbox without messages keeps a UIDVALIDITY only when UIDs were handed out (in UW-IMAP's
    // pseudo-message); before that, no client can have remembered anything of it.
    let validity_kept = d.uid_validity == uid_validity
        || (d.uid_validity_chosen && d.messages.is_empty() && source.uid_next.get() == 1);
    if !validity_kept || d.uid_next != source.uid_next {
        anyhow::bail!(
            "mailbox {name}: written with UIDVALIDITY {} UIDNEXT {}, the source has {uid_validity} {}",
            d.uid_validity,
            d.uid_next,
            source.uid_next
        );
    }
    if d.messages.len() != source.messages.len() {
        anyhow::bail!(
            "mailbox {name}: {} messages written, the source has {}",
            d.messages.len(),
            source.messages.len()
        );
    }
    for ((w, s), size) in d.messages.iter().zip(&source.messages).zip(sizes) {
        let differs = if w.uid != s.uid {
            Some("UID")
        } else if w.flags != s.flags {
            Some("flags")
        } else if w.internal_date != s.internal_date {
            Some("INTERNALDATE")
        } else if w.uidl != s.uidl {
            Some("UIDL")
        } else if size.is_some_and(|size| w.size != size) {
            Some("size")
        } else {
            None
        };
        if let Some(what) = differs {
            anyhow::bail!(
                "mailbox {name} UID {}: the {what} written differs from the source's",
                s.uid
            );
        }
    }
    Ok(())
}

fn subscribe(store: &dyn MailStore, names: &[MailboxName], problems: &mut Vec<String>) {
    let have = match store.subscriptions() {
        Ok(h) => h,
        Err(e) => {
            problems.push(format!("reading the destination's subscriptions: {e}"));
            return;
        }
    };
    for name in names.iter().filter(|n| !have.contains(n)) {
        if let Err(e) = store.set_subscribed(name, true) {
            problems.push(format!("subscribing {name}: {e}"));
        }
    }
}

/// Counts on standard error: one line rewritten in place on a terminal, a line every few
/// seconds otherwise (a log file should not get one per message).
struct Progress {
    total: u64,
    done: u64,
    tty: bool,
    last: Instant,
    started: Instant,
}

impl Progress {
    const TTY_EVERY: Duration = Duration::from_millis(200);
    const LOG_EVERY: Duration = Duration::from_secs(5);

    fn new(total: u64) -> Progress {
        let now = Instant::now();
        Progress {
            total,
            done: 0,
            tty: std::io::stderr().is_terminal(),
            last: now,
            started: now,
        }
    }

    fn step(&mut self, mailbox: &MailboxName, at: usize, of: usize) {
        self.done += 1;
        let every = if self.tty {
            Self::TTY_EVERY
        } else {
            Self::LOG_EVERY
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let line = format!(
            "{mailbox}: {at}/{of}, all: {}/{} messages ({:.0} s)",
            self.done,
            self.total,
            self.started.elapsed().as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r\x1b[K{line}")
        } else {
            writeln!(err, "{line}")
        };
    }

    fn mailbox_done(&mut self, mailbox: &MailboxName, messages: usize) {
        self.clear();
        eprintln!(
            "{mailbox}: {messages} messages ({} of {} copied in all)",
            self.done, self.total
        );
    }

    fn clear(&mut self) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
    }
}
