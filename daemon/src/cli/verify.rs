//! `sealctl verify FILE`: checks a seal (.esl), a SES_Signature (.dat/.der) or a sealed OFD
//! document as a whole (every signature, its References over the package, what is covered, where
//! the stamps are), and prints a readable report (or JSON with `--json`).
//!
//! Exit status: 0 when every required check passes, 1 when something is invalid,
//! 2 when the input could not be read.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::cert::TrustStore;
use crate::ofd::verify_ofd_with;
use crate::revocation::{Checker, OnUnknown, Settings};
use crate::ses::{
    detect, verify_seal, verify_signature, Document, ObjectKind, Seal, SesSignature, VerifyOptions,
};
use crate::store::model::DocumentFormat;

/// Every required check passed.
pub const EXIT_VALID: i32 = 0;
/// Some required check failed.
pub const EXIT_INVALID: i32 = 1;
/// The input (or an option's file) could not be read.
pub const EXIT_UNREADABLE: i32 = 2;

/// Largest seal or signature file read into memory.
const MAX_OBJECT: u64 = 64 * 1024 * 1024;

/// Arguments of `sealctl verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The file: a seal (.esl), a SES_Signature (.dat, .der) or an OFD document.
    pub file: PathBuf,
    /// The signed document, to check a signature's dataHash (hashed as a stream).
    #[arg(long, conflicts_with = "digest")]
    pub data: Option<PathBuf>,
    /// The signed document's digest in hex (SM3 for SM2 signatures), to check dataHash.
    #[arg(long)]
    pub digest: Option<String>,
    /// Trust roots (PEM or DER certificates) for the chain checks; may be repeated.
    #[arg(long = "trust")]
    pub trust: Vec<PathBuf>,
    /// Trusted TSA certificates (PEM or DER: TSA roots or TSA certificates) for a signature's
    /// RFC 3161 timestamp; with them a valid timestamp's time is when validity is judged.
    /// May be repeated.
    #[arg(long = "tsa-trust")]
    pub tsa_trust: Vec<PathBuf>,
    /// CRL files (PEM or DER) for the certificates' status; may be repeated. With `--crl`,
    /// `--ocsp-url` or `--online` the signer's and maker's certificates are checked for
    /// revocation (certificates issued by a `--trust` root only).
    #[arg(long = "crl")]
    pub crl: Vec<PathBuf>,
    /// An OCSP responder (`http://…`) to ask for the certificates' status.
    #[arg(long = "ocsp-url")]
    pub ocsp_url: Option<String>,
    /// Follow the OCSP responders and CRL distribution points the certificates name.
    #[arg(long)]
    pub online: bool,
    /// Count a certificate whose status no source could give as not checked, instead of
    /// as a failure.
    #[arg(long)]
    pub allow_unknown_status: bool,
    /// For a bare seal: the time (RFC 3339) at which to judge its validity.
    #[arg(long)]
    pub at: Option<String>,
    /// Print JSON instead of the readable report.
    #[arg(long)]
    pub json: bool,
}

struct Unreadable(String);

/// Runs the command, printing to stdout (and errors to stderr); returns the exit status.
pub fn run(args: &VerifyArgs) -> i32 {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match verify_file(args, &mut out) {
        Ok(code) => code,
        Err(Unreadable(msg)) => {
            if args.json {
                let v = serde_json::json!({ "file": args.file, "error": msg });
                let _ = writeln!(out, "{v:#}");
            }
            eprintln!("sealctl verify: {msg}");
            EXIT_UNREADABLE
        }
    }
}

