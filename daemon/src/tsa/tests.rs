//! Tests of requests, responses and token checks: tokens made by OpenSSL's `openssl ts -reply`
//! (files in `testdata/`, made with the TSA certificate there) and tokens made here with the
//! same TSA key, to vary one thing at a time.

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::cert::testing::parties;
use crate::cert::{Certificate, TrustStore};
use crate::crypto::soft::SoftSigner;
use crate::crypto::{KeyAlgorithm, PrehashSigner};
use crate::ses::build_tests::seal_info;
use crate::ses::der::{read_single, tag, write};
use crate::ses::{
    build_seal, verify_signature, CheckStatus, Document, DocumentSigner, SesSignature, TimeStamper,
    VerifyOptions,
};

const ROOT_PEM: &[u8] = include_bytes!("testdata/root.pem");
const TSA_PEM: &[u8] = include_bytes!("testdata/tsa.pem");
const PLAIN_PEM: &[u8] = include_bytes!("testdata/plain.pem");
/// The P-256 private key of `testdata/tsa.pem` (test material only).
const TSA_SECRET: &str = "791b42a431ab09bbd2f36b498425d136d2ae658c0a639573a193eabe5f88fc95";
/// The P-256 private key of `testdata/plain.pem`, a certificate without timeStamping.
const PLAIN_SECRET: &str = "53684607cf3adaff70309bd45c52bbb723ac7f99ac32e28add0fef1e8b52d68c";

fn cert(pem: &[u8]) -> Certificate {
    TrustStore::from_pem_or_der(pem).unwrap().roots()[0].clone()
}

fn roots() -> TrustStore {
    TrustStore::from_pem_or_der(ROOT_PEM).unwrap()
}

fn key(secret: &str) -> SoftSigner {
    SoftSigner::p256_from_secret(&hex::decode(secret).unwrap().try_into().unwrap()).unwrap()
}

fn oid(s: &str) -> Vec<u8> {
    write::oid(s).unwrap()
}

fn attr(t: &str, value: &[u8]) -> Vec<u8> {
    write::seq(&[&oid(t), &write::constructed(tag::SET, &[value])])
}

/// A token as a TSA with `key` and `cert` would make it: TSTInfo over `imprint`, signed
/// attributes (contentType, messageDigest, ESS signingCertificateV2), signed with ECDSA
/// P-256/SHA-256 or SM2/SM3 as the key is.
fn make_token(
    key: &SoftSigner,
    cert: &Certificate,
    hash: HashAlgorithm,
    imprint: &[u8],
    nonce: Option<&[u8]>,
    gen_time: OffsetDateTime,
) -> Vec<u8> {
    let mut tst = vec![
        write::int(1),
        oid("1.2.3.4.1"),
        write::seq(&[&write::seq(&[&oid(hash.oid())]), &write::octets(imprint)]),
        write::int(0x1234),
        write::generalized_time(gen_time),
    ];
    if let Some(n) = nonce {
        tst.push(write::uint_bytes(n));
    }
    let refs: Vec<&[u8]> = tst.iter().map(Vec::as_slice).collect();
    let tst = write::seq(&refs);
    let ess = write::seq(&[&write::seq(&[&write::seq(&[&write::octets(
        &crate::crypto::sha256(cert.der()),
    )])])]);
    let (digest, sig_oid) = match key.public_key().algorithm {
        KeyAlgorithm::P256 => (HashAlgorithm::Sha256, "1.2.840.10045.4.3.2"),
        KeyAlgorithm::Sm2 => (HashAlgorithm::Sm3, "1.2.156.10197.1.501"),
    };
    let attrs = [
        attr("1.2.840.113549.1.9.3", &oid(OID_TST_INFO)),
        attr("1.2.840.113549.1.9.4", &write::octets(&digest.digest(&tst))),
        attr("1.2.840.113549.1.9.16.2.47", &ess),
    ]
    .concat();
    let signed = write::tlv(tag::SET, &attrs);
    let sig = crate::ses::sign_message(key, &signed).unwrap();
    let digest_alg = write::seq(&[&oid(digest.oid())]);
    let signer_info = write::seq(&[
        &write::int(1),
        &write::seq(&[
            cert.issuer_raw(),
            &write::uint_bytes(&hex::decode(&cert.facts().serial_hex).unwrap()),
        ]),
        &digest_alg,
        &write::tlv(tag::CONTEXT_0, &attrs),
        &write::seq(&[&oid(sig_oid)]),
        &write::octets(&sig.to_der()),
    ]);
    let signed_data = write::seq(&[
        &write::int(3),
        &write::constructed(tag::SET, &[&digest_alg]),
        &write::seq(&[
            &oid(OID_TST_INFO),
            &write::constructed(tag::CONTEXT_0, &[&write::octets(&tst)]),
        ]),
        &write::constructed(tag::CONTEXT_0, &[cert.der()]),
        &write::constructed(tag::SET, &[&signer_info]),
    ]);
    write::seq(&[
        &oid(OID_SIGNED_DATA),
        &write::constructed(tag::CONTEXT_0, &[&signed_data]),
    ])
}

