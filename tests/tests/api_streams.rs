//! Event streams of the real `seald` are bounded: a few per identity and in all (429
//! `too_many_streams` beyond), a closed stream gives its place back, and a stream whose identity
//! is disabled or whose token is replaced ends with a `revoked` event. Bounds are generous: the
//! tests assert outcomes, not timings.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use seald_tests::deployment::{Deployment, Who};

const LIMITS: &str = "\n[pcsc]\nenabled = false\n[api]\nmax_streams_per_identity = 2\nmax_streams = 3\nstream_recheck_secs = 1\n[audit]\nrefusal_summary_secs = 1\n";

/// An open `GET /v1/events`: the socket and the lines read from it.
struct Open {
    socket: TcpStream,
    lines: Receiver<String>,
}

impl Open {
    /// Waits (bounded) for a line containing `needle`.
    fn wait_for(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    fn close(self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// Opens a stream as `token`: `Ok` with the stream on 200, `Err((status, body))` otherwise.
fn open(d: &Deployment, token: &str) -> Result<Open, (u16, String)> {
    let mut socket = TcpStream::connect(d.daemon.authority()).expect("connect");
    write!(
        socket,
        "GET /v1/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n",
        d.daemon.authority(),
    )
    .expect("send");
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut reader = BufReader::new(socket.try_clone().unwrap());
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {status_line:?}"));
    if status != 200 {
        let mut rest = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line.trim().is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        rest.push_str(&String::from_utf8_lossy(&body));
        return Err((status, rest));
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(Open { socket, lines: rx })
}

fn refused(result: Result<Open, (u16, String)>) -> String {
    match result {
        Ok(_) => panic!("the stream was opened beyond the cap"),
        Err((status, body)) => {
            assert_eq!(status, 429, "{body}");
            let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(json["code"], "too_many_streams", "{body}");
            json["message"].as_str().unwrap_or_default().to_owned()
        }
    }
}

/// Opens as `token`, retrying while refused (a closed stream's place comes back once seald
/// sees it closed).
fn open_eventually(d: &Deployment, token: &str) -> Open {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match open(d, token) {
            Ok(open) => return open,
            Err((status, body)) => {
                assert_eq!(status, 429, "{body}");
                assert!(Instant::now() < deadline, "still refused: {body}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

#[test]
fn streams_are_capped_per_identity_and_in_all() {
    let d = Deployment::hsm_sim_with("sansec", LIMITS);
    let client = d.token(Who::Client).to_owned();
    let first = open(&d, &client).expect("first stream");
    let second = open(&d, &client).expect("second stream");
    let message = refused(open(&d, &client));
    assert!(message.contains("at most 2"), "{message}");
    // Another identity still gets one: three in all.
    let auditor = open(&d, d.token(Who::Auditor)).expect("auditor's stream");
    let message = refused(open(&d, d.token(Who::Approver1)));
    assert!(message.contains("limit"), "{message}");
    // A closed stream gives its place back.
    first.close();
    let third = open_eventually(&d, &client);
    // The refusals (429s) are counted in the operational log's summary of their window.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d
        .audit("refusal-summary")
        .iter()
        .any(|r| r["detail"].to_string().contains("429 too_many_streams"))
    {
        assert!(
            Instant::now() < deadline,
            "no summary counts too_many_streams"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    drop((second, third, auditor));
}

#[test]
fn a_disabled_identity_or_a_replaced_token_stops_receiving() {
    let d = Deployment::hsm_sim_with("sansec", LIMITS);
    let auditor = open(&d, d.token(Who::Auditor)).expect("auditor's stream");
    let client = open(&d, d.token(Who::Client)).expect("client's stream");
    d.sealctl("user", &["disable", "audrey"]);
    assert!(
        auditor.wait_for("event: revoked"),
        "the disabled identity's stream did not end"
    );
    d.sealctl("user", &["token", "demo-client"]);
    assert!(
        client.wait_for("event: revoked"),
        "the replaced token's stream did not end"
    );
    // Both places are free again: the approver may open the cap's worth.
    let a = open_eventually(&d, d.token(Who::Approver1));
    let b = open_eventually(&d, d.token(Who::Approver1));
    drop((a, b, auditor, client));
}
