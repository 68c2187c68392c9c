//! `dovecot-keywords`: which keyword each file-name letter `a`..`z` stands for
//! (`maildir-keywords.c`). One line per letter in use, `<index> <name>`, index 0 = `a`.
//!
//! Dovecot rewrites the file by writing `dovecot-keywords.lock` and renaming it over, while it
//! holds the `dovecot-uidlist` lock, and makes the file's mtime grow with every write so readers
//! can tell versions apart; Columba does the same.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use mail_types::{Flags, Keyword, SystemFlags};

use super::dotlock::{self, LockSettings};
use super::filename::{LetterSet, MAX_KEYWORD_LETTERS};
use super::io::{self as mio, FileStamp};
use crate::{Result, StoreError};

pub const FILE_NAME: &str = "dovecot-keywords";

/// `KEYWORDS_LOCK_STALE_TIMEOUT` in Dovecot.
const LOCK: LockSettings = LockSettings {
    stale_timeout: Duration::from_secs(120),
    timeout: Duration::from_secs(122),
};

/// The letter table of one mailbox.
#[derive(Debug, Clone, Default)]
pub struct KeywordMap {
    names: [Option<Keyword>; MAX_KEYWORD_LETTERS],
    /// The file as last read or written, to skip re-reading an unchanged file.
    stamp: Option<FileStamp>,
    /// Letters seen in file names without a line in the file (Dovecot names them
    /// `unknown-<n>`); written out with the next change so the letter stays reserved.
    implied: LetterSet,
}