const GEN_TIME: OffsetDateTime = datetime!(2026-12-15 08:00:00 UTC);

fn tsa_token(data: &[u8], nonce: Option<&[u8]>) -> Vec<u8> {
    let hash = HashAlgorithm::Sha256;
    make_token(
        &key(TSA_SECRET),
        &cert(TSA_PEM),
        hash,
        &hash.digest(data),
        nonce,
        GEN_TIME,
    )
}

#[test]
fn request_carries_version_imprint_nonce_and_cert_req() {
    let req = TimeStampReq::new(HashAlgorithm::Sm3, b"signature value").unwrap();
    let der = req.encode();
    let top = read_single(&der, tag::SEQUENCE, "req").unwrap();
    let mut k = top.children();
    assert_eq!(k.next(tag::INTEGER, "v").unwrap().int().unwrap(), 1);
    let mi = k.next(tag::SEQUENCE, "mi").unwrap();
    let mut m = mi.children();
    let alg = m.next(tag::SEQUENCE, "alg").unwrap();
    assert_eq!(
        alg.children().next(tag::OID, "oid").unwrap().oid().unwrap(),
        OID_SM3
    );
    assert_eq!(
        m.next(tag::OCTET_STRING, "h").unwrap().value,
        crate::crypto::sm3(b"signature value")
    );
    let nonce = k.next(tag::INTEGER, "nonce").unwrap();
    assert_eq!(request::strip_zeros(nonce.value), req.nonce_value());
    assert!(
        nonce.value[0] & 0x80 == 0,
        "the nonce is a positive INTEGER"
    );
    assert!(k.next(tag::BOOLEAN, "certReq").unwrap().boolean().unwrap());
    k.finish().unwrap();
    let other = TimeStampReq::new(HashAlgorithm::Sha256, b"signature value").unwrap();
    assert_ne!(req.nonce, other.nonce, "every request has its own nonce");
    assert_eq!(other.imprint, crate::crypto::sha256(b"signature value"));
}

#[test]
fn an_openssl_token_is_read_and_passes_every_check() {
    let data = include_bytes!("testdata/data.bin");
    let resp = TimeStampResp::parse(include_bytes!("testdata/granted-sm3.tsr")).unwrap();
    assert_eq!(resp.status, PkiStatus::Granted);
    let token = TimeStampToken::parse(&resp.into_token().unwrap()).unwrap();
    let facts = token.facts(&[]);
    assert_eq!(facts.hash, "SM3");
    assert_eq!(facts.tsa.unwrap().subject_cn.as_deref(), Some("Test TSA"));
    assert!(token.check_imprint(data).is_ok());
    let (signer, detail) = token.check_signature(&[]).unwrap();
    assert!(detail.contains("ESS signingCertificateV2"), "{detail}");
    let chain = token.check_tsa_chain(&signer, &roots()).unwrap();
    assert!(
        chain.contains("Test TSA Root") && chain.contains("(critical)"),
        "{chain}"
    );
    let nonce = token.nonce().unwrap().to_vec();
    token.verify_fresh(data, &nonce, &roots(), &[]).unwrap();

    // The same token for other data, another request (nonce), or without trusted roots.
    let e = token
        .verify_fresh(b"other", &nonce, &roots(), &[])
        .unwrap_err();
    assert!(e.contains("made for other data"), "{e}");
    let e = token
        .verify_fresh(data, &[1, 2, 3], &roots(), &[])
        .unwrap_err();
    assert!(e.contains("nonce"), "{e}");
    let e = token
        .verify_fresh(data, &nonce, &TrustStore::default(), &[])
        .unwrap_err();
    assert!(e.contains("no trusted TSA certificates"), "{e}");
    let stranger = TrustStore::from_pem_or_der(PLAIN_PEM).unwrap();
    let e = token
        .verify_fresh(data, &nonce, &stranger, &[])
        .unwrap_err();
    assert!(e.contains("is not a configured trust root"), "{e}");
    // The TSA's own certificate may be what is trusted.
    let tsa_only = TrustStore::from_pem_or_der(TSA_PEM).unwrap();
    token.verify_fresh(data, &nonce, &tsa_only, &[]).unwrap();
}

