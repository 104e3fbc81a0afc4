//! Concurrency, events, rate limits and the OpenAPI document, against the real daemon.

use std::time::{Duration, Instant};

use seald_tests::deployment::{Deployment, Who};
use seald_tests::stamping::{check_signed, digest};

const UNLIMITED: &str = "\n[api]\nrate_limit_burst = 1000000\nrate_limit_per_second = 1000000\n";

#[test]
fn fifty_concurrent_stamps_are_each_signed_and_logged_once() {
    let d = Deployment::hsm_sim_with("sansec", UNLIMITED);
    d.login_custodian();
    let ids: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50u32)
            .map(|i| {
                let d = &d;
                s.spawn(move || {
                    let id = d.request(1, &[digest(5, i)]);
                    d.approve_both(id);
                    id
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("stamp thread"))
            .collect()
    });
    std::thread::scope(|s| {
        for (i, id) in ids.iter().enumerate() {
            let d = &d;
            s.spawn(move || {
                let v = d.wait_final(*id);
                check_signed(d, &v, &[digest(5, i as u32)], 0);
            });
        }
    });
    let signatures = d.audit("signature");
    assert_eq!(signatures.len(), 50);
    for id in &ids {
        let n = signatures
            .iter()
            .filter(|r| r["detail"]["request_id"] == *id)
            .count();
        assert_eq!(n, 1, "request {id} logged {n} times");
    }
    let out = d.sealctl("audit", &["verify"]);
    assert!(out.contains("chain intact"), "{out}");
}

#[test]
fn events_tell_of_requests_decisions_and_signatures() {
    let d = Deployment::hsm_sim("sansec");
    d.login_custodian();
    let events = d.subscribe(Who::Approver1);
    let id = d.request(1, &[digest(6, 1)]);
    d.approve_both(id);
    assert_eq!(d.wait_final(id)["state"], "signed");
    let about = format!("\"request_id\":{id}");
    let flow = ["request-created", "request-decided", "request-signed"];
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("request-signed") {
        let e = events.next_of(&flow);
        assert!(e.data.contains(&about), "{e:?}");
        seen.push(e.name);
    }
    assert_eq!(
        seen,
        [
            "request-created",
            "request-decided",
            "request-decided",
            "request-signed"
        ]
    );
}

