//! The store's documents directory, `<store>.documents/`: OFD files uploaded with stamp
//! requests (`uploads/`, until the request is final) and the sealed files (`sealed/`, kept with
//! the request's signatures and carried by backups). The store's rows name them by paths
//! relative to this directory, so a restored store finds them wherever it is put.
//!
//! Everything is owner-only: the directories 0700, the files 0600. Uploads are written as they
//! arrive (never held whole in memory) and hashed (SM3) on the way; sealed files are written
//! to a temporary name, synced and renamed, then the directory is synced (once per request),
//! before the store names them: a sealed file the store names is whole and durable.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sm3::{Digest, Sm3};

use crate::store::model::RequestId;

/// Where uploads go.
pub const UPLOADS: &str = "uploads";
/// Where sealed files go.
pub const SEALED: &str = "sealed";

/// The documents directory of one store.
#[derive(Debug, Clone)]
pub struct DocumentStore {
    dir: PathBuf,
}

impl DocumentStore {
    /// The documents directory of the store at `store_path` (it may not exist yet).
    pub fn beside(store_path: &Path) -> Self {
        let mut name = store_path.as_os_str().to_owned();
        name.push(".documents");
        Self {
            dir: PathBuf::from(name),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a stored relative path names. Only `uploads/NAME` and `sealed/NAME` with a
    /// plain file name are accepted: a store row can never point outside the directory.
    pub fn path(&self, relative: &str) -> io::Result<PathBuf> {
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{relative:?} is not a documents path"),
            )
        };
        let (sub, name) = relative.split_once('/').ok_or_else(bad)?;
        let plain = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !name.starts_with('.');
        if !(sub == UPLOADS || sub == SEALED) || !plain {
            return Err(bad());
        }
        Ok(self.dir.join(sub).join(name))
    }

