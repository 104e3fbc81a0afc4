//! Reading a CMS ContentInfo holding a SignedData with exactly one SignerInfo. Lenient about
//! versions and optional parts; keeps the original bytes of what signatures cover.

use time::OffsetDateTime;

use super::oid;
use crate::ses::der::{read_single, read_tlv, tag, DerError, Problem, Tlv};

const CONTEXT_1: u8 = 0xa1;
/// `[0] IMPLICIT SubjectKeyIdentifier` in a SignerIdentifier.
const KEY_ID: u8 = 0x80;

fn der(e: DerError) -> String {
    format!("CMS: {e}")
}

/// How a SignerInfo names its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerId<'a> {
    /// issuerAndSerialNumber: the issuer Name (whole DER) and the serial's value bytes with
    /// leading zeros stripped.
    IssuerSerial {
        /// The issuer Name, DER as found.
        issuer: &'a [u8],
        /// The serial number's value bytes, leading zeros stripped.
        serial: &'a [u8],
    },
    /// subjectKeyIdentifier.
    KeyId(&'a [u8]),
}

/// The one SignerInfo.
#[derive(Debug, Clone)]
pub struct SignerInfo<'a> {
    /// Which certificate signed.
    pub sid: SignerId<'a>,
    /// digestAlgorithm OID.
    pub digest_algorithm: String,
    /// signedAttrs (`[0] IMPLICIT`), as found.
    pub signed_attrs: Option<Tlv<'a>>,
    /// signatureAlgorithm OID.
    pub signature_algorithm: String,
    /// The signature value (DER or raw r‖s).
    pub signature: &'a [u8],
    /// unsignedAttrs (`[1] IMPLICIT`), as found: e.g. an RFC 3161 signature-time-stamp.
    pub unsigned_attrs: Option<Tlv<'a>>,
}

impl<'a> SignerInfo<'a> {
    /// The RFC 3161 token of the unsigned attribute id-aa-signatureTimeStampToken, if any.
    pub fn signature_time_stamp(&self) -> Option<&'a [u8]> {
        let mut list = self.unsigned_attrs?.children();
        while !list.is_empty() {
            let a = list.next(tag::SEQUENCE, "Attribute").ok()?;
            let mut p = a.children();
            let id = p.next(tag::OID, "attrType").ok()?.oid().ok()?;
            if id == super::build::SIGNATURE_TIME_STAMP_TOKEN {
                let values = p.next(tag::SET, "attrValues").ok()?;
                return values.children().next_any("attrValue").ok().map(|v| v.raw);
            }
        }
        None
    }
}

impl SignerInfo<'_> {
    /// The bytes the signature covers when there are signed attributes: DER(SET OF Attribute),
    /// i.e. the `[0]` tag read as SET (RFC 5652 §5.4).
    pub fn signed_attrs_message(&self) -> Option<Vec<u8>> {
        self.signed_attrs.map(|a| {
            let mut message = a.raw.to_vec();
            message[0] = tag::SET;
            message
        })
    }
}

/// A SignedData with one signer.
#[derive(Debug, Clone)]
pub struct SignedData<'a> {
    /// The ContentInfo type: RFC 5652 or GB/T 35275 SignedData.
    pub content_type: String,
    /// digestAlgorithms OIDs.
    pub digest_algorithms: Vec<String>,
    /// encapContentInfo eContentType.
    pub encap_content_type: String,
    /// eContent (the OCTET STRING's value, or whatever element is there), when not detached.
    pub content: Option<&'a [u8]>,
    /// certificates (every element, DER as found; non-certificate choices included).
    pub certs: Vec<&'a [u8]>,
    /// The SignerInfo.
    pub signer: SignerInfo<'a>,
}

/// Strips leading zero bytes of an INTEGER's value (keeps one).
pub(crate) fn strip_zeros(v: &[u8]) -> &[u8] {
    let mut v = v;
    while v.len() > 1 && v[0] == 0 {
        v = &v[1..];
    }
    v
}

/// The issuer Name (DER) and serial INTEGER (whole TLV) of a certificate, from its TBS.
pub fn cert_issuer_serial(cert: &[u8]) -> Option<(&[u8], &[u8])> {
    let (c, _) = read_tlv(cert, 0, "Certificate").ok()?;
    c.expect_tag(tag::SEQUENCE).ok()?;
    let tbs = c.children().next(tag::SEQUENCE, "tbsCertificate").ok()?;
    let mut t = tbs.children();
    t.optional(tag::CONTEXT_0, "version").ok()?;
    let serial = t.next(tag::INTEGER, "serialNumber").ok()?;
    t.next(tag::SEQUENCE, "signature").ok()?;
    let issuer = t.next(tag::SEQUENCE, "issuer").ok()?;
    Some((issuer.raw, serial.raw))
}

