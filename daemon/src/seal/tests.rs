use std::sync::Arc;

use time::macros::datetime;

use super::*;
use crate::cert::testing::{issue, name, CertSpec};
use crate::cert::Certificate;
use crate::clock::ManualClock;
use crate::crypto::soft::SoftSigner;
use crate::crypto::{KeyAlgorithm, PrehashSigner};

pub(crate) const DAY: i64 = 86_400;
pub(crate) const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

/// A test PKI: a root CA (the configured trust root), the seal maker and the seal's key.
pub(crate) struct Pki {
    root: SoftSigner,
    root_name: Vec<u8>,
    pub root_cert: Vec<u8>,
    pub maker: SoftSigner,
    pub maker_cert: Vec<u8>,
    pub seal_key: SoftSigner,
}

impl Pki {
    pub(crate) fn new(seed: u8, now: Timestamp) -> Self {
        let root = SoftSigner::from_seed(KeyAlgorithm::Sm2, seed);
        let maker = SoftSigner::from_seed(KeyAlgorithm::Sm2, seed.wrapping_add(1));
        let seal_key = SoftSigner::from_seed(KeyAlgorithm::Sm2, seed.wrapping_add(2));
        let root_name = name("测试根CA", "Test Root");
        let spec = |cn: &str, ca: bool, ku: u8| CertSpec {
            cn: cn.into(),
            o: "测试根CA".into(),
            serial: 1,
            not_before: ts(now - 3650 * DAY),
            not_after: ts(now + 3650 * DAY),
            key_usage: Some(ku),
            ca,
            ocsp_url: None,
            crl_url: None,
        };
        let root_cert = issue(
            &spec("Test Root", true, 0x06),
            root.public_key(),
            &root_name,
            &root,
        );
        let maker_cert = issue(
            &spec("Seal maker", false, 0x80),
            maker.public_key(),
            &root_name,
            &root,
        );
        Self {
            root,
            root_name,
            root_cert,
            maker,
            maker_cert,
            seal_key,
        }
    }

    /// A seal certificate (digitalSignature + nonRepudiation) issued by the root.
    pub(crate) fn seal_cert(
        &self,
        o: &str,
        cn: &str,
        not_before: Timestamp,
        not_after: Timestamp,
    ) -> Vec<u8> {
        self.seal_cert_with_usage(o, cn, not_before, not_after, 0xc0)
    }

    pub(crate) fn seal_cert_with_usage(
        &self,
        o: &str,
        cn: &str,
        not_before: Timestamp,
        not_after: Timestamp,
        key_usage: u8,
    ) -> Vec<u8> {
        let spec = CertSpec {
            cn: cn.into(),
            o: o.into(),
            serial: 0x0a1b2c,
            not_before: ts(not_before),
            not_after: ts(not_after),
            key_usage: Some(key_usage),
            ca: false,
            ocsp_url: None,
            crl_url: None,
        };
        issue(
            &spec,
            self.seal_key.public_key(),
            &self.root_name,
            &self.root,
        )
    }

    pub(crate) fn trust(&self) -> Arc<TrustStore> {
        Arc::new(TrustStore::new(vec![Certificate::from_der(
            &self.root_cert,
        )
        .unwrap()]))
    }

    pub(crate) fn maker(&self) -> SealMaker<'_> {
        SealMaker {
            signer: &self.maker,
            certificate: &self.maker_cert,
        }
    }
}

fn ts(t: Timestamp) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t).unwrap()
}

pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub clock: Arc<ManualClock>,
    pub registry: Registry,
    pub pki: Pki,
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(crate::store::testing::open(dir.path()));
    let clock = Arc::new(ManualClock::new(datetime!(2026-01-05 09:00 UTC)));
    let pki = Pki::new(40, clock.timestamp());
    let registry = Registry::new(store.clone(), clock.clone(), pki.trust());
    Fixture {
        dir,
        store,
        clock,
        registry,
        pki,
    }
}

pub(crate) fn admin() -> Caller {
    Caller::Local("root".into())
}

pub(crate) fn now(f: &Fixture) -> Timestamp {
    f.clock.timestamp()
}

pub(crate) const ORG: &str = "示例科技（北京）有限公司";

