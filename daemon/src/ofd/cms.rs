//! GB/T 35275 SM2 CMS `SignedData` as found in OFD `Type="Sign"` signatures: the signature over
//! `Signature.xml`, in both forms seen in real files:
//!
//! - plain: the encapsulated content is SM3(Signature.xml) (raw, or as base64 text) and the
//!   signer signs that content;
//! - authenticated attributes (PKCS#9, "数科" form): `messageDigest` = SM3 of the content
//!   (encapsulated, or `Signature.xml` when detached) and the signer signs DER(SET OF attributes).
//!
//! SM2 signatures use the default user ID; raw r‖s and DER are both read. The signer
//! certificate is the one in `certificates` whose serial matches the SignerInfo's.

use base64::Engine;
use time::OffsetDateTime;

use crate::cert::{CertFacts, Certificate, TrustStore};
use crate::crypto::{sm3, VerifyingKey};
use crate::ses::der::{read_single, tag, DerError, Tlv};
use crate::ses::verify::read_signature_value;

const SIGNED_DATA_GM: &str = "1.2.156.10197.6.1.4.2.2";
const SIGNED_DATA_PKCS7: &str = "1.2.840.113549.1.7.2";
const SM3_OID: &str = "1.2.156.10197.1.401";
const MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
const CONTEXT_1: u8 = 0xa1;

/// The outcome of a CMS signature check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CmsReport {
    /// True when every check that was made passed.
    pub valid: bool,
    /// `plain` or `authenticated-attributes`.
    pub form: &'static str,
    /// The signer's certificate, if found.
    pub signer: Option<CertFacts>,
    /// `signingTime`, if given.
    #[serde(with = "time::serde::rfc3339::option")]
    pub signing_time: Option<OffsetDateTime>,
    /// What was checked, each line `ok:` or `FAILED:` or `n/a:`.
    pub checks: Vec<String>,
}

fn der(e: DerError) -> String {
    format!("CMS: {e}")
}

/// The serial INTEGER value of a certificate (inside its TBSCertificate).
fn cert_serial(cert: &[u8]) -> Option<&[u8]> {
    let c = read_single(cert, tag::SEQUENCE, "Certificate").ok()?;
    let mut parts = c.children();
    let tbs = parts.next(tag::SEQUENCE, "tbsCertificate").ok()?;
    let mut t = tbs.children();
    t.optional(tag::CONTEXT_0, "version").ok()?;
    let serial = t.next(tag::INTEGER, "serialNumber").ok()?;
    Some(strip_zeros(serial.value))
}

fn strip_zeros(v: &[u8]) -> &[u8] {
    let mut v = v;
    while v.len() > 1 && v[0] == 0 {
        v = &v[1..];
    }
    v
}

/// Whether `content` is SM3(`signature_xml`), raw or as base64.
fn content_matches(content: &[u8], digest: &[u8; 32], signature_xml: &[u8]) -> bool {
    if content == digest || content == signature_xml {
        return true;
    }
    let text: String = String::from_utf8_lossy(content)
        .split_whitespace()
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .is_ok_and(|d| d == digest)
}

struct Checks {
    ok: bool,
    lines: Vec<String>,
}

struct Parsed<'a> {
    content: Option<&'a [u8]>,
    certs: Vec<&'a [u8]>,
    serial: &'a [u8],
    digest_alg: String,
    attrs: Option<Tlv<'a>>,
    signature: &'a [u8],
}

