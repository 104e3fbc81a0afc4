use super::fixtures::fixture;
use super::*;

#[test]
fn fixtures_parse() {
    let seal = Seal::parse(&fixture("ses/user-v4.esl")).unwrap();
    assert_eq!(seal.version, FormatVersion::V4);
    assert_eq!(seal.info.property.name, "OFD R&W 测试用印章");
    assert_eq!(seal.info.property.seal_type, 3);
    let seal = Seal::parse(&fixture("ses/user-v1.esl")).unwrap();
    assert_eq!(seal.version, FormatVersion::V1);
    assert_eq!(seal.info.property.name, "OFDRW测试用印章");
    let seal = Seal::parse(&fixture("ses/hebei-bad-maker-sig.der")).unwrap();
    assert_eq!(seal.info.picture.kind, "GIF");
    let ext = seal.info.ext_datas.as_ref().unwrap();
    assert_eq!(ext.len(), 3);
    assert!(!ext[0].critical && ext[1].critical);
    let sig = SesSignature::parse(&fixture("ses/signed-value-v4.dat")).unwrap();
    assert_eq!(sig.version, FormatVersion::V4);
    assert_eq!(
        detect(&fixture("ses/signed-value-v4.dat")),
        ObjectKind::Signature
    );
    assert_eq!(detect(&fixture("ses/user-v1.esl")), ObjectKind::Seal);
}

fn statuses(r: &Report) -> Vec<(&'static str, CheckStatus)> {
    r.checks.iter().map(|c| (c.id, c.status)).collect()
}

#[test]
fn fixture_seals_verify_as_documented() {
    let opts = VerifyOptions::default();
    for f in ["ses/user-v4.esl", "ses/user-v1.esl"] {
        let r = verify_seal(&Seal::parse(&fixture(f)).unwrap(), &opts);
        eprintln!("{}", r.to_text());
        assert_eq!(
            r.check("maker-signature").unwrap().status,
            CheckStatus::Passed,
            "{f}"
        );
        assert!(r.valid, "{f}: {:?}", statuses(&r));
    }
    let r = verify_seal(
        &Seal::parse(&fixture("ses/hebei-bad-maker-sig.der")).unwrap(),
        &opts,
    );
    eprintln!("{}", r.to_text());
    assert_eq!(
        r.check("maker-signature").unwrap().status,
        CheckStatus::Failed
    );
    assert!(!r.valid);
}

#[test]
fn bare_signature_verifies() {
    let sig = SesSignature::parse(&fixture("ses/signed-value-v4.dat")).unwrap();
    let r = verify_signature(&sig, &VerifyOptions::default());
    eprintln!("{}", r.to_text());
    assert_eq!(
        r.check("maker-signature").unwrap().status,
        CheckStatus::Passed
    );
    assert_eq!(
        r.check("signer-signature").unwrap().status,
        CheckStatus::Passed
    );
    assert_eq!(
        r.check("data-hash").unwrap().status,
        CheckStatus::NotApplicable
    );
    assert!(r.valid, "{:?}", statuses(&r));
}

fn ofd(name: &str) -> Vec<OfdSignature> {
    let bytes = fixture(&format!("ses/{name}"));
    verify_ofd(std::io::Cursor::new(bytes), None).unwrap()
}

fn report(entry: &OfdSignature) -> &Report {
    match &entry.outcome {
        OfdOutcome::Verified { report } => report,
        other => panic!("{}: {other:?}", entry.signature_xml),
    }
}

#[test]
fn ofd_fixtures_verify_as_documented() {
    for (file, sign) in [
        ("gomain-999.ofd", "Sign_0"),
        ("antchain-signscale.ofd", "Sign_0"),
        ("ofdrw-ride-right.ofd", "Sign_0"),
        ("tongzhiweiye-keyword.ofd", "Sign_1"),
    ] {
        let entries = ofd(file);
        let e = entries
            .iter()
            .find(|e| e.signature_xml.contains(sign))
            .unwrap_or_else(|| panic!("{file}: {sign} not found"));
        let r = report(e);
        eprintln!("{file}\n{}", r.to_text());
        for id in [
            "maker-signature",
            "signer-signature",
            "data-hash",
            "signer-in-seal",
            "seal-validity",
        ] {
            assert_eq!(
                r.check(id).unwrap().status,
                CheckStatus::Passed,
                "{file} {id}"
            );
        }
        assert!(r.valid, "{file}");
        assert!(entries.iter().all(OfdSignature::is_valid), "{file}");
    }
    let gomain = ofd("gomain-999.ofd");
    let r = report(&gomain[0]);
    assert_eq!(r.seal.vid, "GOMAIN");
    assert_eq!(r.seal.es_id, "50011200000323");
    assert_eq!(r.seal.seal_type, 3);
    assert!(r.seal.picture.starts_with("ofd 30x20"));
    let tz = ofd("tongzhiweiye-keyword.ofd");
    let sign1 = report(
        tz.iter()
            .find(|e| e.signature_xml.contains("Sign_1"))
            .unwrap(),
    );
    assert!(sign1
        .check("signer-signature")
        .unwrap()
        .detail
        .starts_with("raw r||s"));
    assert_eq!(sign1.seal.vid, "SHANDONG.TONGZHIWEIYE");
    let sign3 = tz
        .iter()
        .find(|e| e.signature_xml.contains("Sign_3"))
        .unwrap();
    assert!(
        matches!(&sign3.outcome, OfdOutcome::NotSes { found } if found.contains("1.2.156.10197.6.1.4.2.2"))
    );
}
