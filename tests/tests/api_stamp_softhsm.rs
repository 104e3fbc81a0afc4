//! A full stamp through the API with a P-256 seal whose key lives on SoftHSM (CKM_ECDSA),
//! checked by the format layer and OpenSSL.

use std::time::{Duration, Instant};

use seald::approval::{PinMode, Policy};
use seald::cert::testing::{issue, name, CertSpec};
use seald::cert::{Certificate, TrustStore};
use seald::clock::{Clock, SystemClock};
use seald::crypto::soft::SoftSigner;
use seald::crypto::{KeyAlgorithm, PrehashSigner};
use seald::device::{KeySelector, TokenKey};
use seald::identity::{Caller, Role};
use seald::seal::{NewSeal, SealMaker};
use seald::services::Services;
use seald::store::model::SealKind;
use seald_tests::checks::{b64, format_layer_accepts, openssl_accepts_with};
use seald_tests::daemon::Daemon;
use seald_tests::softhsm::{Curve, SoftHsm, LIBRARY, USER_PIN};

const ORG: &str = "北京示例科技有限公司";

#[test]
fn p256_seal_on_softhsm_stamps_end_to_end() {
    let dir = tempfile::tempdir().expect("tmp");
    let hsm = SoftHsm::shared();
    let token = hsm.new_token("p256-seal");
    hsm.generate_key(&token, &[2], Curve::P256);
    let owner = hsm.devices.token(&token.serial).expect("owner");
    let key = TokenKey::open(owner, KeySelector::Id(vec![2])).expect("key");

    // A software test CA (SM2) certifying the maker (SM2) and the device's P-256 seal key.
    let clock = SystemClock;
    let now = clock.now();
    let root = SoftSigner::from_seed(KeyAlgorithm::Sm2, 40);
    let maker = SoftSigner::from_seed(KeyAlgorithm::Sm2, 41);
    let root_name = name("测试根CA", "Test Root");
    let spec = |o: &str, cn: &str, ca: bool, ku: u8| CertSpec {
        cn: cn.into(),
        o: o.into(),
        serial: 7,
        not_before: now - time::Duration::days(1),
        not_after: now + time::Duration::days(365),
        key_usage: Some(ku),
        ca,
    };
    let root_cert = issue(
        &spec("测试根CA", "Test Root", true, 0x06),
        root.public_key(),
        &root_name,
        &root,
    );
    let maker_cert = issue(
        &spec("测试根CA", "Seal maker", false, 0x80),
        maker.public_key(),
        &root_name,
        &root,
    );
    let seal_cert = issue(
        &spec(ORG, ORG, false, 0xc0),
        key.public_key(),
        &root_name,
        &root,
    );
    let root_path = dir.path().join("root.der");
    std::fs::write(&root_path, &root_cert).expect("root");

    let store = dir.path().join("seald.db");
    let trust = TrustStore::new(vec![Certificate::from_der(&root_cert).expect("root")]);
    let services = Services::open(
        &store,
        std::sync::Arc::new(SystemClock),
        std::sync::Arc::new(trust),
    )
    .expect("store");
    let admin = Caller::Local("test".into());
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for (n, role) in [
        ("app", Role::Client),
        ("alice", Role::Approver),
        ("bob", Role::Approver),
        ("carol", Role::Custodian),
    ] {
        let (identity, t) = services
            .identities
            .add(&admin, n, &[role])
            .expect("identity");
        ids.push(identity.id);
        tokens.push(format!("Bearer {}", t.expose()));
    }
    let seal = services
        .registry
        .enrol(
            &admin,
            NewSeal {
                kind: SealKind::Contract,
                organisation: ORG.into(),
                name: format!("{ORG}合同专用章"),
                image: b"GIF89a\x01\x00\x01\x00".to_vec(),
                width_mm: 40.0,
                height_mm: 40.0,
                es_id: "11010800000001".into(),
                device_serial: token.serial.clone(),
                key_id: "02".into(),
                device_key: key.public_key().clone(),
                certificate: seal_cert,
                intermediates: Vec::new(),
                valid_from: None,
                valid_to: None,
            },
            &SealMaker {
                signer: &maker,
                certificate: &maker_cert,
            },
        )
        .expect("enrol");
    services
        .approvals
        .set_policy(
            &admin,
            Policy {
                seal_id: seal.id,
                allowed_clients: vec![ids[0]],
                approvers: vec![ids[1], ids[2]],
                required_approvals: 2,
                daily_quota: None,
                quota_utc_offset_minutes: 480,
                office_hours: None,
                pin_mode: PinMode::EachStamp,
                request_ttl_secs: 3600,
            },
        )
        .expect("policy");
    drop(services);

    let config = format!(
        "store = \"{}\"\ntrust_roots = [\"{}\"]\n\n[[module]]\nname = \"softhsm\"\npath = \"{LIBRARY}\"\n",
        store.display(),
        root_path.display()
    );
    let daemon = Daemon::start(&config, &[("SOFTHSM2_CONF", &hsm.conf_path())]);
    let call = |method: &str, path: &str, who: usize, body: Option<serde_json::Value>| {
        let mut headers = vec![("Authorization", tokens[who].as_str())];
        let bytes = body.map(|b| b.to_string().into_bytes());
        if bytes.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        daemon.raw(method, path, &headers, bytes.as_deref())
    };
    let r = call(
        "POST",
        &format!("/v1/devices/{}/login", token.serial),
        3,
        Some(serde_json::json!({ "pin": USER_PIN })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let digest = [0x5a; 32];
    let r = call(
        "POST",
        "/v1/stamp-requests",
        0,
        Some(
            serde_json::json!({ "seal_id": seal.id, "digest": hex::encode(digest), "purpose": "p256" }),
        ),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["id"].as_i64().expect("id");
    for who in [1, 2] {
        let r = call(
            "POST",
            &format!("/v1/stamp-requests/{id}/approve"),
            who,
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let v = loop {
        let v = call("GET", &format!("/v1/stamp-requests/{id}"), 0, None).json();
        if v["state"] != "pending" && v["state"] != "approved" {
            break v;
        }
        assert!(Instant::now() < deadline, "not signed in 60 s: {v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(v["state"], "signed", "{v}");
    let der = b64(v["signatures"][0]["ses_signature"]
        .as_str()
        .expect("signature"));
    let parsed = format_layer_accepts(&der, &digest, &root_path);
    openssl_accepts_with(&parsed, dir.path(), "p256", false);

    // Each-stamp PIN mode: the token was logged out after the stamp.
    let r = call(
        "POST",
        "/v1/stamp-requests",
        0,
        Some(
            serde_json::json!({ "seal_id": seal.id, "digest": hex::encode([0x5b; 32]), "purpose": "p256" }),
        ),
    );
    let id = r.json()["id"].as_i64().expect("id");
    for who in [1, 2] {
        call(
            "POST",
            &format!("/v1/stamp-requests/{id}/approve"),
            who,
            None,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let v = loop {
        let v = call("GET", &format!("/v1/stamp-requests/{id}"), 0, None).json();
        if v["state"] != "pending" && v["state"] != "approved" {
            break v;
        }
        assert!(Instant::now() < deadline, "not final in 60 s: {v}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(v["state"], "failed", "{v}");
    assert!(
        v["failure"].as_str().unwrap().contains("not logged in"),
        "{v}"
    );
}
