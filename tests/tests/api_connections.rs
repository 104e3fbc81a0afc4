//! Connection bounds of the real `seald`: a request head must arrive in time, and connections
//! over `api.max_connections` are answered 503 and closed at once. Bounds are generous: the
//! tests assert outcomes, not timings.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use seald_tests::daemon::Daemon;

/// These daemons leave the shared card reader alone.
const NO_PCSC: &str = "[pcsc]\nenabled = false\n";

/// Reads until the server closes the connection; panics if it is still open after `limit`.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    stream.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!(
                "the server still held the connection after {:?}",
                started.elapsed()
            )
        }
        // A reset also closes it.
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
    String::from_utf8_lossy(&raw).into_owned()
}

#[test]
fn a_request_head_that_never_ends_is_closed() {
    let d = Daemon::start(
        &format!("{NO_PCSC}[api]\nheader_read_timeout_secs = 1\n"),
        &[],
    );
    let mut half = TcpStream::connect(d.authority()).unwrap();
    half.write_all(b"GET /v1/health HTTP/1.1\r\nHost: 127.0")
        .unwrap();
    let mut silent = TcpStream::connect(d.authority()).unwrap();
    let started = Instant::now();
    read_until_closed(&mut half, Duration::from_secs(30));
    read_until_closed(&mut silent, Duration::from_secs(30));
    assert!(started.elapsed() < Duration::from_secs(30));
    // A whole request is still served.
    let r = d.raw("GET", "/v1/health", &[], None);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn connections_over_the_cap_are_refused_until_some_close() {
    let d = Daemon::start(
        &format!("{NO_PCSC}[api]\nmax_connections = 8\nheader_read_timeout_secs = 120\n"),
        &[],
    );
    let held: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(d.authority()).unwrap())
        .collect();
    let mut ninth = TcpStream::connect(d.authority()).unwrap();
    let answer = read_until_closed(&mut ninth, Duration::from_secs(30));
    assert!(
        answer.starts_with("HTTP/1.1 503"),
        "expected 503, got {answer:?}"
    );
    assert!(answer.contains("too_many_connections"), "{answer}");
    drop(held);
    // The held connections' slots come back once the server sees them closed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut stream = TcpStream::connect(d.authority()).unwrap();
        let request = format!(
            "GET /v1/health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            d.authority()
        );
        let _ = stream.write_all(request.as_bytes());
        let answer = read_until_closed(&mut stream, Duration::from_secs(30));
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after the held connections closed: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