fn parse(der_bytes: &[u8]) -> Result<Parsed<'_>, String> {
    let ci = read_single(der_bytes, tag::SEQUENCE, "ContentInfo").map_err(der)?;
    let mut c = ci.children();
    let oid = c
        .next(tag::OID, "contentType")
        .map_err(der)?
        .oid()
        .map_err(der)?;
    if oid != SIGNED_DATA_GM && oid != SIGNED_DATA_PKCS7 {
        return Err(format!("ContentInfo type {oid} is not SignedData"));
    }
    let wrapper = c.next(tag::CONTEXT_0, "content").map_err(der)?;
    let mut w = wrapper.children();
    let sd = w.next(tag::SEQUENCE, "SignedData").map_err(der)?;
    let mut s = sd.children();
    s.next(tag::INTEGER, "version").map_err(der)?;
    s.next(tag::SET, "digestAlgorithms").map_err(der)?;
    let eci = s.next(tag::SEQUENCE, "contentInfo").map_err(der)?;
    let mut e = eci.children();
    e.next(tag::OID, "contentType").map_err(der)?;
    let content = match e.optional(tag::CONTEXT_0, "content").map_err(der)? {
        None => None,
        Some(t) => {
            let mut inner = t.children();
            let v = inner.next_any("content").map_err(der)?;
            // An OCTET STRING (its value), or whatever else is there, read as bytes.
            Some(v.value)
        }
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
        return Err("more than one SignerInfo: not a single OFD signature".into());
    }
    let mut f = si.children();
    f.next(tag::INTEGER, "version").map_err(der)?;
    let ias = f
        .next(tag::SEQUENCE, "issuerAndSerialNumber")
        .map_err(der)?;
    let mut i = ias.children();
    i.next(tag::SEQUENCE, "issuer").map_err(der)?;
    let serial = strip_zeros(i.next(tag::INTEGER, "serialNumber").map_err(der)?.value);
    let dalg = f.next(tag::SEQUENCE, "digestAlgorithm").map_err(der)?;
    let digest_alg = dalg
        .children()
        .next(tag::OID, "algorithm")
        .map_err(der)?
        .oid()
        .map_err(der)?;
    let attrs = f
        .optional(tag::CONTEXT_0, "authenticatedAttributes")
        .map_err(der)?;
    f.next(tag::SEQUENCE, "digestEncryptionAlgorithm")
        .map_err(der)?;
    let signature = f
        .next(tag::OCTET_STRING, "encryptedDigest")
        .map_err(der)?
        .value;
    Ok(Parsed {
        content,
        certs,
        serial,
        digest_alg,
        attrs,
        signature,
    })
}

/// Reads `messageDigest` and `signingTime` from the authenticated attributes.
fn attributes(attrs: &Tlv<'_>) -> Result<(Option<Vec<u8>>, Option<OffsetDateTime>), String> {
    let mut digest = None;
    let mut time = None;
    let mut list = attrs.children();
    while !list.is_empty() {
        let a = list.next(tag::SEQUENCE, "Attribute").map_err(der)?;
        let mut p = a.children();
        let oid = p
            .next(tag::OID, "attrType")
            .map_err(der)?
            .oid()
            .map_err(der)?;
        let values = p.next(tag::SET, "attrValues").map_err(der)?;
        let mut v = values.children();
        let first = v.next_any("attrValue").map_err(der)?;
        match oid.as_str() {
            MESSAGE_DIGEST => {
                if digest.is_some() {
                    return Err("two messageDigest attributes".into());
                }
                digest = Some(first.octets().map_err(der)?.to_vec());
            }
            SIGNING_TIME => time = first.time().ok(),
            _ => {}
        }
    }
    Ok((digest, time))
}