/// A seal of `ORG` with a certificate valid from a year ago to a year ahead.
pub(crate) fn new_seal(f: &Fixture, kind: SealKind, name: &str, es_id: &str) -> NewSeal {
    NewSeal {
        kind,
        organisation: ORG.into(),
        name: name.into(),
        image: PNG.to_vec(),
        width_mm: 42.0,
        height_mm: 42.0,
        es_id: es_id.into(),
        device_serial: "UKEY-0001".into(),
        key_id: "01".into(),
        device_key: f.pki.seal_key.public_key().clone(),
        certificate: f.pki.seal_cert(
            ORG,
            "示例科技电子印章",
            now(f) - 365 * DAY,
            now(f) + 365 * DAY,
        ),
        intermediates: Vec::new(),
        valid_from: None,
        valid_to: None,
    }
}

pub(crate) fn enrol(f: &Fixture, new: NewSeal) -> Result<Seal, SealError> {
    f.registry.enrol(&admin(), new, &f.pki.maker())
}

pub(crate) fn enrol_legal(f: &Fixture, es_id: &str) -> Seal {
    enrol(f, new_seal(f, SealKind::LegalName, ORG, es_id)).unwrap()
}

#[test]
fn enrolment_records_history_and_usage() {
    let f = fixture();
    let seal = enrol_legal(&f, "ES-1");
    assert_eq!(seal.state, SealState::Active);
    assert_eq!(f.registry.get(seal.id).unwrap(), seal);
    let history = f.registry.history(seal.id).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].from, history[0].to), (None, SealState::Active));
    let row = f.store.read(|tx| tx.audit_row(1)).unwrap().unwrap();
    assert_eq!(row.kind, "seal-enrolled");
    assert_eq!(row.seal_id, Some(seal.id));
}

#[test]
fn second_active_legal_name_seal_is_refused() {
    let f = fixture();
    let first = enrol_legal(&f, "ES-1");
    let err = f
        .registry
        .enrol(
            &admin(),
            new_seal(&f, SealKind::LegalName, ORG, "ES-2"),
            &f.pki.maker(),
        )
        .unwrap_err();
    assert!(
        matches!(err, SealError::SecondLegalNameSeal { existing, .. } if existing == first.id),
        "{err}"
    );
    // Several special-purpose seals are fine.
    for (i, name) in [
        "示例科技（北京）有限公司合同专用章",
        "示例科技（北京）有限公司财务专用章",
    ]
    .iter()
    .enumerate()
    {
        f.registry
            .enrol(
                &admin(),
                new_seal(&f, SealKind::Contract, name, &format!("ES-C{i}")),
                &f.pki.maker(),
            )
            .unwrap();
    }
    // After the first is revoked, a new one may be made (a change is revoke + new).
    f.registry
        .change_state(&admin(), first.id, SealState::Revoked, "replaced")
        .unwrap();
    let second = enrol_legal(&f, "ES-3");
    // …and a suspended one may not come back while another is active.
    f.registry
        .change_state(&admin(), second.id, SealState::Suspended, "audit")
        .unwrap();
    let third = enrol_legal(&f, "ES-4");
    let err = f
        .registry
        .change_state(&admin(), second.id, SealState::Active, "back")
        .unwrap_err();
    assert!(
        matches!(err, SealError::SecondLegalNameSeal { existing, .. } if existing == third.id),
        "{err}"
    );
}

#[test]
fn the_legal_name_rule_compares_normalised_organisations() {
    let f = fixture();
    let first = enrol_legal(&f, "ES-1");
    // Half-width brackets and stray spaces: the same organisation.
    let variant = " 示例科技(北京)  有限公司 ";
    let mut s = new_seal(&f, SealKind::LegalName, variant, "ES-2");
    s.organisation = variant.into();
    let err = enrol(&f, s).unwrap_err();
    assert!(
        matches!(err, SealError::SecondLegalNameSeal { existing, .. } if existing == first.id),
        "{err}"
    );
    // Full-width letters and an ideographic space against half-width ones.
    let latin = "ABC Trading Co.";
    let cert = |f: &Fixture| {
        f.pki
            .seal_cert(latin, "ABC seal", now(f) - DAY, now(f) + 365 * DAY)
    };
    let mut s = new_seal(&f, SealKind::LegalName, latin, "ES-3");
    s.organisation = latin.into();
    s.certificate = cert(&f);
    let abc = enrol(&f, s).unwrap();
    let wide = "ＡＢＣ\u{3000}Trading   Co.";
    let mut s = new_seal(&f, SealKind::LegalName, wide, "ES-4");
    s.organisation = wide.into();
    s.certificate = cert(&f);
    let err = enrol(&f, s).unwrap_err();
    assert!(
        matches!(err, SealError::SecondLegalNameSeal { existing, .. } if existing == abc.id),
        "{err}"
    );
}

