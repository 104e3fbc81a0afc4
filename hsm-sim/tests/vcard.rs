//! `hsm-sim vcard` against a stand-in for pcscd's vpcd driver (a TCP listener speaking the vpcd
//! framing): ATR, APDUs, presence while connected, ejection on SIGTERM and on the reader closing,
//! bounded retries when no reader listens. The tests in `tests/` run it on the real pcscd.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ATR: &str = "3b8d01805b48534d53494d2d554b455979";

fn spawn_vcard(env: &Env, port: u16, wait: u64) -> Child {
    Command::new(cli_path())
        .arg("--config")
        .arg(&env.conf)
        .args(["vcard", "--token", SERIAL0, "--port", &port.to_string()])
        .args(["--wait", &wait.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vcard")
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hsm-sim vcard did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn send(stream: &mut TcpStream, payload: &[u8]) {
    let mut frame = (payload.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    stream.write_all(&frame).unwrap();
}

fn receive(stream: &mut TcpStream) -> Vec<u8> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).unwrap();
    let mut payload = vec![0u8; u16::from_be_bytes(length) as usize];
    stream.read_exact(&mut payload).unwrap();
    payload
}

fn slot0_state(env: &Env) -> String {
    let list = env.cli_ok(&["list"], "");
    let line = list
        .lines()
        .find(|l| l.starts_with("slot 0:"))
        .unwrap()
        .to_owned();
    line
}

fn accept(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(false).unwrap();
    let (stream, peer) = listener.accept().unwrap();
    assert!(peer.ip().is_loopback(), "{peer}");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

#[test]
fn speaks_vpcd_and_ejects_on_sigterm() {
    let env = Env::new("");
    env.init_token(0, "vcard");
    env.cli_ok(&["eject", SERIAL0], "");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut child = spawn_vcard(&env, port, 10);
    let mut stream = accept(&listener);
    assert!(
        slot0_state(&env).contains(" present "),
        "inserted while connected"
    );

    send(&mut stream, &[0x01]); // power on: no answer
    send(&mut stream, &[0x04]);
    assert_eq!(hex::encode(receive(&mut stream)), ATR);
    send(
        &mut stream,
        &hex::decode("00a4040009f048534d53494d554b").unwrap(),
    );
    assert_eq!(receive(&mut stream), [0x90, 0x00]);
    send(&mut stream, &[0x80, 0xCA, 0x01, 0x01, 0x00]);
    let answer = receive(&mut stream);
    assert_eq!(&answer[..answer.len() - 2], SERIAL0.trim().as_bytes());
    assert_eq!(&answer[answer.len() - 2..], [0x90, 0x00]);
    send(&mut stream, &[0x02]); // reset forgets the selection
    send(&mut stream, &[0x80, 0xCA, 0x01, 0x01, 0x00]);
    assert_eq!(receive(&mut stream), [0x69, 0x85]);
    send(&mut stream, &[0x00, 0x20, 0x00, 0x00]);
    assert_eq!(receive(&mut stream), [0x6D, 0x00]);

    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert!(wait_exit(&mut child).success());
    assert!(slot0_state(&env).contains("EJECTED"), "ejected on SIGTERM");
    let mut rest = Vec::new();
    assert_eq!(
        stream.read_to_end(&mut rest).unwrap(),
        0,
        "connection closed"
    );
}

#[test]
fn ejects_when_the_reader_closes() {
    let env = Env::new("");
    env.init_token(0, "vcard-eof");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut child = spawn_vcard(&env, port, 10);
    let mut stream = accept(&listener);
    send(&mut stream, &[0x04]);
    assert_eq!(hex::encode(receive(&mut stream)), ATR);
    drop(stream); // pcscd stopped
    assert!(wait_exit(&mut child).success());
    assert!(slot0_state(&env).contains("EJECTED"));
}

#[test]
fn gives_up_after_waiting_for_a_reader() {
    let env = Env::new("");
    env.init_token(0, "vcard-none");
    // A port nobody listens on: bind, note, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let child = spawn_vcard(&env, port, 1);
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot reach pcscd's vpcd reader"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(slot0_state(&env).contains("EJECTED"), "not left inserted");
}
