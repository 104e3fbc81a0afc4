//! Software keys implementing [`PrehashSigner`], for tests only: seal keys belong in crypto devices.

use super::encoding::RawSignature;
use super::signer::{KeyAlgorithm, PrehashSigner, PublicKey, SignerError};

enum Key {
    Sm2(Box<sm2::dsa::SigningKey>),
    P256(Box<p256::ecdsa::SigningKey>),
}

/// A private key held in memory (tests and examples only).
pub struct SoftSigner {
    key: Key,
    public: PublicKey,
}

impl std::fmt::Debug for SoftSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SoftSigner({:?})", self.public)
    }
}

impl SoftSigner {
    /// An SM2 key from its 32-byte secret scalar.
    pub fn sm2_from_secret(secret: &[u8; 32]) -> Result<Self, SignerError> {
        use sm2::elliptic_curve::sec1::ToEncodedPoint;
        let key = sm2::dsa::SigningKey::from_slice(
            std::str::from_utf8(super::sm2z::DEFAULT_USER_ID)?,
            secret,
        )?;
        let point = sm2::PublicKey::from(key.verifying_key())
            .to_encoded_point(false)
            .as_bytes()
            .try_into()?;
        Ok(Self {
            key: Key::Sm2(Box::new(key)),
            public: PublicKey {
                algorithm: KeyAlgorithm::Sm2,
                point,
            },
        })
    }

    /// A P-256 key from its 32-byte secret scalar.
    pub fn p256_from_secret(secret: &[u8; 32]) -> Result<Self, SignerError> {
        let key = p256::ecdsa::SigningKey::from_slice(secret)?;
        let point = key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .try_into()?;
        Ok(Self {
            key: Key::P256(Box::new(key)),
            public: PublicKey {
                algorithm: KeyAlgorithm::P256,
                point,
            },
        })
    }

    /// A deterministic test key of `algorithm` derived from `seed` (never zero).
    pub fn from_seed(algorithm: KeyAlgorithm, seed: u8) -> Self {
        let mut secret = [0x11u8; 32];
        secret[31] = seed.max(1);
        secret[0] = 0x01;
        match algorithm {
            KeyAlgorithm::Sm2 => Self::sm2_from_secret(&secret),
            KeyAlgorithm::P256 => Self::p256_from_secret(&secret),
        }
        .unwrap_or_else(|e| unreachable!("fixed test secret is valid: {e}"))
    }
}

impl PrehashSigner for SoftSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign_prehash(&self, digest: &[u8; 32]) -> Result<RawSignature, SignerError> {
        use p256::ecdsa::signature::hazmat::PrehashSigner as _;
        let bytes: [u8; 64] = match &self.key {
            Key::Sm2(k) => {
                let sig: sm2::dsa::Signature = k.sign_prehash(digest)?;
                sig.to_bytes()
            }
            Key::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign_prehash(digest)?;
                sig.to_bytes().into()
            }
        };
        Ok(RawSignature(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::VerifyingKey;

    #[test]
    fn soft_signatures_verify_for_both_curves() {
        for alg in [KeyAlgorithm::Sm2, KeyAlgorithm::P256] {
            let signer = SoftSigner::from_seed(alg, 7);
            let vk = VerifyingKey::new(signer.public_key()).unwrap();
            let digest = vk.message_digest(b"hello");
            let sig = signer.sign_prehash(&digest).unwrap();
            vk.verify(b"hello", &sig).unwrap();
            assert!(vk.verify(b"hellO", &sig).is_err());
        }
    }
}