#[test]
fn a_rejection_names_its_status_and_fail_info() {
    let resp = TimeStampResp::parse(include_bytes!("testdata/rejected.tsr")).unwrap();
    assert_eq!(resp.status, PkiStatus::Rejection);
    let (refused, text) = resp.into_token().unwrap_err();
    assert!(refused);
    assert!(text.contains("PKIStatus rejection"), "{text}");
    assert!(text.contains("badAlg"), "{text}");
    assert!(text.contains("not supported"), "{text}");
    // Built by hand: waiting, with timeNotAvailable and systemFailure.
    let bits = write::tlv(tag::BIT_STRING, &[6, 0, 2, 0, 0x40]);
    let resp = write::seq(&[&write::seq(&[&write::int(3), &bits])]);
    let text = TimeStampResp::parse(&resp).unwrap().describe();
    assert!(text.contains("waiting"), "{text}");
    assert!(
        text.contains("timeNotAvailable") && text.contains("systemFailure"),
        "{text}"
    );
    assert!(TimeStampResp::parse(b"\x30\x03\x02\x01").is_err());
}

#[test]
fn an_altered_token_or_a_stranger_signer_is_refused() {
    let data = b"the signature value";
    let token = tsa_token(data, Some(&[9, 9]));
    let parsed = TimeStampToken::parse(&token).unwrap();
    parsed
        .verify_fresh(data, &[9, 9], &roots(), &[])
        .expect("a well-made token passes");
    // Change the genTime inside the TSTInfo: the messageDigest no longer matches.
    let at = token
        .windows(4)
        .position(|w| w == b"2026")
        .expect("genTime in the token");
    let mut altered = token.clone();
    altered[at + 3] = b'5';
    let e = TimeStampToken::parse(&altered)
        .unwrap()
        .check_signature(&[])
        .unwrap_err();
    assert!(e.contains("messageDigest"), "{e}");
    // Signed by a certificate without timeStamping: the signature is fine, the chain is not.
    let hash = HashAlgorithm::Sha256;
    let plain = make_token(
        &key(PLAIN_SECRET),
        &cert(PLAIN_PEM),
        hash,
        &hash.digest(data),
        None,
        GEN_TIME,
    );
    let plain = TimeStampToken::parse(&plain).unwrap();
    let (signer, _) = plain.check_signature(&[]).unwrap();
    let e = plain.check_tsa_chain(&signer, &roots()).unwrap_err();
    assert!(e.contains("time-stamping"), "{e}");
    // Signed by another key than its certificate's.
    let forged = make_token(
        &key(PLAIN_SECRET),
        &cert(TSA_PEM),
        hash,
        &hash.digest(data),
        None,
        GEN_TIME,
    );
    let e = TimeStampToken::parse(&forged)
        .unwrap()
        .check_signature(&[])
        .unwrap_err();
    assert!(e.contains("does not verify"), "{e}");
}

/// Stamps with the test TSA; `other` makes tokens over other data.
struct TestStamper {
    other: bool,
}

impl TimeStamper for TestStamper {
    fn time_stamp(&self, value: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let data = if self.other {
            b"another signature"
        } else {
            value
        };
        Ok(Some(tsa_token(data, None)))
    }
}

fn stamped(other: bool, time_info: OffsetDateTime) -> SesSignature {
    let p = parties(KeyAlgorithm::Sm2);
    let seal = build_seal(&seal_info(&p), &p.maker_cert, &p.maker).unwrap();
    let stamper = TestStamper { other };
    let signer = DocumentSigner::new(&seal, &p.signer_cert, &p.signer)
        .unwrap()
        .with_time_stamper(&stamper);
    let sig = signer.sign(time_info, &[7; 32], "/doc", None).unwrap();
    SesSignature::parse(&sig.der).unwrap()
}

