//! Lenient parsing of SESeal and SES_Signature (v4 and v1) that keeps original byte ranges.

use super::der::{parse_time_text, read_tlv, tag, write, Children, DerError, Problem, Tlv};
use super::types::*;

/// Why bytes could not be read as a seal or signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The DER structure is broken or not the expected one.
    #[error("malformed seal structure {0}")]
    Der(#[from] DerError),
    /// Well-formed, but some other kind of object.
    #[error("not a GB/T 38540 / GM/T 0031 object: {0}")]
    NotSes(String),
}

/// What a blob of DER holds, judged by its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectKind {
    /// A SESeal.
    Seal,
    /// A SES_Signature.
    Signature,
    /// A CMS ContentInfo (e.g. GB/T 35275 SM2 SignedData), with its content type OID.
    Cms(String),
    /// Something else.
    Unknown,
}

/// Guesses what `bytes` hold without parsing them fully.
pub fn detect(bytes: &[u8]) -> ObjectKind {
    let Ok((outer, _)) = read_tlv(bytes, 0, "object") else {
        return ObjectKind::Unknown;
    };
    if outer.tag != tag::SEQUENCE {
        return ObjectKind::Unknown;
    }
    let mut kids = outer.children();
    let Ok(first) = kids.next_any("first element") else {
        return ObjectKind::Unknown;
    };
    match first.tag {
        tag::OID => ObjectKind::Cms(first.oid().unwrap_or_default()),
        tag::SEQUENCE => match first.children().peek_tag() {
            Some(tag::INTEGER) => ObjectKind::Signature,
            Some(tag::SEQUENCE) => ObjectKind::Seal,
            _ => ObjectKind::Unknown,
        },
        _ => ObjectKind::Unknown,
    }
}

/// Reads the single outer element, refusing anything after it but zero padding.
fn outer<'a>(bytes: &'a [u8], element: &'static str) -> Result<Tlv<'a>, ParseError> {
    let (tlv, rest) = read_tlv(bytes, 0, element)?;
    tlv.expect_tag(tag::SEQUENCE)?;
    if rest.iter().any(|&b| b != 0) {
        return Err(DerError {
            offset: tlv.raw.len(),
            element,
            problem: Problem::Trailing,
        }
        .into());
    }
    Ok(tlv)
}

impl Seal {
    /// Parses a SESeal (v4 or v1 layout).
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let tlv = outer(bytes, "SESeal")?;
        Ok(parse_seal(tlv)?)
    }
}

impl SesSignature {
    /// Parses a SES_Signature (v4 or v1 layout).
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let tlv = outer(bytes, "SES_Signature")?;
        Ok(parse_signature(tlv)?)
    }
}

fn parse_seal(tlv: Tlv<'_>) -> Result<Seal, DerError> {
    tlv.expect_tag(tag::SEQUENCE)?;
    let mut kids = tlv.children();
    let info_tlv = kids.next(tag::SEQUENCE, "SES_SealInfo")?;
    let info = parse_seal_info(info_tlv)?;
    match kids.peek_tag() {
        Some(tag::SEQUENCE) => {
            // v1: SES_SignInfo { cert, signatureAlgorithm, signData }
            let sign_info = kids.next(tag::SEQUENCE, "SES_SignInfo")?;
            kids.finish()?;
            let mut s = sign_info.children();
            let cert = s.next(tag::OCTET_STRING, "SES_SignInfo.cert")?;
            let alg = s.next(tag::OID, "SES_SignInfo.signatureAlgorithm")?;
            let sig = s.next(tag::BIT_STRING, "SES_SignInfo.signData")?;
            s.finish()?;
            Ok(Seal {
                version: FormatVersion::V1,
                info,
                maker_cert: cert.octets()?.to_vec(),
                signature_algorithm: alg.oid()?,
                signature: sig.bits()?.to_vec(),
                signed_bytes: write::seq(&[info_tlv.raw, cert.raw, alg.raw]),
                der: tlv.raw.to_vec(),
            })
        }
        _ => {
            let cert = kids.next(tag::OCTET_STRING, "SESeal.cert")?;
            let alg = kids.next(tag::OID, "SESeal.signAlgID")?;
            let sig = kids.next(tag::BIT_STRING, "SESeal.signedValue")?;
            kids.finish()?;
            Ok(Seal {
                version: FormatVersion::V4,
                info,
                maker_cert: cert.octets()?.to_vec(),
                signature_algorithm: alg.oid()?,
                signature: sig.bits()?.to_vec(),
                signed_bytes: info_tlv.raw.to_vec(),
                der: tlv.raw.to_vec(),
            })
        }
    }
}

