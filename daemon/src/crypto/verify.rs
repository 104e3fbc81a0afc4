//! Software signature verification for SM2 (over e = SM3(Z ‖ M)) and ECDSA P-256 (over SHA-256),
//! with verification keys and Z built once per key and cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use p256::ecdsa::signature::hazmat::PrehashVerifier;

use super::digest::sha256;
use super::encoding::RawSignature;
use super::signer::{KeyAlgorithm, PublicKey};
use super::sm2z::{e_digest, z_a, DEFAULT_USER_ID};

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The public key is not a point on its curve.
    #[error("the public key is not a valid {0:?} point")]
    BadKey(KeyAlgorithm),
    /// r or s is zero or not below the curve order.
    #[error("the signature values r, s are out of range")]
    MalformedSignature,
    /// The signature does not match the data and key.
    #[error("the signature does not match the signed data and public key")]
    Mismatch,
}

#[derive(Clone)]
enum Inner {
    Sm2 {
        key: Box<sm2::dsa::VerifyingKey>,
        z: [u8; 32],
    },
    P256(Box<p256::ecdsa::VerifyingKey>),
}

/// A public key ready to verify: the curve point is decoded and, for SM2, Z is computed once.
#[derive(Clone)]
pub struct VerifyingKey {
    public: PublicKey,
    inner: Inner,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("public", &self.public)
            .finish()
    }
}

/// Most keys kept in the process-wide cache before it is emptied.
const CACHE_LIMIT: usize = 4096;

fn cache() -> &'static Mutex<HashMap<PublicKey, Arc<VerifyingKey>>> {
    static CACHE: OnceLock<Mutex<HashMap<PublicKey, Arc<VerifyingKey>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

impl VerifyingKey {
    /// Builds a verifying key with the default SM2 user ID (ignored for P-256).
    pub fn new(public: &PublicKey) -> Result<Self, VerifyError> {
        Self::with_user_id(public, DEFAULT_USER_ID)
    }

    /// Builds a verifying key whose SM2 Z uses `user_id`.
    pub fn with_user_id(public: &PublicKey, user_id: &[u8]) -> Result<Self, VerifyError> {
        let inner = match public.algorithm {
            KeyAlgorithm::Sm2 => {
                // The crate's own Z is unused: we verify over our e, computed with `user_id`.
                let key =
                    sm2::dsa::VerifyingKey::from_sec1_bytes("1234567812345678", &public.point)
                        .map_err(|_| VerifyError::BadKey(KeyAlgorithm::Sm2))?;
                let z = z_a(&public.point, user_id)
                    .map_err(|_| VerifyError::BadKey(KeyAlgorithm::Sm2))?;
                Inner::Sm2 {
                    key: Box::new(key),
                    z,
                }
            }
            KeyAlgorithm::P256 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public.point)
                    .map_err(|_| VerifyError::BadKey(KeyAlgorithm::P256))?;
                Inner::P256(Box::new(key))
            }
        };
        Ok(Self {
            public: public.clone(),
            inner,
        })
    }

    /// The key with the default user ID from a process-wide cache, built on first use.
    pub fn cached(public: &PublicKey) -> Result<Arc<Self>, VerifyError> {
        let map = cache();
        if let Some(key) = map.lock().unwrap_or_else(|p| p.into_inner()).get(public) {
            return Ok(Arc::clone(key));
        }
        let key = Arc::new(Self::new(public)?);
        let mut guard = map.lock().unwrap_or_else(|p| p.into_inner());
        if guard.len() >= CACHE_LIMIT {
            guard.clear();
        }
        guard.insert(public.clone(), Arc::clone(&key));
        Ok(key)
    }

    /// The public key this verifies for.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// SM2: Z_A of this key; P-256: `None`.
    pub fn z(&self) -> Option<&[u8; 32]> {
        match &self.inner {
            Inner::Sm2 { z, .. } => Some(z),
            Inner::P256(_) => None,
        }
    }

    /// The digest a signer signs for `message`: e = SM3(Z ‖ M) for SM2, SHA-256(M) for P-256.
    pub fn message_digest(&self, message: &[u8]) -> [u8; 32] {
        match &self.inner {
            Inner::Sm2 { z, .. } => e_digest(z, message),
            Inner::P256(_) => sha256(message),
        }
    }

    /// Verifies a signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &RawSignature) -> Result<(), VerifyError> {
        self.verify_digest(&self.message_digest(message), signature)
    }

    /// Verifies a signature over an already computed digest (see [`Self::message_digest`]).
    pub fn verify_digest(
        &self,
        digest: &[u8; 32],
        signature: &RawSignature,
    ) -> Result<(), VerifyError> {
        match &self.inner {
            Inner::Sm2 { key, .. } => {
                let sig = sm2::dsa::Signature::from_slice(&signature.0)
                    .map_err(|_| VerifyError::MalformedSignature)?;
                key.verify_prehash(digest, &sig)
                    .map_err(|_| VerifyError::Mismatch)
            }
            Inner::P256(key) => {
                let sig = p256::ecdsa::Signature::from_slice(&signature.0)
                    .map_err(|_| VerifyError::MalformedSignature)?;
                key.verify_prehash(digest, &sig)
                    .map_err(|_| VerifyError::Mismatch)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sm2z::tests::annex_a_point;

    fn annex_a_sig() -> RawSignature {
        let mut raw = [0u8; 64];
        hex::decode_to_slice(
            "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3\
             B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA",
            &mut raw,
        )
        .unwrap();
        RawSignature(raw)
    }

    #[test]
    fn annex_a_signature_verifies_and_tampering_fails() {
        let key = VerifyingKey::new(&PublicKey {
            algorithm: KeyAlgorithm::Sm2,
            point: annex_a_point(),
        })
        .unwrap();
        let sig = annex_a_sig();
        key.verify(b"message digest", &sig).unwrap();
        assert_eq!(
            key.verify(b"message digest!", &sig),
            Err(VerifyError::Mismatch)
        );
        let mut bad = sig;
        bad.0[63] ^= 1;
        assert!(key.verify(b"message digest", &bad).is_err());
        // The DER form reads back to the same values and verifies too.
        let der = sig.to_der();
        key.verify(b"message digest", &RawSignature::from_any(&der).unwrap())
            .unwrap();
        // Zero r is out of range, not a panic.
        assert_eq!(
            key.verify(b"message digest", &RawSignature([0u8; 64])),
            Err(VerifyError::MalformedSignature)
        );
    }

    #[test]
    fn cache_returns_the_same_key() {
        let public = PublicKey {
            algorithm: KeyAlgorithm::Sm2,
            point: annex_a_point(),
        };
        let a = VerifyingKey::cached(&public).unwrap();
        let b = VerifyingKey::cached(&public).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(
            a.z(),
            Some(&crate::crypto::sm2z::z_a(&public.point, DEFAULT_USER_ID).unwrap())
        );
    }

    #[test]
    fn off_curve_point_is_a_bad_key() {
        let mut point = annex_a_point();
        point[64] ^= 1;
        let public = PublicKey {
            algorithm: KeyAlgorithm::Sm2,
            point,
        };
        assert_eq!(
            VerifyingKey::new(&public).unwrap_err(),
            VerifyError::BadKey(KeyAlgorithm::Sm2)
        );
        let public = PublicKey {
            algorithm: KeyAlgorithm::P256,
            point,
        };
        assert!(VerifyingKey::new(&public).is_err());
    }
}
