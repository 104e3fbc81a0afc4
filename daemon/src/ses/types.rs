//! GB/T 38540 (v4) and GM/T 0031-2014 (v1) structures, with field order as real files use them.
//!
//! Parsed values keep the original bytes each signature covers (`signed_bytes`) and the whole
//! element as found (`der`), so verification never depends on a re-encoding.

use time::OffsetDateTime;

/// Which standard a structure follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatVersion {
    /// GM/T 0031-2014.
    V1,
    /// GB/T 38540-2020.
    V4,
}

/// SES_Header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Header {
    /// ID, always "ES".
    pub id: String,
    /// version (1 or 4).
    pub version: i64,
    /// Vid: the vendor.
    pub vid: String,
}

/// SES_CertList: certificates, or digests of certificates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertList {
    /// certs: DER certificates (certListType 1; the only form in v1).
    Certs(#[serde(serialize_with = "ser_hex_list")] Vec<Vec<u8>>),
    /// certDigestList (certListType 2).
    Digests(Vec<CertDigest>),
}

/// CertDigestObj.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertDigest {
    /// type: the digest algorithm as written (e.g. "SM3" or an OID).
    pub algorithm: String,
    /// value: the digest.
    #[serde(serialize_with = "ser_hex")]
    pub value: Vec<u8>,
}

/// SES_ESPropertyInfo.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PropertyInfo {
    /// type: 1 official seal, 2 personal seal (vendors use more values).
    pub seal_type: i64,
    /// name.
    pub name: String,
    /// certListType (v4 only).
    pub cert_list_type: Option<i64>,
    /// certList: the certificates of those allowed to use the seal.
    pub cert_list: CertList,
    /// createDate.
    #[serde(with = "time::serde::rfc3339")]
    pub create_date: OffsetDateTime,
    /// validStart.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_start: OffsetDateTime,
    /// validEnd.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_end: OffsetDateTime,
}

/// SES_ESPictrueInfo (sic, the standard's spelling).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Picture {
    /// type: "PNG", "GIF", "JPG", "SVG", "ofd", …
    pub kind: String,
    /// data.
    #[serde(skip)]
    pub data: Vec<u8>,
    /// width in millimetres.
    pub width: i64,
    /// height in millimetres.
    pub height: i64,
}

/// ExtData.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExtData {
    /// extnID.
    pub id: String,
    /// critical (DEFAULT FALSE; some writers spell FALSE out).
    pub critical: bool,
    /// extnValue.
    #[serde(serialize_with = "ser_hex")]
    pub value: Vec<u8>,
}

/// SES_SealInfo.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SealInfo {
    /// header.
    pub header: Header,
    /// esID.
    pub es_id: String,
    /// property.
    pub property: PropertyInfo,
    /// picture.
    pub picture: Picture,
    /// extDatas.
    pub ext_datas: Option<Vec<ExtData>>,
}

/// SESeal: the seal maker's signed seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// Layout found (v4: cert/alg/signature beside the info; v1: inside SES_SignInfo).
    pub version: FormatVersion,
    /// eSealInfo.
    pub info: SealInfo,
    /// The seal maker's certificate (DER).
    pub maker_cert: Vec<u8>,
    /// signAlgID, dotted.
    pub signature_algorithm: String,
    /// signedValue: BIT STRING contents (DER or raw r‖s).
    pub signature: Vec<u8>,
    /// The bytes the maker signed, from the original file.
    pub signed_bytes: Vec<u8>,
    /// The whole SESeal as found.
    pub der: Vec<u8>,
}

/// TBS_Sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TbsSign {
    /// version.
    pub version: i64,
    /// eseal.
    pub seal: Seal,
    /// timeInfo (None when a v1 file holds unreadable time text).
    pub time_info: Option<OffsetDateTime>,
    /// dataHash.
    pub data_hash: Vec<u8>,
    /// propertyInfo: in OFD, the path of the protected file.
    pub property_info: String,
    /// extDatas.
    pub ext_datas: Option<Vec<ExtData>>,
}

/// SES_Signature: a document signature made with a seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesSignature {
    /// Layout found.
    pub version: FormatVersion,
    /// toSign.
    pub tbs: TbsSign,
    /// The signer's certificate (DER).
    pub signer_cert: Vec<u8>,
    /// signatureAlgID, dotted.
    pub signature_algorithm: String,
    /// signature: BIT STRING contents (DER or raw r‖s).
    pub signature: Vec<u8>,
    /// timeStamp, as found (v4, optional).
    pub time_stamp: Option<Vec<u8>>,
    /// The bytes the signer signed (TBS_Sign as found).
    pub signed_bytes: Vec<u8>,
    /// The whole SES_Signature as found.
    pub der: Vec<u8>,
}

fn ser_hex<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v))
}

fn ser_hex_list<S: serde::Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(hex::encode))
}

impl SesSignature {
    /// The RFC 3161 token `timeStamp` holds, if any: read from `[0] EXPLICIT BIT STRING` (as
    /// ofdrw and seald write it), `[0] IMPLICIT BIT STRING`, or a token (or OCTET STRING)
    /// placed directly inside `[0]`. `Err` when the field is there but holds none of these.
    pub fn time_stamp_token(&self) -> Option<Result<Vec<u8>, String>> {
        use super::der::{read_single, tag};
        let v = self.time_stamp.as_deref()?;
        let bad = |e: super::der::DerError| format!("SES_Signature.timeStamp: {e}");
        Some(match v.first() {
            Some(&tag::BIT_STRING) => read_single(v, tag::BIT_STRING, "timeStamp")
                .and_then(|t| t.bits().map(<[u8]>::to_vec))
                .map_err(bad),
            Some(&tag::OCTET_STRING) => read_single(v, tag::OCTET_STRING, "timeStamp")
                .map(|t| t.value.to_vec())
                .map_err(bad),
            Some(&tag::SEQUENCE) => read_single(v, tag::SEQUENCE, "timeStamp")
                .map(|t| t.raw.to_vec())
                .map_err(bad),
            Some(0) if v.get(1) == Some(&tag::SEQUENCE) => Ok(v[1..].to_vec()),
            _ => Err("SES_Signature.timeStamp holds neither a BIT STRING nor a token".into()),
        })
    }
}
