//! Seal state changes over the API (admin): effective at once. A revocation in the middle of
//! an approval stops that stamp: the request fails with the reason, the second approval is
//! refused, nothing is signed; `seal-state` goes out on the events stream; the usage log keeps it.

use seald_tests::bins::bin;
use seald_tests::deployment::{Deployment, Who};
use seald_tests::stamping::digest;

#[test]
fn revocation_in_the_middle_of_an_approval_stops_that_stamp() {
    let d = Deployment::hsm_sim("sansec");
    d.login_custodian();
    let events = d.subscribe(Who::Admin);
    let doc = [digest(9, 1)];
    let id = d.request(1, &doc);
    let r = d.call(
        "POST",
        &format!("/v1/stamp-requests/{id}/approve"),
        Some(Who::Approver1),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "pending", "1 of 2 approvals");

    // Only an admin may revoke; a reason is required.
    let body = serde_json::json!({"reason": "key compromised"});
    let r = d.call(
        "POST",
        "/v1/seals/1/revoke",
        Some(Who::Approver2),
        Some(&body),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = d.call(
        "POST",
        "/v1/seals/1/revoke",
        Some(Who::Admin),
        Some(&serde_json::json!({"reason": "  "})),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["code"], "seal_refused");

    let r = d.call("POST", "/v1/seals/1/revoke", Some(Who::Admin), Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["seal"]["state"], "revoked", "{v}");
    assert_eq!(v["failed_requests"], serde_json::json!([id]));

    // The second approval is refused; the request ended failed with the reason.
    let r = d.call(
        "POST",
        &format!("/v1/stamp-requests/{id}/approve"),
        Some(Who::Approver2),
        None,
    );
    assert!(r.status == 409, "{}", r.body);
    let v = d.wait_final(id);
    assert_eq!(v["state"], "failed", "{v}");
    let failure = v["failure"].as_str().unwrap_or_default();
    assert!(
        failure.contains("revoked") && failure.contains("key compromised"),
        "{v}"
    );

    // Nothing signed; the change is in the usage log; the status page shows it.
    assert!(d.audit("signature").is_empty(), "nothing may be signed");
    let changes = d.audit("seal-state");
    assert!(
        changes
            .iter()
            .any(|r| r.to_string().contains("key compromised")),
        "{changes:?}"
    );
    let s = d.call("GET", "/v1/seals/1/status", None, None).json();
    assert_eq!(s["state"], "revoked");

    // A new request for the seal is refused at once.
    let r = d.request_as(Who::Client, 1, &[digest(9, 2)]);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["code"], "seal_not_usable");

    // The events stream told of it.
    let (mut revoked, mut failed) = (false, false);
    while !(revoked && failed) {
        let e = events.next_of(&["seal-state", "request-failed"]);
        revoked |= e.name == "seal-state" && e.data.contains("revoked");
        failed |= e.name == "request-failed" && e.data.contains("key compromised");
    }
}

#[test]
fn suspend_and_resume_over_the_api() {
    let d = Deployment::hsm_sim("sansec");
    d.login_custodian();
    let body = serde_json::json!({"reason": "audit"});
    let r = d.call("POST", "/v1/seals/1/suspend", Some(Who::Admin), Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = d.request_as(Who::Client, 1, &[digest(9, 3)]);
    assert_eq!(r.json()["code"], "seal_not_usable", "{}", r.body);
    let r = d.call("POST", "/v1/seals/1/resume", Some(Who::Admin), Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    let id = d.request(1, &[digest(9, 4)]);
    d.approve_both(id);
    assert_eq!(d.wait_final(id)["state"], "signed");
    let r = d.call(
        "POST",
        "/v1/seals/999/revoke",
        Some(Who::Admin),
        Some(&body),
    );
    assert_eq!(r.status, 404, "{}", r.body);
}

/// Runs `sealctl seal ARGS --daemon URL` with the token file named by `file_flag` or the env.
fn sealctl_daemon(
    d: &Deployment,
    args: &[&str],
    token_file: &std::path::Path,
    by_env: bool,
) -> std::process::Output {
    let url = format!("http://{}", d.daemon.authority());
    let mut cmd = std::process::Command::new(bin("sealctl"));
    cmd.arg("seal").args(["--daemon", &url]);
    if by_env {
        cmd.env("SEALD_TOKEN_FILE", token_file);
    } else {
        cmd.arg("--token-file").arg(token_file);
    }
    cmd.args(args).output().expect("run sealctl")
}

#[test]
fn sealctl_changes_state_through_the_daemon_with_a_private_token_file() {
    use std::os::unix::fs::PermissionsExt;
    let d = Deployment::hsm_sim("sansec");
    let events = d.subscribe(Who::Auditor);
    let file = d.dir.path().join("admin.token");
    std::fs::write(&file, d.token(Who::Admin)).expect("token file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = sealctl_daemon(&d, &["suspend", "1", "--reason", "audit"], &file, false);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chmod 600"),
        "{out:?}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    let id = d.request(1, &[digest(9, 5)]);
    let out = sealctl_daemon(&d, &["suspend", "1", "--reason", "audit"], &file, true);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("suspended"),
        "{out:?}"
    );
    assert_eq!(d.wait_final(id)["state"], "failed");
    let out = sealctl_daemon(&d, &["resume", "1", "--reason", "audit done"], &file, false);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        d.call("GET", "/v1/seals/1/status", None, None).json()["state"],
        "active"
    );

    // A refusal names the daemon's code; a client token may not change states.
    let client = d.dir.path().join("client.token");
    std::fs::write(&client, d.token(Who::Client)).expect("token file");
    std::fs::set_permissions(&client, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = sealctl_daemon(&d, &["revoke", "1", "--reason", "x"], &client, false);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("forbidden"),
        "{out:?}"
    );

    // The running daemon announced both changes.
    let mut states = Vec::new();
    while states.len() < 2 {
        states.push(events.next_of(&["seal-state"]).data);
    }
    assert!(
        states[0].contains("suspended") && states[1].contains("active"),
        "{states:?}"
    );
}
