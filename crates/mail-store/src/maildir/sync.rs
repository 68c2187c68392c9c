//! Bringing the index in line with the directory (`maildir-sync.c`, `maildir-uidlist.c`).
//!
//! A refresh first compares the mtimes of `new/` and `cur/` and the stamp of `dovecot-uidlist`
//! with what the last scan saw; only a change leads to a directory scan. A change in `new/` alone
//! (a delivery) scans `new/` only; anything else scans both directories while holding the
//! `dovecot-uidlist` lock, as Dovecot does, so that no Dovecot process renames files under the
//! scan and makes them look expunged.
//!
//! A full scan matches every file to the index by base name: known files keep their UID (their
//! name may have changed: flags), missing ones are expunged, files the uidlist knows get the UID
//! it gives them, and the rest get new UIDs in Dovecot's order (by the time in the file name).
//!
//! Each sync also lets the `tmp/` cleanup run when it is due (see `tmp_cleanup`).

use std::borrow::Cow;
use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::SystemTime;

use mail_index::{NewRecord, Op};
use mail_types::{Flags, Uid};

use super::courier_uidl;
use super::dotlock::DotLock;
use super::filename;
use super::io::{self as mio, FileStamp};
use super::mailbox::MaildirMailbox;
use super::state::{Dir, DirStamp, Exact, Location, State};
use super::uidlist::{self, Parsed, Record as UidRecord, Uidlist};
use super::uidvalidity;
use crate::{Result, StoreError};
use foldhash::{HashMap as FastMap, HashMapExt as _};

/// Mailboxes with at least this many files log the steps of a full scan.
const BIG_MAILBOX: usize = 50_000;

/// Directory listings done by this process, for tests that prove a path reads no directory.
pub static DIRECTORY_SCANS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One file found in `new/` or `cur/`. A full scan borrows the names from its [`Listing`]; other
/// paths own them.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub dir: Dir,
    pub fname: Cow<'a, str>,
    /// Found in `new/`: no session has seen it yet (it stays `\Recent` when it is moved to
    /// `cur/` before being indexed).
    pub recent: bool,
}

impl Entry<'_> {
    fn base(&self) -> &str {
        filename::base(&self.fname)
    }
}

/// The message files of `new/` and `cur/`, their names in one buffer: a million-message
/// mailbox lists a million names, and one allocation instead of one per name (freed again
/// one by one) is a good part of a cold open.
#[derive(Debug, Default)]
pub struct Listing {
    names: String,
    files: Vec<Listed>,
}

/// One file of a [`Listing`]: where its name is in the buffer, and how long its base name is.
#[derive(Debug, Clone, Copy)]
struct Listed {
    dir: Dir,
    start: usize,
    len: usize,
    base_len: usize,
}

impl Listing {
    pub fn len(&self) -> usize {
        self.files.len()
    }

    fn name(&self, f: &Listed) -> &str {
        self.names.get(f.start..f.start + f.len).unwrap_or("")
    }

    fn base(&self, f: &Listed) -> &str {
        self.names.get(f.start..f.start + f.base_len).unwrap_or("")
    }

    fn entry(&self, f: &Listed) -> Entry<'_> {
        Entry {
            dir: f.dir,
            fname: Cow::Borrowed(self.name(f)),
            recent: f.dir == Dir::New,
        }
    }

    /// The files in listing order, each with its base name.
    fn entries(&self) -> impl Iterator<Item = (&str, Entry<'_>)> + '_ {
        self.files.iter().map(|f| (self.base(f), self.entry(f)))
    }

    fn push(&mut self, dir: Dir, name: &str) {
        let start = self.names.len();
        self.names.push_str(name);
        self.files.push(Listed {
            dir,
            start,
            len: name.len(),
            base_len: filename::base(name).len(),
        });
    }
}

/// Lists the message files of one directory. Dot files, subdirectories and names that are not
/// UTF-8 or hold a line break are skipped with a warning (Dovecot ignores them too).
pub fn scan_dir(path: &Path, dir: Dir, out: &mut Vec<Entry<'static>>) -> Result<()> {
    let mut listing = Listing::default();
    list_dir(path, dir, &mut listing)?;
    out.reserve(listing.len());
    out.extend(listing.files.iter().map(|f| Entry {
        dir: f.dir,
        fname: Cow::Owned(listing.name(f).to_owned()),
        recent: f.dir == Dir::New,
    }));
    Ok(())
}

/// `getdents64` reads this much at a time: a million-file `cur/` takes some 70 calls instead of
/// the 2,000 of libc's 32 KiB `readdir` buffer.
const GETDENTS_BUFFER: usize = 1 << 20;

