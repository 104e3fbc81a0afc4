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
