//! Reading PINs for `sealctl`: from the controlling terminal with echo off, or (`--pin-stdin`,
//! for automation) one per line from standard input. Never from argv or the environment.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, Read, Write};
use std::os::fd::AsRawFd;

use zeroize::Zeroizing;

use crate::device::Pin;

/// Why a PIN could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// No terminal and no `--pin-stdin`.
    #[error("no terminal to read the PIN from; run sealctl in a terminal, or pass --pin-stdin and give PINs one per line on standard input")]
    NoTerminal,
    /// Input ended before a PIN was given.
    #[error("standard input ended before the {0} was given")]
    Eof(String),
    /// The two entries of a new PIN differ.
    #[error("the two entries of the new PIN differ; nothing was changed")]
    Mismatch,
    /// An empty PIN.
    #[error("the {0} is empty; nothing was changed")]
    Empty(String),
    /// Reading failed.
    #[error("cannot read the PIN: {0}")]
    Io(#[from] std::io::Error),
}

/// Where PINs come from.
#[derive(Debug)]
pub enum PinSource {
    /// `/dev/tty`, echo off while reading.
    Tty(File),
    /// Lines on standard input.
    Stdin,
}

/// Restores the terminal's mode when dropped (also on error).
struct EchoOff<'a> {
    tty: &'a File,
    saved: libc::termios,
}

impl<'a> EchoOff<'a> {
    fn new(tty: &'a File) -> std::io::Result<Self> {
        // SAFETY: termios is plain data; tcgetattr fills it for a descriptor we own.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(tty.as_raw_fd(), &mut saved) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut quiet = saved;
        quiet.c_lflag &= !(libc::ECHO | libc::ECHONL);
        quiet.c_lflag |= libc::ICANON;
        // SAFETY: as above, with a termios copied from the terminal's own.
        if unsafe { libc::tcsetattr(tty.as_raw_fd(), libc::TCSAFLUSH, &quiet) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self { tty, saved })
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `new`.
        unsafe { libc::tcsetattr(self.tty.as_raw_fd(), libc::TCSAFLUSH, &self.saved) };
    }
}

fn read_line(reader: &mut dyn Read, what: &str) -> Result<Zeroizing<String>, PromptError> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(64));
    let mut byte = [0u8; 1];
    loop {
        match reader.read(&mut byte)? {
            0 if bytes.is_empty() => return Err(PromptError::Eof(what.to_owned())),
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ => bytes.push(byte[0]),
        }
    }
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| std::io::Error::other("the PIN is not UTF-8 text"))?;
    byte.fill(0);
    Ok(Zeroizing::new(text))
}

impl PinSource {
    /// Standard input with `pin_stdin`, else the controlling terminal.
    pub fn open(pin_stdin: bool) -> Result<Self, PromptError> {
        if pin_stdin {
            return Ok(Self::Stdin);
        }
        OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .map(Self::Tty)
            .map_err(|_| PromptError::NoTerminal)
    }

    /// Reads one PIN, prompting with `what` ("current PIN", "SO PIN", …).
    pub fn read(&mut self, what: &str) -> Result<Pin, PromptError> {
        let line = match self {
            PinSource::Stdin => {
                let stdin = std::io::stdin();
                let mut lock = stdin.lock();
                // BufRead so a line is consumed exactly, leaving later lines for later PINs.
                let mut raw = Zeroizing::new(Vec::new());
                if lock.read_until(b'\n', &mut raw)? == 0 {
                    return Err(PromptError::Eof(what.to_owned()));
                }
                read_line(&mut raw.as_slice(), what)?
            }
            PinSource::Tty(tty) => {
                // Echo goes off before the prompt shows, so nothing typed after it is echoed
                // (anything typed ahead of the prompt is discarded, as getpass does).
                let line = {
                    let tty: &File = tty;
                    let _quiet = EchoOff::new(tty)?;
                    let mut writer = tty;
                    write!(writer, "{what}: ")?;
                    writer.flush()?;
                    let mut reader = tty;
                    read_line(&mut reader, what)?
                };
                writeln!(tty)?;
                line
            }
        };
        if line.is_empty() {
            return Err(PromptError::Empty(what.to_owned()));
        }
        Ok(Pin::new(line.as_str()))
    }

    /// Reads a new PIN twice and insists both entries match.
    pub fn read_new(&mut self, what: &str) -> Result<Pin, PromptError> {
        let first = self.read(what)?;
        let second = self.read(&format!("{what} again"))?;
        if !first.same_as(&second) {
            return Err(PromptError::Mismatch);
        }
        Ok(first)
    }
}
