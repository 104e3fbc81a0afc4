//! SM3 streaming, SM2 Z/e, signature encodings, software verification, secret types.

pub mod encoding;