#[test]
fn a_client_over_its_rate_is_refused_and_logged() {
    let d = Deployment::hsm_sim_with(
        "sansec",
        "\n[api]\nrate_limit_burst = 5\nrate_limit_per_second = 1\n\n[audit]\nrefusal_summary_secs = 1\n",
    );
    let statuses: Vec<u16> = (0..12)
        .map(|_| d.call("GET", "/v1/seals", Some(Who::Client), None).status)
        .collect();
    assert!(statuses[..5].iter().all(|s| *s == 200), "{statuses:?}");
    let limited = d.call("GET", "/v1/seals", Some(Who::Client), None);
    assert_eq!(limited.status, 429, "{statuses:?}");
    assert_eq!(limited.json()["code"], "rate_limited");
    // Another identity has its own bucket.
    assert_eq!(
        d.call("GET", "/v1/seals", Some(Who::Approver1), None)
            .status,
        200
    );
    // Rate-limited refusals are counted, not written one by one: one summary per window
    // (1 s here) names the code and the caller.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let records = d.call(
            "GET",
            "/v1/audit?kind=refusal-summary",
            Some(Who::Auditor),
            None,
        );
        if records.body.contains("429 rate_limited") {
            let v = records.json();
            let summary = &v["records"][0]["detail"];
            assert!(
                summary["rate_limited_callers"]["demo-client"].as_u64() >= Some(1),
                "{summary}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no summary: {}", records.body);
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn openapi_documents_every_route_the_daemon_serves() {
    let d = Deployment::hsm_sim("sansec");
    let r = d.call("GET", "/v1/openapi.json", None, None);
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = 0;
    let mut answered_ok = 0;
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            documented += 1;
            if path == "/v1/events" {
                continue; // a stream that never ends: checked by the events test
            }
            let concrete = path
                .replace("{serial}", seald_tests::deployment::SERIAL)
                .replace("{id}", "1")
                .replace("{n}", "1");
            let r = d.call(
                &method.to_ascii_uppercase(),
                &concrete,
                Some(Who::Auditor),
                None,
            );
            assert!(
                !r.body.contains("no such endpoint"),
                "{method} {path} is documented but not served: {}",
                r.body
            );
            assert_ne!(
                r.status, 405,
                "{method} {path} is documented but not served"
            );
            answered_ok += usize::from(r.status < 300);
            let media = r.header("content-type").unwrap_or_default();
            let media = media.split(';').next().unwrap_or_default().trim();
            if media != "application/json" {
                // A text answer (GET /metrics): the document names its media type.
                let declared = &doc["paths"][path][method]["responses"][r.status.to_string()];
                assert!(
                    declared["content"][media].is_object(),
                    "{method} {path} answered {media}, not in {declared}"
                );
                continue;
            }
            // What the daemon answered is what the document says it answers.
            let body: serde_json::Value = serde_json::from_str(&r.body).expect("a JSON answer");
            assert_eq!(
                seald::api::openapi::mismatches(&doc, method, path, r.status, &body),
                Vec::<String>::new(),
                "{method} {path} answered {}",
                r.body
            );
        }
    }
    for (method, path, _) in seald::api::openapi::ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} undocumented"
        );
    }
    assert_eq!(documented, seald::api::openapi::ROUTES.len());
    // The auditor's reads succeed, so their answers were checked against the schemas too.
    assert!(
        answered_ok >= 8,
        "only {answered_ok} successful answers checked"
    );
    // The served document (generated from the handlers) has a request-body schema for every
    // route that takes JSON, and every `$ref` in it resolves.
    assert_eq!(
        seald::api::openapi::problems(&doc),
        Vec::<String>::new(),
        "the served OpenAPI document"
    );
    let operation = &doc["paths"]["/v1/stamp-requests"]["post"];
    assert_eq!(
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreateBody"
    );
    assert_eq!(operation["security"][0]["bearer"], serde_json::json!([]));
    for field in [
        "seal_id",
        "digest",
        "digests",
        "documents",
        "document_name",
        "purpose",
    ] {
        assert!(
            doc["components"]["schemas"]["CreateBody"]["properties"][field].is_object(),
            "CreateBody.{field}"
        );
    }
    // Unknown routes answer with the JSON 404.
    assert_eq!(
        d.call("GET", "/v1/nope", Some(Who::Auditor), None).json()["code"],
        "not_found"
    );
}