fn parse_seal_info(tlv: Tlv<'_>) -> Result<SealInfo, DerError> {
    let mut kids = tlv.children();
    let header = {
        let h = kids.next(tag::SEQUENCE, "SES_Header")?;
        let mut k = h.children();
        let id = k.next_any("SES_Header.ID")?.string()?;
        let version = k.next(tag::INTEGER, "SES_Header.version")?.int()?;
        let vid = k.next_any("SES_Header.Vid")?.string()?;
        k.finish()?;
        Header { id, version, vid }
    };
    let es_id = kids.next_any("esID")?.string()?;
    let property = parse_property(kids.next(tag::SEQUENCE, "SES_ESPropertyInfo")?)?;
    let picture = {
        let p = kids.next(tag::SEQUENCE, "SES_ESPictrueInfo")?;
        let mut k = p.children();
        let kind = k.next_any("SES_ESPictrueInfo.type")?.string()?;
        let data = k
            .next(tag::OCTET_STRING, "SES_ESPictrueInfo.data")?
            .octets()?
            .to_vec();
        let width = k.next(tag::INTEGER, "SES_ESPictrueInfo.width")?.int()?;
        let height = k.next(tag::INTEGER, "SES_ESPictrueInfo.height")?.int()?;
        k.finish()?;
        Picture {
            kind,
            data,
            width,
            height,
        }
    };
    let ext_datas = parse_ext_datas(&mut kids, "SES_SealInfo.extDatas")?;
    kids.finish()?;
    Ok(SealInfo {
        header,
        es_id,
        property,
        picture,
        ext_datas,
    })
}

fn parse_property(tlv: Tlv<'_>) -> Result<PropertyInfo, DerError> {
    let mut k = tlv.children();
    let seal_type = k.next(tag::INTEGER, "SES_ESPropertyInfo.type")?.int()?;
    let name = k.next_any("SES_ESPropertyInfo.name")?.string()?;
    let cert_list_type = match k.optional(tag::INTEGER, "SES_ESPropertyInfo.certListType")? {
        Some(t) => Some(t.int()?),
        None => None,
    };
    let list = k.next(tag::SEQUENCE, "SES_ESPropertyInfo.certList")?;
    let cert_list = parse_cert_list(list)?;
    let create_date = k.next_any("SES_ESPropertyInfo.createDate")?.time()?;
    let valid_start = k.next_any("SES_ESPropertyInfo.validStart")?.time()?;
    let valid_end = k.next_any("SES_ESPropertyInfo.validEnd")?.time()?;
    k.finish()?;
    Ok(PropertyInfo {
        seal_type,
        name,
        cert_list_type,
        cert_list,
        create_date,
        valid_start,
        valid_end,
    })
}

fn parse_cert_list(list: Tlv<'_>) -> Result<CertList, DerError> {
    let mut k = list.children();
    if k.peek_tag() == Some(tag::SEQUENCE) {
        let mut digests = Vec::new();
        while !k.is_empty() {
            let d = k.next(tag::SEQUENCE, "CertDigestObj")?;
            let mut dk = d.children();
            let algorithm = dk.next_any("CertDigestObj.type")?.string()?;
            let value = dk
                .next(tag::OCTET_STRING, "CertDigestObj.value")?
                .octets()?
                .to_vec();
            dk.finish()?;
            digests.push(CertDigest { algorithm, value });
        }
        Ok(CertList::Digests(digests))
    } else {
        let mut certs = Vec::new();
        while !k.is_empty() {
            certs.push(k.next(tag::OCTET_STRING, "certs")?.octets()?.to_vec());
        }
        Ok(CertList::Certs(certs))
    }
}