#[test]
fn a_stamped_signature_carries_the_token_and_is_judged_at_its_time() {
    // timeInfo after the seal's validity (2027-01-02): only the trusted time saves it.
    let sig = stamped(false, datetime!(2027-06-01 00:00 UTC));
    let token = sig.time_stamp_token().unwrap().unwrap();
    assert_eq!(token, tsa_token(&sig.signature, None));
    // [0] EXPLICIT BIT STRING, after the signature.
    assert!(sig.der.ends_with(&crate::ses::time_stamp_field(&token)));
    let tsa = roots();
    let with = |tsa_trust| VerifyOptions {
        document: Document::Digest(&[7; 32]),
        tsa_trust,
        ..VerifyOptions::default()
    };
    let report = verify_signature(&sig, &with(Some(&tsa)));
    assert!(report.valid, "{}", report.to_text());
    assert_eq!(report.judged_by, Some("timestamp"));
    assert_eq!(report.judged_at, Some(GEN_TIME));
    let when = report.check("signing-time").unwrap();
    assert_eq!(when.status, CheckStatus::Passed);
    assert!(
        when.detail
            .starts_with("timestamp by Test TSA at 2026-12-15T08:00:00Z")
            && when.detail.contains("judged at the timestamp's time")
            && when
                .detail
                .contains("the signing machine's clock was ahead"),
        "{}",
        when.detail
    );
    for id in [
        "timestamp-imprint",
        "timestamp-signature",
        "timestamp-chain",
    ] {
        assert_eq!(
            report.check(id).unwrap().status,
            CheckStatus::Passed,
            "{id}"
        );
    }
    assert!(report
        .to_text()
        .contains("stamped  2026-12-15T08:00:00Z by Test TSA"));

    // Without TSA roots (none given, or an empty set) the token's time is not trusted:
    // timeInfo decides (and is too late).
    let empty = TrustStore::default();
    let report = verify_signature(&sig, &with(Some(&empty)));
    assert_eq!(
        report.check("timestamp-chain").unwrap().status,
        CheckStatus::NotApplicable
    );
    let report = verify_signature(&sig, &with(None));
    assert!(!report.valid, "{}", report.to_text());
    assert_eq!(report.judged_by, Some("timeInfo"));
    assert_eq!(
        report.check("timestamp-chain").unwrap().status,
        CheckStatus::NotApplicable
    );
    assert_eq!(
        report.check("seal-validity").unwrap().status,
        CheckStatus::Failed
    );
}

#[test]
fn a_token_over_another_signature_makes_it_invalid() {
    let sig = stamped(true, datetime!(2026-12-01 00:00 UTC));
    let tsa = roots();
    let report = verify_signature(
        &sig,
        &VerifyOptions {
            tsa_trust: Some(&tsa),
            ..VerifyOptions::default()
        },
    );
    assert!(!report.valid, "{}", report.to_text());
    let imprint = report.check("timestamp-imprint").unwrap();
    assert_eq!(imprint.status, CheckStatus::Failed);
    assert!(
        imprint.detail.contains("made for other data"),
        "{}",
        imprint.detail
    );
    assert_eq!(report.judged_by, Some("timeInfo"));
}

#[test]
fn no_token_is_judged_at_time_info_as_before() {
    let p = parties(KeyAlgorithm::Sm2);
    let seal = build_seal(&seal_info(&p), &p.maker_cert, &p.maker).unwrap();
    let signer = DocumentSigner::new(&seal, &p.signer_cert, &p.signer).unwrap();
    let sig = signer
        .sign(datetime!(2026-01-01 00:00 UTC), &[7; 32], "/doc", None)
        .unwrap();
    assert!(sig.time_stamp.is_none());
    let report = verify_signature(&sig, &VerifyOptions::default());
    assert!(report.valid, "{}", report.to_text());
    assert_eq!(report.judged_by, Some("timeInfo"));
    let when = report.check("signing-time").unwrap();
    assert!(when.detail.starts_with("no timestamp"), "{}", when.detail);
    assert!(report.check("timestamp-imprint").is_none());
}

#[test]
fn the_policy_decides_what_an_unreachable_tsa_means() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/tsa");
    let client = TsaClient::new(
        &url,
        HashAlgorithm::Sm3,
        std::time::Duration::from_secs(2),
        roots(),
    );
    let required = Stamper::new(&client, TsaPolicy::Required);
    let e = required.time_stamp(b"value").unwrap_err();
    assert!(
        e.contains(&url) && e.contains("could not be reached"),
        "{e}"
    );
    assert!(e.contains("`required`"), "{e}");
    let best = Stamper::new(&client, TsaPolicy::BestEffort);
    assert_eq!(best.time_stamp(b"value").unwrap(), None);
    let outcomes = best.outcomes();
    assert_eq!(outcomes.len(), 1);
    assert!(outcomes[0].result.is_err());
    assert_eq!(
        outcomes[0].signature_value_sm3,
        crate::crypto::sm3(b"value")
    );
    let off = Stamper::new(&client, TsaPolicy::Off);
    assert_eq!(off.time_stamp(b"value").unwrap(), None);
    assert!(off.outcomes().is_empty());
}

