//! The seam between formats and devices: something that signs a 32-byte digest with a key it holds.
//!
//! `ses` builds the bytes to sign and computes the digest in software (for SM2, e = SM3(Z ‖ M));
//! the device layer implements [`PrehashSigner`] by asking the token to sign that digest.

use std::fmt;

use super::encoding::RawSignature;

/// The curve and signature scheme of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// SM2 (GB/T 32918) on the SM2 recommended curve, signatures over e = SM3(Z ‖ M).
    Sm2,
    /// ECDSA on NIST P-256, signatures over SHA-256(M).
    P256,
}

/// An uncompressed public key point `04 ‖ x ‖ y` and its algorithm.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PublicKey {
    /// Which curve the point is on.
    pub algorithm: KeyAlgorithm,
    /// `04 ‖ x ‖ y`, 65 bytes.
    pub point: [u8; 65],
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({:?}, {})",
            self.algorithm,
            hex::encode(self.point)
        )
    }
}

/// A signing failure, carrying the device's own typed error.
pub type SignerError = Box<dyn std::error::Error + Send + Sync>;

/// Signs a digest computed by the caller. Implemented by token keys and (in tests) software keys.
pub trait PrehashSigner: Send + Sync {
    /// The key that verifies this signer's signatures.
    fn public_key(&self) -> &PublicKey;

    /// Signs a 32-byte digest: e = SM3(Z ‖ M) for SM2, SHA-256(M) for P-256.
    fn sign_prehash(&self, digest: &[u8; 32]) -> Result<RawSignature, SignerError>;

    /// The digest of `message` computed by the signer's device, for a device set to make it
    /// itself (`None`: the caller computes it).
    fn device_digest(&self, _message: &[u8]) -> Option<Result<[u8; 32], SignerError>> {
        None
    }
}
