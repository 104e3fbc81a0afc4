//! SM3 streaming, SM2 Z/e, signature encodings, software verification, secret (PIN) types.

pub mod digest;
pub mod encoding;
pub mod signer;
pub mod sm2z;
#[cfg(any(test, feature = "test-keys"))]
pub mod soft;
pub mod table;
pub mod verify;

pub use digest::{data_digest, data_digest_reader, sha256, sm3, sm3_file, sm3_reader};
pub use encoding::RawSignature;
pub use signer::{KeyAlgorithm, PrehashSigner, PublicKey, SignerError};
pub use sm2z::{e_digest, z_a, ZError, DEFAULT_USER_ID};
pub use verify::{VerifyError, VerifyingKey};
