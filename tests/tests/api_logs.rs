//! Logs an operator's collector can parse (issue 21 §5): every answer carries an
//! `X-Request-Id`, new for each request; with `[log] format = "json"` every line seald writes
//! is one JSON object, and the lines written while a request was handled carry its id.

use std::time::{Duration, Instant};

use seald_tests::deployment::{Deployment, Who};
use serde_json::Value;

/// The JSON log lines of `d`'s daemon so far; every non-empty line seald wrote must be a JSON
/// object (a vendor library in the process may write to standard error itself: hsm-sim's
/// lines say `hsm-sim:`).
fn json_lines(d: &Deployment) -> Vec<Value> {
    d.daemon
        .log()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("hsm-sim:"))
        .map(|l| {
            let v: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

#[test]
fn every_answer_has_a_request_id_and_the_json_log_names_it() {
    let d = Deployment::hsm_sim_logged("sansec", "\n[log]\nformat = \"json\"\n");
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let r = d.call("GET", "/v1/health", None, None);
            assert_eq!(r.status, 200, "{}", r.body);
            r.header("x-request-id").expect("X-Request-Id").to_owned()
        })
        .collect();
    for id in &ids {
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    }
    assert_ne!(ids[0], ids[1], "each request has its own id");

    // A refusal (even one the guard answers) has an id too; an authenticated one is logged.
    let anonymous = d.call("GET", "/v1/seals", None, None);
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.header("x-request-id").is_some());
    let r = d.call(
        "POST",
        "/v1/stamp-requests/999999/approve",
        Some(Who::Approver1),
        None,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let id = r.header("x-request-id").expect("X-Request-Id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = json_lines(&d);
        let refused = lines.iter().find(|l| {
            l["fields"]["message"] == "refused" && l["span"]["id"].as_str() == Some(id.as_str())
        });
        if let Some(line) = refused {
            assert_eq!(line["level"], "INFO", "{line}");
            assert_eq!(line["fields"]["status"], 404, "{line}");
            assert!(line["timestamp"].is_string(), "{line}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no `refused` line with span.id {id} in:\n{}",
            d.daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The start-up lines are JSON as well (checked by json_lines above) and none is text.
    assert!(json_lines(&d)
        .iter()
        .any(|l| l["fields"]["message"] == "seald listening"));
}
