//! PDF documents (ISO 32000): sealing with an incremental update (earlier bytes untouched, so
//! earlier signatures stay valid) and verifying every signature of a sealed PDF.
//!
//! Knows nothing of devices or HTTP; signs through a [`crate::ses::DocumentSigner`]. Parsing
//! and object writing use `lopdf`; this module bounds what it is given first.
//!
//! Modules: `seal` (plan and incremental update with a visible seal), `cms` (the `/Contents`:
//! CMS SignedData, PAdES for P-256 and GB/T 35275 for SM2, or a GB/T 38540 SES_Signature),
//! `verify` (every signature: ByteRange, digest, CMS, certificate, later revisions), `sample`
//! (PDFs generated for tests and benchmarks).

pub mod cms;
pub mod sample;
pub mod seal;
mod verify;

pub use verify::{verify_pdf, ChangesAfter, PdfReport, PdfSignatureReport, MAX_REVISIONS};

/// Largest PDF seald reads (bytes).
pub const MAX_PDF: usize = 256 << 20;
/// Most objects a PDF may declare (its xref `/Size`, every revision together).
pub const MAX_OBJECTS: u32 = 1_000_000;

/// Why bytes are not a PDF seald can read. Always the input's fault.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// No `%PDF-` header.
    #[error("not a PDF (it does not start with %PDF-)")]
    NotPdf,
    /// Encrypted PDFs are refused: seald cannot show or seal what it cannot read.
    #[error("the PDF is encrypted; remove the password protection before sealing or verifying it")]
    Encrypted,
    /// Larger than the caps ([`MAX_PDF`], [`MAX_OBJECTS`]).
    #[error("the PDF is too large: {0}")]
    TooLarge(String),
    /// The structure cannot be read (broken xref, trailer, page tree, …).
    #[error("the PDF structure is unreadable: {0}")]
    Unreadable(String),
}

/// True when `bytes` start like a PDF (`%PDF-`, allowing up to 1 KiB of leading junk as
/// readers do).
pub fn is_pdf(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    head.windows(5).any(|w| w == b"%PDF-")
}