impl<'a> SignedData<'a> {
    /// Parses a ContentInfo holding a SignedData. With `zero_padding`, zero bytes after it are
    /// allowed (a PDF `/Contents` placeholder); otherwise nothing may follow.
    pub fn parse(bytes: &'a [u8], zero_padding: bool) -> Result<Self, String> {
        let ci = if zero_padding {
            let (tlv, rest) = read_tlv(bytes, 0, "ContentInfo").map_err(der)?;
            tlv.expect_tag(tag::SEQUENCE).map_err(der)?;
            if rest.iter().any(|&b| b != 0) {
                return Err(der(DerError {
                    offset: tlv.raw.len(),
                    element: "ContentInfo",
                    problem: Problem::Trailing,
                }));
            }
            tlv
        } else {
            read_single(bytes, tag::SEQUENCE, "ContentInfo").map_err(der)?
        };
        let mut c = ci.children();
        let content_type = c
            .next(tag::OID, "contentType")
            .map_err(der)?
            .oid()
            .map_err(der)?;
        if content_type != oid::SIGNED_DATA_GM && content_type != oid::SIGNED_DATA {
            return Err(format!("ContentInfo type {content_type} is not SignedData"));
        }
        let wrapper = c.next(tag::CONTEXT_0, "content").map_err(der)?;
        let sd = wrapper
            .children()
            .next(tag::SEQUENCE, "SignedData")
            .map_err(der)?;
        let mut s = sd.children();
        s.next(tag::INTEGER, "version").map_err(der)?;
        let algs = s.next(tag::SET, "digestAlgorithms").map_err(der)?;
        let mut digest_algorithms = Vec::new();
        let mut list = algs.children();
        while !list.is_empty() {
            let alg = list.next(tag::SEQUENCE, "DigestAlgorithmIdentifier");
            let alg = alg.map_err(der)?;
            let id = alg.children().next(tag::OID, "algorithm").map_err(der)?;
            digest_algorithms.push(id.oid().map_err(der)?);
        }
        let eci = s.next(tag::SEQUENCE, "encapContentInfo").map_err(der)?;
        let mut e = eci.children();
        let encap_content_type = e
            .next(tag::OID, "eContentType")
            .map_err(der)?
            .oid()
            .map_err(der)?;
        let content = match e.optional(tag::CONTEXT_0, "eContent").map_err(der)? {
            None => None,
            // An OCTET STRING (its value), or whatever else is there, read as bytes.
            Some(t) => Some(t.children().next_any("eContent").map_err(der)?.value),
        };
        let mut certs = Vec::new();
        if let Some(set) = s.optional(tag::CONTEXT_0, "certificates").map_err(der)? {
            let mut list = set.children();
            while !list.is_empty() {
                certs.push(list.next_any("certificate").map_err(der)?.raw);
            }
        }
        s.optional(CONTEXT_1, "crls").map_err(der)?;
        let infos = s.next(tag::SET, "signerInfos").map_err(der)?;
        let mut infos = infos.children();
        let si = infos.next(tag::SEQUENCE, "SignerInfo").map_err(der)?;
        if !infos.is_empty() {
            return Err("more than one SignerInfo: not a single signature".into());
        }
        let signer = parse_signer_info(si)?;
        Ok(Self {
            content_type,
            digest_algorithms,
            encap_content_type,
            content,
            certs,
            signer,
        })
    }

    /// True for the GB/T 35275 OIDs.
    pub fn is_gm(&self) -> bool {
        self.content_type == oid::SIGNED_DATA_GM
    }
}

fn parse_signer_info(si: Tlv<'_>) -> Result<SignerInfo<'_>, String> {
    let mut f = si.children();
    f.next(tag::INTEGER, "version").map_err(der)?;
    let sid = f.next_any("sid").map_err(der)?;
    let sid = match sid.tag {
        tag::SEQUENCE => {
            let mut i = sid.children();
            let issuer = i.next(tag::SEQUENCE, "issuer").map_err(der)?.raw;
            let serial = i.next(tag::INTEGER, "serialNumber").map_err(der)?;
            SignerId::IssuerSerial {
                issuer,
                serial: strip_zeros(serial.value),
            }
        }
        KEY_ID => SignerId::KeyId(sid.value),
        found => {
            return Err(der(DerError {
                offset: sid.offset,
                element: "sid",
                problem: Problem::WrongTag {
                    expected: tag::SEQUENCE,
                    found,
                },
            }))
        }
    };
    let alg_oid = |t: Tlv<'_>| -> Result<String, String> {
        t.children()
            .next(tag::OID, "algorithm")
            .map_err(der)?
            .oid()
            .map_err(der)
    };
    let digest_algorithm = alg_oid(f.next(tag::SEQUENCE, "digestAlgorithm").map_err(der)?)?;
    let signed_attrs = f.optional(tag::CONTEXT_0, "signedAttrs").map_err(der)?;
    let signature_algorithm = alg_oid(f.next(tag::SEQUENCE, "signatureAlgorithm").map_err(der)?)?;
    let signature = f.next(tag::OCTET_STRING, "signature").map_err(der)?.value;
    let unsigned_attrs = f.optional(CONTEXT_1, "unsignedAttrs").map_err(der)?;
    Ok(SignerInfo {
        sid,
        digest_algorithm,
        signed_attrs,
        signature_algorithm,
        signature,
        unsigned_attrs,
    })
}

