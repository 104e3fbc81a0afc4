//! The `/Contents` of a PDF signature: building and reading CMS SignedData (RFC 5652).
//!
//! - P-256 seals: PAdES baseline B-B (`/SubFilter /ETSI.CAdES.detached`): signed attributes
//!   content-type, message-digest (SHA-256 over the ByteRange), signing-certificate-v2; the
//!   signer certificate and chain included; ECDSA with SHA-256 over DER(SET OF attributes).
//! - SM2 seals: GB/T 35275 SignedData (`1.2.156.10197.6.1.4.2.2`, data `…4.2.1`, SM3
//!   `1.2.156.10197.1.401`, SM2 `1.2.156.10197.1.501`), signed attributes content-type,
//!   signing-time, message-digest (SM3 over the ByteRange), SM2 with the default user ID.

use time::OffsetDateTime;

use crate::crypto::KeyAlgorithm;
use crate::ses::{BuildError, DocumentSigner};

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
    let _ = (signer, chain, content_digest, time);
    Err(BuildError::Unsupported("PDF CMS is not built yet"))
}

/// An upper bound on the length of [`signed_data`]'s result for this signer and chain (the
/// `/Contents` placeholder is sized from it).
pub fn max_signed_data_len(signer: &DocumentSigner<'_>, chain: &[Vec<u8>]) -> usize {
    let _ = signer;
    4096 + chain.iter().map(Vec::len).sum::<usize>()
}
