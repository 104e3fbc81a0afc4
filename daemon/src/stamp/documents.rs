//! Planning and sealing the documents (OFD or PDF) of a request made by upload.
//!
//! Approvers approved exact files: before anything is signed, every upload is hashed again and
//! compared with the SM3 they were shown, and a changed or missing file fails the request with
//! nothing signed. Each file is then sealed (one signature on the device per file, on as many
//! sessions as the token has free, like a digest batch) from the same open handle it was
//! hashed through again, into a temporary file that is synced and renamed. The caller records
//! the sealed files with the signatures in one durable commit; until then no sealed file can be
//! fetched, and if that commit does not happen they are removed.

use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use time::OffsetDateTime;

use super::batch::pipeline;
use crate::approval::{RequestId, SignedDocument};
use crate::crypto::sm3_reader;
use crate::ofd::seal::{Placement, SealError, SealMode, SealOptions, SealPlan};
use crate::pdf::seal::PdfSealOptions;
use crate::ses::DocumentSigner;
use crate::store::documents::Section;
use crate::store::model::{DocumentFormat, StampFileRow};
use crate::store::DocumentStore;

/// The format of the document `section` holds, if seald seals it; the section is read from
/// its start again afterwards.
pub fn detect_format(section: &mut Section) -> std::io::Result<Option<DocumentFormat>> {
    let mut head = Vec::with_capacity(1024);
    section.by_ref().take(1024).read_to_end(&mut head)?;
    section.seek(SeekFrom::Start(0))?;
    Ok(DocumentFormat::detect(&head))
}

/// Reads a whole PDF (the PDF engine works on bytes; uploads are capped by
/// `[api] max_document_bytes`).
fn read_pdf(mut section: Section) -> Result<Vec<u8>, SealError> {
    let mut bytes = Vec::new();
    section.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Resolves `placements` on the document `section` holds, with the engine of `format`.
pub fn plan_document(
    format: DocumentFormat,
    section: Section,
    placements: &[Placement],
    seal_size_mm: (f64, f64),
    mode: SealMode,
) -> Result<SealPlan, SealError> {
    match format {
        DocumentFormat::Ofd => {
            crate::ofd::seal::plan(BufReader::new(section), placements, seal_size_mm, mode)
        }
        DocumentFormat::Pdf => {
            crate::pdf::seal::plan(&read_pdf(section)?, placements, seal_size_mm, mode)
        }
    }
}

/// What sealing a document needs besides the document and its plan.
#[derive(Debug, Clone, Copy)]
pub struct SealContext<'a> {
    /// Signs once per document.
    pub signer: &'a DocumentSigner<'a>,
    /// When the documents are signed.
    pub time: OffsetDateTime,
    /// For PDF: what `/Contents` holds, the signer's chain, the reason (each document's mode
    /// is its own).
    pub pdf: &'a PdfSealOptions,
}

/// Seals one document into `out`; returns the signature it carries (SES_Signature DER for
/// OFD, the `/Contents` bytes for PDF).
fn seal_document<W: Write + Seek>(
    row: &StampFileRow,
    input: Section,
    out: W,
    context: &SealContext<'_>,
) -> Result<Vec<u8>, SealError> {
    let f = &row.file;
    match f.format {
        DocumentFormat::Ofd => {
            let options = SealOptions {
                mode: f.mode,
                ..SealOptions::default()
            };
            let sealed = crate::ofd::seal::seal(
                BufReader::new(input),
                out,
                &f.plan,
                &options,
                context.signer,
                context.time,
            )?;
            Ok(sealed.signature.der)
        }
        DocumentFormat::Pdf => {
            let options = PdfSealOptions {
                mode: f.mode,
                ..context.pdf.clone()
            };
            // The engine works on these bytes: they must be the ones approvers approved (the
            // handle was checked, but is read again here).
            let input = read_pdf(input)?;
            if crate::crypto::sm3(&input) != f.sm3.0 {
                return Err(SealError::Structure(
                    "the upload changed while it was being sealed; nothing was signed".into(),
                ));
            }
            let (bytes, sealed) =
                crate::pdf::seal::seal(&input, &f.plan, &options, context.signer, context.time)?;
            let mut out = out;
            out.write_all(&bytes)?;
            Ok(sealed.contents)
        }
    }
}

