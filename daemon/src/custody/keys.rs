//! Key lifecycle for custodians: generate on the device, request a certificate, import the
//! CA's answer only when it certifies that very key.

use std::sync::Arc;

use crate::cert::{CertError, Certificate};
use crate::crypto::PublicKey;
use crate::device::{
    generate_key_pair, store_certificate, DeviceError, KeySelector, NewKeyPair, TokenKey,
    TokenOwner,
};

use super::csr::{build_csr, CsrError, Subject};

/// Why a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The device refused or failed.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The request could not be built or signed.
    #[error(transparent)]
    Csr(#[from] CsrError),
    /// The certificate file is unreadable.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The certificate certifies some other key.
    #[error("this certificate is for another key: its public key ({cert_key}) is not the public key of the token key with CKA_ID {id} ({token_key}); it was not imported")]
    ForAnotherKey {
        /// CKA_ID, hex.
        id: String,
        /// The certificate's key, hex (first bytes).
        cert_key: String,
        /// The token key, hex (first bytes).
        token_key: String,
    },
}

/// Generates a key pair on a logged-in token and returns its public half.
pub fn generate(owner: &TokenOwner, spec: &NewKeyPair) -> Result<PublicKey, KeyError> {
    Ok(generate_key_pair(owner, spec)?)
}

/// Makes a PKCS#10 request for the key with CKA_ID `id`, signed on the (logged-in) device.
pub fn csr(owner: Arc<TokenOwner>, id: &[u8], subject: &Subject) -> Result<Vec<u8>, KeyError> {
    let key = TokenKey::open(owner, KeySelector::Id(id.to_vec()))?;
    Ok(build_csr(subject, &key)?)
}

fn short(point: &[u8; 65]) -> String {
    format!("{}…", hex::encode(&point[1..9]))
}

/// Reads a certificate from PEM or DER bytes.
pub fn read_certificate(bytes: &[u8]) -> Result<Certificate, KeyError> {
    if bytes.first() == Some(&0x30) {
        return Ok(Certificate::from_der(bytes)?);
    }
    for pem in x509_parser::pem::Pem::iter_from_buffer(bytes) {
        let pem = pem.map_err(|e| CertError::Malformed(format!("PEM: {e}")))?;
        if pem.label == "CERTIFICATE" {
            return Ok(Certificate::from_der(&pem.contents)?);
        }
    }
    Err(CertError::Malformed("no CERTIFICATE in the file".into()).into())
}

/// Stores `cert` on the token with CKA_ID `id`, after checking that its public key is the token
/// key's (same curve, same point). Returns the certificate's subject for messages.
pub fn import_certificate(
    owner: Arc<TokenOwner>,
    id: &[u8],
    cert: &Certificate,
    label: &str,
) -> Result<String, KeyError> {
    let key = TokenKey::open(owner.clone(), KeySelector::Id(id.to_vec()))?;
    let token_key = crate::crypto::PrehashSigner::public_key(&key);
    let cert_key = cert.public_key()?;
    if cert_key != token_key {
        return Err(KeyError::ForAnotherKey {
            id: hex::encode(id),
            cert_key: short(&cert_key.point),
            token_key: short(&token_key.point),
        });
    }
    store_certificate(&owner, id, label, cert.subject_raw(), cert.der())?;
    Ok(cert.facts().display_name())
}
