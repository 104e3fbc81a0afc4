//! An advisory lock beside the store (`<store>.lock`, flock): every open [`super::Store`] holds
//! it shared for its lifetime; `sealctl restore` needs it exclusive, so it refuses while seald
//! (or any other command) has the store open.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::StoreError;

/// A held lock; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    path: PathBuf,
}

/// The lock file of the store at `store`.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl StoreLock {
    fn take(store: &Path, exclusive: bool) -> Result<Option<Self>, StoreError> {
        let path = lock_path(store);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        // SAFETY: flock on a descriptor we own; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Some(Self { _file: file, path }));
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(None)
        } else {
            Err(StoreError::io(&path, error))
        }
    }

    /// Shared: any number of users at once, none while a restore runs. `None` if a restore holds it.
    pub fn shared(store: &Path) -> Result<Option<Self>, StoreError> {
        Self::take(store, false)
    }

    /// Exclusive: `None` while any process has the store open.
    pub fn exclusive(store: &Path) -> Result<Option<Self>, StoreError> {
        Self::take(store, true)
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