#[test]
fn name_must_match_the_certificate() {
    let f = fixture();
    let mut s = new_seal(&f, SealKind::LegalName, "示例科技有限公司", "ES-1");
    assert!(matches!(
        enrol(&f, s.clone()),
        Err(SealError::NameMismatch { field: "O", .. })
    ));
    s.name = ORG.into();
    s.organisation = "别的公司".into();
    assert!(matches!(
        enrol(&f, s.clone()),
        Err(SealError::OrganisationMismatch { .. })
    ));
    // A special-purpose seal must carry the organisation's name.
    let c = new_seal(&f, SealKind::Contract, "合同专用章", "ES-2");
    assert!(matches!(enrol(&f, c), Err(SealError::NameMismatch { .. })));
    // Full-width and half-width parentheses are the same name.
    let half = new_seal(&f, SealKind::LegalName, "示例科技(北京)有限公司", "ES-3");
    enrol(&f, half).unwrap();
}

#[test]
fn personal_seal_name_must_be_the_certificate_cn() {
    let f = fixture();
    let mut p = new_seal(&f, SealKind::PersonalName, "李四", "ES-P");
    p.certificate = f
        .pki
        .seal_cert(ORG, "张三", now(&f) - DAY, now(&f) + 365 * DAY);
    assert!(matches!(
        enrol(&f, p.clone()),
        Err(SealError::NameMismatch { field: "CN", .. })
    ));
    p.name = "张三".into();
    enrol(&f, p).unwrap();
}

#[test]
fn validity_never_passes_the_certificate() {
    let f = fixture();
    let mut s = new_seal(&f, SealKind::LegalName, ORG, "ES-1");
    let (not_before, not_after) = (now(&f) - 10 * DAY, now(&f) + 100 * DAY);
    s.certificate = f.pki.seal_cert(ORG, "公章", not_before, not_after);
    s.valid_to = Some(not_after + 1);
    let err = enrol(&f, s.clone()).unwrap_err();
    assert!(
        matches!(err, SealError::ValidityPastCertificate { requested, .. } if requested == not_after + 1),
        "{err}"
    );
    s.valid_to = None;
    s.valid_from = Some(not_before - 1);
    assert!(matches!(
        enrol(&f, s.clone()),
        Err(SealError::ValidityBeforeCertificate { .. })
    ));
    s.valid_from = None;
    let seal = enrol(&f, s).unwrap();
    assert_eq!(seal.valid_to, not_after, "default end is the certificate's");
    assert_eq!(seal.valid_from, now(&f));

    let mut old = new_seal(&f, SealKind::Contract, ORG, "ES-2");
    old.certificate = f.pki.seal_cert(ORG, "x", now(&f) - 100 * DAY, now(&f) - 1);
    assert!(matches!(
        enrol(&f, old),
        Err(SealError::CertificateExpired { .. })
    ));
}

#[test]
fn image_must_be_png_gif_or_jpeg() {
    let f = fixture();
    let mut s = new_seal(&f, SealKind::LegalName, ORG, "ES-1");
    s.image = b"<svg xmlns=...".to_vec();
    assert!(matches!(
        enrol(&f, s),
        Err(SealError::Image(ImageError::UnknownFormat(_)))
    ));
}

#[test]
fn es_id_is_unique_and_ascii() {
    let f = fixture();
    for bad in ["", "印章1", "ES 1"] {
        let s = new_seal(&f, SealKind::LegalName, ORG, bad);
        assert!(matches!(enrol(&f, s), Err(SealError::BadEsId(_))));
    }
    enrol_legal(&f, "ES-1");
    let c = new_seal(&f, SealKind::Contract, ORG, "ES-1");
    assert!(matches!(enrol(&f, c), Err(SealError::EsIdTaken(_))));
}

