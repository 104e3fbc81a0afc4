//! Any bytes given as an OFD (zip) archive give a result or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = seald::ofd::verify_ofd(std::io::Cursor::new(data), None);
});
