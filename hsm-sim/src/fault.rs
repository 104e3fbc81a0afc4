//! Faults on demand, for testing how a client survives a broken vendor library.
//!
//! A token whose settings name a `sign_fault_file` reads that file each time it is asked to
//! sign (through PKCS#11, SKF or SDF). Its first word decides what happens:
//! - `abort`: the process aborts (SIGABRT), as a vendor library that crashes does;
//! - `hang`: the call never returns, as a library stuck on a dead device does;
//! - anything else, or no file: the signature is made as usual.
//!
//! Tests write and remove the file while the client runs, so one process can crash, be
//! restarted and work again.

use std::path::Path;
use std::time::Duration;

/// What the fault file asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignFault {
    /// Sign as usual.
    None,
    /// Abort the process.
    Abort,
    /// Never return.
    Hang,
}

/// Reads the fault file (`None` when unset or absent).
pub fn sign_fault(file: Option<&Path>) -> SignFault {
    let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) else {
        return SignFault::None;
    };
    match text.split_whitespace().next() {
        Some("abort") => SignFault::Abort,
        Some("hang") => SignFault::Hang,
        _ => SignFault::None,
    }
}

/// Called before every signature: aborts or hangs when the fault file says so.
pub fn before_sign(file: Option<&Path>) {
    match sign_fault(file) {
        SignFault::None => {}
        SignFault::Abort => {
            eprintln!("hsm-sim: sign_fault_file says abort");
            std::process::abort();
        }
        SignFault::Hang => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_word_of_the_file_picks_the_fault() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fault");
        assert_eq!(sign_fault(None), SignFault::None);
        assert_eq!(sign_fault(Some(&file)), SignFault::None, "no file yet");
        for (text, fault) in [
            ("abort\n", SignFault::Abort),
            ("hang please", SignFault::Hang),
            ("", SignFault::None),
            ("none", SignFault::None),
        ] {
            std::fs::write(&file, text).unwrap();
            assert_eq!(sign_fault(Some(&file)), fault, "{text:?}");
        }
    }
}
