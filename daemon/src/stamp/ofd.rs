//! Sealing the OFD documents of a request made by upload.
//!
//! Approvers approved exact files: before anything is signed, every upload is hashed again and
//! compared with the SM3 they were shown, and a changed or missing file fails the request with
//! nothing signed. Each file is then sealed (one signature on the device per file, on as many
//! sessions as the token has free, like a digest batch) from the same open handle it was
//! hashed through again, into a temporary file that is synced and renamed. The caller records
//! the sealed files with the signatures in one durable commit; until then no sealed file can be
//! fetched, and if that commit does not happen they are removed.

use std::io::{BufReader, BufWriter, Seek, SeekFrom};

use time::OffsetDateTime;

use super::batch::pipeline;
use crate::approval::{RequestId, SignedDocument};
use crate::crypto::sm3_reader;
use crate::ofd::seal::{seal, SealError, SealOptions};
use crate::ses::DocumentSigner;
use crate::store::documents::Section;
use crate::store::model::OfdFileRow;
use crate::store::DocumentStore;

/// A sealed document: its position (from 1) and its file, relative to the documents directory.
pub type SealedFile = (u32, String);

/// Requests with at most this many files keep every checked upload open until it is sealed.
const KEEP_OPEN: usize = 256;

/// Why an uploaded document was not sealed.
#[derive(Debug, thiserror::Error)]
pub enum OfdStampError {
    /// The upload is not the file approvers approved.
    #[error("document {n} ({name}) changed after it was shown to approvers: its SM3 is now {now}, they approved {approved}; nothing was signed. Upload it again in a new request")]
    Changed {
        /// Position (from 1).
        n: u32,
        /// Name.
        name: String,
        /// SM3 of the file as it is now.
        now: String,
        /// SM3 approvers saw.
        approved: String,
    },
    /// The upload is gone or cannot be read.
    #[error("document {n} ({name}) cannot be read from the store's documents directory ({why}); nothing was signed. Upload it again in a new request")]
    Unreadable {
        /// Position (from 1).
        n: u32,
        /// Name.
        name: String,
        /// What the system said.
        why: String,
    },
    /// The engine refused or the device failed while sealing.
    #[error("document {n} ({name}) could not be sealed: {source}")]
    Seal {
        /// Position (from 1).
        n: u32,
        /// Name.
        name: String,
        /// The engine's error (a device failure is inside `Sign`).
        source: SealError,
    },
    /// The sealed files' directory could not be synced.
    #[error("the sealed documents could not be made durable (syncing their directory failed: {0}); none was kept and the request is not signed")]
    Sync(String),
    /// The sealed file could not be written.
    #[error("the sealed document {n} ({name}) could not be written: {why}")]
    Write {
        /// Position (from 1).
        n: u32,
        /// Name.
        name: String,
        /// What the system said.
        why: String,
    },
}

impl OfdStampError {
    /// The device error inside, if the device failed.
    pub fn build_error(&self) -> Option<&crate::ses::BuildError> {
        match self {
            OfdStampError::Seal {
                source: SealError::Sign(e),
                ..
            } => Some(e),
            _ => None,
        }
    }
}

/// Opens document `row` in its request's upload and checks its SM3 against the approved one;
/// the handle reads the document alone, from its start.
fn open_checked(docs: &DocumentStore, row: &OfdFileRow) -> Result<Section, OfdStampError> {
    let f = &row.file;
    let unreadable = |why: String| OfdStampError::Unreadable {
        n: f.n,
        name: f.name.clone(),
        why,
    };
    let relative = row
        .upload
        .as_deref()
        .ok_or_else(|| unreadable("the upload was already removed".into()))?;
    let path = docs.path(relative).map_err(|e| unreadable(e.to_string()))?;
    let mut file =
        Section::open(&path, row.offset, row.file.size).map_err(|e| unreadable(e.to_string()))?;
    let now = sm3_reader(&mut file).map_err(|e| unreadable(e.to_string()))?;
    if now != f.sm3.0 {
        return Err(OfdStampError::Changed {
            n: f.n,
            name: f.name.clone(),
            now: hex::encode(now),
            approved: f.sm3.to_hex(),
        });
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|e| unreadable(e.to_string()))?;
    Ok(file)
}

