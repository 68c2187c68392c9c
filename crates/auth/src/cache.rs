//! A parsed file kept in memory and read again whenever a `stat()` (one per lookup) shows a
//! different device, inode, size, mtime or ctime: how the passwd-file and `/etc/shadow` are
//! read. Tools that edit these files replace them by renaming (new inode) or rewrite them in
//! place (new mtime and ctime), and both show.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use zeroize::Zeroizing;

use crate::AuthError;

/// What identifies one version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

type Cached<T> = Option<(Stamp, Arc<T>)>;

pub(crate) struct FileCache<T> {
    path: PathBuf,
    cache: RwLock<Cached<T>>,
}

impl<T> FileCache<T> {
    pub(crate) fn new(path: PathBuf) -> FileCache<T> {
        FileCache {
            path,
            cache: RwLock::new(None),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The current contents, parsed by `parse(path, bytes)` when the file changed since the last
    /// call. The raw bytes are wiped after parsing: these files hold password hashes.
    pub(crate) fn get(&self, parse: impl FnOnce(&Path, &[u8]) -> T) -> Result<Arc<T>, AuthError> {
        let meta = fs::metadata(&self.path).map_err(|e| self.io(e))?;
        let stamp = Stamp::of(&meta);
        {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            if let Some((s, value)) = cache.as_ref()
                && *s == stamp
            {
                return Ok(Arc::clone(value));
            }
        }
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if let Some((s, value)) = cache.as_ref()
            && *s == stamp
        {
            return Ok(Arc::clone(value));
        }
        let mut file = File::open(&self.path).map_err(|e| self.io(e))?;
        // The stamp of what is actually read: if the file changes after this, the next
        // lookup's stat() differs and reads it again.
        let stamp = Stamp::of(&file.metadata().map_err(|e| self.io(e))?);
        let mut content = Zeroizing::new(Vec::new());
        file.read_to_end(&mut content).map_err(|e| self.io(e))?;
        let value = Arc::new(parse(&self.path, &content));
        *cache = Some((stamp, Arc::clone(&value)));
        Ok(value)
    }

    fn io(&self, source: io::Error) -> AuthError {
        AuthError::Io {
            path: self.path.clone(),
            source,
        }
    }
}