/// Verifies a CMS SignedData over `signature_xml`. `Err` when it cannot be read at all.
pub fn verify_cms(
    der_bytes: &[u8],
    signature_xml: &[u8],
    trust: Option<&TrustStore>,
) -> Result<CmsReport, String> {
    let p = parse(der_bytes)?;
    let xml_digest = sm3(signature_xml);
    let mut c = Checks {
        ok: true,
        lines: Vec::new(),
    };
    fn check(c: &mut Checks, passed: bool, text: String) {
        c.ok &= passed;
        c.lines
            .push(format!("{}: {text}", if passed { "ok" } else { "FAILED" }));
    }
    check(
        &mut c,
        p.digest_alg == SM3_OID,
        format!("digest algorithm {}", p.digest_alg),
    );
    if let Some(content) = p.content {
        check(
            &mut c,
            content_matches(content, &xml_digest, signature_xml),
            "encapsulated content is SM3(Signature.xml)".into(),
        );
    }
    let (form, message, signing_time) = match &p.attrs {
        None => {
            // Plain form: the signer signs the content (detached: Signature.xml itself).
            let message = p.content.unwrap_or(signature_xml).to_vec();
            ("plain", message, None)
        }
        Some(attrs) => {
            let (md, time) = attributes(attrs)?;
            let covered = sm3(p.content.unwrap_or(signature_xml));
            match md {
                None => check(&mut c, false, "no messageDigest attribute".into()),
                Some(md) => check(
                    &mut c,
                    md == covered,
                    "messageDigest is SM3 of the signed content".into(),
                ),
            }
            // The signature covers DER(SET OF Attribute): the [0] tag read as SET.
            let mut message = attrs.raw.to_vec();
            if let Some(first) = message.first_mut() {
                *first = tag::SET;
            }
            ("authenticated-attributes", message, time)
        }
    };
    let certs: Vec<Certificate> = p
        .certs
        .iter()
        .filter_map(|c| Certificate::from_der(c).ok())
        .collect();
    let signer_pos = p
        .certs
        .iter()
        .position(|c| cert_serial(c) == Some(p.serial));
    let signer = signer_pos.and_then(|i| Certificate::from_der(p.certs[i]).ok());
    match &signer {
        None => check(
            &mut c,
            false,
            "the signer's certificate (by serial) is not in the SignedData".into(),
        ),
        Some(cert) => {
            let result = (|| -> Result<&'static str, String> {
                let key = cert.public_key().map_err(|e| e.to_string())?;
                let (sig, encoding) = read_signature_value(p.signature)?;
                let vk = VerifyingKey::cached(key).map_err(|e| e.to_string())?;
                vk.verify(&message, &sig).map_err(|e| e.to_string())?;
                Ok(encoding)
            })();
            match result {
                Ok(enc) => check(
                    &mut c,
                    true,
                    format!(
                        "{enc} SM2 signature ({form}) verifies with {}",
                        cert.facts().display_name()
                    ),
                ),
                Err(e) => check(&mut c, false, format!("SM2 signature ({form}): {e}")),
            }
            if let Some(at) = signing_time {
                check(
                    &mut c,
                    cert.check_validity_at(at).is_ok(),
                    "signer's certificate valid at signingTime".into(),
                );
            }
            match (trust, signing_time) {
                (None, _) => c.lines.push("n/a: chain: no trust roots configured".into()),
                (Some(_), None) => c
                    .lines
                    .push("n/a: chain: no signingTime to judge the certificate at".into()),
                (Some(store), Some(at)) => {
                    let others: Vec<Certificate> = certs
                        .iter()
                        .filter(|c| c.der() != cert.der())
                        .cloned()
                        .collect();
                    let r = store.verify_signing_chain(cert, &others, at);
                    check(
                        &mut c,
                        r.is_ok(),
                        match r {
                            Ok(chain) => format!("chain of {} certificate(s)", chain.len()),
                            Err(e) => format!("chain: {e}"),
                        },
                    );
                }
            }
        }
    }
    Ok(CmsReport {
        valid: c.ok,
        form,
        signer: signer.map(|s| s.facts().clone()),
        signing_time,
        checks: c.lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::testing::{issue, name, CertSpec};
    use crate::crypto::soft::SoftSigner;
    use crate::crypto::{KeyAlgorithm, PrehashSigner};
    use crate::ses::build::sign_message;
    use crate::ses::der::write;
    use time::macros::datetime;

    fn oid(s: &str) -> Vec<u8> {
        write::oid(s).unwrap()
    }

    fn set(parts: &[&[u8]]) -> Vec<u8> {
        write::constructed(tag::SET, parts)
    }

    /// A SignedData over `xml`, in the plain or the authenticated-attributes form.
    fn build(xml: &[u8], with_attrs: bool, der_signature: bool) -> Vec<u8> {
        let key = SoftSigner::from_seed(KeyAlgorithm::Sm2, 7);
        let n = name("Test Org", "cms signer");
        let spec = CertSpec {
            cn: "cms signer".into(),
            o: "Test Org".into(),
            serial: 0x1234,
            not_before: datetime!(2020-01-01 0:00 UTC),
            not_after: datetime!(2030-01-01 0:00 UTC),
            key_usage: Some(0x80),
            ca: false,
        };
        let cert = issue(&spec, key.public_key(), &n, &key);
        let md = sm3(xml);
        let data_oid = oid("1.2.156.10197.6.1.4.2.1");
        let sm3_alg = write::seq(&[&oid(SM3_OID)]);
        let (content_info, attrs, message) = if with_attrs {
            let list = [
                write::seq(&[&oid("1.2.840.113549.1.9.3"), &set(&[&data_oid])]),
                write::seq(&[&oid(MESSAGE_DIGEST), &set(&[&write::octets(&md)])]),
                write::seq(&[
                    &oid(SIGNING_TIME),
                    &set(&[&write::tlv(tag::UTC_TIME, b"250101000000Z")]),
                ]),
            ];
            let parts: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
            (
                write::seq(&[&data_oid]),
                Some(write::constructed(tag::CONTEXT_0, &parts)),
                set(&parts),
            )
        } else {
            let content = write::constructed(tag::CONTEXT_0, &[&write::octets(&md)]);
            (write::seq(&[&data_oid, &content]), None, md.to_vec())
        };
        let sig = sign_message(&key, &message).unwrap();
        let sig = if der_signature {
            sig.to_der()
        } else {
            sig.0.to_vec()
        };
        let ias = write::seq(&[&n, &write::int(0x1234)]);
        let sig_alg = write::seq(&[&oid("1.2.156.10197.1.501")]);
        let sig_oct = write::octets(&sig);
        let mut si: Vec<&[u8]> = vec![&[2, 1, 1], &ias, &sm3_alg];
        if let Some(a) = &attrs {
            si.push(a);
        }
        si.push(&sig_alg);
        si.push(&sig_oct);
        let signer_info = write::seq(&si);
        let signed_data = write::seq(&[
            &write::int(1),
            &set(&[&sm3_alg]),
            &content_info,
            &write::constructed(tag::CONTEXT_0, &[&cert]),
            &set(&[&signer_info]),
        ]);
        write::seq(&[
            &oid(SIGNED_DATA_GM),
            &write::constructed(tag::CONTEXT_0, &[&signed_data]),
        ])
    }

    #[test]
    fn both_forms_verify_and_catch_a_changed_document() {
        let xml = b"<ofd:Signature>signed</ofd:Signature>";
        for (attrs, der_sig) in [(false, true), (true, false), (true, true)] {
            let cms = build(xml, attrs, der_sig);
            let r = verify_cms(&cms, xml, None).unwrap();
            assert!(r.valid, "{attrs} {:?}", r.checks);
            assert_eq!(
                r.form,
                if attrs {
                    "authenticated-attributes"
                } else {
                    "plain"
                }
            );
            assert_eq!(r.signing_time.is_some(), attrs);
            assert_eq!(
                r.signer.as_ref().unwrap().subject_cn.as_deref(),
                Some("cms signer")
            );
            let r = verify_cms(&cms, b"<ofd:Signature>changed</ofd:Signature>", None).unwrap();
            assert!(!r.valid, "{attrs}");
            assert!(r.checks.iter().any(|c| c.starts_with("FAILED")));
            // A flipped bit in the signature value fails.
            let mut bad = cms.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            if let Ok(r) = verify_cms(&bad, xml, None) {
                assert!(!r.valid);
            }
            for cut in 0..cms.len() {
                assert!(verify_cms(&cms[..cut], xml, None).is_err(), "cut at {cut}");
            }
        }
    }
}
