//! The `/Contents` of a PDF signature: building and reading CMS SignedData (RFC 5652).
//!
//! - P-256 seals: PAdES baseline B-B (`/SubFilter /ETSI.CAdES.detached`): signed attributes
//!   content-type, message-digest (SHA-256 over the ByteRange), signing-certificate-v2; the
//!   signer certificate and chain included; ECDSA with SHA-256 over DER(SET OF attributes). No
//!   signing-time attribute (PAdES forbids it): the claimed time is the signature's `/M`.
//! - SM2 seals: GB/T 35275 SignedData (`1.2.156.10197.6.1.4.2.2`, data `…4.2.1`, SM3
//!   `1.2.156.10197.1.401`, SM2 `1.2.156.10197.1.501`), signed attributes content-type,
//!   signing-time, message-digest (SM3 over the ByteRange), SM2 with the default user ID.
//!
//! The DER itself is written and read by [`crate::cms`], shared with OFD signatures.

use time::OffsetDateTime;

use crate::cms::{verify_detached, ContentDigest};
use crate::crypto::KeyAlgorithm;
use crate::ses::{BuildError, DocumentSigner};

pub use crate::cms::CmsReport;

/// `/SubFilter` for a CMS signature by a key of `algorithm`.
pub fn sub_filter(algorithm: KeyAlgorithm) -> &'static str {
    match algorithm {
        KeyAlgorithm::P256 => "ETSI.CAdES.detached",
        KeyAlgorithm::Sm2 => "adbe.pkcs7.detached",
    }
}

/// A detached CMS SignedData over content whose digest is `content_digest` (SHA-256 for P-256,
/// SM3 for SM2), signed by `signer` at `time`, with `chain` (DER) after the signer's
/// certificate. The device's signature is verified before this returns.
pub fn signed_data(
    signer: &DocumentSigner<'_>,
    chain: &[Vec<u8>],
    content_digest: &[u8; 32],
    time: OffsetDateTime,
) -> Result<Vec<u8>, BuildError> {
    crate::cms::build_detached(signer, chain, content_digest, time)
}

/// An upper bound on the length of [`signed_data`]'s result for this signer and chain (the
/// `/Contents` placeholder is sized from it): exact but for the signature, counted at its
/// longest DER (72 bytes). No device call.
pub fn max_signed_data_len(signer: &DocumentSigner<'_>, chain: &[Vec<u8>]) -> usize {
    crate::cms::max_detached_len(signer, chain)
}

/// Verifies a `/Contents` SignedData (zero padding allowed) over the ByteRange pieces
/// `signed`; `claimed_time` (the `/M`) judges the certificate when there is no signing-time
/// attribute. `Err` when the bytes are not a readable SignedData.
pub fn verify_contents(
    contents: &[u8],
    signed: &[&[u8]],
    anchors: crate::cms::Anchors<'_>,
    claimed_time: Option<OffsetDateTime>,
) -> Result<CmsReport, String> {
    verify_detached(
        contents,
        ContentDigest::Chunks(signed),
        anchors,
        claimed_time,
    )
}

#[cfg(test)]
mod tests;