/// Checks every upload of request `id`, then seals each with `signer` at `time_info` on up to
/// `free_sessions + 1` threads. Returns the signatures (in document order, each under the
/// upload's SM3, the digest approvers approved) and the sealed files' relative paths by
/// position. On failure no sealed file of this call is left behind.
pub fn seal_files(
    docs: &DocumentStore,
    signer: &DocumentSigner<'_>,
    id: RequestId,
    rows: &[OfdFileRow],
    time_info: OffsetDateTime,
    free_sessions: usize,
) -> Result<(Vec<SignedDocument>, Vec<SealedFile>), OfdStampError> {
    // Every file first: one changed file means nothing at all is signed. The checked handles
    // are what the engine reads (a file replaced after the check is not the one sealed); a
    // very large batch is opened and hashed again per file instead, to bound open files.
    let keep = rows.len() <= KEEP_OPEN;
    let mut checked = Vec::with_capacity(if keep { rows.len() } else { 0 });
    for row in rows {
        let file = open_checked(docs, row)?;
        if keep {
            checked.push(std::sync::Mutex::new(Some(file)));
        }
    }
    let results = pipeline(rows.len(), free_sessions, |i| {
        let row = &rows[i];
        let f = &row.file;
        let kept = checked
            .get(i)
            .and_then(|slot| slot.lock().unwrap_or_else(|e| e.into_inner()).take());
        let input = match kept {
            Some(file) => file,
            None => open_checked(docs, row)?,
        };
        let write = |e: std::io::Error| OfdStampError::Write {
            n: f.n,
            name: f.name.clone(),
            why: e.to_string(),
        };
        let (temp, out) = docs.sealed_temp(id, f.n).map_err(write)?;
        let options = SealOptions {
            mode: f.mode,
            ..SealOptions::default()
        };
        let sealed = {
            let mut writer = BufWriter::new(&out);
            let sealed = seal(
                BufReader::new(input),
                &mut writer,
                &f.plan,
                &options,
                signer,
                time_info,
            );
            let flushed = writer.into_inner().map(|_| ()).map_err(|e| e.into_error());
            match (sealed, flushed) {
                (Ok(sealed), Ok(())) => Ok(sealed),
                (Err(source), _) => Err(OfdStampError::Seal {
                    n: f.n,
                    name: f.name.clone(),
                    source,
                }),
                (Ok(_), Err(e)) => Err(write(e)),
            }
        };
        let sealed = match sealed {
            Ok(sealed) => sealed,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
        };
        let relative = match docs.commit_sealed(&temp, out, id, f.n) {
            Ok(relative) => relative,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(write(e));
            }
        };
        Ok((
            SignedDocument {
                digest: f.sm3,
                ses_signature: sealed.signature.der,
            },
            (f.n, relative),
        ))
    });
    let results = results.and_then(|done| {
        docs.sync_sealed()
            .map_err(|e| OfdStampError::Sync(e.to_string()))?;
        Ok(done)
    });
    match results {
        Ok(done) => Ok(done.into_iter().unzip()),
        Err(e) => {
            // Sealed files of this attempt that another thread finished: nothing names them.
            for row in rows {
                let _ = docs.remove(&DocumentStore::sealed_name(id, row.file.n));
            }
            Err(e)
        }
    }
}

/// Removes the sealed files `sealed` (their request was not marked signed after all).
pub fn discard(docs: &DocumentStore, sealed: &[SealedFile]) {
    for (_, relative) in sealed {
        let _ = docs.remove(relative);
    }
}
