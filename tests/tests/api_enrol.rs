//! Enrolling a seal through the daemon: `POST /v1/seals` (admin) and `sealctl seal enroll`.
//! The seal key is a new key on the demo's hsm-sim token, certified by the demo CA; the maker
//! key (id 01) on the same token signs the SES_Seal. A new seal stamps end to end; every
//! refusal (another key's certificate, an untrusted or expired certificate, a bad image, a
//! taken esID, a bad policy, a non-admin, a logged-out maker token, no `[maker]`) says what to
//! do and leaves the seal list as it was.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use seald_tests::bins::bin;
use seald_tests::checks::{b64, format_layer_accepts};
use seald_tests::daemon::RawResponse;
use seald_tests::deployment::{Deployment, Who, SERIAL};
use seald_tests::hsmsim::run_cli;
use seald_tests::stamping::{check_signed, digest};

/// The demo organisation (the demo CA certifies keys for it).
const ORG: &str = "上海示例贸易有限公司";
/// A 1×1 GIF.
const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
/// A new esID.
const ES_ID: &str = "31011500000099";

fn issue(conf: &Path, ca: &Path, id: &str, extra: &[&str]) {
    let ca = ca.to_str().expect("path");
    let args = [
        &["ca", "issue", "--dir", ca, "--serial", SERIAL, "--id", id][..],
        &["--org", ORG, "--cn", ORG],
        extra,
    ]
    .concat();
    run_cli(conf, &args, "");
}

/// Removes the private half of key `id` from hsm-sim's state of the demo token (slot 0),
/// leaving its public key and certificate: a key seald must not enrol.
fn drop_private_key(demo: &Path, id: u8) {
    let path = demo.join("tokens/slot-0/state.json");
    let mut state: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("hsm-sim state")).expect("JSON");
    let objects = state["token"]["objects"]
        .as_array_mut()
        .expect("token objects");
    let before = objects.len();
    let private_class = json!(3u64.to_ne_bytes()); // CKA_CLASS = CKO_PRIVATE_KEY
    objects.retain(|o| !(o["attrs"]["0"] == private_class && o["attrs"]["258"] == json!([id])));
    assert_eq!(objects.len(), before - 1, "one private key removed");
    std::fs::write(&path, serde_json::to_vec(&state).expect("JSON")).expect("hsm-sim state");
}

/// Before the daemon starts: keys 03 (certified by the demo CA), 04 (by another CA), 05 (by
/// the demo CA, expired) and 06 (certified, but its private half removed) on the demo token.
fn provision_keys(demo: &Path) {
    let conf = demo.join("hsm-sim.toml");
    let pin = std::fs::read_to_string(demo.join("custodian.pin")).expect("custodian.pin");
    for id in ["03", "04", "05", "06"] {
        run_cli(
            &conf,
            &[
                "keygen",
                "--serial",
                SERIAL,
                "--id",
                id,
                "--label",
                "enrol test",
            ],
            &pin,
        );
    }
    issue(&conf, &demo.join("ca"), "03", &[]);
    let other = demo.join("other-ca");
    run_cli(
        &conf,
        &[
            "ca",
            "init",
            "--dir",
            other.to_str().expect("path"),
            "--org",
            "another CA",
        ],
        "",
    );
    issue(&conf, &other, "04", &[]);
    issue(
        &conf,
        &demo.join("ca"),
        "05",
        &["--not-before", "2020-01-01", "--not-after", "2021-01-01"],
    );
    issue(&conf, &demo.join("ca"), "06", &[]);
    drop_private_key(demo, 6);
}

fn deployment(extra: &str) -> Deployment {
    Deployment::hsm_sim_prepared("sansec", extra, provision_keys, &[])
}

/// The certificate `ca/issued/SERIAL-ID.der` of the demo directory, base64.
fn cert(d: &Deployment, ca: &str, id: &str) -> String {
    let der = std::fs::read(d.demo_dir().join(format!("{ca}/issued/{SERIAL}-{id}.der")))
        .expect("issued certificate");
    base64::engine::general_purpose::STANDARD.encode(der)
}

