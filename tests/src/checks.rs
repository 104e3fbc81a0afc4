//! Independent checks of a SES_Signature: seald's format layer and OpenSSL.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use seald::cert::TrustStore;
use seald::ses::{verify_der, Document, SesSignature, VerifyOptions};

/// Decodes base64.
pub fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64 signature")
}

/// Verifies `der` against `digest` with the format layer (trust: the demo CA's root) and
/// returns the parsed signature.
pub fn format_layer_accepts(der: &[u8], digest: &[u8; 32], root_pem: &Path) -> SesSignature {
    let trust = TrustStore::from_pem_or_der(&std::fs::read(root_pem).expect("root")).expect("root");
    let report = verify_der(
        der,
        &VerifyOptions {
            document: Document::Digest(digest),
            trust: Some(&trust),
            at: None,
            tsa_trust: None,
            revocation: None,
        },
    )
    .expect("parse SES_Signature");
    assert!(report.valid, "format layer: {}", report.to_text());
    let sig = SesSignature::parse(der).expect("parse");
    assert_eq!(sig.tbs.data_hash, digest);
    sig
}

/// OpenSSL verifies the SM2 signature over TBS_Sign with the signer certificate's key
/// (`openssl dgst -sm3 -verify PUB -signature SIG -sigopt distid:1234567812345678 TBS`).
pub fn openssl_accepts(sig: &SesSignature, dir: &Path, label: &str) {
    openssl_accepts_with(sig, dir, label, true)
}

/// Like [`openssl_accepts`]; `sm2 = false` checks an ECDSA P-256 signature over SHA-256.
pub fn openssl_accepts_with(sig: &SesSignature, dir: &Path, label: &str, sm2: bool) {
    let cert = dir.join(format!("{label}.cer"));
    let pubkey = dir.join(format!("{label}.pub.pem"));
    let sigfile = dir.join(format!("{label}.sig"));
    let tbs = dir.join(format!("{label}.tbs"));
    std::fs::write(&cert, &sig.signer_cert).expect("write");
    std::fs::write(&sigfile, &sig.signature).expect("write");
    std::fs::write(&tbs, &sig.signed_bytes).expect("write");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let p = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    run(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        &p(&cert),
        "-pubkey",
        "-noout",
        "-out",
        &p(&pubkey),
    ]);
    let (pubkey, sigfile, tbs) = (p(&pubkey), p(&sigfile), p(&tbs));
    let md = if sm2 { "-sm3" } else { "-sha256" };
    let mut args = vec!["dgst", md, "-verify", &pubkey, "-signature", &sigfile];
    if sm2 {
        args.extend(["-sigopt", "distid:1234567812345678"]);
    }
    args.push(&tbs);
    let out = run(&args);
    assert!(out.contains("Verified OK"), "{out}");
}