/// [`scan_dir`] into a [`Listing`], with `getdents64(2)` straight into one large buffer (std's
/// `read_dir` allocates two or three strings per entry).
pub fn list_dir(path: &Path, dir: Dir, out: &mut Listing) -> Result<()> {
    DIRECTORY_SCANS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| StoreError::io(path, io::Error::from(io::ErrorKind::InvalidInput)))?;
    // SAFETY: a NUL-terminated path that outlives the call.
    let raw = unsafe {
        libc::open(
            c_path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(StoreError::io(path, io::Error::last_os_error()));
    }
    // SAFETY: `raw` was just opened and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    read_entries(&fd, path, dir, out, GETDENTS_BUFFER)
}

/// Reads the entries of the open directory `fd` with a buffer of `buffer` bytes.
fn read_entries(
    fd: &OwnedFd,
    path: &Path,
    dir: Dir,
    out: &mut Listing,
    buffer: usize,
) -> Result<()> {
    let mut buf = vec![0u8; buffer];
    loop {
        // SAFETY: the buffer is valid for writes of its length for the duration of the call.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(StoreError::io(path, e));
        }
        if n == 0 {
            return Ok(());
        }
        let filled = buf.get(..n as usize).unwrap_or(&buf);
        let mut records = filled;
        // struct linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name[].
        while let Some(&[lo, hi]) = records.get(16..18) {
            let reclen = usize::from(u16::from_ne_bytes([lo, hi]));
            let (Some(record), Some(rest)) = (records.get(..reclen), records.get(reclen..)) else {
                break;
            };
            records = rest;
            let (Some(&d_type), Some(raw_name)) = (record.get(18), record.get(19..)) else {
                // A record too short to hold a name: nothing to list.
                if reclen == 0 {
                    break;
                }
                continue;
            };
            let name = match memchr::memchr(0, raw_name) {
                Some(end) => &raw_name[..end],
                None => raw_name,
            };
            accept(fd, path, dir, name, d_type, out);
        }
    }
}

