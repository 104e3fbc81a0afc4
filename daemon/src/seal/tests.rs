use std::sync::Arc;

use time::macros::datetime;

use super::*;
use crate::clock::ManualClock;

pub(crate) const DAY: i64 = 86_400;
pub(crate) const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Arc<Store>,
    pub clock: Arc<ManualClock>,
    pub registry: Registry,
}

pub(crate) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("seald.db")).unwrap());
    let clock = Arc::new(ManualClock::new(datetime!(2026-01-05 09:00 UTC)));
    let registry = Registry::new(store.clone(), clock.clone());
    Fixture {
        dir,
        store,
        clock,
        registry,
    }
}

pub(crate) fn admin() -> Caller {
    Caller::Local("root".into())
}

pub(crate) fn now(f: &Fixture) -> Timestamp {
    f.clock.timestamp()
}

/// A certificate for 示例科技（北京）有限公司 valid from a year ago to a year ahead.
pub(crate) fn cert(f: &Fixture, org: &str, cn: &str) -> CertFacts {
    CertFacts {
        organisation: Some(org.to_owned()),
        common_name: cn.to_owned(),
        serial_hex: "0a1b2c".into(),
        not_before: now(f) - 365 * DAY,
        not_after: now(f) + 365 * DAY,
    }
}

pub(crate) const ORG: &str = "示例科技（北京）有限公司";

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
        certificate: vec![0x30, 0x00],
        cert: cert(f, ORG, "示例科技电子印章"),
        valid_from: None,
        valid_to: None,
    }
}

pub(crate) fn enrol_legal(f: &Fixture, es_id: &str) -> Seal {
    f.registry
        .enrol(&admin(), new_seal(f, SealKind::LegalName, ORG, es_id), None)
        .unwrap()
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
            None,
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
                None,
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
fn name_must_match_the_certificate() {
    let f = fixture();
    let mut s = new_seal(&f, SealKind::LegalName, "示例科技有限公司", "ES-1");
    assert!(matches!(
        f.registry.enrol(&admin(), s.clone(), None),
        Err(SealError::NameMismatch { field: "O", .. })
    ));
    s.name = ORG.into();
    s.organisation = "别的公司".into();
    assert!(matches!(
        f.registry.enrol(&admin(), s.clone(), None),
        Err(SealError::OrganisationMismatch { .. })
    ));
    // A special-purpose seal must carry the organisation's name.
    let c = new_seal(&f, SealKind::Contract, "合同专用章", "ES-2");
    assert!(matches!(
        f.registry.enrol(&admin(), c, None),
        Err(SealError::NameMismatch { .. })
    ));
    // Full-width and half-width parentheses are the same name.
    let half = new_seal(&f, SealKind::LegalName, "示例科技(北京)有限公司", "ES-3");
    f.registry.enrol(&admin(), half, None).unwrap();
}

#[test]
fn personal_seal_name_must_be_the_certificate_cn() {
    let f = fixture();
    let mut p = new_seal(&f, SealKind::PersonalName, "李四", "ES-P");
    p.cert = cert(&f, ORG, "张三");
    assert!(matches!(
        f.registry.enrol(&admin(), p.clone(), None),
        Err(SealError::NameMismatch { field: "CN", .. })
    ));
    p.name = "张三".into();
    f.registry.enrol(&admin(), p, None).unwrap();
}

#[test]
fn validity_never_passes_the_certificate() {
    let f = fixture();
    let mut s = new_seal(&f, SealKind::LegalName, ORG, "ES-1");
    let not_after = s.cert.not_after;
    s.valid_to = Some(not_after + 1);
    let err = f.registry.enrol(&admin(), s.clone(), None).unwrap_err();
    assert!(
        matches!(err, SealError::ValidityPastCertificate { requested, .. } if requested == not_after + 1),
        "{err}"
    );
    s.valid_to = None;
    s.valid_from = Some(s.cert.not_before - 1);
    assert!(matches!(
        f.registry.enrol(&admin(), s.clone(), None),
        Err(SealError::ValidityBeforeCertificate { .. })
    ));
    s.valid_from = None;
    let seal = f.registry.enrol(&admin(), s, None).unwrap();
    assert_eq!(seal.valid_to, not_after, "default end is the certificate's");
    assert_eq!(seal.valid_from, now(&f));

    let mut old = new_seal(&f, SealKind::Contract, ORG, "ES-2");
    old.cert.not_after = now(&f) - 1;
    assert!(matches!(
        f.registry.enrol(&admin(), old, None),
        Err(SealError::CertificateExpired { .. })
    ));
}

#[test]
fn image_must_be_png_gif_or_jpeg() {
    let f = fixture();
    let mut s = new_seal(&f, SealKind::LegalName, ORG, "ES-1");
    s.image = b"<svg xmlns=...".to_vec();
    assert!(matches!(
        f.registry.enrol(&admin(), s, None),
        Err(SealError::Image(ImageError::UnknownFormat(_)))
    ));
}

#[test]
fn es_id_is_unique_and_ascii() {
    let f = fixture();
    for bad in ["", "印章1", "ES 1"] {
        let s = new_seal(&f, SealKind::LegalName, ORG, bad);
        assert!(matches!(
            f.registry.enrol(&admin(), s, None),
            Err(SealError::BadEsId(_))
        ));
    }
    enrol_legal(&f, "ES-1");
    let c = new_seal(&f, SealKind::Contract, ORG, "ES-1");
    assert!(matches!(
        f.registry.enrol(&admin(), c, None),
        Err(SealError::EsIdTaken(_))
    ));
}

/// Puts a fresh seal into `state` by allowed steps.
fn seal_in(f: &Fixture, state: SealState, n: usize) -> SealId {
    let s = f
        .registry
        .enrol(
            &admin(),
            new_seal(f, SealKind::Contract, ORG, &format!("ES-{state}-{n}")),
            None,
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
fn enrolment_with_a_maker_never_fakes_an_ses_seal() {
    let f = fixture();
    let _ = &f.dir;
    struct NoSigner;
    impl crate::crypto::PrehashSigner for NoSigner {
        fn public_key(&self) -> &crate::crypto::PublicKey {
            unreachable!("not asked")
        }
        fn sign_prehash(
            &self,
            _: &[u8; 32],
        ) -> Result<crate::crypto::RawSignature, crate::crypto::SignerError> {
            Err("no key".into())
        }
    }
    let maker = SealMaker {
        signer: &NoSigner,
        certificate: &[],
    };
    let s = new_seal(&f, SealKind::LegalName, ORG, "ES-1");
    assert!(matches!(
        f.registry.enrol(&admin(), s, Some(&maker)),
        Err(SealError::SesSeal(_))
    ));
    assert!(f.registry.list().unwrap().is_empty());
}
