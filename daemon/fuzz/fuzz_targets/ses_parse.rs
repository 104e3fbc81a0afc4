//! Any bytes given to the seal and signature parsers (and the verifier, when they parse) must give
//! a value or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seald::ses::{detect, verify_seal, verify_signature, Seal, SesSignature, VerifyOptions};

fuzz_target!(|data: &[u8]| {
    let _ = detect(data);
    let options = VerifyOptions::default();
    if let Ok(seal) = Seal::parse(data) {
        let _ = verify_seal(&seal, &options);
    }
    if let Ok(sig) = SesSignature::parse(data) {
        let _ = verify_signature(&sig, &options);
    }
    let _ = seald::crypto::RawSignature::from_any(data);
    let _ = seald::cert::Certificate::from_der(data);
});
