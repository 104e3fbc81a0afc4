//! CMS SignedData (RFC 5652) with one signer, in both flavours seald meets: the RFC 5652 OIDs
//! (PAdES, ECDSA P-256 with SHA-256) and the GB/T 35275 / GM/T 0010 OIDs (SM2 with SM3).
//!
//! Shared by the OFD verifier (`Type="Sign"` signatures) and the PDF signer and verifier.
//! Modules: `parse` (a lenient reader keeping the original bytes), `build` (a detached
//! SignedData over a content digest, signed through a [`crate::ses::DocumentSigner`]),
//! `verify` (checks of one signer: signature, certificate, validity, chain) and `oid`.

mod build;
mod parse;
pub(crate) mod verify;

pub use build::{build_detached, max_detached_len, Profile};
pub(crate) use parse::strip_zeros;
pub use parse::{cert_issuer_serial, EssCertId, SignedAttrs, SignedData, SignerId, SignerInfo};
pub use verify::{verify_detached, Anchors, CmsChecks, CmsReport, ContentDigest, DigestAlgorithm};

/// Object identifiers used in SignedData.
pub mod oid {
    /// id-signedData (RFC 5652).
    pub const SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
    /// id-data (RFC 5652).
    pub const DATA: &str = "1.2.840.113549.1.7.1";
    /// SignedData, GB/T 35275.
    pub const SIGNED_DATA_GM: &str = "1.2.156.10197.6.1.4.2.2";
    /// Data, GB/T 35275.
    pub const DATA_GM: &str = "1.2.156.10197.6.1.4.2.1";
    /// SM3.
    pub const SM3: &str = "1.2.156.10197.1.401";
    /// SHA-256.
    pub const SHA256: &str = "2.16.840.1.101.3.4.2.1";
    /// SHA-384.
    pub const SHA384: &str = "2.16.840.1.101.3.4.2.2";
    /// SHA-512.
    pub const SHA512: &str = "2.16.840.1.101.3.4.2.3";
    /// SHA-1 (only to check a v1 signing-certificate attribute).
    pub const SHA1: &str = "1.3.14.3.2.26";
    /// SM2 signature with SM3.
    pub const SM2_SM3: &str = "1.2.156.10197.1.501";
    /// SM2 (as a key or "encryption" algorithm; some writers put it in signatureAlgorithm).
    pub const SM2: &str = "1.2.156.10197.1.301";
    /// SM2-1 signature (GM/T 0006), also seen in signatureAlgorithm.
    pub const SM2_1: &str = "1.2.156.10197.1.301.1";
    /// ecdsa-with-SHA256.
    pub const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
    /// ecdsa-with-SHA384.
    pub const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
    /// ecdsa-with-SHA512.
    pub const ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
    /// id-ecPublicKey (some writers put it in signatureAlgorithm).
    pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    /// content-type attribute.
    pub const CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
    /// message-digest attribute.
    pub const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
    /// signing-time attribute.
    pub const SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
    /// ESS signing-certificate attribute (RFC 2634, SHA-1).
    pub const SIGNING_CERTIFICATE: &str = "1.2.840.113549.1.9.16.2.12";
    /// ESS signing-certificate-v2 attribute (RFC 5035).
    pub const SIGNING_CERTIFICATE_V2: &str = "1.2.840.113549.1.9.16.2.47";
}
