//! Sealing a PDF: the engine's public interface. Knows nothing of HTTP or devices; it takes a
//! [`DocumentSigner`].
//!
//! Like the OFD engine, two steps: [`plan`] opens the PDF, checks it can be sealed and
//! resolves every placement to page boxes (the same [`Placement`]s and [`SealPlan`] as OFD;
//! `page_ref` is the page's object number, `"12 0"`); [`seal`] appends one incremental update
//! (the original bytes are copied unchanged) with a signature field whose widgets draw the
//! seal picture on each stamp's page, and a `/V` signature dictionary whose `/Contents` holds
//! the signature over the `/ByteRange` (the whole new file but `/Contents`).

use time::OffsetDateTime;

use crate::ofd::seal::{Placement, SealError, SealMode, SealPlan};
use crate::ses::DocumentSigner;

/// What goes into `/Contents`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PdfSignatureForm {
    /// CMS SignedData: PAdES baseline (`ETSI.CAdES.detached`) for P-256 seals, GB/T 35275
    /// SM2 SignedData (`adbe.pkcs7.detached`) for SM2 seals (default).
    #[default]
    Cms,
    /// A GB/T 38540 SES_Signature (SM2 seals; dataHash = SM3 over the ByteRange), as some
    /// Chinese readers expect; `/SubFilter /adbe.pkcs7.detached` as they write it.
    Ses,
}

/// Engine options that are not per placement.
#[derive(Debug, Clone, Default)]
pub struct PdfSealOptions {
    /// What `/Contents` holds.
    pub form: PdfSignatureForm,
    /// Certificates of the signer's chain (DER, signer's issuer first) to include in the CMS.
    pub chain: Vec<Vec<u8>>,
    /// `/Reason`, if any (e.g. the request's purpose).
    pub reason: Option<String>,
}

/// The result of [`seal`].
#[derive(Debug, Clone)]
pub struct SealedPdf {
    /// The new signature field's name (`/T`).
    pub field_name: String,
    /// The bytes written into `/Contents` (CMS SignedData or SES_Signature DER), unpadded.
    pub contents: Vec<u8>,
    /// The digest the signature covers (SM3 or SHA-256 over the ByteRange).
    pub byte_range_digest: [u8; 32],
    /// `/ByteRange`.
    pub byte_range: [u64; 4],
}

/// Opens the PDF, checks that it can be sealed in `mode` and resolves `placements` with the
/// seal picture's size `seal_size_mm` (width, height). Signs nothing. Errors are about the
/// input (see [`SealError::is_input_error`]).
pub fn plan(
    input: &[u8],
    placements: &[Placement],
    seal_size_mm: (f64, f64),
    mode: SealMode,
) -> Result<SealPlan, SealError> {
    let _ = (input, placements, seal_size_mm, mode);
    Err(SealError::Structure("PDF sealing is not built yet".into()))
}

/// Seals `input` with the stamps of `plan` (from [`plan`] on the same bytes): returns the
/// whole new file (the original bytes, then one incremental update) and what was signed.
/// `signer` signs once, at `time`.
pub fn seal(
    input: &[u8],
    plan: &SealPlan,
    options: &PdfSealOptions,
    signer: &DocumentSigner<'_>,
    time: OffsetDateTime,
) -> Result<(Vec<u8>, SealedPdf), SealError> {
    let _ = (input, plan, options, signer, time);
    Err(SealError::Structure("PDF sealing is not built yet".into()))
}
