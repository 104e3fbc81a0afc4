//! SM3 streaming, SM2 Z/e, signature encodings, software verification, secret types.

pub mod encoding;
pub mod signer;

pub use encoding::RawSignature;
pub use signer::{KeyAlgorithm, PrehashSigner, PublicKey, SignerError};