/// An ESS signing-certificate(-v2) reference to the signer's certificate (the first one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EssCertId {
    /// True for signing-certificate-v2 (RFC 5035), false for signing-certificate (RFC 2634).
    pub v2: bool,
    /// The hash algorithm OID (SHA-1 for v1; SHA-256 when v2 omits it).
    pub hash_algorithm: String,
    /// The certificate's hash.
    pub hash: Vec<u8>,
    /// issuerSerial's serial value bytes (zeros stripped), if given.
    pub serial: Option<Vec<u8>>,
}

/// The signed attributes seald reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignedAttrs {
    /// content-type.
    pub content_type: Option<String>,
    /// message-digest.
    pub message_digest: Option<Vec<u8>>,
    /// signing-time, when readable.
    pub signing_time: Option<OffsetDateTime>,
    /// signing-certificate or signing-certificate-v2.
    pub signing_certificate: Option<EssCertId>,
}

impl SignedAttrs {
    /// Reads the attributes of a `signedAttrs` element. Two attributes of the same type are
    /// refused for content-type and message-digest (RFC 5652 §11).
    pub fn read(attrs: &Tlv<'_>) -> Result<Self, String> {
        let mut out = Self::default();
        let mut list = attrs.children();
        while !list.is_empty() {
            let a = list.next(tag::SEQUENCE, "Attribute").map_err(der)?;
            let mut p = a.children();
            let id = p
                .next(tag::OID, "attrType")
                .map_err(der)?
                .oid()
                .map_err(der)?;
            let values = p.next(tag::SET, "attrValues").map_err(der)?;
            let first = values.children().next_any("attrValue").map_err(der)?;
            match id.as_str() {
                oid::MESSAGE_DIGEST => {
                    if out.message_digest.is_some() {
                        return Err("two message-digest attributes".into());
                    }
                    out.message_digest = Some(first.octets().map_err(der)?.to_vec());
                }
                oid::CONTENT_TYPE => {
                    if out.content_type.is_some() {
                        return Err("two content-type attributes".into());
                    }
                    out.content_type = Some(first.oid().map_err(der)?);
                }
                oid::SIGNING_TIME => out.signing_time = first.time().ok(),
                oid::SIGNING_CERTIFICATE => {
                    out.signing_certificate = Some(ess_cert_id(first, false)?);
                }
                oid::SIGNING_CERTIFICATE_V2 => {
                    out.signing_certificate = Some(ess_cert_id(first, true)?);
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// The first ESSCertID(v2) of a SigningCertificate(V2).
fn ess_cert_id(value: Tlv<'_>, v2: bool) -> Result<EssCertId, String> {
    value.expect_tag(tag::SEQUENCE).map_err(der)?;
    let certs = value.children().next(tag::SEQUENCE, "certs").map_err(der)?;
    let id = certs
        .children()
        .next(tag::SEQUENCE, "ESSCertID")
        .map_err(der)?;
    let mut p = id.children();
    let mut hash_algorithm = if v2 { oid::SHA256 } else { oid::SHA1 }.to_string();
    if v2 && p.peek_tag() == Some(tag::SEQUENCE) {
        let alg = p.next(tag::SEQUENCE, "hashAlgorithm").map_err(der)?;
        hash_algorithm = alg
            .children()
            .next(tag::OID, "algorithm")
            .map_err(der)?
            .oid()
            .map_err(der)?;
    }
    let hash = p.next(tag::OCTET_STRING, "certHash").map_err(der)?.value;
    let serial = match p.optional(tag::SEQUENCE, "issuerSerial").map_err(der)? {
        None => None,
        Some(is) => {
            let mut i = is.children();
            i.next(tag::SEQUENCE, "issuer").map_err(der)?;
            let serial = i.next(tag::INTEGER, "serialNumber").map_err(der)?;
            Some(strip_zeros(serial.value).to_vec())
        }
    };
    Ok(EssCertId {
        v2,
        hash_algorithm,
        hash: hash.to_vec(),
        serial,
    })
}
