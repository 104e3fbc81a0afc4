//! `GET /v1/seals/{id}/status` answers verifiers without a token: state, when it changed,
//! validity; unknown seals are `seal_not_found`; the route is rate-limited like the others.

use seald_tests::deployment::Deployment;

#[test]
fn seal_status_answers_without_a_token_and_follows_state_changes() {
    let d = Deployment::hsm_sim_with(
        "sansec",
        "\n[api]\nrate_limit_burst = 5\nrate_limit_per_second = 1\n",
    );

    let r = d.call("GET", "/v1/seals/1/status", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["id"], 1);
    assert_eq!(v["state"], "active", "{v}");
    assert_eq!(v["usable"], true);
    assert!(v["valid_from"].as_i64().is_some() && v["valid_to"].as_i64().is_some());
    assert!(v["state_changed_at"].as_i64().is_some());
    assert!(
        v.get("device_serial").is_none(),
        "no device facts for strangers"
    );

    d.sealctl("seal", &["suspend", "1", "--reason", "inspection"]);
    let v = d.call("GET", "/v1/seals/1/status", None, None).json();
    assert_eq!(v["state"], "suspended", "{v}");
    assert_eq!(v["usable"], false);

    let r = d.call("GET", "/v1/seals/999/status", None, None);
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["code"], "seal_not_found");

    // The burst is 5; a few more calls at once must meet the limit.
    let limited = (0..10)
        .map(|_| d.call("GET", "/v1/seals/1/status", None, None))
        .any(|r| r.status == 429 && r.json()["code"] == "rate_limited");
    assert!(limited, "anonymous status calls are rate-limited");
}