fn policy() -> Value {
    json!({
        "clients": ["demo-client"],
        "approvers": ["alice", "bob"],
        "required_approvals": 2,
        "pin_mode": {"mode": "window", "minutes": 480},
        "request_ttl_secs": 3600,
    })
}

/// A business seal on key 03 with its own certificate.
fn body(d: &Deployment) -> Value {
    json!({
        "kind": "business",
        "organisation": ORG,
        "name": format!("{ORG}人事专用章"),
        "image": base64::engine::general_purpose::STANDARD.encode(GIF),
        "width_mm": 38.0,
        "height_mm": 38.0,
        "es_id": ES_ID,
        "device_serial": SERIAL,
        "key_id": "03",
        "certificate": cert(d, "ca", "03"),
        "policy": policy(),
    })
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

fn enrol(d: &Deployment, who: Who, body: &Value) -> RawResponse {
    d.call("POST", "/v1/seals", Some(who), Some(body))
}

fn seals(d: &Deployment) -> Value {
    let r = d.call("GET", "/v1/seals", Some(Who::Auditor), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["seals"].clone()
}

/// Asserts a refusal's status and code; returns its message.
fn refused(r: &RawResponse, status: u16, code: &str) -> String {
    assert_eq!(r.status, status, "{}", r.body);
    let v = r.json();
    assert_eq!(v["code"], code, "{v}");
    v["message"].as_str().expect("message").to_owned()
}

#[test]
fn an_enrolled_seal_stamps_and_the_signature_verifies() {
    let d = deployment("");
    d.login_custodian();
    let events = d.subscribe(Who::Auditor);
    let before = seals(&d).as_array().expect("seals").len();

    let r = enrol(&d, Who::Admin, &body(&d));
    assert_eq!(r.status, 201, "{}", r.body);
    let v = r.json();
    let seal = &v["seal"];
    let id = seal["id"].as_i64().expect("id");
    assert_eq!(seal["es_id"], ES_ID);
    assert_eq!(seal["key_id"], "03");
    assert_eq!(seal["kind"], "business");
    assert_eq!(seal["state"], "active");
    assert_eq!(seal["usable"], true);
    assert_eq!(v["policy"]["approvers"], json!(["alice", "bob"]));
    assert_eq!(v["policy"]["quota_utc_offset_minutes"], 480);
    assert_eq!(seals(&d).as_array().unwrap().len(), before + 1);

    // The new seal stamps; the signature carries its SES_Seal and its certificate.
    let doc = [digest(7, 1)];
    let request = d.request(id, &doc);
    d.approve_both(request);
    let signed = d.wait_final(request);
    check_signed(&d, &signed, &doc, 1);
    let der = b64(signed["signatures"][0]["ses_signature"].as_str().unwrap());
    let sig = format_layer_accepts(&der, &doc[0], &d.demo_dir().join("ca/root.pem"));
    assert_eq!(sig.tbs.seal.info.es_id, ES_ID);
    assert_eq!(sig.tbs.seal.info.property.name, format!("{ORG}人事专用章"));
    assert_eq!(sig.tbs.seal.info.picture.data, GIF);
    assert_eq!(sig.signer_cert, b64(&cert(&d, "ca", "03")));
    let r = d.call(
        "POST",
        "/v1/verify",
        Some(Who::Client),
        Some(&json!({"ses_signature": base64::engine::general_purpose::STANDARD.encode(&der), "digest": hex::encode(doc[0])})),
    );
    assert_eq!(r.json()["valid"], true, "{}", r.body);

    // The usage log has the enrolment and the policy; the events stream told of it.
    let enrolled = d.audit("seal-enrolled");
    assert!(
        enrolled
            .iter()
            .any(|r| r["seal_id"] == id && r["detail"]["es_id"] == ES_ID && r["actor"] == "erin"),
        "{enrolled:?}"
    );
    assert!(d.audit("policy").iter().any(|r| r["seal_id"] == id));
    events.expect("seal-enrolled", &[ES_ID]);
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

#[test]
fn sealctl_enrolls_through_the_daemon_with_a_toml_policy() {
    let d = deployment("");
    d.login_custodian();
    let dir = d.dir.path();
    let token = dir.join("admin.token");
    write_private(&token, d.token(Who::Admin));
    let image = dir.join("seal.gif");
    std::fs::write(&image, GIF).expect("image");
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "# dave asks, alice and bob approve, one document a day\n\
         clients = [\"dave\"]\napprovers = [\"alice\", \"bob\"]\nrequired_approvals = 1\n\
         daily_quota = 1\npin_mode = { mode = \"window\", minutes = 60 }\nrequest_ttl_secs = 600\n",
    )
    .expect("policy");
    let cert_pem = d
        .demo_dir()
        .join(format!("ca/issued/{SERIAL}-03.pem"))
        .display()
        .to_string();
    let name = format!("{ORG}人事专用章");
    let enroll = |daemon: bool| {
        let url = format!("http://{}", d.daemon.authority());
        let mut cmd = std::process::Command::new(bin("sealctl"));
        cmd.arg("seal");
        if daemon {
            cmd.args(["--daemon", &url]).arg("--token-file").arg(&token);
        }
        cmd.arg("enroll")
            .arg("--image")
            .arg(&image)
            .args(["--kind", "business", "--organisation", ORG, "--name", &name])
            .args(["--es-id", ES_ID, "--device", SERIAL, "--key-id", "03"])
            .args(["--cert", &cert_pem, "--chain"])
            .arg(d.demo_dir().join("ca/root.pem"))
            .args(["--valid-to", "2099-01-01T00:00:00Z", "--policy"])
            .arg(&policy)
            .output()
            .expect("run sealctl")
    };

    // Without --daemon: refused, saying why.
    let out = enroll(false);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("seal-maker key") && stderr.contains("--daemon"),
        "{stderr}"
    );
    let before = seals(&d).as_array().unwrap().len();

    // --valid-to past the certificate is the registry's refusal, passed on.
    let out = enroll(true);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad_validity"), "{stderr}");
    assert_eq!(seals(&d).as_array().unwrap().len(), before);

    // Without the end (the certificate's), it enrols; stdout is the new id.
    let url = format!("http://{}", d.daemon.authority());
    let out = std::process::Command::new(bin("sealctl"))
        .args(["seal", "--daemon", &url])
        .arg("--token-file")
        .arg(&token)
        .arg("enroll")
        .arg("--image")
        .arg(&image)
        .args(["--kind", "business", "--organisation", ORG, "--name", &name])
        .args(["--es-id", ES_ID, "--device", SERIAL, "--key-id", "03"])
        .args(["--cert", &cert_pem, "--policy"])
        .arg(&policy)
        .output()
        .expect("run sealctl");
    assert!(out.status.success(), "{out:?}");
    let id: i64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the seal id on stdout");
    assert!(String::from_utf8_lossy(&out.stderr).contains("enrolled"));
    let list = seals(&d);
    let seal = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .expect("listed");
    assert_eq!(seal["es_id"], ES_ID);
    assert_eq!(seal["name"], name);

    // The file's policy governs: only dave may ask, one document a day, one approval.
    let r = d.request_as(Who::Client, id, &[digest(8, 1)]);
    refused(&r, 403, "client_not_allowed");
    let r = d.request_as(Who::Dual, id, &[digest(8, 2)]);
    assert_eq!(r.status, 202, "{}", r.body);
    let request = r.json()["id"].as_i64().unwrap();
    let r = d.call(
        "POST",
        &format!("/v1/stamp-requests/{request}/approve"),
        Some(Who::Approver2),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // dave made the request, so dave reads it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let signed = loop {
        let r = d.call(
            "GET",
            &format!("/v1/stamp-requests/{request}"),
            Some(Who::Dual),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        if v["state"] != "pending" && v["state"] != "approved" {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "request {request} not final: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    check_signed(&d, &signed, &[digest(8, 2)], 1);
    // The quota counts documents stamped today: one is, so the next request is refused.
    let r = d.request_as(Who::Dual, id, &[digest(8, 3)]);
    refused(&r, 409, "quota_exceeded");
}

#[test]
fn refusals_name_the_problem_and_change_nothing() {
    let d = deployment("");
    d.login_custodian();
    let before = seals(&d);
    let enrolled_before = d.audit("seal-enrolled").len();
    let good = body(&d);

    // A certificate for another key (the demo seal's, key 02) on key 03.
    let r = enrol(
        &d,
        Who::Admin,
        &with(good.clone(), "certificate", json!(cert(&d, "ca", "02"))),
    );
    let m = refused(&r, 422, "key_mismatch");
    assert!(m.contains("03") && m.contains(SERIAL), "{m}");

    // A certificate from a CA seald does not trust; an expired one.
    let r = enrol(
        &d,
        Who::Admin,
        &with(
            with(good.clone(), "key_id", json!("04")),
            "certificate",
            json!(cert(&d, "other-ca", "04")),
        ),
    );
    refused(&r, 422, "certificate_refused");
    let r = enrol(
        &d,
        Who::Admin,
        &with(
            with(good.clone(), "key_id", json!("05")),
            "certificate",
            json!(cert(&d, "ca", "05")),
        ),
    );
    let m = refused(&r, 422, "certificate_expired");
    assert!(m.contains("current certificate"), "{m}");

    // Not an image; no key 0a on the token; no such token; the demo seal's esID.
    let r = enrol(
        &d,
        Who::Admin,
        &with(good.clone(), "image", json!("aGVsbG8=")),
    );
    refused(&r, 422, "bad_image");
    let r = enrol(&d, Who::Admin, &with(good.clone(), "key_id", json!("0a")));
    let m = refused(&r, 404, "key_not_found");
    assert!(m.contains("generate"), "{m}");
    // Key 06 has its public key and certificate on the token but no private key.
    let r = enrol(
        &d,
        Who::Admin,
        &with(
            with(good.clone(), "key_id", json!("06")),
            "certificate",
            json!(cert(&d, "ca", "06")),
        ),
    );
    let m = refused(&r, 404, "key_not_found");
    assert!(m.contains("only the public half of key 06"), "{m}");
    let r = enrol(
        &d,
        Who::Admin,
        &with(good.clone(), "device_serial", json!("NOSUCHTOKEN")),
    );
    let m = refused(&r, 404, "device_not_present");
    assert!(m.contains("NOSUCHTOKEN") && m.contains("insert"), "{m}");
    let r = enrol(
        &d,
        Who::Admin,
        &with(good.clone(), "es_id", json!("31011500000001")),
    );
    refused(&r, 409, "es_id_taken");
    // A second legal-name seal for the organisation (the demo has none: enrol one, then refuse).
    let legal = with(
        with(good.clone(), "kind", json!("legal-name")),
        "name",
        json!(ORG),
    );
    let r = enrol(
        &d,
        Who::Admin,
        &with(legal.clone(), "es_id", json!("31011500000098")),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let after_legal = seals(&d);
    let r = enrol(&d, Who::Admin, &legal);
    let m = refused(&r, 409, "second_legal_name_seal");
    assert!(m.contains("revoke"), "{m}");

    // Malformed JSON and a missing field.
    let r = d.daemon.raw(
        "POST",
        "/v1/seals",
        &[
            ("Authorization", &format!("Bearer {}", d.token(Who::Admin))),
            ("Content-Type", "application/json"),
        ],
        Some(b"{\"kind\": "),
    );
    refused(&r, 400, "malformed_json");
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("certificate");
    let m = refused(&enrol(&d, Who::Admin, &missing), 422, "invalid_request");
    assert!(m.contains("certificate"), "{m}");

    assert_eq!(
        before.as_array().unwrap().len() + 1,
        after_legal.as_array().unwrap().len()
    );
    assert_eq!(seals(&d), after_legal, "refusals changed the seal list");
    assert_eq!(d.audit("seal-enrolled").len(), enrolled_before + 1);
    // The refused body is still good once corrected.
    assert_eq!(enrol(&d, Who::Admin, &good).status, 201);
}

#[test]
fn a_bad_policy_is_refused_before_anything_is_enrolled() {
    let d = deployment("");
    d.login_custodian();
    let before = seals(&d);
    let good = body(&d);
    let bad = |key: &str, value: Value| {
        let mut b = good.clone();
        b["policy"][key] = value;
        b
    };
    let m = refused(
        &enrol(
            &d,
            Who::Admin,
            &bad("approvers", json!(["alice", "mallory"])),
        ),
        409,
        "bad_policy",
    );
    assert!(m.contains("mallory"), "{m}");
    let m = refused(
        &enrol(&d, Who::Admin, &bad("clients", json!(["alice"]))),
        409,
        "bad_policy",
    );
    assert!(m.contains("alice") && m.contains("client"), "{m}");
    let m = refused(
        &enrol(&d, Who::Admin, &bad("required_approvals", json!(3))),
        409,
        "bad_policy",
    );
    assert!(m.contains("3 approvals"), "{m}");
    // A bad policy wins even over a bad certificate: nothing was tried on the device.
    let both = with(
        bad("approvers", json!(["mallory"])),
        "certificate",
        json!(cert(&d, "ca", "02")),
    );
    refused(&enrol(&d, Who::Admin, &both), 409, "bad_policy");

    assert_eq!(seals(&d), before, "a refused policy enrolled something");
    assert!(
        d.audit("policy").len() == 4,
        "only the demo's four policies"
    );
    // The same esID is still free.
    assert_eq!(enrol(&d, Who::Admin, &good).status, 201);
}

#[test]
fn only_an_admin_enrols_and_the_maker_token_must_be_logged_in() {
    let d = deployment("");
    let before = seals(&d);
    let good = body(&d);
    for who in [Who::Client, Who::Approver1, Who::Custodian, Who::Auditor] {
        let m = refused(&enrol(&d, who, &good), 403, "forbidden");
        assert!(m.contains("admin"), "{m}");
    }
    // The role is checked before the body is read.
    let r = d.daemon.raw(
        "POST",
        "/v1/seals",
        &[
            ("Authorization", &format!("Bearer {}", d.token(Who::Client))),
            ("Content-Type", "application/json"),
        ],
        Some(b"{"),
    );
    refused(&r, 403, "forbidden");
    let r = d.call("POST", "/v1/seals", None, Some(&good));
    assert_eq!(r.status, 401, "{}", r.body);

    // The daemon starts with the token logged out: the maker key cannot sign.
    let m = refused(&enrol(&d, Who::Admin, &good), 409, "maker_not_logged_in");
    assert!(
        m.contains(&format!("POST /v1/devices/{SERIAL}/login")) && m.contains("seal-maker"),
        "{m}"
    );
    assert_eq!(seals(&d), before);
    d.login_custodian();
    assert_eq!(enrol(&d, Who::Admin, &good).status, 201);
}

#[test]
fn without_a_maker_table_enrolment_says_what_to_add() {
    let d = Deployment::hsm_sim_prepared(
        "sansec",
        "",
        |demo| {
            provision_keys(demo);
            let config = demo.join("seald.toml");
            let text = std::fs::read_to_string(&config).expect("config");
            let text = text
                .replace("[maker]\n", "")
                .replace(&format!("device_serial = \"{SERIAL}\"\n"), "")
                .replace("key_id = \"01\"\n", "");
            assert!(!text.contains("[maker]"));
            std::fs::write(config, text).expect("config");
        },
        &[],
    );
    d.login_custodian();
    let before = seals(&d);
    let m = refused(
        &enrol(&d, Who::Admin, &body(&d)),
        503,
        "maker_not_configured",
    );
    assert!(
        m.contains("[maker]") && m.contains("device_serial") && m.contains("key_id"),
        "{m}"
    );
    assert_eq!(seals(&d), before);
}