fn load_trust(paths: &[PathBuf]) -> Result<Option<TrustStore>, Unreadable> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut store = TrustStore::default();
    for p in paths {
        let bytes = std::fs::read(p)
            .map_err(|e| Unreadable(format!("cannot read trust root {}: {e}", p.display())))?;
        let roots = TrustStore::from_pem_or_der(&bytes)
            .map_err(|e| Unreadable(format!("trust root {}: {e}", p.display())))?;
        for r in roots.roots() {
            store.add(r.clone());
        }
    }
    Ok(Some(store))
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, Unreadable> {
    let file =
        File::open(path).map_err(|e| Unreadable(format!("cannot open {}: {e}", path.display())))?;
    let mut buf = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Unreadable(format!("cannot read {}: {e}", path.display())))?;
    if buf.len() as u64 > limit {
        return Err(Unreadable(format!(
            "{} is larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

fn emit(out: &mut dyn Write, json: bool, value: serde_json::Value, text: &str) {
    let _ = if json {
        writeln!(out, "{value:#}")
    } else {
        write!(out, "{text}")
    };
}

/// The status checker `--crl`, `--ocsp-url` and `--online` ask for, if any.
fn status_checker(args: &VerifyArgs) -> Result<Option<Checker>, Unreadable> {
    if args.crl.is_empty() && args.ocsp_url.is_none() && !args.online {
        return Ok(None);
    }
    if let Some(url) = &args.ocsp_url {
        crate::fetch::check_http_url(url)
            .map_err(|why| Unreadable(format!("--ocsp-url: {why}")))?;
    }
    for path in &args.crl {
        std::fs::metadata(path)
            .map_err(|e| Unreadable(format!("cannot read --crl {}: {e}", path.display())))?;
    }
    Ok(Some(Checker::new(Settings {
        crl_files: args.crl.clone(),
        ocsp_url: args.ocsp_url.clone(),
        fetch: args.online,
        timeout: std::time::Duration::from_secs(10),
        on_unknown: if args.allow_unknown_status {
            OnUnknown::Allow
        } else {
            OnUnknown::Refuse
        },
    })))
}

fn verify_file(args: &VerifyArgs, out: &mut dyn Write) -> Result<i32, Unreadable> {
    let trust = load_trust(&args.trust)?;
    let tsa_trust = load_trust(&args.tsa_trust)?;
    let at = match &args.at {
        None => None,
        Some(s) => Some(
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|e| Unreadable(format!("--at {s:?} is not an RFC 3339 time: {e}")))?,
        ),
    };
    let digest = match &args.digest {
        None => None,
        Some(h) => Some(
            hex::decode(h.trim()).map_err(|e| Unreadable(format!("--digest is not hex: {e}")))?,
        ),
    };
    let document = match (&digest, &args.data) {
        (Some(d), _) => Document::Digest(d),
        (None, Some(p)) => {
            File::open(p)
                .map_err(|e| Unreadable(format!("cannot open --data {}: {e}", p.display())))?;
            Document::File(p)
        }
        (None, None) => Document::None,
    };
    let checker = status_checker(args)?;
    let options = VerifyOptions {
        document,
        trust: trust.as_ref(),
        at,
        tsa_trust: tsa_trust.as_ref(),
        revocation: checker.as_ref(),
    };
    let mut head = Vec::with_capacity(1024);
    let _ = File::open(&args.file).and_then(|f| f.take(1024).read_to_end(&mut head));
    match DocumentFormat::detect(&head) {
        Some(DocumentFormat::Ofd) => return verify_ofd_file(args, &options, out),
        Some(DocumentFormat::Pdf) => {
            let bytes = read_bounded(&args.file, crate::pdf::MAX_PDF as u64)?;
            return verify_pdf_file(args, &options, &bytes, out);
        }
        None => {}
    }
    let bytes = read_bounded(&args.file, MAX_OBJECT)?;
    let report = match detect(&bytes) {
        ObjectKind::Seal => {
            let seal = Seal::parse(&bytes).map_err(|e| Unreadable(format!("{}: {e}", args.file.display())))?;
            verify_seal(&seal, &options)
        }
        ObjectKind::Cms(oid) => {
            return Err(Unreadable(format!(
                "{} is a CMS ContentInfo ({oid}), e.g. a GB/T 35275 signature, not a GB/T 38540 seal or signature",
                args.file.display()
            )))
        }
        ObjectKind::Signature | ObjectKind::Unknown => {
            let sig =
                SesSignature::parse(&bytes).map_err(|e| Unreadable(format!("{}: {e}", args.file.display())))?;
            verify_signature(&sig, &options)
        }
    };
    let value = serde_json::json!({ "file": args.file, "valid": report.valid, "report": report });
    let text = format!("{}: {}", args.file.display(), report.to_text());
    emit(out, args.json, value, &text);
    Ok(if report.valid {
        EXIT_VALID
    } else {
        EXIT_INVALID
    })
}

fn verify_pdf_file(
    args: &VerifyArgs,
    options: &VerifyOptions<'_>,
    bytes: &[u8],
    out: &mut dyn Write,
) -> Result<i32, Unreadable> {
    let report = crate::pdf::verify_pdf_with(
        bytes,
        crate::cms::Anchors {
            roots: options.trust,
            tsa: options.tsa_trust,
            revocation: options.revocation,
        },
    )
    .map_err(|e| Unreadable(format!("{}: {e}", args.file.display())))?;
    report_document(
        args,
        options,
        out,
        (report.valid, report.to_text()),
        &report,
        "PDF files; each signature covers its ByteRange",
    )
}

fn verify_ofd_file(
    args: &VerifyArgs,
    options: &VerifyOptions<'_>,
    out: &mut dyn Write,
) -> Result<i32, Unreadable> {
    let file = File::open(&args.file)
        .map_err(|e| Unreadable(format!("cannot open {}: {e}", args.file.display())))?;
    let report = verify_ofd_with(
        std::io::BufReader::new(file),
        options.trust,
        options.tsa_trust,
        options.revocation,
    )
    .map_err(|e| Unreadable(format!("{}: {e}", args.file.display())))?;
    report_document(
        args,
        options,
        out,
        (report.valid, report.to_text()),
        &report,
        "OFD files; each signature covers its Signature.xml and its References",
    )
}

/// Prints a whole document's report (text, or JSON with the file's name) and gives the exit
/// code; `ignored` ends the note printed when `--data`/`--digest` were given.
fn report_document(
    args: &VerifyArgs,
    options: &VerifyOptions<'_>,
    out: &mut dyn Write,
    (valid, summary): (bool, String),
    report: &impl serde::Serialize,
    ignored: &str,
) -> Result<i32, Unreadable> {
    let mut text = format!("{}: {summary}", args.file.display());
    if !matches!(options.document, Document::None) {
        text.push_str(&format!(
            "note: --data/--digest are ignored for {ignored}\n"
        ));
    }
    let mut value = serde_json::to_value(report)
        .map_err(|e| Unreadable(format!("cannot write the report: {e}")))?;
    if let Some(map) = value.as_object_mut() {
        map.insert("file".into(), serde_json::json!(args.file));
    }
    emit(out, args.json, value, &text);
    Ok(if valid { EXIT_VALID } else { EXIT_INVALID })
}
