//! `sealctl key generate|csr|import-cert`: key lifecycle directly on a device.

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};

use super::prompt::PinSource;
use super::token::{self, TokenArgs};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::crypto::KeyAlgorithm;
use crate::custody::csr::{pem, Subject};
use crate::custody::{keys, Custodians};
use crate::device::NewKeyPair;
use crate::identity::Caller;
use crate::store::Store;

/// Generate a key pair, request a certificate, import the CA's certificate.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    token: TokenArgs,
    /// CKA_ID of the key, hex.
    #[arg(long, value_name = "HEX", value_parser = parse_id)]
    id: KeyId,
    /// The seald store whose usage log records what was done (recommended).
    #[arg(long, value_name = "PATH")]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Algorithm {
    Sm2,
    P256,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Generate a key pair on the token (the private key never leaves it).
    Generate {
        /// SM2 (with the module's profile) or P-256.
        #[arg(long, value_enum, default_value = "sm2")]
        algorithm: Algorithm,
        /// CKA_LABEL.
        #[arg(long, default_value = "seal key")]
        label: String,
    },
    /// Write a PKCS#10 request for the key, signed on the token.
    Csr {
        /// Organisation (O): the legal name.
        #[arg(long = "org")]
        organisation: String,
        /// Common name (CN).
        #[arg(long = "cn")]
        common_name: String,
        /// Organisational unit (OU).
        #[arg(long = "ou")]
        unit: Option<String>,
        /// Country (C), two letters.
        #[arg(long = "country")]
        country: Option<String>,
        /// Where to write the PEM request.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Store the CA's certificate with the key, after checking it certifies this key.
    ImportCert {
        /// The certificate (PEM or DER).
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// CKA_LABEL of the certificate.
        #[arg(long, default_value = "seal certificate")]
        label: String,
    },
}

/// A CKA_ID given as hex.
#[derive(Debug, Clone)]
struct KeyId(Vec<u8>);

fn parse_id(text: &str) -> Result<KeyId, String> {
    match hex::decode(text) {
        Ok(id) if !id.is_empty() => Ok(KeyId(id)),
        _ => Err(format!("`{text}` is not a non-empty hex CKA_ID")),
    }
}

/// Runs `sealctl key …`.
pub fn run(config: &Config, args: KeyArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let custodians = match &args.store {
        Some(path) => Some(Custodians::new(
            Arc::new(Store::open_existing(path)?),
            Arc::new(SystemClock),
        )),
        None => None,
    };
    let actor = Caller::local_from_env().name();
    let (_devices, owner) = token::open(config, &args.token)?;
    // Making and importing keys needs the PKCS#11 module in seald's process: say so before
    // asking for the PIN.
    if owner.backend().is_some() && !matches!(args.command, KeyCommand::Csr { .. }) {
        return Err(format!(
            "token {} is driven through an SKF or SDF library or seald's device helper: make and import its keys with the vendor's tool, or load its PKCS#11 module with isolation = \"none\"",
            owner.serial()
        )
        .into());
    }
    let id = args.id.0;
    let record =
        |event: &str, detail: serde_json::Value| -> Result<(), Box<dyn std::error::Error>> {
            if let Some(c) = &custodians {
                let mut detail = detail;
                detail["key_id"] = hex::encode(&id).into();
                c.record_key_event(&actor, owner.serial(), event, detail)?;
            }
            Ok(())
        };
    let mut pins = PinSource::open(args.token.pin_stdin)?;
    token::login(&owner, &mut pins)?;
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        match args.command {
            KeyCommand::Generate { algorithm, label } => {
                let algorithm = match algorithm {
                    Algorithm::Sm2 => KeyAlgorithm::Sm2,
                    Algorithm::P256 => KeyAlgorithm::P256,
                };
                let spec = NewKeyPair {
                    algorithm,
                    id: id.clone(),
                    label,
                };
                let key = keys::generate(&owner, &spec)?;
                record(
                    "generated",
                    serde_json::json!({ "algorithm": algorithm, "public_key": hex::encode(key.point) }),
                )?;
                println!("{}", hex::encode(key.point));
                eprintln!(
                    "generated a {algorithm:?} key pair with CKA_ID {} on token {}",
                    hex::encode(&id),
                    owner.serial()
                );
            }
            KeyCommand::Csr {
                organisation,
                common_name,
                unit,
                country,
                out,
            } => {
                let subject = Subject {
                    country,
                    organisation,
                    unit,
                    common_name,
                };
                let der = keys::csr(owner.clone(), &id, &subject)?;
                record(
                    "csr",
                    serde_json::json!({
                        "organisation": subject.organisation,
                        "common_name": subject.common_name,
                        "csr_sm3": hex::encode(crate::crypto::sm3(&der)),
                    }),
                )?;
                std::fs::write(&out, pem("CERTIFICATE REQUEST", &der))
                    .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
                eprintln!("wrote the certificate request to {}", out.display());
            }
            KeyCommand::ImportCert { cert, label } => {
                let bytes = std::fs::read(&cert)
                    .map_err(|e| format!("cannot read {}: {e}", cert.display()))?;
                let certificate = keys::read_certificate(&bytes)?;
                let subject = keys::import_certificate(owner.clone(), &id, &certificate, &label)?;
                record(
                    "certificate-imported",
                    serde_json::json!({
                        "subject": subject,
                        "cert_serial": certificate.facts().serial_hex,
                        "cert_sm3": hex::encode(crate::crypto::sm3(certificate.der())),
                    }),
                )?;
                eprintln!(
                    "imported the certificate of {subject} with CKA_ID {} on token {}",
                    hex::encode(&id),
                    owner.serial()
                );
            }
        }
        Ok(())
    })();
    let _ = owner.logout();
    result.map(|()| ExitCode::SUCCESS)
}