/// ExtensionDatas, bare (SEQUENCE OF) or wrapped in `[0]`; absent if the next element is neither.
fn parse_ext_datas(
    kids: &mut Children<'_>,
    element: &'static str,
) -> Result<Option<Vec<ExtData>>, DerError> {
    let list = match kids.peek_tag() {
        Some(tag::SEQUENCE) => kids.next(tag::SEQUENCE, element)?,
        Some(tag::CONTEXT_0) => {
            let wrapper = kids.next(tag::CONTEXT_0, element)?;
            let mut w = wrapper.children();
            let inner = w.next(tag::SEQUENCE, element)?;
            w.finish()?;
            inner
        }
        _ => return Ok(None),
    };
    let mut out = Vec::new();
    let mut k = list.children();
    while !k.is_empty() {
        let e = k.next(tag::SEQUENCE, "ExtData")?;
        let mut ek = e.children();
        let id = ek.next(tag::OID, "ExtData.extnID")?.oid()?;
        let critical = match ek.optional(tag::BOOLEAN, "ExtData.critical")? {
            Some(b) => b.boolean()?,
            None => false,
        };
        let value = ek
            .next(tag::OCTET_STRING, "ExtData.extnValue")?
            .octets()?
            .to_vec();
        ek.finish()?;
        out.push(ExtData {
            id,
            critical,
            value,
        });
    }
    Ok(Some(out))
}

fn parse_signature(tlv: Tlv<'_>) -> Result<SesSignature, DerError> {
    let mut kids = tlv.children();
    let tbs_tlv = kids.next(tag::SEQUENCE, "TBS_Sign")?;
    let mut t = tbs_tlv.children();
    let version = t.next(tag::INTEGER, "TBS_Sign.version")?.int()?;
    let seal = parse_seal(t.next(tag::SEQUENCE, "TBS_Sign.eseal")?)?;
    let time = t.next_any("TBS_Sign.timeInfo")?;
    let time_info = if time.tag == tag::BIT_STRING {
        // v1 writes the time as text inside a BIT STRING.
        std::str::from_utf8(time.bits()?)
            .ok()
            .and_then(parse_time_text)
    } else {
        Some(time.time()?)
    };
    let data_hash = t
        .next(tag::BIT_STRING, "TBS_Sign.dataHash")?
        .bits()?
        .to_vec();
    let property_info = t.next_any("TBS_Sign.propertyInfo")?.string()?;
    if kids.peek_tag() == Some(tag::BIT_STRING) {
        // v1: TBS_Sign carries cert and signatureAlgorithm; the signature follows it.
        let cert = t
            .next(tag::OCTET_STRING, "TBS_Sign.cert")?
            .octets()?
            .to_vec();
        let alg = t.next(tag::OID, "TBS_Sign.signatureAlgorithm")?.oid()?;
        let ext_datas = parse_ext_datas(&mut t, "TBS_Sign.extDatas")?;
        t.finish()?;
        let sig = kids
            .next(tag::BIT_STRING, "SES_Signature.signature")?
            .bits()?
            .to_vec();
        kids.finish()?;
        return Ok(SesSignature {
            version: FormatVersion::V1,
            tbs: TbsSign {
                version,
                seal,
                time_info,
                data_hash,
                property_info,
                ext_datas,
            },
            signer_cert: cert,
            signature_algorithm: alg,
            signature: sig,
            time_stamp: None,
            signed_bytes: tbs_tlv.raw.to_vec(),
            der: tlv.raw.to_vec(),
        });
    }
    let ext_datas = parse_ext_datas(&mut t, "TBS_Sign.extDatas")?;
    t.finish()?;
    let cert = kids
        .next(tag::OCTET_STRING, "SES_Signature.cert")?
        .octets()?
        .to_vec();
    let alg = kids.next(tag::OID, "SES_Signature.signatureAlgID")?.oid()?;
    let sig = kids
        .next(tag::BIT_STRING, "SES_Signature.signature")?
        .bits()?
        .to_vec();
    let time_stamp = match kids.peek_tag() {
        Some(t) if t & 0xdf == 0x80 => {
            Some(kids.next_any("SES_Signature.timeStamp")?.value.to_vec())
        }
        _ => None,
    };
    kids.finish()?;
    Ok(SesSignature {
        version: FormatVersion::V4,
        tbs: TbsSign {
            version,
            seal,
            time_info,
            data_hash,
            property_info,
            ext_datas,
        },
        signer_cert: cert,
        signature_algorithm: alg,
        signature: sig,
        time_stamp,
        signed_bytes: tbs_tlv.raw.to_vec(),
        der: tlv.raw.to_vec(),
    })
}
