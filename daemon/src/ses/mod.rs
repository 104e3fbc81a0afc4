//! GB/T 38540 v4 SES_Seal / SES_Signature: build, parse (also GM/T 0031 v1), verify.

pub mod build;
pub mod der;
mod parse;
mod types;
pub mod verify;

pub use build::{
    build_seal, build_signature, encode_seal_info, sign_message, time_stamp_field, BuildError,
    DocumentSigner, SignRequest, TimeStamper, MAX_TIME_STAMP_TOKEN,
};
pub use parse::{detect, ObjectKind, ParseError};
pub use types::*;
pub use verify::{
    verify_der, verify_seal, verify_signature, Check, CheckStatus, Document, Report, VerifyOptions,
};

#[cfg(test)]
pub(crate) mod build_tests;
#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
