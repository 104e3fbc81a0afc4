//! RFC 3161 trusted time for SES_Signatures (GB/T 38540 `SES_Signature.timeStamp`).
//!
//! After the device signs, seald asks a time-stamping authority (TSA) for a token over the
//! signature value (the BIT STRING contents of `SES_Signature.signature`), checks the token
//! before it uses it (imprint and nonce, the TSA's signature, the TSA certificate's chain to the
//! configured TSA roots and its extended key usage `timeStamping`) and puts the token's bytes
//! into the signature. The verifier checks a token it finds the same way and then judges the
//! signer certificate's validity at the token's `genTime` instead of the self-written
//! `timeInfo`.
//!
//! - [`request`]: the TimeStampReq (version 1, messageImprint SM3 or SHA-256, a random 64-bit
//!   nonce, certReq true);
//! - [`response`]: the TimeStampResp (PKIStatus, failInfo, the token);
//! - [`token`]: the TimeStampToken (CMS SignedData over a TSTInfo) and its checks;
//! - [`client`]: the HTTP POST (`application/timestamp-query`) with a timeout, and the
//!   [`Stamper`] the signing worker hands to the SES builder, which applies the policy.

pub mod client;
pub mod request;
pub mod response;
pub mod token;

pub use client::{Stamper, TsaClient, TsaOutcome};
pub use request::TimeStampReq;
pub use response::{PkiStatus, TimeStampResp};
pub use token::{TimeStampToken, TokenFacts};

use crate::crypto::{sha256, sm3};

/// OID of SM3.
pub const OID_SM3: &str = "1.2.156.10197.1.401";
/// OID of SHA-256.
pub const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
/// OID of SHA-1 (read in ESS signing-certificate attributes only).
pub const OID_SHA1: &str = "1.3.14.3.2.26";
/// OID of id-ct-TSTInfo, the content type of a timestamp token.
pub const OID_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";
/// OID of CMS SignedData.
pub const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
/// OID of the extended key usage timeStamping.
pub const OID_KP_TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";

/// The digest of the message imprint (and, for SM2 TSAs, of the token's signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    /// SM3 (GB/T 32905), OID 1.2.156.10197.1.401.
    #[default]
    Sm3,
    /// SHA-256, OID 2.16.840.1.101.3.4.2.1.
    Sha256,
}

impl HashAlgorithm {
    /// Its OID, dotted.
    pub fn oid(self) -> &'static str {
        match self {
            HashAlgorithm::Sm3 => OID_SM3,
            HashAlgorithm::Sha256 => OID_SHA256,
        }
    }

    /// Its name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sm3 => "SM3",
            HashAlgorithm::Sha256 => "SHA-256",
        }
    }

    /// The algorithm of a dotted OID, if seald handles it.
    pub fn from_oid(oid: &str) -> Option<Self> {
        match oid {
            OID_SM3 => Some(HashAlgorithm::Sm3),
            OID_SHA256 => Some(HashAlgorithm::Sha256),
            _ => None,
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> [u8; 32] {
        match self {
            HashAlgorithm::Sm3 => sm3(data),
            HashAlgorithm::Sha256 => sha256(data),
        }
    }
}

/// What happens when no timestamp can be had for a signature.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Deserialize,
    serde::Serialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum TsaPolicy {
    /// No timestamp is asked for.
    #[default]
    Off,
    /// A timestamp is asked for; without one the signature is kept, with a warning in the
    /// log and a `timestamp` usage record saying why.
    BestEffort,
    /// A timestamp is asked for; without one the request fails and nothing is released.
    Required,
}

impl TsaPolicy {
    /// As written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            TsaPolicy::Off => "off",
            TsaPolicy::BestEffort => "best-effort",
            TsaPolicy::Required => "required",
        }
    }
}

/// Why no usable timestamp came back. Every variant names the TSA.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsaError {
    /// The TSA could not be reached or did not answer in time.
    #[error("the time-stamping authority at {url} could not be reached: {reason}")]
    Unreachable {
        /// The TSA's URL.
        url: String,
        /// What went wrong (connection refused, timeout, …).
        reason: String,
    },
    /// The TSA answered with an HTTP error or a wrong content type.
    #[error("the time-stamping authority at {url} answered {what}")]
    Http {
        /// The TSA's URL.
        url: String,
        /// The status line or content type.
        what: String,
    },
    /// The TSA refused the request (PKIStatus rejection, waiting, …).
    #[error("the time-stamping authority at {url} refused the request: {status}")]
    Refused {
        /// The TSA's URL.
        url: String,
        /// PKIStatus, failInfo and statusString, in words.
        status: String,
    },
    /// The answer is not a readable TimeStampResp.
    #[error("the time-stamping authority at {url} sent an unreadable answer: {reason}")]
    Malformed {
        /// The TSA's URL.
        url: String,
        /// What could not be read.
        reason: String,
    },
    /// The token failed a check (imprint, nonce, signature, chain, key usage).
    #[error("the timestamp token from {url} was not accepted: {reason}")]
    BadToken {
        /// The TSA's URL.
        url: String,
        /// Which check failed.
        reason: String,
    },
}

#[cfg(test)]
mod tests;