/// A sealed document: its position (from 1) and its file, relative to the documents directory.
pub type SealedFile = (u32, String);

/// Requests with at most this many files keep every checked upload open until it is sealed.
const KEEP_OPEN: usize = 256;

/// Why an uploaded document was not sealed.
#[derive(Debug, thiserror::Error)]
pub enum DocumentStampError {
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

impl DocumentStampError {
    /// The device error inside, if the device failed.
    pub fn build_error(&self) -> Option<&crate::ses::BuildError> {
        match self {
            DocumentStampError::Seal {
                source: SealError::Sign(e),
                ..
            } => Some(e),
            _ => None,
        }
    }
}

/// Opens document `row` in its request's upload and checks its SM3 against the approved one;
/// the handle reads the document alone, from its start.
fn open_checked(docs: &DocumentStore, row: &StampFileRow) -> Result<Section, DocumentStampError> {
    let f = &row.file;
    let unreadable = |why: String| DocumentStampError::Unreadable {
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
        return Err(DocumentStampError::Changed {
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

/// Checks every upload of request `id`, then seals each with `context` on up to
/// `free_sessions + 1` threads. Returns the signatures (in document order, each under the
/// upload's SM3, the digest approvers approved) and the sealed files' relative paths by
/// position. On failure no sealed file of this call is left behind.
pub fn seal_files(
    docs: &DocumentStore,
    context: &SealContext<'_>,
    id: RequestId,
    rows: &[StampFileRow],
    free_sessions: usize,
) -> Result<(Vec<SignedDocument>, Vec<SealedFile>), DocumentStampError> {
    // Every file first: one changed file means nothing at all is signed. The checked handles
    // are what the engine reads (a file replaced after the check is not the one sealed); a
    // very large batch is opened and hashed again per file instead, to bound open files.
    let keep = rows.len() <= KEEP_OPEN;
    let attempt = attempt_name();
    let attempt = attempt.as_str();
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
        let write = |e: std::io::Error| DocumentStampError::Write {
            n: f.n,
            name: f.name.clone(),
            why: e.to_string(),
        };
        let (temp, out) = docs.sealed_temp(id, f.n, attempt).map_err(write)?;
        let sealed = {
            let mut writer = BufWriter::new(&out);
            let sealed = seal_document(row, input, &mut writer, context);
            let flushed = writer.into_inner().map(|_| ()).map_err(|e| e.into_error());
            match (sealed, flushed) {
                (Ok(sealed), Ok(())) => Ok(sealed),
                (Err(source), _) => Err(DocumentStampError::Seal {
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
        let relative = match docs.commit_sealed(&temp, out, id, f.n, attempt) {
            Ok(relative) => relative,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(write(e));
            }
        };
        Ok((
            SignedDocument {
                digest: f.sm3,
                ses_signature: sealed,
            },
            (f.n, relative),
        ))
    });
    let results = results.and_then(|done| {
        docs.sync_sealed()
            .map_err(|e| DocumentStampError::Sync(e.to_string()))?;
        Ok(done)
    });
    match results {
        Ok(done) => Ok(done.into_iter().unzip()),
        Err(e) => {
            // Sealed files of this attempt that another thread finished: nothing names them.
            for row in rows {
                let _ = docs.remove(&DocumentStore::sealed_name(id, row.file.n, attempt));
            }
            Err(e)
        }
    }
}

/// A name for one signing attempt's files (random: attempts on different nodes never meet).
fn attempt_name() -> String {
    let mut random = [0u8; 4];
    let _ = getrandom::fill(&mut random);
    hex::encode(random)
}

/// Removes the sealed files `sealed` (their request was not marked signed after all).
pub fn discard(docs: &DocumentStore, sealed: &[SealedFile]) {
    for (_, relative) in sealed {
        let _ = docs.remove(relative);
    }
}
