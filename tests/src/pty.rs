//! Drives a real binary through a pseudo-terminal, as a person at the keyboard: the child gets
//! the pty as its controlling terminal (so `/dev/tty` is it), and the test waits for each prompt
//! before typing, with every wait bounded.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// A child process on a pty.
#[derive(Debug)]
pub struct PtyChild {
    child: Child,
    master: File,
    output: Receiver<Vec<u8>>,
    /// Everything the child wrote to the terminal so far (prompts, messages, any echo).
    pub transcript: String,
}

impl PtyChild {
    /// Spawns `command` with a new pty as its controlling terminal and stdin/stdout/stderr.
    pub fn spawn(mut command: Command) -> Self {
        let (mut master_fd, mut slave_fd) = (0, 0);
        // SAFETY: openpty writes two descriptors; no name, termios or winsize are passed.
        let rc = unsafe {
            libc::openpty(
                &mut master_fd,
                &mut slave_fd,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here.
        let (master, slave) =
            unsafe { (File::from_raw_fd(master_fd), OwnedFd::from_raw_fd(slave_fd)) };
        let io = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty"));
        command
            .stdin(io(&slave))
            .stdout(io(&slave))
            .stderr(io(&slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("spawn on pty");
        drop(slave);
        let mut reader = master.try_clone().expect("clone master");
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the child has exited and the slave is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let _ = master.as_raw_fd();
        Self {
            child,
            master,
            output,
            transcript: String::new(),
        }
    }

    fn pump(&mut self, until: Instant) -> bool {
        let left = until.saturating_duration_since(Instant::now());
        match self.output.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok(bytes) => {
                self.transcript.push_str(&String::from_utf8_lossy(&bytes));
                true
            }
            Err(_) => false,
        }
    }

    /// Waits (at most 20 s) until the transcript after `from` contains `text`; returns the end.
    pub fn expect(&mut self, from: usize, text: &str) -> usize {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(at) = self.transcript[from.min(self.transcript.len())..].find(text) {
                return from + at + text.len();
            }
            if Instant::now() >= until || (!self.pump(until) && Instant::now() >= until) {
                panic!("timed out waiting for {text:?}; got:\n{}", self.transcript);
            }
        }
    }

    /// Types a line (the Enter key included).
    pub fn type_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .expect("type into pty");
    }

    /// Waits (at most 30 s) for the child to exit, collecting the rest of its output.
    pub fn finish(mut self) -> (ExitStatus, String) {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                while self.pump(Instant::now() + Duration::from_millis(200)) {}
                return (status, std::mem::take(&mut self.transcript));
            }
            if Instant::now() >= until {
                let _ = self.child.kill();
                panic!("child did not exit; got:\n{}", self.transcript);
            }
            self.pump(Instant::now() + Duration::from_millis(50));
        }
    }
}

impl Drop for PtyChild {
    /// A child still running when the test lets go of it is killed and reaped.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