#[test]
fn a_removed_token_fails_the_stamp_clearly_until_reinserted_and_logged_in() {
    let d = Deployment::hsm_sim("sansec");
    d.login_custodian();
    let sim = |verb: &str| {
        let out = std::process::Command::new(seald_tests::bins::hsm_sim_cli())
            .arg("--config")
            .arg(d.hsm_sim_conf())
            .args([verb, seald_tests::deployment::SERIAL])
            .output()
            .expect("hsm-sim");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sim("eject");
    let id = d.request(1, &[digest(8, 1)]);
    d.approve_both(id);
    let v = d.wait_final(id);
    assert_eq!(v["state"], "failed", "{v}");
    let failure = v["failure"].as_str().unwrap();
    assert!(
        failure.contains("insert"),
        "the reason says what to do: {failure}"
    );
    assert!(d.audit("signature").is_empty());

    sim("insert");
    d.login_custodian();
    let id = d.request(1, &[digest(8, 2)]);
    d.approve_both(id);
    check_signed(&d, &d.wait_final(id), &[digest(8, 2)], 0);
}

#[test]
fn the_audit_head_from_the_api_is_checked_by_sealctl() {
    let d = Deployment::hsm_sim("sansec");
    assert_eq!(
        d.call("GET", "/v1/audit/head", Some(Who::Client), None)
            .status,
        403
    );
    let head = d.call("GET", "/v1/audit/head", Some(Who::Auditor), None);
    assert_eq!(head.status, 200, "{}", head.body);
    let head = head.json()["head"].clone();
    let noted = head["expect_head"]
        .as_str()
        .expect("SEQ:HASH@TIME")
        .to_owned();
    assert!(
        noted.starts_with(&format!(
            "{}:{}@",
            head["seq"],
            head["hash"].as_str().unwrap()
        )),
        "{noted}"
    );
    let records = d.call("GET", "/v1/audit?limit=1000", Some(Who::Auditor), None);
    let records = records.json()["records"].as_array().unwrap().clone();
    let last = records.last().expect("the demo wrote records");
    assert_eq!(last["seq"], head["seq"]);
    assert_eq!(last["hash"], head["hash"]);
    let out = d.sealctl("audit", &["verify", "--expect-head", &noted]);
    assert!(
        out.contains(&format!("noted head {noted}: present")),
        "{out}"
    );
}

#[test]
fn a_client_that_reconnects_with_last_event_id_misses_nothing() {
    let d = Deployment::hsm_sim("sansec");
    d.login_custodian();
    let events = d.subscribe(Who::Approver1);
    let id = d.request(1, &[digest(7, 1)]);
    let created = events.next_of(&["request-created"]);
    let seen = created.id;
    assert!(!seen.is_empty(), "events carry an id");
    drop(events);

    // While the client is away: both approvals and the signature.
    d.approve_both(id);
    assert_eq!(d.wait_final(id)["state"], "signed");

    // Events of other kinds (the PC/SC watcher's, PIN-age warnings) may come in between.
    let events = d.subscribe_after(Who::Approver1, Some(&seen));
    let mut names = Vec::new();
    while !names.contains(&"request-signed".to_owned()) {
        let e = events.next_of(&["request-created", "request-decided", "request-signed"]);
        assert!(e.data.contains(&format!("\"request_id\":{id}")), "{e:?}");
        names.push(e.name);
    }
    assert_eq!(
        names,
        ["request-decided", "request-decided", "request-signed"],
        "each missed event once, in order"
    );

    // An id from another run of seald cannot be replayed: the client is told to refetch.
    let events = d.subscribe_after(Who::Approver1, Some("1-1"));
    let reset = events.next();
    assert_eq!(reset.name, "reset", "the reset comes first: {reset:?}");
    assert!(reset.data.contains("restarted"), "{reset:?}");
    let reset_id = reset.id;
    let run = |id: &str| id.split_once('-').map(|(run, _)| run.to_owned());
    assert_eq!(
        run(&reset_id),
        run(&seen),
        "the reset carries an id of this run to resume from"
    );
}

#[test]
fn a_filtered_audit_query_examines_at_most_ten_thousand_records_a_call() {
    let d = Deployment::hsm_sim_with("sansec", UNLIMITED);
    // Fill the log beside the running daemon (sealctl's test writer), then stop the writer.
    let mut writer = std::process::Command::new(seald_tests::bins::bin("sealctl"))
        .args(["audit", "--store"])
        .arg(d.store())
        .args(["append-loop", "--threads", "2"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start sealctl audit append-loop");
    let deadline = Instant::now() + Duration::from_secs(300);
    let head = loop {
        let head = d
            .call("GET", "/v1/audit/head", Some(Who::Auditor), None)
            .json();
        let seq = head["head"]["seq"].as_i64().unwrap_or(0);
        if seq > 25_000 {
            break seq;
        }
        assert!(
            Instant::now() < deadline,
            "the log reached only {seq} records"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = writer.kill();
    let _ = writer.wait();
    let head = head.max(
        d.call("GET", "/v1/audit/head", Some(Who::Auditor), None)
            .json()["head"]["seq"]
            .as_i64()
            .unwrap(),
    );

    // An actor no record has: each call answers an empty page after examining 10,000 records,
    // with `next_after` to go on from, until the end.
    let mut after = 0;
    let mut calls = 0;
    loop {
        let page = d.call(
            "GET",
            &format!("/v1/audit?actor=nobody&after={after}&limit=10"),
            Some(Who::Auditor),
            None,
        );
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        assert_eq!(page["records"].as_array().unwrap().len(), 0, "{page}");
        calls += 1;
        match page["next_after"].as_i64() {
            Some(next) => {
                assert!(next - after <= 10_000, "{after} -> {next}");
                after = next;
            }
            None => break,
        }
    }
    assert!(after >= head - 10_000, "paged to {after} of {head}");
    assert!(calls >= 3, "{calls} calls for {head} records");
}
