//! The seal's SES_Seal (GB/T 38540 v4), made at enrolment and signed by the seal-maker key.

use time::OffsetDateTime;

use crate::crypto::PrehashSigner;
use crate::ses::{build_seal, CertList, Header, Picture, PropertyInfo, SealInfo};
use crate::store::model::{ImageFormat, Seal, SealKind};

use super::SealError;

/// GB/T 38540 seal type for organisational seals (单位印章).
pub const SES_TYPE_ORGANISATION: i64 = 1;
/// GB/T 38540 seal type for personal seals (个人印章).
pub const SES_TYPE_PERSONAL: i64 = 2;
/// The manufacturer id written in every SES_Seal header (Vid).
pub const VENDOR_ID: &str = "seald";

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

fn time_of(ts: i64) -> Result<OffsetDateTime, SealError> {
    OffsetDateTime::from_unix_timestamp(ts)
        .map_err(|_| SealError::SesSeal(format!("time {ts} is out of range")))
}

/// Millimetres as the whole number GB/T 38540 stores (at least 1).
fn whole_mm(mm: f64) -> i64 {
    (mm.round() as i64).max(1)
}

/// The SES_SealInfo for a registered seal: its name, type, validity, certificate and image.
pub fn seal_info(seal: &Seal, now: OffsetDateTime) -> Result<SealInfo, SealError> {
    Ok(SealInfo {
        header: Header {
            id: "ES".into(),
            version: 4,
            vid: VENDOR_ID.into(),
        },
        es_id: seal.es_id.clone(),
        property: PropertyInfo {
            seal_type: if seal.kind == SealKind::PersonalName {
                SES_TYPE_PERSONAL
            } else {
                SES_TYPE_ORGANISATION
            },
            name: seal.name.clone(),
            cert_list_type: Some(1),
            cert_list: CertList::Certs(vec![seal.certificate.clone()]),
            create_date: now,
            valid_start: time_of(seal.valid_from)?,
            valid_end: time_of(seal.valid_to)?,
        },
        picture: Picture {
            kind: match seal.image.format {
                ImageFormat::Png => "PNG",
                ImageFormat::Gif => "GIF",
                ImageFormat::Jpeg => "JPG",
            }
            .into(),
            data: seal.image.data.clone(),
            width: whole_mm(seal.image.width_mm),
            height: whole_mm(seal.image.height_mm),
        },
        ext_datas: None,
    })
}

/// Builds the SES_Seal for `seal` and has the maker sign it (the signature is verified in
/// software before use); returns its DER.
pub fn make(seal: &Seal, maker: &SealMaker<'_>, now: OffsetDateTime) -> Result<Vec<u8>, SealError> {
    let info = seal_info(seal, now)?;
    let built = build_seal(&info, maker.certificate, maker.signer)
        .map_err(|e| SealError::SesSeal(e.to_string()))?;
    Ok(built.der)
}
