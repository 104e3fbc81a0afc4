//! `sealctl seal --daemon URL enroll …`: enrols a seal through the running daemon, which reads
//! the seal key from its token and signs the SES_Seal with the `[maker]` key. The policy comes
//! from a TOML file naming identities (see [`NamedPolicy`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine;
use clap::Args;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::approval::NamedPolicy;
use crate::cli::client::DaemonClient;
use crate::store::model::SealKind;

/// What `sealctl seal enroll` takes.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The seal image (PNG, GIF or JPEG), identical to the physical impression.
    #[arg(long, value_name = "FILE")]
    pub image: PathBuf,
    /// Seal type: legal-name, contract, finance, invoice, business, personal-name, other.
    #[arg(long)]
    pub kind: SealKind,
    /// Owner organisation (the certificate's O).
    #[arg(long)]
    pub organisation: String,
    /// Name on the seal (for organisational seals it begins with the organisation).
    #[arg(long)]
    pub name: String,
    /// esID (GB/T 38540), unique.
    #[arg(long)]
    pub es_id: String,
    /// Serial of the token holding the seal key.
    #[arg(long, value_name = "SERIAL")]
    pub device: String,
    /// CKA_ID of the seal key on that token, hex.
    #[arg(long, value_name = "HEX")]
    pub key_id: String,
    /// The seal key's certificate, PEM or DER.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// Intermediate CA certificates (PEM, possibly several, or DER); repeat as needed.
    #[arg(long, value_name = "FILE")]
    pub chain: Vec<PathBuf>,
    /// Printed width in mm.
    #[arg(long, default_value_t = 40.0)]
    pub width_mm: f64,
    /// Printed height in mm.
    #[arg(long, default_value_t = 40.0)]
    pub height_mm: f64,
    /// Start of validity (RFC 3339); default now, or the certificate's start if later.
    #[arg(long, value_name = "RFC3339")]
    pub valid_from: Option<String>,
    /// End of validity (RFC 3339); default the certificate's end.
    #[arg(long, value_name = "RFC3339")]
    pub valid_to: Option<String>,
    /// The approval policy, TOML: clients, approvers (identity names), required_approvals,
    /// pin_mode, request_ttl_secs, optional daily_quota, quota_utc_offset_minutes, office_hours,
    /// timestamp (off, best-effort, required; default the daemon's `[tsa] policy`).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
}

type CliResult<T> = Result<T, Box<dyn std::error::Error>>;

fn read(path: &Path, what: &str) -> CliResult<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()).into())
}

/// The DER certificates in a PEM (every CERTIFICATE block) or DER file.
fn der_certificates(path: &Path) -> CliResult<Vec<Vec<u8>>> {
    let bytes = read(path, "certificate")?;
    if bytes.first() == Some(&0x30) {
        return Ok(vec![bytes]);
    }
    let mut found = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
        let pem = pem.map_err(|e| format!("{}: not PEM or DER: {e}", path.display()))?;
        if pem.label == "CERTIFICATE" {
            found.push(pem.contents);
        }
    }
    if found.is_empty() {
        return Err(format!("{}: no CERTIFICATE in it (PEM or DER)", path.display()).into());
    }
    Ok(found)
}

fn unix(flag: &str, text: &Option<String>) -> CliResult<Option<i64>> {
    text.as_deref()
        .map(|t| {
            OffsetDateTime::parse(t, &Rfc3339)
                .map(|t| t.unix_timestamp())
                .map_err(|e| {
                    format!("{flag} {t:?} is not RFC 3339 (2027-01-31T00:00:00+08:00): {e}").into()
                })
        })
        .transpose()
}

/// Reads the policy file.
pub fn read_policy(path: &Path) -> CliResult<NamedPolicy> {
    let text = String::from_utf8(read(path, "policy file")?)
        .map_err(|_| format!("the policy file {} is not UTF-8", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("policy file {}: {e}", path.display()).into())
}

/// The JSON body of `POST /v1/seals` for these arguments.
pub fn body(args: &EnrollArgs) -> CliResult<Value> {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut cert = der_certificates(&args.cert)?;
    if cert.len() != 1 {
        return Err(format!(
            "{} holds {} certificates; give the seal's certificate with --cert and the CAs with --chain",
            args.cert.display(),
            cert.len()
        )
        .into());
    }
    let mut chain = Vec::new();
    for path in &args.chain {
        chain.extend(der_certificates(path)?.iter().map(|der| b64(der)));
    }
    Ok(json!({
        "kind": args.kind,
        "organisation": args.organisation,
        "name": args.name,
        "image": b64(&read(&args.image, "image")?),
        "width_mm": args.width_mm,
        "height_mm": args.height_mm,
        "es_id": args.es_id,
        "device_serial": args.device,
        "key_id": args.key_id,
        "certificate": b64(&cert.remove(0)),
        "intermediates": chain,
        "valid_from": unix("--valid-from", &args.valid_from)?,
        "valid_to": unix("--valid-to", &args.valid_to)?,
        "policy": read_policy(&args.policy)?,
    }))
}

/// `POST /v1/seals` on the daemon at `url`; prints the new seal's id and what was set.
pub fn run(url: &str, token_file: Option<&Path>, args: &EnrollArgs) -> CliResult<ExitCode> {
    let body = body(args)?;
    let client = DaemonClient::new(url, token_file)?;
    let answer = client.call("POST", "/v1/seals", Some(&body))?;
    let seal = &answer["seal"];
    let policy = &answer["policy"];
    let when = |v: &Value| {
        v.as_i64()
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| v.to_string())
    };
    println!("{}", seal["id"]);
    eprintln!(
        "seal {} enrolled: {} ({}, esID {}), valid {} to {}; {} of {} approve, clients {}",
        seal["id"],
        seal["name"].as_str().unwrap_or("?"),
        seal["kind"].as_str().unwrap_or("?"),
        seal["es_id"].as_str().unwrap_or("?"),
        when(&seal["valid_from"]),
        when(&seal["valid_to"]),
        policy["required_approvals"],
        policy["approvers"],
        policy["clients"],
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pem_chain_file_gives_every_certificate_and_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pem = |der: &[u8]| {
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64::engine::general_purpose::STANDARD.encode(der)
            )
        };
        let chain = dir.path().join("chain.pem");
        std::fs::write(&chain, pem(b"\x30\x01\x00") + &pem(b"\x30\x01\x01")).unwrap();
        assert_eq!(der_certificates(&chain).unwrap().len(), 2);
        let der = dir.path().join("c.der");
        std::fs::write(&der, b"\x30\x03abc").unwrap();
        assert_eq!(
            der_certificates(&der).unwrap(),
            vec![b"\x30\x03abc".to_vec()]
        );
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "hello").unwrap();
        assert!(der_certificates(&junk).is_err());
        assert!(unix("--valid-to", &Some("tomorrow".into())).is_err());
        assert_eq!(
            unix("--valid-to", &Some("1970-01-01T00:01:00Z".into())).unwrap(),
            Some(60)
        );
    }
}
