//! X.509 certificates with SM2 and P-256 keys: facts for the registry, signatures checked by us
//! (x509-parser does not know SM2), chains to configured roots, validity and key usage.

mod chain;
mod parse;
#[cfg(any(test, feature = "test-keys"))]
pub mod testing;

use time::OffsetDateTime;

use crate::crypto::{KeyAlgorithm, PublicKey};

pub use chain::{TrustRoots, TrustStore};
pub use parse::{Certificate, StatusUrls};

/// OID of SM2-with-SM3 signatures.
pub const OID_SM2_SM3: &str = "1.2.156.10197.1.501";
/// OID of ecdsa-with-SHA256 signatures.
pub const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
/// OID of the SM2 curve (and, in some certificates, of the SM2 key algorithm itself).
pub const OID_SM2_CURVE: &str = "1.2.156.10197.1.301";
/// OID of NIST P-256 (prime256v1).
pub const OID_P256_CURVE: &str = "1.2.840.10045.3.1.7";
/// OID of id-ecPublicKey.
pub const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";

/// Why a certificate was rejected. Each variant names one reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The bytes are not an X.509 certificate.
    #[error("not a readable X.509 certificate: {0}")]
    Malformed(String),
    /// Past its notAfter at the time of judgement.
    #[error("certificate {subject} expired on {} (judged at {})", rfc3339(.not_after), rfc3339(.at))]
    Expired {
        /// Subject CN (or DN).
        subject: String,
        /// Its notAfter.
        not_after: OffsetDateTime,
        /// When it was judged.
        at: OffsetDateTime,
    },
    /// Before its notBefore at the time of judgement.
    #[error("certificate {subject} is not valid before {} (judged at {})", rfc3339(.not_before), rfc3339(.at))]
    NotYetValid {
        /// Subject CN (or DN).
        subject: String,
        /// Its notBefore.
        not_before: OffsetDateTime,
        /// When it was judged.
        at: OffsetDateTime,
    },
    /// No configured root or supplied intermediate issued it.
    #[error(
        "the issuer of {subject} ({issuer}) is not a configured trust root or known intermediate"
    )]
    UnknownIssuer {
        /// Subject CN (or DN).
        subject: String,
        /// Issuer DN.
        issuer: String,
    },
    /// The issuer's key does not verify the certificate's signature.
    #[error("the signature on certificate {subject} does not verify with its issuer's key")]
    BadSignature {
        /// Subject CN (or DN).
        subject: String,
    },
    /// Key usage forbids what the certificate is used for.
    #[error("certificate {subject} may not be used for {wanted}")]
    WrongKeyUsage {
        /// Subject CN (or DN).
        subject: String,
        /// What it was used for.
        wanted: &'static str,
    },
    /// A key or signature algorithm seald does not handle.
    #[error("unsupported algorithm {0} (seald handles SM2/SM3 and ECDSA P-256/SHA-256)")]
    UnsupportedAlgorithm(String),
    /// The chain is longer than any real one.
    #[error("the certificate chain is longer than {0} certificates")]
    ChainTooLong(usize),
}

/// A time as RFC 3339 text, for messages.
pub fn rfc3339(t: &OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Key usage bits relevant to seals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KeyUsageFacts {
    /// digitalSignature
    pub digital_signature: bool,
    /// nonRepudiation (contentCommitment)
    pub non_repudiation: bool,
    /// keyCertSign
    pub key_cert_sign: bool,
    /// cRLSign
    pub crl_sign: bool,
}

/// What the registry needs to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertFacts {
    /// Subject organisation (O), if any.
    pub subject_o: Option<String>,
    /// Subject common name (CN), if any.
    pub subject_cn: Option<String>,
    /// Subject distinguished name as text.
    pub subject: String,
    /// Issuer distinguished name as text.
    pub issuer: String,
    /// Serial number, lowercase hex of its DER bytes.
    pub serial_hex: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// The subject key, when it is SM2 or P-256.
    #[serde(serialize_with = "ser_public_key")]
    pub public_key: Option<PublicKey>,
    /// The key usage extension, if present (absent means unrestricted).
    pub key_usage: Option<KeyUsageFacts>,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// SM3 of the certificate's DER, hex (a stable identifier).
    pub sm3_fingerprint: String,
}

fn ser_public_key<S: serde::Serializer>(key: &Option<PublicKey>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    match key {
        None => s.serialize_none(),
        Some(k) => {
            let mut st = s.serialize_struct("PublicKey", 2)?;
            st.serialize_field("algorithm", &k.algorithm)?;
            st.serialize_field("point", &hex::encode(k.point))?;
            st.end()
        }
    }
}

impl CertFacts {
    /// The CN if present, else the subject DN: how errors name a certificate.
    pub fn display_name(&self) -> String {
        self.subject_cn
            .clone()
            .unwrap_or_else(|| self.subject.clone())
    }
}

/// The signature algorithm of a signature OID, if seald handles it.
pub fn signature_algorithm(oid: &str) -> Option<KeyAlgorithm> {
    match oid {
        OID_SM2_SM3 => Some(KeyAlgorithm::Sm2),
        OID_ECDSA_SHA256 => Some(KeyAlgorithm::P256),
        _ => None,
    }
}

/// The signature OID seald writes for keys of `algorithm`.
pub fn signature_oid(algorithm: KeyAlgorithm) -> &'static str {
    match algorithm {
        KeyAlgorithm::Sm2 => OID_SM2_SM3,
        KeyAlgorithm::P256 => OID_ECDSA_SHA256,
    }
}

#[cfg(test)]
mod tests;
