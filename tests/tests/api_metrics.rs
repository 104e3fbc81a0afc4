//! `GET /metrics` (issue 21 §1): an auditor's or admin's token by default, none with
//! `[metrics] public = true`; the exposition is valid OpenMetrics text (parsed by a strict
//! parser) and its values follow what happened: a stamp, a refusal, a token removed.

use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};
use seald_tests::deployment::{Deployment, Who, SERIAL};
use seald_tests::stamping::digest;

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

/// One scrape, as the auditor (or anonymously when `who` is `None`), parsed.
fn scrape(d: &Deployment, who: Option<Who>) -> Exposition {
    let r = d.call("GET", "/metrics", who, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        r.header("content-type")
    );
    openmetrics_parser::openmetrics::parse_openmetrics(&r.body)
        .unwrap_or_else(|e| panic!("not OpenMetrics ({e:?}):\n{}", r.body))
}

/// The value of the sample of `family` whose labels include `labels` (a histogram's count).
fn value(m: &Exposition, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let family = m.families.get(family)?;
    family
        .iter_samples()
        .find(|s| {
            let set = s.get_labelset().expect("labels");
            labels
                .iter()
                .all(|(k, v)| set.get_label_value(k) == Some(*v))
        })
        .map(|s| match &s.value {
            OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => n.as_f64(),
            OpenMetricsValue::Counter(c) => c.value.as_f64(),
            OpenMetricsValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            other => panic!("unexpected sample {other:?}"),
        })
}

#[test]
fn metrics_need_an_auditor_and_follow_stamps_refusals_and_removals() {
    let d = Deployment::hsm_sim("sansec");
    let r = d.call("GET", "/metrics", None, None);
    assert_eq!(r.status, 401, "{}", r.body);
    let r = d.call("GET", "/metrics", Some(Who::Client), None);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("auditor"), "{}", r.body);

    let before = scrape(&d, Some(Who::Admin));
    let device = [("serial", SERIAL)];
    assert_eq!(value(&before, "seald_device_present", &device), Some(1.0));
    assert_eq!(value(&before, "seald_device_logged_in", &device), Some(0.0));
    assert_eq!(
        value(&before, "seald_stamp_requests", &[("state", "signed")]),
        None
    );
    let refused_401 = value(&before, "seald_refusals", &[("code", "unauthenticated")]);
    assert!(refused_401 >= Some(1.0), "{refused_401:?}");
    let cert_days = value(&before, "seald_certificate_expiry_days", &[("seal", "1")])
        .expect("certificate expiry of seal 1");
    assert!(cert_days > 1.0, "{cert_days}");
    let head_before = value(&before, "seald_usage_log_head_seq", &[]).expect("head");

    // A stamp of two digests: two signatures, one signing time of each part, one approval.
    d.login_custodian();
    let id = d.request(1, &[digest(21, 1), digest(21, 2)]);
    d.approve_both(id);
    assert_eq!(d.wait_final(id)["state"], "signed");
    let _events = d.subscribe(Who::Auditor);
    let after = scrape(&d, Some(Who::Auditor));
    let seal = [("seal", "1"), ("device", SERIAL)];
    assert_eq!(value(&after, "seald_signatures", &seal), Some(2.0));
    for part in ["device", "seald"] {
        assert_eq!(
            value(&after, "seald_signing_seconds", &[("part", part)]),
            Some(1.0),
            "{part}"
        );
    }
    assert_eq!(value(&after, "seald_approval_wait_seconds", &[]), Some(1.0));
    assert_eq!(
        value(&after, "seald_stamp_requests", &[("state", "signed")]),
        Some(1.0)
    );
    assert_eq!(value(&after, "seald_device_logged_in", &device), Some(1.0));
    assert!(value(&after, "seald_usage_log_head_seq", &[]) > Some(head_before));
    assert!(value(&after, "seald_store_write_seconds", &[]) >= Some(1.0));
    // Background writes may be queued at any moment: only that the gauge is there.
    assert!(value(&after, "seald_store_write_queue", &[]).is_some());
    assert_eq!(value(&after, "seald_event_streams", &[]), Some(1.0));
    assert_eq!(
        value(&after, "seald_module_up", &[]),
        Some(1.0),
        "the one module loaded"
    );

    // A refusal is counted under its code.
    let r = d.call(
        "POST",
        "/v1/stamp-requests/999999/approve",
        Some(Who::Approver1),
        None,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let code = r.json()["code"].as_str().unwrap().to_owned();
    let refused = scrape(&d, Some(Who::Auditor));
    assert_eq!(
        value(&refused, "seald_refusals", &[("code", &code)]),
        Some(1.0)
    );

    // The UKey is pulled: present 0 and logged out (the seal's token is still listed).
    d.hsm_sim_run(&["eject", SERIAL]);
    let removed = scrape(&d, Some(Who::Auditor));
    assert_eq!(value(&removed, "seald_device_present", &device), Some(0.0));
    assert_eq!(
        value(&removed, "seald_device_logged_in", &device),
        Some(0.0)
    );
    d.hsm_sim_run(&["insert", SERIAL]);
    let back = scrape(&d, Some(Who::Auditor));
    assert_eq!(value(&back, "seald_device_present", &device), Some(1.0));
}

#[test]
fn public_metrics_need_no_token() {
    let d = Deployment::hsm_sim_with("sansec", "\n[metrics]\npublic = true\n");
    let m = scrape(&d, None);
    assert_eq!(
        value(&m, "seald_device_present", &[("serial", SERIAL)]),
        Some(1.0)
    );
}
