//! A full stamp through the API on hsm-sim with the Sansec profile (raw r‖s signatures), a
//! batch of 100 under one approval, and a restart that keeps everything.

use seald_tests::deployment::{Deployment, Who};
use seald_tests::stamping::{check_signed, digest, full_stamp_and_batch};

#[test]
fn stamp_batch_and_restart_on_sansec() {
    let mut d = Deployment::hsm_sim("sansec");
    full_stamp_and_batch(&d);

    // A pending request and the signed ones survive a restart.
    let pending = d.request(1, &[digest(3, 1)]);
    let signed = 1;
    d.restart();
    let r = d.call(
        "GET",
        &format!("/v1/stamp-requests/{pending}"),
        Some(Who::Client),
        None,
    );
    assert_eq!(r.json()["state"], "pending", "{}", r.body);
    let v = d.wait_final(signed);
    check_signed(&d, &v, &[digest(1, 1)], 0);
    // The token's login belonged to the old process: the custodian logs in again, then it signs.
    d.login_custodian();
    d.approve_both(pending);
    check_signed(&d, &d.wait_final(pending), &[digest(3, 1)], 0);
    let out = d.sealctl("audit", &["verify"]);
    assert!(out.contains("chain intact"), "{out}");
}