impl KeywordMap {
    /// Parses the file's content. Lines that make no sense are skipped with a warning naming the
    /// file, as Dovecot skips them.
    pub fn parse(content: &[u8], path: &Path) -> KeywordMap {
        let mut map = KeywordMap::default();
        for (n, line) in content.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let text = String::from_utf8_lossy(line);
            let parsed = text.split_once(' ').and_then(|(idx, name)| {
                let idx: usize = idx.parse().ok()?;
                (idx < MAX_KEYWORD_LETTERS).then_some(())?;
                Some((idx, Keyword::new(name).ok()?))
            });
            match parsed {
                Some((idx, k)) => map.names[idx] = Some(k),
                None => tracing::warn!(
                    file = %path.display(),
                    line = n + 1,
                    "ignoring a malformed keyword line: {text:?}"
                ),
            }
        }
        map
    }

    /// The keywords the table names.
    pub fn names(&self) -> Vec<Keyword> {
        self.names.iter().flatten().cloned().collect()
    }

    pub fn serialize(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, name) in self.names.iter().enumerate() {
            if let Some(k) = name {
                out.extend_from_slice(format!("{i} {k}\n").as_bytes());
            }
        }
        out
    }

    /// Reads the mailbox's file if it changed since the last read; a missing file is an empty
    /// table.
    pub fn refresh(&mut self, dir: &Path) -> Result<()> {
        let path = dir.join(FILE_NAME);
        let stamp = mio::stamp(&path)?;
        if stamp.is_some() && stamp == self.stamp {
            return Ok(());
        }
        let implied = self.implied;
        *self = match stamp {
            None => KeywordMap::default(),
            Some(_) => match fs::read(&path) {
                Ok(content) => KeywordMap::parse(&content, &path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => KeywordMap::default(),
                Err(e) => {
                    // Keep what we knew: messages show `unknown-<n>` for letters it lacks.
                    tracing::warn!(file = %path.display(), "cannot read keywords: {e}");
                    return Ok(());
                }
            },
        };
        self.stamp = stamp;
        self.implied = implied & !self.used();
        Ok(())
    }

    /// How many letters are named or seen in file names.
    pub fn letters_in_use(&self) -> usize {
        (self.used() | self.implied).count_ones() as usize
    }

    fn used(&self) -> LetterSet {
        let mut set = 0;
        for (i, n) in self.names.iter().enumerate() {
            if n.is_some() {
                set |= 1 << i;
            }
        }
        set
    }

    /// The IMAP flags for a file's system flags and letters. A letter without a name becomes
    /// `unknown-<n>`, Dovecot's name for a lost keyword.
    pub fn flags(&mut self, system: SystemFlags, letters: LetterSet) -> Flags {
        if letters == 0 {
            return Flags::new(system, []);
        }
        let mut keywords = Vec::new();
        for i in 0..MAX_KEYWORD_LETTERS {
            if letters & (1 << i) == 0 {
                continue;
            }
            match &self.names[i] {
                Some(k) => keywords.push(k.clone()),
                None => {
                    if let Ok(k) = Keyword::new(&format!("unknown-{i}")) {
                        keywords.push(k);
                        self.implied |= 1 << i;
                    }
                }
            }
        }
        Flags::new(system, keywords)
    }

    fn letter_of(&self, k: &Keyword) -> Option<usize> {
        if let Some(i) = self
            .names
            .iter()
            .position(|n| n.as_ref().is_some_and(|n| n.eq_ignore_case(k)))
        {
            return Some(i);
        }
        let name = k.as_str().to_ascii_lowercase();
        let n: usize = name.strip_prefix("unknown-")?.parse().ok()?;
        (n < MAX_KEYWORD_LETTERS && self.implied & (1 << n) != 0).then_some(n)
    }

    /// The letters for `flags`' keywords without creating any; `None` if one has no letter yet.
    pub fn letters(&self, flags: &Flags) -> Option<LetterSet> {
        let mut set = 0;
        for k in flags.keywords() {
            set |= 1 << self.letter_of(k)?;
        }
        Some(set)
    }

    /// The letters for `flags`' keywords, giving new keywords free letters and rewriting the file
    /// when that happened. The caller holds the `dovecot-uidlist` lock (Dovecot relies on it for
    /// this file too). `NotPossible` when all 26 letters are taken.
    pub fn letters_creating(&mut self, flags: &Flags, dir: &Path) -> Result<LetterSet> {
        if let Some(set) = self.letters(flags) {
            return Ok(set);
        }
        self.refresh(dir)?;
        let mut changed = false;
        let mut set = 0;
        for k in flags.keywords() {
            let i = match self.letter_of(k) {
                Some(i) => i,
                None => {
                    let taken = self.used() | self.implied;
                    let free = (0..MAX_KEYWORD_LETTERS)
                        .find(|i| taken & (1 << i) == 0)
                        .ok_or_else(|| {
                            StoreError::NotPossible(format!(
                                "too many keywords in this mailbox (Maildir allows {MAX_KEYWORD_LETTERS})"
                            ))
                        })?;
                    self.names[free] = Some(k.clone());
                    changed = true;
                    free
                }
            };
            set |= 1 << i;
        }
        if changed {
            self.write(dir)?;
        }
        Ok(set)
    }

    /// Writes the table through `dovecot-keywords.lock`, renamed over the file.
    fn write(&mut self, dir: &Path) -> Result<()> {
        // Letters seen in file names keep their placeholder names so they are not reused.
        for i in 0..MAX_KEYWORD_LETTERS {
            if self.implied & (1 << i) != 0 && self.names[i].is_none() {
                self.names[i] = Keyword::new(&format!("unknown-{i}")).ok();
            }
        }
        self.implied = 0;
        let path: PathBuf = dir.join(FILE_NAME);
        let previous = mio::stamp(&path)?.map(|s| mio::unix_secs(s.mtime));
        let content = self.serialize();
        dotlock::replace(&path, &LOCK, |file, lock_path| {
            file.write_all(&content)
                .map_err(|e| StoreError::io(lock_path, e))?;
            // Dovecot notices a new version by the mtime's seconds only, so a second write within
            // the same second must move the mtime forward (`maildir_keywords_write_fd`).
            if let Some(prev) = previous
                && mio::unix_secs(SystemTime::now()) <= prev
            {
                let bumped = SystemTime::UNIX_EPOCH + Duration::from_secs(prev.max(0) as u64 + 1);
                mio::set_times(file, bumped).map_err(|e| StoreError::io(lock_path, e))?;
            }
            Ok(true)
        })?;
        self.stamp = mio::stamp(&path)?;
        Ok(())
    }

    /// Replaces the table (used when a mailbox's messages move to a fresh mailbox).
    pub fn copy_file(from_dir: &Path, to_dir: &Path) -> Result<()> {
        let from = from_dir.join(FILE_NAME);
        match fs::read(&from) {
            Ok(content) => {
                let to = to_dir.join(FILE_NAME);
                dotlock::replace(&to, &LOCK, |file, lock_path| {
                    file.write_all(&content)
                        .map_err(|e| StoreError::io(lock_path, e))?;
                    Ok(true)
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(from, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(s: &str) -> Keyword {
        Keyword::new(s).unwrap()
    }

    #[test]
    fn parses_dovecot_written_file() {
        let map = KeywordMap::parse(b"0 $Forwarded\n1 Junk\n", Path::new("k"));
        assert_eq!(map.serialize(), b"0 $Forwarded\n1 Junk\n");
        let mut map = map;
        let f = map.flags(SystemFlags::SEEN, 0b11);
        assert!(f.has_keyword(&kw("$forwarded")));
        assert!(f.has_keyword(&kw("Junk")));
        assert_eq!(map.letters(&f), Some(0b11));
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let map = KeywordMap::parse(
            b"0 Good\nnonsense\n99 TooFar\n3 bad name\n-1 x\n\n\xff\xfe 1\n4 Fine\n",
            Path::new("k"),
        );
        assert_eq!(map.serialize(), b"0 Good\n4 Fine\n");
    }

    #[test]
    fn unknown_letters_get_placeholder_names_and_stay_reserved() {
        let dir = tempfile::tempdir().unwrap();
        let mut map = KeywordMap::default();
        let f = map.flags(SystemFlags::empty(), 1 << 2);
        assert!(f.has_keyword(&kw("unknown-2")));
        assert_eq!(map.letters(&f), Some(1 << 2));
        // Three new keywords take a, b and d: c is reserved by the placeholder.
        let want = Flags::new(SystemFlags::empty(), [kw("x"), kw("y"), kw("z")]);
        let set = map.letters_creating(&want, dir.path()).unwrap();
        assert_eq!(set, 0b1011);
        let written = fs::read(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(written, b"0 x\n1 y\n2 unknown-2\n3 z\n");
        assert!(!dir.path().join("dovecot-keywords.lock").exists());
    }

    #[test]
    fn at_most_26_keywords() {
        let dir = tempfile::tempdir().unwrap();
        let mut map = KeywordMap::default();
        for i in 0..26 {
            let f = Flags::new(SystemFlags::empty(), [kw(&format!("k{i}"))]);
            map.letters_creating(&f, dir.path()).unwrap();
        }
        let f = Flags::new(SystemFlags::empty(), [kw("extra")]);
        let err = map.letters_creating(&f, dir.path()).unwrap_err();
        assert_eq!(err.kind(), crate::StoreErrorKind::NotPossible);
        // Re-reading the file gives the same table.
        let mut again = KeywordMap::default();
        again.refresh(dir.path()).unwrap();
        assert_eq!(again.serialize(), map.serialize());
    }
}