/// Adds one directory entry to the listing unless it is not a message file.
fn accept(fd: &OwnedFd, path: &Path, dir: Dir, name: &[u8], d_type: u8, out: &mut Listing) {
    let Ok(text) = std::str::from_utf8(name) else {
        let name = OsStr::from_bytes(name);
        tracing::warn!(dir = %path.display(), "ignoring a file whose name is not UTF-8: {name:?}");
        return;
    };
    if text.starts_with('.') || text.is_empty() {
        return;
    }
    if memchr::memchr2(b'\r', b'\n', name).is_some() {
        tracing::warn!(dir = %path.display(), "ignoring a file with a line break in its name: {text:?}");
        return;
    }
    let is_dir = match d_type {
        libc::DT_DIR => true,
        // The file system does not tell the type in the listing: ask it (without following
        // symlinks, as std's `DirEntry::file_type` does).
        libc::DT_UNKNOWN => CString::new(name).is_ok_and(|c| {
            let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
            // SAFETY: a valid directory descriptor, a NUL-terminated name and room for a stat.
            let rc = unsafe {
                libc::fstatat(
                    fd.as_raw_fd(),
                    c.as_ptr(),
                    st.as_mut_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            // SAFETY: fstatat filled the struct when it returned 0.
            rc == 0 && unsafe { st.assume_init() }.st_mode & libc::S_IFMT == libc::S_IFDIR
        }),
        _ => false,
    };
    if is_dir {
        tracing::warn!(dir = %path.display(), "ignoring a stray directory: {text}");
        return;
    }
    out.push(dir, text);
}

/// The mtime of a mailbox directory; a missing one means the mailbox is gone.
pub fn dir_mtime(path: &Path, mailbox: &str) -> Result<SystemTime> {
    match fs::metadata(path) {
        Ok(m) => Ok(mio::mtime(&m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(StoreError::NotFound(mailbox.to_owned()))
        }
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// The RFC822.SIZE a file name or uidlist record tells without reading the file.
pub fn size_hint(fname: &str, ext: &str) -> Option<u64> {
    filename::size_field(fname, b'W')
        .or_else(|| uidlist::ext_value(ext, b'W').and_then(|v| v.parse().ok()))
}

impl MaildirMailbox {
    /// Brings the index up to date with the disk. `force` scans even when nothing seems to have
    /// changed (a file the index names has disappeared). Returns whether clients can see a change.
    pub(super) fn sync(&self, st: &mut State, force: bool) -> Result<bool> {
        self.check_not_deleted()?;
        let now = SystemTime::now();
        self.tmp_cleanup.run_if_due(&self.path, now);
        let name = self.name.as_str();
        let new_mtime = dir_mtime(&self.path.join("new"), name)?;
        let cur_mtime = dir_mtime(&self.path.join("cur"), name)?;
        let uidlist_stamp = mio::stamp(&self.path.join(uidlist::FILE_NAME))?;
        // References of the index file that did not decode are repaired by a full sync.
        let damaged = match st.index.reference_damage() {
            Some(what) if !st.references_repaired => {
                tracing::warn!(file = %self.path.join(super::persist::INDEX_FILE).display(), "index file's file names unreadable, rescanning the mail files: {what}");
                true
            }
            _ => false,
        };
        let need_new = force || damaged || !st.initialized || st.new_dir.needs_scan(new_mtime, now);
        let need_cur = force || damaged || !st.initialized || st.cur_dir.needs_scan(cur_mtime, now);
        let uidlist_changed = uidlist_stamp != st.uidlist.stamp;
        if need_cur {
            let lock = DotLock::acquire(&self.uidlist_path(), &uidlist::LOCK)?;
            let visible = self.full_sync(st, &lock)?;
            // That sync read every reference, so it met every block that does not decode.
            st.references_repaired |= damaged;
            return Ok(visible);
        }
        let mut changed = false;
        if need_new {
            changed = self.sync_new(st, now)?;
        }
        // The scan of new/ may not have needed the uidlist; a new UIDVALIDITY or a damaged file
        // must still be noticed.
        if uidlist_changed && st.uidlist.stamp != mio::stamp(&self.uidlist_path())? {
            changed |= self.check_uidlist(st)?;
        }
        Ok(changed)
    }

    /// Whether [`Self::sync`] would scan anything: the directories or `dovecot-uidlist` moved
    /// since the state last matched them. Runs the `tmp/` cleanup when due, as a sync would.
    pub(super) fn needs_sync(&self, st: &State) -> Result<bool> {
        let now = SystemTime::now();
        self.tmp_cleanup.run_if_due(&self.path, now);
        if !st.initialized || (!st.references_repaired && st.index.reference_damage().is_some()) {
            return Ok(true);
        }
        let name = self.name.as_str();
        let new_mtime = dir_mtime(&self.path.join("new"), name)?;
        let cur_mtime = dir_mtime(&self.path.join("cur"), name)?;
        Ok(st.new_dir.needs_scan(new_mtime, now)
            || st.cur_dir.needs_scan(cur_mtime, now)
            || mio::stamp(&self.uidlist_path())? != st.uidlist.stamp)
    }

    pub(super) fn uidlist_path(&self) -> std::path::PathBuf {
        self.path.join(uidlist::FILE_NAME)
    }

    /// Only `dovecot-uidlist` changed: a new UIDVALIDITY or a damaged file needs a full sync,
    /// anything else (records for files the next scan will find, compaction) only a new stamp.
    fn check_uidlist(&self, st: &mut State) -> Result<bool> {
        match uidlist::read(&self.path)? {
            Some((parsed, stamp))
                if parsed.header_ok
                    && parsed.list.uid_validity == st.index.uid_validity().get() =>
            {
                // Someone else wrote it: what it holds beyond our index is unknown now.
                st.uidlist.stamp = Some(stamp);
                st.uidlist.exact = None;
                Ok(false)
            }
            _ => {
                let lock = DotLock::acquire(&self.uidlist_path(), &uidlist::LOCK)?;
                self.full_sync(st, &lock)
            }
        }
    }

    /// A scan of `new/` alone, for deliveries. Anything unusual (a known file left `new/`, the
    /// uidlist names files we have not seen) falls back to a full sync.
    fn sync_new(&self, st: &mut State, started: SystemTime) -> Result<bool> {
        let new_path = self.path.join("new");
        let new_mtime = dir_mtime(&new_path, self.name.as_str())?;
        let mut entries = Vec::new();
        scan_dir(&new_path, Dir::New, &mut entries)?;
        let listed: HashSet<&str> = entries.iter().map(Entry::base).collect();
        let mut known_new: HashSet<&str> = HashSet::new();
        let mut lost = false;
        for r in st.index.records() {
            if let Some(loc) = Location::decode(r.backend())
                && loc.dir == Dir::New
            {
                // Moved to cur/ or removed by someone else: needs the full picture.
                lost |= !listed.contains(loc.base());
                known_new.insert(loc.base());
            }
        }
        let unknown: Vec<Entry<'_>> = entries
            .iter()
            .filter(|e| !known_new.contains(e.base()))
            .cloned()
            .collect();
        drop(known_new);
        if lost {
            let lock = DotLock::acquire(&self.uidlist_path(), &uidlist::LOCK)?;
            return self.full_sync(st, &lock);
        }
        if unknown.is_empty() {
            st.new_dir = DirStamp::scanned(new_mtime, started);
            return Ok(false);
        }

        let lock = DotLock::acquire(&self.uidlist_path(), &uidlist::LOCK)?;
        let Some((parsed, read_stamp)) = uidlist::read(&self.path)? else {
            return self.full_sync(st, &lock);
        };
        if !parsed.header_ok || parsed.list.uid_validity != st.index.uid_validity().get() {
            return self.full_sync(st, &lock);
        }
        let uid_next = st.index.header().uid_next.get();
        let unknown_bases: HashSet<&str> = unknown.iter().map(Entry::base).collect();
        // Records above our UIDNEXT for files we did not find in new/ are messages another
        // process saw (and maybe moved to cur/): only a full scan places them correctly.
        if parsed
            .list
            .records
            .iter()
            .any(|r| r.uid >= uid_next && !unknown_bases.contains(r.base.as_str()))
        {
            return self.full_sync(st, &lock);
        }
        let by_base: HashMap<&str, &UidRecord> = parsed
            .list
            .records
            .iter()
            .map(|r| (r.base.as_str(), r))
            .collect();
        // A delivery may carry a keyword letter defined since we last looked.
        st.keywords.refresh(&self.path)?;
        let mut with_uid = Vec::new();
        let mut fresh = Vec::new();
        for e in unknown {
            match by_base.get(e.base()) {
                Some(r) if r.uid >= uid_next => with_uid.push((r.uid, r.ext.clone(), e)),
                _ => fresh.push(e),
            }
        }
        drop(by_base);
        let damaged = parsed.needs_rewrite;
        let mut list = parsed.list;
        let first_new = list.next_uid;
        let changed = self.add_files(st, &mut list, with_uid, fresh, &HashMap::new())?;
        self.record_scan(st, &list, Some(read_stamp), damaged, first_new)?;
        drop(lock);
        st.new_dir = DirStamp::scanned(new_mtime, started);
        Ok(changed.visible)
    }

    /// Scans `new/` and `cur/` and reconciles them with the index and the uidlist. The caller
    /// holds the uidlist lock.
    pub(super) fn full_sync(&self, st: &mut State, _lock: &DotLock) -> Result<bool> {
        let started = SystemTime::now();
        let name = self.name.as_str();
        let new_path = self.path.join("new");
        let cur_path = self.path.join("cur");
        let new_mtime = dir_mtime(&new_path, name)?;
        let cur_mtime = dir_mtime(&cur_path, name)?;
        let mut visible = false;

        let (parsed, read_stamp) = match uidlist::read(&self.path)? {
            Some((parsed, stamp)) => (Some(parsed), Some(stamp)),
            None => (None, None),
        };
        let had_uidlist = parsed.is_some();
        let mut rewrite = match &parsed {
            None => true,
            Some(parsed) => parsed.needs_rewrite || !parsed.header_ok,
        };
        // No uidlist yet: a tree Courier-IMAP served keeps its UIDs (the file is written below).
        let courier = match &parsed {
            None => uidlist::read_courier(&self.path)?,
            Some(_) => None,
        };
        // ...and the UIDLs Courier's POP3 server gave, kept in the records' `P` fields.
        let pop3_uidls = match &parsed {
            None => courier_uidl::read(&self.path)?,
            Some(_) => HashMap::new(),
        };
        let mut list = self.adopt_uidlist(st, parsed.or(courier), &mut visible);
        if !pop3_uidls.is_empty() {
            for r in &mut list.records {
                if let Some(uidl) = pop3_uidls.get(&r.base) {
                    r.ext = with_pop3_uidl(&r.ext, uidl);
                }
            }
        }
        st.keywords.refresh(&self.path)?;

        let mut listing = Listing::default();
        list_dir(&new_path, Dir::New, &mut listing)?;
        list_dir(&cur_path, Dir::Cur, &mut listing)?;
        let big = listing.len() >= BIG_MAILBOX;
        if big {
            // An operator watching `columba index rebuild` or a slow first SELECT sees the steps.
            tracing::info!(
                mailbox = %self.path.display(),
                "indexing: {} files listed, {} UIDs in dovecot-uidlist",
                listing.len(),
                list.records.len()
            );
        }
        // Second files with a base name already seen get a fresh name (below); their names
        // live here, declared before the map that borrows them.
        let mut moved: Vec<Entry<'static>> = Vec::new();
        let mut on_disk: FastMap<&str, Entry<'_>> = FastMap::with_capacity(listing.len());
        let mut duplicates = Vec::new();
        for (base, e) in listing.entries() {
            match on_disk.entry(base) {
                MapEntry::Vacant(slot) => {
                    slot.insert(e);
                }
                MapEntry::Occupied(first) => duplicates.push((first.get().clone(), e)),
            }
        }
        for (first, second) in &duplicates {
            moved.extend(self.fix_duplicate(first, second));
        }
        drop(duplicates);
        for m in &moved {
            on_disk.insert(
                m.base(),
                Entry {
                    dir: m.dir,
                    fname: Cow::Borrowed(&m.fname),
                    recent: m.recent,
                },
            );
        }
        if !had_uidlist || !st.initialized {
            // A folder Courier-IMAP served: its keywords go into the file names first.
            self.import_courier_keywords(st, &mut on_disk);
        }

        // Known messages: same file, renamed (flags), moved out of new/, or gone.
        let mut expunged: Vec<Uid> = Vec::new();
        let mut renamed: Vec<(Uid, Vec<u8>, Option<Flags>, bool)> = Vec::new();
        let uidlist_sorted = list.records.windows(2).all(|w| w[0].uid < w[1].uid);
        for r in st.index.records() {
            let Some(loc) = Location::decode(r.backend()) else {
                // An unreadable reference (an index file whose checksums were right but whose
                // coding was not, see `mail_index::file_names`): the uidlist names the file
                // of the UID, which keeps it and its flags.
                let listed = match uidlist_sorted {
                    true => list
                        .records
                        .binary_search_by_key(&r.uid().get(), |l| l.uid)
                        .ok()
                        .map(|i| &list.records[i]),
                    false => list.records.iter().find(|l| l.uid == r.uid().get()),
                };
                match listed.and_then(|l| Some((l, on_disk.remove(l.base.as_str())?))) {
                    Some((l, e)) => {
                        let (system, letters) = filename::flags(&e.fname);
                        let flags = st.keywords.flags(system, letters);
                        renamed.push((
                            r.uid(),
                            super::state::encode(e.dir, &e.fname, &l.ext),
                            (flags != r.flags()).then_some(flags),
                            false,
                        ));
                    }
                    None => expunged.push(r.uid()),
                }
                continue;
            };
            match on_disk.remove(loc.base()) {
                None => expunged.push(r.uid()),
                Some(e) => {
                    if e.dir == loc.dir && e.fname == loc.fname {
                        continue;
                    }
                    let (system, letters) = filename::flags(&e.fname);
                    let flags = st.keywords.flags(system, letters);
                    let flags = (flags != r.flags()).then_some(flags);
                    // Someone else moved it out of new/: they saw it first.
                    let lost_recent =
                        r.recent_unclaimed() && loc.dir == Dir::New && e.dir == Dir::Cur;
                    renamed.push((
                        r.uid(),
                        super::state::encode(e.dir, &e.fname, loc.ext),
                        flags,
                        lost_recent,
                    ));
                }
            }
        }
        if !expunged.is_empty() {
            st.index
                .apply(Op::Expunge(&expunged))
                .map_err(index_error)?;
            visible = true;
        }
        for (uid, backend, flags, lost_recent) in renamed {
            st.index
                .apply(Op::SetBackend {
                    uid,
                    backend: &backend,
                })
                .map_err(index_error)?;
            if let Some(f) = flags {
                visible |= self.set_flags_or_warn(st, uid, &f);
            }
            if lost_recent {
                st.index.apply(Op::DropRecent(uid)).map_err(index_error)?;
            }
        }

        // New to the index: UIDs from the uidlist where it has one we can still use. The uidlist
        // (its names are unique) is walked in UID order, the order `add_files` would append them
        // in, so they go into the index right away, while the name just compared is still in the
        // CPU cache (a million of them on a cold open).
        let uid_next = st.index.header().uid_next.get();
        let mut fresh = Vec::new();
        if !on_disk.is_empty() {
            for r in &list.records {
                let Some(e) = on_disk.remove(r.base.as_str()) else {
                    continue;
                };
                if r.uid >= uid_next {
                    let Some(uid) = Uid::new(r.uid) else { continue };
                    self.append_entry(st, uid, &e, &r.ext)?;
                    visible = true;
                } else {
                    tracing::warn!(
                        mailbox = %self.path.display(),
                        file = %e.fname,
                        "file reappeared with UID {} that is already used up; it gets a new UID",
                        r.uid
                    );
                    rewrite = true;
                    fresh.push(e);
                }
            }
        }
        fresh.extend(on_disk.into_values());
        let first_new = list.next_uid;
        let added = self.add_files(st, &mut list, Vec::new(), fresh, &pop3_uidls)?;
        visible |= added.visible;

        // UIDs the uidlist used up are gone for good: every file it lists that still exists is
        // in the index now (we hold the lock and scanned everything).
        if let Some(next) = Uid::new(list.next_uid) {
            st.index
                .apply(Op::RaiseUidNext(next))
                .map_err(index_error)?;
        }
        self.record_scan(st, &list, read_stamp, rewrite, first_new)?;
        st.new_dir = DirStamp::scanned(new_mtime, started);
        st.cur_dir = DirStamp::scanned(cur_mtime, started);
        st.initialized = true;
        if big {
            tracing::info!(
                mailbox = %self.path.display(),
                "indexing: done, {} messages, UIDNEXT {}",
                st.index.len(),
                st.index.header().uid_next
            );
        }
        Ok(visible)
    }

    /// Takes the UIDVALIDITY and header of the uidlist just read, or keeps ours when the file is
    /// missing or unreadable; starts over when another process gave the mailbox a new UIDVALIDITY.
    fn adopt_uidlist(&self, st: &mut State, parsed: Option<Parsed>, visible: &mut bool) -> Uidlist {
        let readable = parsed.as_ref().is_some_and(|p| p.header_ok);
        let had_file = parsed.is_some();
        let mut list = parsed.map(|p| p.list).unwrap_or_default();
        if readable {
            let file_uv = list.uid_validity;
            if !st.initialized {
                if let Some(uv) = mail_types::UidValidity::new(file_uv) {
                    st.index = mail_index::MailboxIndex::new(uv);
                }
            } else if file_uv != st.index.uid_validity().get() {
                tracing::warn!(
                    mailbox = %self.path.display(),
                    "UIDVALIDITY changed on disk ({} -> {file_uv}); all UIDs start over",
                    st.index.uid_validity()
                );
                if let Some(uv) = mail_types::UidValidity::new(file_uv) {
                    st.index.reset(uv);
                    *visible = true;
                }
            }
        } else if !st.initialized {
            // No usable UIDVALIDITY: a new one, so that no client trusts UIDs it cached for the
            // lost file (RFC 3501 2.3.1.1).
            let uv = uidvalidity::next(&self.root);
            if had_file {
                tracing::warn!(
                    mailbox = %self.path.display(),
                    "dovecot-uidlist is unreadable; new UIDVALIDITY {uv}"
                );
            }
            st.index = mail_index::MailboxIndex::new(uv);
            list.uid_validity = uv.get();
        } else {
            tracing::warn!(
                mailbox = %self.path.display(),
                "dovecot-uidlist is missing or unreadable; rewriting it from memory"
            );
        }
        list.uid_validity = st.index.uid_validity().get();
        if list.guid.is_none() {
            list.guid = st
                .uidlist
                .guid
                .clone()
                .or_else(|| Some(uidlist::new_guid()));
        }
        if list.header_ext.is_empty() {
            list.header_ext = st.uidlist.header_ext.clone();
        }
        st.uidlist.guid = list.guid.clone();
        st.uidlist.header_ext = list.header_ext.clone();
        list
    }

    /// Adds files to the index: those with a usable uidlist UID first, in UID order, then the
    /// rest with new UIDs in Dovecot's file-name order, recorded in `list`. New records of
    /// files in `pop3_uidls` (by base name) keep that POP3 UIDL.
    fn add_files<'a>(
        &self,
        st: &mut State,
        list: &mut Uidlist,
        mut with_uid: Vec<(u32, String, Entry<'a>)>,
        mut fresh: Vec<Entry<'a>>,
        pop3_uidls: &HashMap<String, String>,
    ) -> Result<Added> {
        let mut added = Added::default();
        with_uid.sort_by_key(|(uid, _, _)| *uid);
        for (uid, ext, e) in with_uid {
            let Some(uid) = Uid::new(uid) else { continue };
            if uid < st.index.header().uid_next {
                fresh.push(e);
                continue;
            }
            self.append_entry(st, uid, &e, &ext)?;
            added.visible = true;
        }
        if fresh.is_empty() {
            return Ok(added);
        }
        let keys: Vec<filename::SortKey<'_>> = fresh
            .iter()
            .map(|e| filename::SortKey::of(&e.fname))
            .collect();
        let mut order: Vec<usize> = (0..fresh.len()).collect();
        order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
        let mut next = list.next_uid.max(st.index.header().uid_next.get()).max(1);
        for e in order.into_iter().map(|i| &fresh[i]) {
            let uid = Uid::new(next).ok_or_else(|| {
                StoreError::Internal(format!("{}: UIDs exhausted", self.path.display()))
            })?;
            let ext = match pop3_uidls.get(e.base()) {
                Some(uidl) => with_pop3_uidl("", uidl),
                None => String::new(),
            };
            self.append_entry(st, uid, e, &ext)?;
            list.records.push(UidRecord {
                uid: next,
                ext,
                base: e.base().to_owned(),
            });
            next = next.checked_add(1).ok_or_else(|| {
                StoreError::Internal(format!("{}: UIDs exhausted", self.path.display()))
            })?;
            added.visible = true;
        }
        list.next_uid = list.next_uid.max(next);
        list.records.sort_by_key(|r| r.uid);
        Ok(added)
    }

    fn append_entry(&self, st: &mut State, uid: Uid, e: &Entry<'_>, ext: &str) -> Result<()> {
        let (system, letters) = filename::flags(&e.fname);
        let flags = st.keywords.flags(system, letters);
        let backend = super::state::encode(e.dir, &e.fname, ext);
        let record = NewRecord {
            uid,
            flags: &flags,
            internal_date: None,
            size: size_hint(&e.fname, ext),
            recent: e.recent,
            backend: &backend,
        };
        match st.index.apply(Op::Append(record)) {
            Ok(_) => Ok(()),
            Err(mail_index::IndexError::TooManyKeywords) => {
                tracing::warn!(
                    mailbox = %self.path.display(),
                    file = %e.fname,
                    "too many keywords in this mailbox; the message's keywords are not shown"
                );
                let plain = Flags::new(flags.system, []);
                st.index
                    .apply(Op::Append(NewRecord {
                        flags: &plain,
                        ..record
                    }))
                    .map(|_| ())
                    .map_err(index_error)
            }
            Err(e) => Err(index_error(e)),
        }
    }

    fn set_flags_or_warn(&self, st: &mut State, uid: Uid, flags: &Flags) -> bool {
        match st.index.apply(Op::SetFlags { uid, flags }) {
            Ok(m) => m.is_some(),
            Err(e) => {
                tracing::warn!(mailbox = %self.path.display(), %uid, "cannot record flags: {e}");
                false
            }
        }
    }

    /// Two files share a base name. Hard links of one file are left alone; otherwise the second
    /// gets a fresh name in `new/`, as Dovecot's `maildir_fix_duplicate` does, and is returned
    /// to be treated as a new message.
    fn fix_duplicate(&self, first: &Entry<'_>, second: &Entry<'_>) -> Option<Entry<'static>> {
        let p1 = self.path.join(first.dir.name()).join(&*first.fname);
        let p2 = self.path.join(second.dir.name()).join(&*second.fname);
        let (Ok(m1), Ok(m2)) = (fs::metadata(&p1), fs::metadata(&p2)) else {
            return None;
        };
        use std::os::unix::fs::MetadataExt;
        if m1.ino() == m2.ino() && m1.dev() == m2.dev() {
            return None;
        }
        let fresh = filename::generate();
        let target = self.path.join("new").join(&fresh);
        match mio::rename_noreplace(&p2, &target) {
            Ok(()) => {
                tracing::warn!(file = %p2.display(), "fixed a duplicate: renamed to new/{fresh}");
                Some(Entry {
                    dir: Dir::New,
                    fname: Cow::Owned(fresh),
                    recent: true,
                })
            }
            Err(e) => {
                tracing::warn!(file = %p2.display(), "cannot fix a duplicate: {e}");
                None
            }
        }
    }

    /// Brings `dovecot-uidlist` in line with a scan that read it into `list` and has put every
    /// record of `list` whose file exists into the index; the records from UID `first_new` on
    /// were assigned by the scan. They are appended to the file as it was read (`read`), unless
    /// it has to be rewritten from the index: it is missing or `damaged`, lacks messages the
    /// index holds, or is a quarter dead weight. The caller holds the lock.
    fn record_scan(
        &self,
        st: &mut State,
        list: &Uidlist,
        read: Option<FileStamp>,
        damaged: bool,
        first_new: u32,
    ) -> Result<()> {
        let new: Vec<UidRecord> = list
            .records
            .iter()
            .filter(|r| r.uid >= first_new)
            .cloned()
            .collect();
        let extras = extras_of(st, list);
        let in_file = list.records.len() - new.len();
        let holds_index = list.records.len() - extras.len() == st.index.len();
        // A file that came back under a new UID must not stay listed under its old one too.
        let relisted = !new.is_empty() && !extras.is_empty() && {
            let new_bases: HashSet<&str> = new.iter().map(|r| r.base.as_str()).collect();
            extras.iter().any(|r| new_bases.contains(r.base.as_str()))
        };
        let rewrite = damaged
            || !holds_index
            || relisted
            || uidlist::wants_rewrite(in_file, extras.len(), new.len());
        match read {
            Some(stamp) if !rewrite => {
                let stamp = if new.is_empty() {
                    stamp
                } else {
                    uidlist::append(&self.path, &stamp, &new)?
                };
                st.uidlist.stamp = Some(stamp);
                st.uidlist.exact = Some(Exact {
                    next_uid: list.next_uid,
                    extras,
                    appendable: true,
                });
                Ok(())
            }
            // Records of expunged messages are dropped: the header keeps their UIDs used up.
            _ => self.write_uidlist_from_index(st, list, &[]),
        }
    }

    /// Rewrites the uidlist as the index's records followed by `new` (which must have higher
    /// UIDs); `header` gives the header fields. Records of messages the index no longer holds
    /// are dropped: NEXTUID keeps their UIDs used up. The caller holds the lock, and adds `new`
    /// to the index right after (the remembered `exact` state counts on it).
    pub(super) fn write_uidlist_from_index(
        &self,
        st: &mut State,
        header: &Uidlist,
        new: &[UidRecord],
    ) -> Result<()> {
        let mut head = Uidlist {
            uid_validity: st.index.uid_validity().get(),
            next_uid: header.next_uid.max(st.index.header().uid_next.get()),
            guid: header.guid.clone(),
            header_ext: header.header_ext.clone(),
            records: Vec::new(),
        };
        if let Some(last) = new.last() {
            head.next_uid = head.next_uid.max(last.uid.saturating_add(1));
        }
        let from_index = st.index.records().filter_map(|r| {
            let loc = Location::decode(r.backend())?;
            Some((r.uid().get(), loc.ext, loc.base()))
        });
        let mut content = Vec::with_capacity(64 + (st.index.len() + new.len()) * 56);
        uidlist::serialize_into(
            &mut content,
            &head,
            from_index.chain(new.iter().map(|r| (r.uid, r.ext.as_str(), r.base.as_str()))),
        );
        let stamp = uidlist::write_bytes(&self.path, &content)?;
        st.uidlist.stamp = Some(stamp);
        st.uidlist.exact = Some(Exact {
            next_uid: head.next_uid,
            extras: Vec::new(),
            appendable: true,
        });
        Ok(())
    }
}

/// Extension fields `ext` with a `P` (POP3 UIDL) field, unless they have one already: a UIDL
/// stored earlier stays what clients know.
fn with_pop3_uidl(ext: &str, uidl: &str) -> String {
    if uidlist::ext_value(ext, b'P').is_some() {
        return ext.to_owned();
    }
    if ext.is_empty() {
        format!("P{uidl}")
    } else {
        format!("{ext} P{uidl}")
    }
}

/// The records of `list` the index does not hold under the same UID and name.
pub(super) fn extras_of(st: &State, list: &Uidlist) -> Vec<UidRecord> {
    let same = |r: &UidRecord, rec: mail_index::RecordRef<'_>| {
        Location::decode(rec.backend()).is_some_and(|l| l.base() == r.base)
    };
    if !list.records.windows(2).all(|w| w[0].uid < w[1].uid) {
        return list
            .records
            .iter()
            .filter(|r| {
                let known = Uid::new(r.uid).and_then(|u| st.index.get(u));
                !known.is_some_and(|rec| same(r, rec))
            })
            .cloned()
            .collect();
    }
    // Both ascend by UID: a walk side by side instead of a search of the index per record (a
    // million of them after a cold open).
    let mut index = st.index.records().peekable();
    list.records
        .iter()
        .filter(|r| {
            while index.next_if(|rec| rec.uid().get() < r.uid).is_some() {}
            let known = index.peek().filter(|rec| rec.uid().get() == r.uid);
            !known.is_some_and(|rec| same(r, *rec))
        })
        .cloned()
        .collect()
}

#[derive(Debug, Default)]
struct Added {
    visible: bool,
}

pub fn index_error(e: mail_index::IndexError) -> StoreError {
    match e {
        mail_index::IndexError::TooManyKeywords => StoreError::NotPossible(e.to_string()),
        other => StoreError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(path: &Path, buffer: usize) -> Vec<(Dir, String)> {
        let dir = fs::File::open(path).unwrap();
        let fd = OwnedFd::from(dir);
        let mut listing = Listing::default();
        read_entries(&fd, path, Dir::Cur, &mut listing, buffer).unwrap();
        let mut names: Vec<(Dir, String)> = listing
            .entries()
            .map(|(base, e)| {
                assert_eq!(base, filename::base(&e.fname));
                (e.dir, e.fname.into_owned())
            })
            .collect();
        names.sort_by(|a, b| a.1.cmp(&b.1));
        names
    }

    #[test]
    fn listing_keeps_message_files_only() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path();
        let mut want = Vec::new();
        // Enough names that a small buffer needs many getdents calls.
        for i in 0..300 {
            let name = format!("16000000{i:02}.M{i}P1.h,S=10,W=11:2,S");
            fs::write(p.join(&name), b"x").unwrap();
            want.push((Dir::Cur, name));
        }
        fs::write(p.join("plain"), b"x").unwrap();
        want.push((Dir::Cur, "plain".to_owned()));
        // A symlink is no directory, even one pointing to a directory (as with std's file_type).
        std::os::unix::fs::symlink("sub", p.join("link")).unwrap();
        want.push((Dir::Cur, "link".to_owned()));
        fs::write(p.join(".hidden"), b"x").unwrap();
        fs::create_dir(p.join("sub")).unwrap();
        fs::write(p.join("line\nbreak"), b"x").unwrap();
        fs::write(p.join("cr\rname"), b"x").unwrap();
        fs::write(p.join(OsStr::from_bytes(b"bad\xffutf8")), b"x").unwrap();
        want.sort_by(|a, b| a.1.cmp(&b.1));
        for buffer in [GETDENTS_BUFFER, 4096, 600] {
            assert_eq!(listed(p, buffer), want, "buffer {buffer}");
        }
        // The public entry points agree.
        let mut entries = Vec::new();
        scan_dir(p, Dir::New, &mut entries).unwrap();
        assert_eq!(entries.len(), want.len());
        assert!(entries.iter().all(|e| e.dir == Dir::New && e.recent));
        assert!(list_dir(&p.join("missing"), Dir::New, &mut Listing::default()).is_err());
    }
}
