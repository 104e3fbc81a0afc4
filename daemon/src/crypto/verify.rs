//! Software signature verification for SM2 (over e = SM3(Z ‖ M)) and ECDSA P-256 (over SHA-256),
//! with verification keys and Z built once per key and cached.
//!
//! Verification uses the precomputed tables of [`super::table`]: the generator's, and for a
//! key from [`VerifyingKey::cached`] its own, built after a few verifications (SM2: the second,
//! P-256: the 32nd; see `FastCurve::TABLE_AFTER`). [`VerifyingKey::verify_digest_reference`]
//! keeps the `sm2`/`p256` crates' generic verification as the reference for tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use p256::ecdsa::signature::hazmat::PrehashVerifier;

use super::digest::sha256;
use super::encoding::RawSignature;
use super::signer::{KeyAlgorithm, PublicKey};
use super::sm2z::{e_digest, z_a, DEFAULT_USER_ID};
use super::table::{verify_ecdsa, verify_sm2, KeyPoint, LazyTable};

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
        table: Option<Arc<LazyTable<sm2::Sm2>>>,
    },
    P256 {
        key: Box<p256::ecdsa::VerifyingKey>,
        table: Option<Arc<LazyTable<p256::NistP256>>>,
    },
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
                    table: None,
                }
            }
            KeyAlgorithm::P256 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public.point)
                    .map_err(|_| VerifyError::BadKey(KeyAlgorithm::P256))?;
                Inner::P256 {
                    key: Box::new(key),
                    table: None,
                }
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
        let key = Arc::new(Self::new(public)?.with_lazy_table());
        let mut guard = map.lock().unwrap_or_else(|p| p.into_inner());
        if guard.len() >= CACHE_LIMIT {
            guard.clear();
        }
        guard.insert(public.clone(), Arc::clone(&key));
        Ok(key)
    }

    /// This key with its precomputed table (58.5 KiB) built now.
    pub fn with_table(mut self) -> Self {
        match &mut self.inner {
            Inner::Sm2 { key, table, .. } => {
                *table = Some(Arc::new(LazyTable::built(&(*key.as_affine()).into())));
            }
            Inner::P256 { key, table } => {
                *table = Some(Arc::new(LazyTable::built(&(*key.as_affine()).into())));
            }
        }
        self
    }

    /// This key with its precomputed table (58.5 KiB) built after a few verifications.
    pub fn with_lazy_table(mut self) -> Self {
        match &mut self.inner {
            Inner::Sm2 { table, .. } => *table = Some(Arc::default()),
            Inner::P256 { table, .. } => *table = Some(Arc::default()),
        }
        self
    }

    /// Whether this key's precomputed table is built.
    pub fn has_table(&self) -> bool {
        match &self.inner {
            Inner::Sm2 { table, .. } => table.as_ref().is_some_and(|t| t.is_built()),
            Inner::P256 { table, .. } => table.as_ref().is_some_and(|t| t.is_built()),
        }
    }

    /// The public key this verifies for.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// SM2: Z_A of this key; P-256: `None`.
    pub fn z(&self) -> Option<&[u8; 32]> {
        match &self.inner {
            Inner::Sm2 { z, .. } => Some(z),
            Inner::P256 { .. } => None,
        }
    }

    /// The digest a signer signs for `message`: e = SM3(Z ‖ M) for SM2, SHA-256(M) for P-256.
    pub fn message_digest(&self, message: &[u8]) -> [u8; 32] {
        match &self.inner {
            Inner::Sm2 { z, .. } => e_digest(z, message),
            Inner::P256 { .. } => sha256(message),
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
            Inner::Sm2 { key, table, .. } => {
                let point = (*key.as_affine()).into();
                let q = match table {
                    Some(table) => table.key_point(&point),
                    None => KeyPoint::Point(&point),
                };
                verify_sm2(q, digest, &signature.0)
            }
            Inner::P256 { key, table } => {
                let point = (*key.as_affine()).into();
                let q = match table {
                    Some(table) => table.key_point(&point),
                    None => KeyPoint::Point(&point),
                };
                verify_ecdsa(q, digest, &signature.0)
            }
        }
    }

    /// [`Self::verify_digest`] with the `sm2`/`p256` crates' own generic verification
    /// (no precomputation): the reference the fast path is tested against.
    pub fn verify_digest_reference(
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
            Inner::P256 { key, .. } => {
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
    use crate::crypto::soft::SoftSigner;
    use crate::crypto::table::FastCurve;
    use crate::crypto::PrehashSigner;

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

    /// xorshift64*: reproducible test randomness.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn bytes32(&mut self) -> [u8; 32] {
            let mut out = [0u8; 32];
            for chunk in out.chunks_mut(8) {
                chunk.copy_from_slice(&self.next().to_be_bytes());
            }
            out
        }
    }

    /// The curve order n, big-endian.
    fn order(alg: KeyAlgorithm) -> [u8; 32] {
        use primeorder::elliptic_curve::Curve;
        let n = match alg {
            KeyAlgorithm::Sm2 => sm2::Sm2::ORDER,
            KeyAlgorithm::P256 => p256::NistP256::ORDER,
        };
        use primeorder::elliptic_curve::bigint::ArrayEncoding;
        n.to_be_byte_array().into()
    }

    /// Big-endian 256-bit a + b, or `None` on overflow.
    fn add256(a: &[u8; 32], b: &[u8; 32]) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in (0..32).rev() {
            let v = a[i] as u16 + b[i] as u16 + carry;
            out[i] = v as u8;
            carry = v >> 8;
        }
        (carry == 0).then_some(out)
    }

    /// Big-endian 256-bit a - b for a ≥ b.
    fn sub256(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let mut v = a[i] as i16 - b[i] as i16 - borrow;
            borrow = (v < 0) as i16;
            if v < 0 {
                v += 256;
            }
            out[i] = v as u8;
        }
        assert_eq!(borrow, 0);
        out
    }

    fn sig(r: &[u8; 32], s: &[u8; 32]) -> RawSignature {
        let mut raw = [0u8; 64];
        raw[..32].copy_from_slice(r);
        raw[32..].copy_from_slice(s);
        RawSignature(raw)
    }

    /// Fast (with and without the key's table) and reference verdicts agree; returns it.
    fn same_verdict(
        keys: &(VerifyingKey, VerifyingKey),
        digest: &[u8; 32],
        signature: &RawSignature,
    ) -> Result<(), VerifyError> {
        let (plain, tabled) = keys;
        let reference = plain.verify_digest_reference(digest, signature);
        assert_eq!(
            tabled.verify_digest(digest, signature),
            reference,
            "table path, digest {} sig {}",
            hex::encode(digest),
            hex::encode(signature.0)
        );
        assert_eq!(
            plain.verify_digest(digest, signature),
            reference,
            "point path, digest {} sig {}",
            hex::encode(digest),
            hex::encode(signature.0)
        );
        reference
    }

    fn random_key(alg: KeyAlgorithm, rng: &mut Rng) -> (SoftSigner, [u8; 32]) {
        loop {
            let mut secret = rng.bytes32();
            secret[0] &= 0x7f; // below n for both curves
            let signer = match alg {
                KeyAlgorithm::Sm2 => SoftSigner::sm2_from_secret(&secret),
                KeyAlgorithm::P256 => SoftSigner::p256_from_secret(&secret),
            };
            if let Ok(signer) = signer {
                return (signer, secret);
            }
        }
    }

    fn both(signer: &SoftSigner) -> (VerifyingKey, VerifyingKey) {
        let plain = VerifyingKey::new(signer.public_key()).unwrap();
        let tabled = plain.clone().with_table();
        assert!(tabled.has_table() && !plain.has_table());
        (plain, tabled)
    }

    /// Differential test: random keys and digests, valid and tampered signatures; the fast
    /// verifier must give the `sm2`/`p256` crates' verdict every time.
    #[test]
    fn fast_path_agrees_with_the_crates() {
        let mut rng = Rng(0x5EA1_D5EA_1D00_0001);
        for alg in [KeyAlgorithm::Sm2, KeyAlgorithm::P256] {
            let n = order(alg);
            let mut one = [0u8; 32];
            one[31] = 1;
            let n_minus_1 = sub256(&n, &one);
            let max = [0xffu8; 32];
            let (mut accepted, mut rejected) = (0, 0);
            let mut tally = |v: Result<(), VerifyError>| {
                if v.is_ok() {
                    accepted += 1
                } else {
                    rejected += 1
                }
            };
            let (other, _) = random_key(alg, &mut rng);
            let other = both(&other);
            for _ in 0..24 {
                let (signer, _) = random_key(alg, &mut rng);
                let keys = both(&signer);
                for m in 0..6 {
                    let mut digest = rng.bytes32();
                    if m == 0 {
                        digest = max; // e ≥ n: reduced
                    } else if m == 1 {
                        digest[0] = 0; // small e: e + n still fits in 256 bits
                    }
                    let good = signer.sign_prehash(&digest).unwrap();
                    let (r, s) = {
                        let (r, s) = good.0.split_at(32);
                        (
                            <[u8; 32]>::try_from(r).unwrap(),
                            <[u8; 32]>::try_from(s).unwrap(),
                        )
                    };
                    assert_eq!(same_verdict(&keys, &digest, &good), Ok(()));
                    tally(Ok(()));
                    let mut cases = vec![];
                    // Flipped bits in r, s and the digest.
                    let bit = (rng.next() % 256) as usize;
                    let mut t = good;
                    t.0[bit / 8] ^= 1 << (bit % 8);
                    cases.push((digest, t));
                    let mut t = good;
                    t.0[32 + bit / 8] ^= 1 << (bit % 8);
                    cases.push((digest, t));
                    let mut d = digest;
                    d[bit / 8] ^= 1 << (bit % 8);
                    cases.push((d, good));
                    // Out of range and edge values.
                    for bad in [[0u8; 32], n, max, n_minus_1, one] {
                        cases.push((digest, sig(&bad, &s)));
                        cases.push((digest, sig(&r, &bad)));
                    }
                    if let Some(r_plus_n) = add256(&r, &n) {
                        cases.push((digest, sig(&r_plus_n, &s)));
                    }
                    if let Some(s_plus_n) = add256(&s, &n) {
                        cases.push((digest, sig(&r, &s_plus_n)));
                    }
                    // r + s = n (t = 0 for SM2), n - s (valid again for ECDSA), swapped.
                    cases.push((digest, sig(&r, &sub256(&n, &r))));
                    cases.push((digest, sig(&r, &sub256(&n, &s))));
                    cases.push((digest, sig(&s, &r)));
                    // The digest plus n reduces to the same e: still valid.
                    if let Some(d) = add256(&digest, &n) {
                        assert_eq!(same_verdict(&keys, &d, &good), Ok(()));
                    }
                    for (d, sg) in cases {
                        tally(same_verdict(&keys, &d, &sg));
                    }
                    // Another key.
                    assert_eq!(
                        same_verdict(&other, &digest, &good),
                        Err(VerifyError::Mismatch)
                    );
                }
            }
            // Flipped-s ECDSA signatures verify, so some tampered cases are accepted too.
            assert!(accepted >= 24 * 6 && rejected > 24 * 6 * 10, "{alg:?}");
        }
    }

    /// Signatures whose u1·G + u2·Q is the point at infinity, built from the secret key.
    #[test]
    fn point_at_infinity_is_rejected() {
        use primeorder::elliptic_curve::ops::Reduce;
        let mut rng = Rng(77);
        // SM2: s·G + (r + s)·Q = O when s = -r·d / (1 + d). With r = e the `sm2` crate
        // accepts (it takes x = 0); a point at infinity has no x, and OpenSSL rejects it too.
        for _ in 0..4 {
            let (signer, secret) = random_key(KeyAlgorithm::Sm2, &mut rng);
            let keys = both(&signer);
            let d = <sm2::Scalar as Reduce<sm2::U256>>::reduce_bytes(&secret.into());
            let digest = rng.bytes32();
            let e = <sm2::Scalar as Reduce<sm2::U256>>::reduce_bytes(&digest.into());
            let s = -(e * d) * (sm2::Scalar::ONE + d).invert().unwrap();
            let signature = sig(&e.to_bytes().into(), &s.to_bytes().into());
            assert_eq!(keys.0.verify_digest_reference(&digest, &signature), Ok(()));
            assert_eq!(
                keys.0.verify_digest(&digest, &signature),
                Err(VerifyError::Mismatch)
            );
            assert_eq!(
                keys.1.verify_digest(&digest, &signature),
                Err(VerifyError::Mismatch)
            );
        }
        // ECDSA: e·w·G + r·w·Q = O when e = -r·d; both reject.
        for _ in 0..4 {
            let (signer, secret) = random_key(KeyAlgorithm::P256, &mut rng);
            let keys = both(&signer);
            let d = <p256::Scalar as Reduce<p256::U256>>::reduce_bytes(&secret.into());
            let r = <p256::Scalar as Reduce<p256::U256>>::reduce_bytes(&rng.bytes32().into());
            let e = -(r * d);
            let signature = sig(&r.to_bytes().into(), &rng.bytes32().map(|b| b & 0x7f));
            let digest: [u8; 32] = e.to_bytes().into();
            assert_eq!(
                same_verdict(&keys, &digest, &signature),
                Err(VerifyError::Mismatch)
            );
        }
    }

    #[test]
    fn annex_a_verifies_on_every_path() {
        let plain = VerifyingKey::new(&PublicKey {
            algorithm: KeyAlgorithm::Sm2,
            point: annex_a_point(),
        })
        .unwrap();
        let keys = (plain.clone(), plain.with_table());
        let digest = keys.0.message_digest(b"message digest");
        assert_eq!(same_verdict(&keys, &digest, &annex_a_sig()), Ok(()));
        let cached = VerifyingKey::cached(keys.0.public_key()).unwrap();
        for _ in 0..sm2::Sm2::TABLE_AFTER {
            cached.verify(b"message digest", &annex_a_sig()).unwrap();
        }
        assert!(cached.has_table());
        cached.verify(b"message digest", &annex_a_sig()).unwrap();
    }

    /// A key built with a lazy table verifies correctly before, while and after building it.
    #[test]
    fn lazy_table_is_built_on_a_later_verification() {
        let mut rng = Rng(99);
        for alg in [KeyAlgorithm::Sm2, KeyAlgorithm::P256] {
            let (signer, _) = random_key(alg, &mut rng);
            let lazy = VerifyingKey::new(signer.public_key())
                .unwrap()
                .with_lazy_table();
            let digest = rng.bytes32();
            let good = signer.sign_prehash(&digest).unwrap();
            let mut bad = good;
            bad.0[5] ^= 0x10;
            assert_eq!(lazy.verify_digest_reference(&digest, &good), Ok(()));
            let mut built = vec![];
            let after = match alg {
                KeyAlgorithm::Sm2 => sm2::Sm2::TABLE_AFTER,
                KeyAlgorithm::P256 => p256::NistP256::TABLE_AFTER,
            };
            for i in 0..after + 2 {
                built.push(lazy.has_table());
                let sig = if i % 2 == 0 { good } else { bad };
                assert_eq!(
                    lazy.verify_digest(&digest, &sig),
                    lazy.verify_digest_reference(&digest, &sig)
                );
            }
            let expected: Vec<bool> = (0..after + 2).map(|i| i >= after).collect();
            assert_eq!(built, expected);
            assert!(lazy.has_table());
            assert_eq!(lazy.verify_digest(&digest, &good), Ok(()));
        }
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