    /// The subdirectory `sub`, created (0700) if missing; a new one is made durable at once
    /// (its parents synced), so a sealed file renamed into it cannot vanish with it.
    fn subdir(&self, sub: &str) -> io::Result<PathBuf> {
        let dir = self.dir.join(sub);
        if !dir.is_dir() {
            DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
            File::open(&self.dir)?.sync_all()?;
            if let Some(parent) = self.dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                File::open(parent)?.sync_all()?;
            }
        }
        Ok(dir)
    }

    /// A new, empty upload file (0600) under a random name, for the documents of one request.
    pub fn new_upload(&self) -> io::Result<Upload> {
        let dir = self.subdir(UPLOADS)?;
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
        let name = format!("{}.ofd", hex::encode(random));
        let path = dir.join(&name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        Ok(Upload {
            relative: format!("{UPLOADS}/{name}"),
            path,
            file: Some(file),
            hasher: Sm3::new(),
            size: 0,
            part_start: 0,
        })
    }

    /// The relative path of request `id`'s sealed document `n` as signing attempt `attempt`
    /// made it. Each attempt has names of its own: on a shared documents directory a node
    /// whose claim was taken over never touches what the node that took it over writes.
    pub fn sealed_name(id: RequestId, n: u32, attempt: &str) -> String {
        format!("{SEALED}/{id}-{n}-{attempt}.ofd")
    }

    /// A new temporary file (0600) for sealed document `n` of request `id` in `attempt`;
    /// [`DocumentStore::commit_sealed`] makes it the sealed file.
    pub fn sealed_temp(&self, id: RequestId, n: u32, attempt: &str) -> io::Result<(PathBuf, File)> {
        let dir = self.subdir(SEALED)?;
        let temp = dir.join(format!("{id}-{n}-{attempt}.ofd.part"));
        let _ = fs::remove_file(&temp);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        Ok((temp, file))
    }

    /// Syncs `file` (written at `temp`) and renames it to request `id`'s sealed document `n`
    /// of `attempt`; returns the relative path. The rename is durable after
    /// [`DocumentStore::sync_sealed`] (one directory sync for a whole batch).
    pub fn commit_sealed(
        &self,
        temp: &Path,
        file: File,
        id: RequestId,
        n: u32,
        attempt: &str,
    ) -> io::Result<String> {
        file.sync_data()?;
        drop(file);
        let relative = Self::sealed_name(id, n, attempt);
        fs::rename(temp, self.path(&relative)?)?;
        Ok(relative)
    }

    /// Syncs the sealed files' directory: the renames of [`DocumentStore::commit_sealed`]
    /// before it are durable after it.
    pub fn sync_sealed(&self) -> io::Result<()> {
        File::open(self.dir.join(SEALED))?.sync_all()
    }

    /// Removes a stored file; one already gone is not an error.
    pub fn remove(&self, relative: &str) -> io::Result<()> {
        match fs::remove_file(self.path(relative)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Removes uploads and sealed files the store does not name (left by a daemon stopped in the
    /// middle of an upload or a batch: a sealed file is named only in the commit that marks its
    /// request signed, so an unnamed one was never handed out, and a retry seals it again).
    /// Call only when nothing is being uploaded or sealed (at start-up, before serving).
    /// Returns how many were removed.
    pub fn remove_strays(&self, named: &[String]) -> io::Result<usize> {
        let mut removed = 0;
        for sub in [UPLOADS, SEALED] {
            let entries = match fs::read_dir(self.dir.join(sub)) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let relative = format!("{sub}/{name}");
                if !named.contains(&relative) {
                    fs::remove_file(entry.path())?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// The upload of one request being written: its documents go to one file back to back, each
/// hashed on the way (one file per request, not per document: creating and deleting a file per
/// document costs more than sealing it on some file systems). Dropped without
/// [`Upload::finish`], the file is removed.
#[derive(Debug)]
pub struct Upload {
    relative: String,
    path: PathBuf,
    file: Option<File>,
    hasher: Sm3,
    size: u64,
    part_start: u64,
}

/// One document of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadedPart {
    /// Where it starts in the upload file.
    pub offset: u64,
    /// Its length.
    pub size: u64,
    /// SM3 of its bytes.
    pub sm3: [u8; 32],
}

/// A finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// Path relative to the documents directory.
    pub relative: String,
    /// The file.
    pub path: PathBuf,
    /// Bytes written.
    pub size: u64,
}

impl Upload {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends `bytes` to the current document.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("the upload was closed"))?;
        file.write_all(bytes)?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Ends the current document (what was written since the last `end_part`) and starts
    /// the next.
    pub fn end_part(&mut self) -> UploadedPart {
        let hasher = std::mem::take(&mut self.hasher);
        let part = UploadedPart {
            offset: self.part_start,
            size: self.size - self.part_start,
            sm3: hasher.finalize().into(),
        };
        self.part_start = self.size;
        part
    }

    /// Closes the file and returns what was written. The file stays until removed. It is not
    /// synced: a request is recorded durably with each document's SM3, and the worker hashes
    /// the documents again before sealing, so an upload cut short by a crash fails its request
    /// instead of being sealed.
    pub fn finish(mut self) -> io::Result<Uploaded> {
        let file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("the upload was closed"))?;
        drop(file);
        Ok(Uploaded {
            relative: std::mem::take(&mut self.relative),
            path: std::mem::take(&mut self.path),
            size: self.size,
        })
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A stretch of a file, read as a file of its own (one document of an upload).
#[derive(Debug)]
pub struct Section {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Section {
    /// `len` bytes of the file at `path` from `start` (one document of an upload).
    pub fn open(path: &Path, start: u64, len: u64) -> io::Result<Self> {
        Self::new(File::open(path)?, start, len)
    }

    /// `len` bytes of `file` from `start`; the position is the section's start.
    pub fn new(mut file: File, start: u64, len: u64) -> io::Result<Self> {
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(start))?;
        Ok(Self {
            file,
            start,
            len,
            pos: 0,
        })
    }
}

impl io::Read for Section {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl io::Seek for Section {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let target = match to {
            io::SeekFrom::Start(n) => Some(n),
            io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.file.seek(io::SeekFrom::Start(self.start + target))?;
        self.pos = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn uploads_are_private_hashed_per_document_and_removed_unless_finished() {
        use std::io::{Read, Seek, SeekFrom};
        let dir = tempfile::tempdir().unwrap();
        let docs = DocumentStore::beside(&dir.path().join("seald.db"));
        let mut up = docs.new_upload().unwrap();
        up.write(b"ab").unwrap();
        up.write(b"c").unwrap();
        let first = up.end_part();
        up.write(b"defg").unwrap();
        let second = up.end_part();
        let done = up.finish().unwrap();
        assert_eq!(done.size, 7);
        assert_eq!((first.offset, first.size), (0, 3));
        assert_eq!((second.offset, second.size), (3, 4));
        assert_eq!(first.sm3, crate::crypto::sm3(b"abc"));
        assert_eq!(second.sm3, crate::crypto::sm3(b"defg"));
        assert_eq!(docs.path(&done.relative).unwrap(), done.path);
        let mode = fs::metadata(&done.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(docs.dir().join(UPLOADS))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);

        // A document reads as a file of its own.
        let mut section = Section::new(File::open(&done.path).unwrap(), 3, 4).unwrap();
        let mut all = String::new();
        section.read_to_string(&mut all).unwrap();
        assert_eq!(all, "defg");
        assert_eq!(section.seek(SeekFrom::End(-2)).unwrap(), 2);
        let mut tail = String::new();
        section.read_to_string(&mut tail).unwrap();
        assert_eq!(tail, "fg");
        assert!(section.seek(SeekFrom::Current(-9)).is_err());

        let mut dropped = docs.new_upload().unwrap();
        dropped.write(b"x").unwrap();
        let path = dropped.path.clone();
        drop(dropped);
        assert!(!path.exists(), "an unfinished upload is removed");

        let stray = docs.new_upload().unwrap().finish().unwrap();
        assert_eq!(
            docs.remove_strays(std::slice::from_ref(&done.relative))
                .unwrap(),
            1
        );
        assert!(done.path.exists() && !stray.path.exists());
    }

    #[test]
    fn sealed_files_the_store_does_not_name_are_strays_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let docs = DocumentStore::beside(&dir.path().join("seald.db"));
        let mut committed = Vec::new();
        for n in 0..3 {
            let (temp, mut file) = docs.sealed_temp(9, n, "a1").unwrap();
            file.write_all(b"sealed").unwrap();
            committed.push(docs.commit_sealed(&temp, file, 9, n, "a1").unwrap());
        }
        // A crash before the commit that names them: only the first was recorded.
        let (_part, _) = docs.sealed_temp(9, 3, "a1").unwrap();
        assert_eq!(docs.remove_strays(&committed[..1]).unwrap(), 3);
        assert!(docs.path(&committed[0]).unwrap().exists());
        assert!(!docs.path(&committed[1]).unwrap().exists());
        assert!(!docs.path(&committed[2]).unwrap().exists());
    }

    #[test]
    fn sealed_files_are_committed_by_rename_and_paths_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let docs = DocumentStore::beside(&dir.path().join("seald.db"));
        let (temp, mut file) = docs.sealed_temp(7, 2, "b2").unwrap();
        file.write_all(b"sealed").unwrap();
        let relative = docs.commit_sealed(&temp, file, 7, 2, "b2").unwrap();
        docs.sync_sealed().unwrap();
        assert_eq!(relative, "sealed/7-2-b2.ofd");
        // Another attempt at the same document never touches this one's files.
        let (other, _) = docs.sealed_temp(7, 2, "c3").unwrap();
        assert_ne!(other, temp);
        assert!(docs.path(&relative).unwrap().exists());
        assert_eq!(fs::read(docs.path(&relative).unwrap()).unwrap(), b"sealed");
        assert!(!temp.exists());
        for bad in [
            "../x",
            "uploads/../x",
            "sealed/",
            "other/x",
            "sealed/a/b",
            "x",
        ] {
            assert!(docs.path(bad).is_err(), "{bad}");
        }
    }
}