/// Puts a fresh seal into `state` by allowed steps.
fn seal_in(f: &Fixture, state: SealState, n: usize) -> SealId {
    let s = f
        .registry
        .enrol(
            &admin(),
            new_seal(f, SealKind::Contract, ORG, &format!("ES-{state}-{n}")),
            &f.pki.maker(),
        )
        .unwrap();
    if state != SealState::Active {
        f.registry
            .change_state(&admin(), s.id, state, "setup")
            .unwrap();
    }
    s.id
}

#[test]
fn every_illegal_transition_is_refused() {
    let f = fixture();
    let mut n = 0;
    for &from in SealState::ALL {
        for &to in SealState::ALL {
            n += 1;
            let id = seal_in(&f, from, n);
            let result = f.registry.change_state(&admin(), id, to, "test");
            if rules::transition_allowed(from, to) {
                assert_eq!(result.unwrap().state, to, "{from} -> {to}");
            } else {
                let err = result.unwrap_err();
                assert!(
                    matches!(err, SealError::IllegalTransition { from: a, to: b, .. } if a == from && b == to),
                    "{from} -> {to}: {err}"
                );
                assert_eq!(f.registry.get(id).unwrap().state, from);
            }
        }
    }
    // The table itself: revoked and lost are final, expired cannot come back.
    for &to in SealState::ALL {
        assert!(!rules::transition_allowed(SealState::Revoked, to));
        assert!(!rules::transition_allowed(SealState::Lost, to));
    }
    assert!(!rules::transition_allowed(
        SealState::Expired,
        SealState::Active
    ));
    assert!(!rules::transition_allowed(
        SealState::Active,
        SealState::Active
    ));
}

#[test]
fn state_changes_need_a_reason_and_the_right_role() {
    let f = fixture();
    let s = enrol_legal(&f, "ES-1");
    assert!(matches!(
        f.registry
            .change_state(&admin(), s.id, SealState::Suspended, "  "),
        Err(SealError::NoReason)
    ));
    let custodian = Caller::User(crate::identity::Identity {
        id: 9,
        name: "keeper".into(),
        roles: vec![Role::Custodian],
        disabled: false,
        created_at: 0,
    });
    assert!(matches!(
        f.registry
            .change_state(&custodian, s.id, SealState::Revoked, "x"),
        Err(SealError::Forbidden(_))
    ));
    let lost = f
        .registry
        .change_state(&custodian, s.id, SealState::Lost, "UKey lost on the train")
        .unwrap();
    assert_eq!(lost.state, SealState::Lost);
    let h = f.registry.history(s.id).unwrap();
    assert_eq!(h.last().unwrap().actor, "keeper");
    assert_eq!(h.last().unwrap().reason, "UKey lost on the train");
    let audit = f
        .store
        .read(|tx| tx.audit_rows(0, 100))
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == "seal-state")
        .count();
    assert_eq!(audit, 1);
}

#[test]
fn expiry_warning_from_thirty_days_and_sweep() {
    let f = fixture();
    let s = enrol_legal(&f, "ES-1");
    f.clock
        .set(time::OffsetDateTime::from_unix_timestamp(s.valid_to - 31 * DAY).unwrap());
    assert!(f.registry.expiry_warnings().unwrap().is_empty());
    f.clock
        .set(time::OffsetDateTime::from_unix_timestamp(s.valid_to - 30 * DAY).unwrap());
    let w = f.registry.expiry_warnings().unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].expiry, Expiry::ExpiresSoon { days_left: 30 });
    assert!(f.registry.expire_due().unwrap().is_empty());
    check_usable(&f.registry.get(s.id).unwrap(), now(&f)).unwrap();

    f.clock
        .set(time::OffsetDateTime::from_unix_timestamp(s.valid_to).unwrap());
    let seal = f.registry.get(s.id).unwrap();
    assert!(matches!(
        check_usable(&seal, now(&f)),
        Err(SealError::OutsideValidity { .. })
    ));
    assert_eq!(f.registry.expire_due().unwrap(), vec![s.id]);
    let seal = f.registry.get(s.id).unwrap();
    assert_eq!(seal.state, SealState::Expired);
    assert!(matches!(
        check_usable(&seal, now(&f)),
        Err(SealError::NotUsable { .. })
    ));
}

