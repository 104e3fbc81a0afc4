//! `GET /v1/seals/{id}/status` answers verifiers without a token: state, when it changed,
//! validity; unknown seals are `seal_not_found`; the route is rate-limited per connection, so
//! one connection flooding it does not starve the other verifiers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use seald_tests::deployment::Deployment;

/// One kept-alive connection, sending status requests one after the other.
struct Connection {
    reader: BufReader<TcpStream>,
    authority: String,
}

impl Connection {
    fn open(authority: &str) -> Self {
        let stream = TcpStream::connect(authority).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        Self {
            reader: BufReader::new(stream),
            authority: authority.to_owned(),
        }
    }

    /// GETs `path` on this connection; returns the status code.
    fn get(&mut self, path: &str) -> u16 {
        let head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.authority);
        self.reader.get_mut().write_all(head.as_bytes()).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        status
    }
}

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

    // The burst is 5 at 1 a second: one connection flooding meets the limit...
    let mut flooding = Connection::open(d.daemon.authority());
    let statuses: Vec<u16> = (0..40)
        .map(|_| flooding.get("/v1/seals/1/status"))
        .collect();
    assert!(
        statuses.contains(&429),
        "anonymous status calls are rate-limited: {statuses:?}"
    );
    // ...while another verifier, on its own connection, is still answered at once.
    let mut other = Connection::open(d.daemon.authority());
    assert_eq!(other.get("/v1/seals/1/status"), 200);
    assert_eq!(flooding.get("/v1/seals/1/status"), 429);
    assert_eq!(other.get("/v1/seals/1/status"), 200);
}
