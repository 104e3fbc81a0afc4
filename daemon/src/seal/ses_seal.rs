//! The seal's SES_Seal (GB/T 38540 v4), made at enrolment and signed by the seal-maker key.

use time::OffsetDateTime;

use crate::crypto::PrehashSigner;
use crate::store::model::Seal;

use super::SealError;

/// The seal maker: its key (usually on a token) and its certificate.
pub struct SealMaker<'a> {
    /// Signs DER(SES_SealInfo).
    pub signer: &'a dyn PrehashSigner,
    /// The maker's certificate, DER.
    pub certificate: &'a [u8],
}

impl std::fmt::Debug for SealMaker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealMaker")
            .field("public_key", self.signer.public_key())
            .finish_non_exhaustive()
    }
}

/// Builds and signs the SES_Seal for `seal`.
///
/// TODO(format-layer): build with `ses::build_seal` once the format layer is on main. Until
/// then this refuses rather than produce anything that is not a real SES_Seal.
pub fn make(
    _seal: &Seal,
    _maker: &SealMaker<'_>,
    _now: OffsetDateTime,
) -> Result<Vec<u8>, SealError> {
    Err(SealError::SesSeal(
        "this build has no GB/T 38540 builder yet (format layer not merged)".into(),
    ))
}