#[test]
fn enrolment_makes_a_verifiable_ses_seal() {
    let f = fixture();
    let seal = enrol_legal(&f, "ES-1");
    let der = seal
        .ses_seal
        .as_deref()
        .expect("SES_Seal made at enrolment");
    let parsed = crate::ses::Seal::parse(der).unwrap();
    assert_eq!(parsed.info.es_id, "ES-1");
    assert_eq!(parsed.info.property.name, ORG);
    assert_eq!(parsed.info.property.seal_type, 1);
    assert_eq!(
        parsed.info.property.valid_end.unix_timestamp(),
        seal.valid_to
    );
    assert_eq!(parsed.info.picture.kind, "PNG");
    assert_eq!(parsed.info.picture.width, 42);
    assert_eq!(
        parsed.info.property.cert_list,
        crate::ses::CertList::Certs(vec![seal.certificate.clone()])
    );
    let trust = f.pki.trust();
    let report = crate::ses::verify_seal(
        &parsed,
        &crate::ses::VerifyOptions {
            document: crate::ses::Document::None,
            trust: Some(&trust),
            at: Some(f.clock.now()),
            tsa_trust: None,
            revocation: None,
        },
    );
    assert!(report.valid, "{report:?}");
    // Kept across reads.
    assert_eq!(
        f.registry.get(seal.id).unwrap().ses_seal.as_deref(),
        Some(der)
    );
}

#[test]
fn personal_seal_gets_the_personal_ses_type() {
    let f = fixture();
    let mut p = new_seal(&f, SealKind::PersonalName, "张三", "ES-P");
    p.certificate = f
        .pki
        .seal_cert(ORG, "张三", now(&f) - DAY, now(&f) + 365 * DAY);
    let seal = enrol(&f, p).unwrap();
    let parsed = crate::ses::Seal::parse(seal.ses_seal.as_deref().unwrap()).unwrap();
    assert_eq!(parsed.info.property.seal_type, 2);
}

#[test]
fn certificate_must_chain_to_a_root_and_allow_signing() {
    let f = fixture();
    let stranger = Pki::new(90, now(&f));
    let mut s = new_seal(&f, SealKind::LegalName, ORG, "ES-1");
    s.certificate = stranger.seal_cert(ORG, "公章", now(&f) - DAY, now(&f) + 365 * DAY);
    let err = enrol(&f, s.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            SealError::Certificate(
                crate::cert::CertError::UnknownIssuer { .. }
                    | crate::cert::CertError::BadSignature { .. }
            )
        ),
        "{err}"
    );
    // keyCertSign only: not a signing certificate.
    s.certificate =
        f.pki
            .seal_cert_with_usage(ORG, "公章", now(&f) - DAY, now(&f) + 365 * DAY, 0x04);
    let err = enrol(&f, s.clone()).unwrap_err();
    assert!(
        matches!(
            err,
            SealError::Certificate(crate::cert::CertError::WrongKeyUsage { .. })
        ),
        "{err}"
    );
    s.certificate = b"not a certificate".to_vec();
    assert!(matches!(enrol(&f, s), Err(SealError::Certificate(_))));
    assert!(f.registry.list().unwrap().is_empty());
}

#[test]
fn certificate_must_be_for_the_key_on_the_device() {
    let f = fixture();
    let mut s = new_seal(&f, SealKind::LegalName, ORG, "ES-1");
    s.device_key = f.pki.maker.public_key().clone();
    let err = enrol(&f, s).unwrap_err();
    assert!(matches!(err, SealError::KeyMismatch { .. }), "{err}");
}

#[test]
fn a_failing_maker_leaves_nothing_behind() {
    let f = fixture();
    let _ = &f.dir;
    struct Broken(crate::crypto::PublicKey);
    impl PrehashSigner for Broken {
        fn public_key(&self) -> &crate::crypto::PublicKey {
            &self.0
        }
        fn sign_prehash(
            &self,
            _: &[u8; 32],
        ) -> Result<crate::crypto::RawSignature, crate::crypto::SignerError> {
            Err("the UKey was removed".into())
        }
    }
    let broken = Broken(f.pki.maker.public_key().clone());
    let maker = SealMaker {
        signer: &broken,
        certificate: &f.pki.maker_cert,
    };
    let s = new_seal(&f, SealKind::LegalName, ORG, "ES-1");
    let err = f.registry.enrol(&admin(), s, &maker).unwrap_err();
    assert!(matches!(err, SealError::SesSeal(_)), "{err}");
    assert!(f.registry.list().unwrap().is_empty());
}
