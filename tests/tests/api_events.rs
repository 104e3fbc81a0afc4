//! `GET /v1/events` by role and relation, against the real daemon: a client receives the events
//! of its own requests, an approver those of the seals it approves, the auditor everything, and
//! a replay after `Last-Event-ID` is filtered the same way.
//!
//! The demo's seal 1 lets demo-client ask and alice and bob approve; seal 2 also lets dave (a
//! client and approver) ask and approve. "Does not receive" is checked without waiting for
//! silence: after the hidden event, an event the subscriber may see follows, and it must be the
//! next one the subscriber gets.

use seald_tests::deployment::{Deployment, Who};
use seald_tests::sse::{Event, Events};
use seald_tests::stamping::digest;

/// `who` asks for a stamp on `seal`; the new request's id.
fn ask(d: &Deployment, who: Who, seal: i64, tag: u32) -> i64 {
    let r = d.request_as(who, seal, &[digest(9, tag)]);
    assert_eq!(r.status, 202, "{}", r.body);
    r.json()["id"].as_i64().expect("id")
}

/// The next `request-created` event (passing over events of other kinds).
fn next_created(events: &Events) -> Event {
    events.next_of(&["request-created"])
}

/// The request id of a request event.
fn request_of(event: &Event) -> i64 {
    event.json()["request_id"].as_i64().expect("request_id")
}

#[test]
fn each_caller_receives_only_the_request_events_it_may_see_live_and_replayed() {
    let d = Deployment::hsm_sim("sansec");
    let client = d.subscribe(Who::Client);
    let dave = d.subscribe(Who::Dual);
    let alice = d.subscribe(Who::Approver1);
    let auditor = d.subscribe(Who::Auditor);

    // demo-client asks on seal 1 (dave neither asked nor approves seal 1), then dave asks on
    // seal 2 (demo-client did not ask, and is no approver), then demo-client asks again.
    let first = ask(&d, Who::Client, 1, 1);
    let second = ask(&d, Who::Dual, 2, 2);
    let third = ask(&d, Who::Client, 1, 3);
    let fourth = ask(&d, Who::Dual, 2, 4);

    // The auditor sees every request, in order; the JSON is what it always was.
    let seen: Vec<Event> = (0..4).map(|_| next_created(&auditor)).collect();
    let ids: Vec<i64> = seen.iter().map(request_of).collect();
    assert_eq!(ids, [first, second, third, fourth]);
    assert_eq!(
        seen[0].json(),
        serde_json::json!({"type": "request-created", "request_id": first, "seal_id": 1}),
        "no hidden field is sent"
    );
    // alice approves seals 1 and 2: she sees them all too.
    let ids: Vec<i64> = (0..4).map(|_| request_of(&next_created(&alice))).collect();
    assert_eq!(ids, [first, second, third, fourth]);

    // demo-client: its own two, not dave's request that came between them.
    assert_eq!(request_of(&next_created(&client)), first);
    assert_eq!(
        request_of(&next_created(&client)),
        third,
        "demo-client must not receive dave's request {second}"
    );
    // dave, approver of seal 2 only: not demo-client's requests on seal 1.
    assert_eq!(
        request_of(&next_created(&dave)),
        second,
        "dave must not receive demo-client's request {first}"
    );
    assert_eq!(
        request_of(&next_created(&dave)),
        fourth,
        "dave must not receive demo-client's request {third}"
    );

    // Reconnecting after the first request's event replays what each may see, and only that.
    let after_first = &seen[0].id;
    let dave = d.subscribe_after(Who::Dual, Some(after_first));
    assert_eq!(request_of(&next_created(&dave)), second);
    assert_eq!(
        request_of(&next_created(&dave)),
        fourth,
        "the replay must not give dave request {third}"
    );
    let client = d.subscribe_after(Who::Client, Some(after_first));
    assert_eq!(
        request_of(&next_created(&client)),
        third,
        "the replay must not give demo-client request {second}"
    );
    let auditor = d.subscribe_after(Who::Auditor, Some(after_first));
    let ids: Vec<i64> = (0..3)
        .map(|_| request_of(&next_created(&auditor)))
        .collect();
    assert_eq!(ids, [second, third, fourth]);
}

#[test]
fn a_custodian_receives_no_request_events_and_decisions_reach_the_requester() {
    let d = Deployment::hsm_sim("sansec");
    let carol = d.subscribe(Who::Custodian);
    let client = d.subscribe(Who::Client);
    let dave = d.subscribe(Who::Dual);
    let id = ask(&d, Who::Client, 1, 5);
    let r = d.call(
        "POST",
        &format!("/v1/stamp-requests/{id}/reject"),
        Some(Who::Approver1),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let decided = client.next_of(&["request-decided"]);
    assert_eq!(request_of(&decided), id);
    assert_eq!(decided.json()["state"], "rejected", "{decided:?}");

    // A seal event goes to every role: the first the custodian and dave get after the hidden
    // request events is the suspension of seal 3.
    let r = d.call(
        "POST",
        "/v1/seals/3/suspend",
        Some(Who::Admin),
        Some(&serde_json::json!({ "reason": "audit visit" })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let flow = ["request-created", "request-decided", "seal-state"];
    for events in [&carol, &dave] {
        let e = events.next_of(&flow);
        assert_eq!(e.name, "seal-state", "{e:?}");
        assert_eq!(e.json()["seal_id"], 3, "{e:?}");
    }
}