#[test]
fn loopback_urls_are_recognised() {
    use crate::fetch::is_loopback_url;
    for url in [
        "http://127.0.0.1:3180/tsa",
        "http://127.8.0.1/",
        "http://localhost:80",
        "http://[::1]:3180/tsa",
    ] {
        assert!(is_loopback_url(url), "{url}");
    }
    for url in [
        "http://tsa.example.cn/tsa",
        "http://10.0.0.1:80/",
        "http://[2001:db8::1]/",
    ] {
        assert!(!is_loopback_url(url), "{url}");
    }
}

#[test]
fn an_sm2_tsa_token_verifies_with_sm3() {
    // OpenSSL 3.0 cannot sign a timestamp with an SM2 key (ts_RESP_sign fails), so the token is
    // made here: SM2 with SM3 and the default user ID, as GM/T TSAs sign.
    let p = parties(KeyAlgorithm::Sm2);
    let tsa = Certificate::from_der(&p.signer_cert).unwrap();
    let hash = HashAlgorithm::Sm3;
    let token = make_token(&p.signer, &tsa, hash, &hash.digest(b"v"), None, GEN_TIME);
    let token = TimeStampToken::parse(&token).unwrap();
    token.check_imprint(b"v").unwrap();
    let (signer, detail) = token.check_signature(&[]).unwrap();
    assert_eq!(signer.der(), &p.signer_cert[..]);
    assert!(detail.contains("verifies"), "{detail}");
    // Its certificate has no timeStamping usage: it may not be a TSA.
    let roots = TrustStore::new(vec![Certificate::from_der(&p.root_cert).unwrap()]);
    let e = token.check_tsa_chain(&signer, &roots).unwrap_err();
    assert!(e.contains("time-stamping"), "{e}");
}

#[test]
fn a_cms_signature_carries_the_token_as_an_unsigned_attribute() {
    use crate::cms::{
        build_detached, max_detached_len, verify_detached, Anchors, ContentDigest, SignedData,
    };
    let p = parties(KeyAlgorithm::P256);
    let seal = build_seal(&seal_info(&p), &p.maker_cert, &p.maker).unwrap();
    let content: &[u8] = b"the PDF's byte range";
    let digest = crate::crypto::sha256(content);
    let at = datetime!(2026-12-01 00:00 UTC);
    for other in [false, true] {
        let stamper = TestStamper { other };
        let signer = DocumentSigner::new(&seal, &p.signer_cert, &p.signer)
            .unwrap()
            .with_time_stamper(&stamper);
        let der = build_detached(&signer, &[], &digest, at).unwrap();
        assert!(der.len() <= max_detached_len(&signer, &[]), "room was kept");
        let sd = SignedData::parse(&der, false).unwrap();
        let token = sd
            .signer
            .signature_time_stamp()
            .expect("the unsigned attribute");
        let report = verify_detached(
            &der,
            ContentDigest::Chunks(&[content]),
            Anchors::roots(None),
            Some(at),
        )
        .unwrap();
        let lines = report.checks.join("\n");
        if other {
            assert!(!report.valid, "{lines}");
            assert!(
                lines.contains("FAILED: signature-time-stamp: the token's SHA-256 imprint"),
                "{lines}"
            );
        } else {
            assert_eq!(token, tsa_token(sd.signer.signature, None));
            assert!(report.valid, "{lines}");
            assert!(
                lines.contains("ok: signature-time-stamp: the SHA-256 imprint"),
                "{lines}"
            );
            assert!(
                lines.contains("signature-time-stamp by Test TSA at 2026-12-15T08:00:00Z"),
                "{lines}"
            );
        }
    }
    // Without a stamper: no unsigned attributes, as before.
    let signer = DocumentSigner::new(&seal, &p.signer_cert, &p.signer).unwrap();
    let der = build_detached(&signer, &[], &digest, at).unwrap();
    let sd = SignedData::parse(&der, false).unwrap();
    assert!(sd.signer.unsigned_attrs.is_none());
}
