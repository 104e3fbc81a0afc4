//! OFD containers (GB/T 33190): find every `Doc_N/Signs/Sign_M`, read its SignedValue and verify
//! it against the raw bytes of its `Signature.xml`.

use std::io::{Read, Seek};

use super::parse::{detect, ObjectKind};
use super::types::SesSignature;
use super::verify::{verify_signature, Document, Report, VerifyOptions};
use crate::cert::TrustStore;

/// Largest entry read from an OFD (protects against zip bombs).
const MAX_ENTRY: u64 = 64 * 1024 * 1024;

/// Why an OFD could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum OfdError {
    /// Not a zip archive, or a broken one.
    #[error("not a readable OFD (zip) file: {0}")]
    Zip(#[from] zip::result::ZipError),
}

/// What was found for one signature in the OFD.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OfdOutcome {
    /// A SES_Signature, verified.
    Verified {
        /// The verification report.
        report: Box<Report>,
    },
    /// The SignedValue is not a SES_Signature (e.g. a GB/T 35275 CMS): not checked by seald.
    NotSes {
        /// What it is instead.
        found: String,
    },
    /// The SignedValue or Signature.xml is missing or malformed.
    Unreadable {
        /// Why.
        reason: String,
    },
}

/// One signature of an OFD.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OfdSignature {
    /// Path of its Signature.xml inside the archive.
    pub signature_xml: String,
    /// Path of its SignedValue inside the archive.
    pub signed_value: String,
    /// What was found.
    #[serde(flatten)]
    pub outcome: OfdOutcome,
}

impl OfdSignature {
    /// True when this entry is a verified SES_Signature with no failed required check.
    pub fn is_valid(&self) -> bool {
        match &self.outcome {
            OfdOutcome::Verified { report } => report.valid,
            OfdOutcome::NotSes { .. } => true,
            OfdOutcome::Unreadable { .. } => false,
        }
    }
}

fn read_entry<R: Read + Seek>(zip: &mut zip::ZipArchive<R>, name: &str) -> Result<Vec<u8>, String> {
    let entry = zip.by_name(name).map_err(|e| format!("{name}: {e}"))?;
    let mut buf = Vec::new();
    entry
        .take(MAX_ENTRY + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{name}: {e}"))?;
    if buf.len() as u64 > MAX_ENTRY {
        return Err(format!("{name} is larger than {MAX_ENTRY} bytes"));
    }
    Ok(buf)
}

/// Text of the first `<…SignedValue>` element in a Signature.xml, if any.
fn signed_value_ref(xml: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(xml);
    let open = text.find("SignedValue>")?;
    let rest = &text[open + "SignedValue>".len()..];
    let end = rest.find('<')?;
    let value = rest[..end].trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// Resolves an OFD path (absolute from the package root, or relative to `dir`).
fn resolve(dir: &str, path: &str) -> String {
    match path.strip_prefix('/') {
        Some(abs) => abs.to_string(),
        None => format!("{dir}/{path}"),
    }
}

/// Verifies every signature found in an OFD archive.
pub fn verify_ofd<R: Read + Seek>(
    reader: R,
    trust: Option<&TrustStore>,
) -> Result<Vec<OfdSignature>, OfdError> {
    let mut zip = zip::ZipArchive::new(reader)?;
    let mut xmls: Vec<String> = zip
        .file_names()
        .filter(|n| {
            let parts: Vec<&str> = n.trim_start_matches('/').split('/').collect();
            parts.len() >= 3
                && parts[parts.len() - 1] == "Signature.xml"
                && parts[parts.len() - 3].eq_ignore_ascii_case("Signs")
        })
        .map(str::to_string)
        .collect();
    xmls.sort();
    let mut out = Vec::new();
    for xml_name in xmls {
        let dir = xml_name
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        let xml = match read_entry(&mut zip, &xml_name) {
            Ok(x) => x,
            Err(reason) => {
                out.push(OfdSignature {
                    signature_xml: xml_name,
                    signed_value: String::new(),
                    outcome: OfdOutcome::Unreadable { reason },
                });
                continue;
            }
        };
        let sv_name = signed_value_ref(&xml)
            .map(|p| resolve(&dir, &p))
            .unwrap_or_else(|| format!("{dir}/SignedValue.dat"));
        let outcome = match read_entry(&mut zip, sv_name.trim_start_matches('/')) {
            Err(reason) => OfdOutcome::Unreadable { reason },
            Ok(value) => match detect(&value) {
                ObjectKind::Cms(oid) => OfdOutcome::NotSes {
                    found: format!("a CMS ContentInfo ({oid}), e.g. a GB/T 35275 signature, not a SES_Signature"),
                },
                ObjectKind::Seal => OfdOutcome::NotSes {
                    found: "a bare SESeal, not a SES_Signature".into(),
                },
                _ => match SesSignature::parse(&value) {
                    Ok(sig) => {
                        let options = VerifyOptions {
                            document: Document::Bytes(&xml),
                            trust,
                            at: None,
                        };
                        OfdOutcome::Verified {
                            report: Box::new(verify_signature(&sig, &options)),
                        }
                    }
                    Err(e) => OfdOutcome::Unreadable {
                        reason: format!("SignedValue: {e}"),
                    },
                },
            },
        };
        out.push(OfdSignature {
            signature_xml: xml_name,
            signed_value: sv_name,
            outcome,
        });
    }
    Ok(out)
}
