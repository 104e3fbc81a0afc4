//! GB/T 35275 SM2 CMS `SignedData` as found in OFD `Type="Sign"` signatures: the signature over
//! `Signature.xml`, in both forms seen in real files:
//!
//! - plain: the encapsulated content is SM3(Signature.xml) (raw, or as base64 text) and the
//!   signer signs that content;
//! - authenticated attributes (PKCS#9, "数科" form): `messageDigest` = SM3 of the content
//!   (encapsulated, or `Signature.xml` when detached) and the signer signs DER(SET OF attributes).
//!
//! SM2 signatures use the default user ID; raw r‖s and DER are both read. Reading the
//! SignedData and checking the signer, its certificate and chain are shared with PDF
//! signatures ([`crate::cms`]); what is OFD's own is what the content must be.

use base64::Engine;

use crate::cert::TrustStore;
use crate::cms::verify::{certificate_checks, find_signer, verify_signature};
use crate::cms::{oid, CmsChecks, DigestAlgorithm, SignedAttrs, SignedData};
use crate::crypto::sm3;

pub use crate::cms::CmsReport;

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

/// Verifies a CMS SignedData over `signature_xml`. `Err` when it cannot be read at all.
pub fn verify_cms(
    der_bytes: &[u8],
    signature_xml: &[u8],
    trust: Option<&TrustStore>,
    revocation: Option<&crate::revocation::Checker>,
) -> Result<CmsReport, String> {
    let p = SignedData::parse(der_bytes, false)?;
    let xml_digest = sm3(signature_xml);
    let mut c = CmsChecks::default();
    c.check(
        p.signer.digest_algorithm == oid::SM3,
        format!("digest algorithm {}", p.signer.digest_algorithm),
    );
    if let Some(content) = p.content {
        c.check(
            content_matches(content, &xml_digest, signature_xml),
            "encapsulated content is SM3(Signature.xml)",
        );
    }
    let covered = p.content.unwrap_or(signature_xml);
    let (form, message, signing_time) = match &p.signer.signed_attrs {
        // Plain form: the signer signs the content (detached: Signature.xml itself).
        None => ("plain", covered.to_vec(), None),
        Some(attrs) => {
            let a = SignedAttrs::read(attrs)?;
            match a.message_digest {
                None => c.check(false, "no messageDigest attribute"),
                Some(md) => c.check(
                    md == sm3(covered),
                    "messageDigest is SM3 of the signed content",
                ),
            }
            let message = p.signer.signed_attrs_message().unwrap_or_default();
            ("authenticated-attributes", message, a.signing_time)
        }
    };
    let signer = find_signer(&p);
    match &signer {
        None => c.check(
            false,
            "the signer's certificate (by serial) is not in the SignedData",
        ),
        Some(cert) => {
            let r = verify_signature(&p, cert, DigestAlgorithm::Sm3, &[&message]);
            c.check(
                r.is_ok(),
                match r {
                    Ok(t) => format!("{t} ({form})"),
                    Err(e) => format!("SM2 signature ({form}): {e}"),
                },
            );
            let at = signing_time.map(|t| (t, "signingTime"));
            let anchors = crate::cms::Anchors {
                roots: trust,
                tsa: None,
                revocation,
            };
            certificate_checks(&mut c, &p, cert, at, anchors, None);
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
    use crate::cms::oid::{MESSAGE_DIGEST, SIGNED_DATA_GM, SIGNING_TIME, SM3 as SM3_OID};
    use crate::crypto::soft::SoftSigner;
    use crate::crypto::{KeyAlgorithm, PrehashSigner};
    use crate::ses::build::sign_message;
    use crate::ses::der::tag;
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
            ocsp_url: None,
            crl_url: None,
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
            let r = verify_cms(&cms, xml, None, None).unwrap();
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
            let r =
                verify_cms(&cms, b"<ofd:Signature>changed</ofd:Signature>", None, None).unwrap();
            assert!(!r.valid, "{attrs}");
            assert!(r.checks.iter().any(|c| c.starts_with("FAILED")));
            // A flipped bit in the signature value fails.
            let mut bad = cms.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            if let Ok(r) = verify_cms(&bad, xml, None, None) {
                assert!(!r.valid);
            }
            for cut in 0..cms.len() {
                assert!(
                    verify_cms(&cms[..cut], xml, None, None).is_err(),
                    "cut at {cut}"
                );
            }
        }
    }
}
