//! A virtual UKey for pcscd's vpcd reader (vsmartcard): `hsm-sim vcard --token SERIAL`.
//!
//! The card is a TCP client of the vpcd driver loaded by pcscd. Every message either way is a
//! 2-byte big-endian length and a payload. From vpcd, a 1-byte payload is a control message
//! (0x00 power off, 0x01 power on, 0x02 reset, 0x04 "send your ATR"); a longer one is a command
//! APDU, answered with a response APDU. Only the ATR request and APDUs get an answer.
//!
//! The card drives the simulated token's presence in the hsm-sim store: the token is inserted
//! before connecting (so whoever sees the card finds the token) and ejected before the
//! connection closes (SIGTERM, SIGINT, vpcd closing, or an error).

pub mod apdu;
pub mod atr;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// vpcd's default port for its first reader.
pub const DEFAULT_PORT: u16 = 35963;

/// Control messages from vpcd.
mod control {
    pub const POWER_OFF: u8 = 0x00;
    pub const POWER_ON: u8 = 0x01;
    pub const RESET: u8 = 0x02;
    pub const GET_ATR: u8 = 0x04;
}

/// Where to connect and for how long to keep trying.
#[derive(Debug, Clone)]
pub struct Options {
    /// vpcd's host: loopback unless asked otherwise.
    pub host: String,
    /// vpcd's port.
    pub port: u16,
    /// How long to retry while pcscd (and so vpcd) is not up yet.
    pub connect_timeout: Duration,
}

/// Why the card stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// SIGTERM or SIGINT.
    Signal,
    /// vpcd closed the connection (pcscd stopped).
    ReaderClosed,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Connects, retrying until the deadline; `Ok(None)` when a signal arrived meanwhile.
fn connect(options: &Options) -> Result<Option<TcpStream>, String> {
    let address = format!("{}:{}", options.host, options.port);
    let deadline = Instant::now() + options.connect_timeout;
    loop {
        if STOP.load(Ordering::SeqCst) {
            return Ok(None);
        }
        // A bounded attempt: a full listen backlog drops SYNs, and a plain connect would then
        // block for minutes, deaf to SIGTERM.
        let attempt = address
            .to_socket_addrs()
            .map_err(|e| format!("bad vpcd address {address}: {e}"))?
            .next()
            .ok_or_else(|| format!("{address} resolves to nothing"))
            .and_then(|a| {
                TcpStream::connect_timeout(&a, Duration::from_millis(500))
                    .map_err(|e| e.to_string())
            });
        match attempt {
            Ok(stream) => return Ok(Some(stream)),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "cannot reach pcscd's vpcd reader at {address}: {e} (is pcscd running with the vsmartcard-vpcd driver?)"
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Reads one framed message; `Ok(None)` when vpcd closed the connection or a signal arrived.
fn read_message(stream: &mut TcpStream) -> Result<Option<Vec<u8>>, String> {
    let mut length = [0u8; 2];
    if !read_exact_or_stop(stream, &mut length)? {
        return Ok(None);
    }
    let mut payload = vec![0u8; u16::from_be_bytes(length) as usize];
    if !read_exact_or_stop(stream, &mut payload)? {
        return Ok(None);
    }
    Ok(Some(payload))
}

/// Fills `buf`, polling the stop flag between read timeouts. False on EOF or stop.
fn read_exact_or_stop(stream: &mut TcpStream, buf: &mut [u8]) -> Result<bool, String> {
    let mut filled = 0;
    while filled < buf.len() {
        if STOP.load(Ordering::SeqCst) {
            return Ok(false);
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(false),
            Err(e) => return Err(format!("reading from vpcd: {e}")),
        }
    }
    Ok(true)
}

fn write_message(stream: &mut TcpStream, payload: &[u8]) -> Result<(), String> {
    let length = u16::try_from(payload.len()).map_err(|_| "message too long for vpcd")?;
    let mut frame = length.to_be_bytes().to_vec();
    frame.extend_from_slice(payload);
    stream
        .write_all(&frame)
        .map_err(|e| format!("writing to vpcd: {e}"))
}

/// Serves vpcd until a signal or the reader closes. `present(true)` inserts the token,
/// `present(false)` ejects it; the token is ejected on every way out once inserted.
pub fn run(
    serial: &str,
    options: &Options,
    present: &mut dyn FnMut(bool) -> Result<(), String>,
) -> Result<Ended, String> {
    install_signal_handlers();
    present(true)?;
    let result = connect(options).and_then(|stream| match stream {
        Some(stream) => serve(stream, serial),
        None => Ok(Ended::Signal),
    });
    let ejected = present(false);
    let ended = result?;
    ejected?;
    Ok(ended)
}

fn serve(mut stream: TcpStream, serial: &str) -> Result<Ended, String> {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let atr = atr::atr();
    let mut card = apdu::Card::new(serial);
    while let Some(message) = read_message(&mut stream)? {
        match message.as_slice() {
            [control::GET_ATR] => write_message(&mut stream, &atr)?,
            [control::POWER_OFF] | [control::POWER_ON] | [control::RESET] => card.reset(),
            [other] => {
                eprintln!("hsm-sim vcard: ignoring unknown vpcd control message {other:#04x}")
            }
            command => write_message(&mut stream, &card.respond(command))?,
        }
    }
    Ok(if STOP.load(Ordering::SeqCst) {
        Ended::Signal
    } else {
        Ended::ReaderClosed
    })
}
