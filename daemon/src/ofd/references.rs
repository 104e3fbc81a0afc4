//! Checking a `Signature.xml`'s `References`: each `CheckValue` against the raw bytes of the
//! package member its `FileRef` names (GB/T 33190 §18).

use std::io::{Read, Seek};

use base64::Engine;
use md5::Digest;

use super::package::Package;
use crate::crypto::sm3;

/// The digest a `References@CheckMethod` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckMethod {
    /// SM3 (`SM3` or `1.2.156.10197.1.401`).
    Sm3,
    /// SHA-1: checked, reported weak.
    Sha1,
    /// MD5: checked, reported weak.
    Md5,
}

impl CheckMethod {
    /// Reads a `CheckMethod` value (names case-insensitively, or OIDs).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "SM3" | "1.2.156.10197.1.401" => Some(Self::Sm3),
            "SHA1" | "SHA-1" | "1.3.14.3.2.26" => Some(Self::Sha1),
            "MD5" | "1.2.840.113549.2.5" => Some(Self::Md5),
            _ => None,
        }
    }

    /// True for digests too weak to protect a document (MD5, SHA-1).
    pub fn is_weak(self) -> bool {
        self != Self::Sm3
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sm3 => sm3(data).to_vec(),
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Md5 => md5::Md5::digest(data).to_vec(),
        }
    }
}

/// The outcome of one `Reference`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReferenceCheck {
    /// `FileRef` as written.
    pub file_ref: String,
    /// The package member it names (no leading `/`), when the location is acceptable.
    pub member: Option<String>,
    /// True when the member exists and its digest equals the `CheckValue`.
    pub ok: bool,
    /// Why it failed (empty when it passed).
    pub reason: String,
}

/// All references of one signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReferencesReport {
    /// `CheckMethod` as written (`None` when absent).
    pub check_method: Option<String>,
    /// The digest used, when the method is known.
    pub method: Option<CheckMethod>,
    /// The method is MD5 or SHA-1.
    pub weak: bool,
    /// How many references were checked.
    pub checked: usize,
    /// Each reference, in file order.
    pub items: Vec<ReferenceCheck>,
}

impl ReferencesReport {
    /// The references that failed.
    pub fn failed(&self) -> impl Iterator<Item = &ReferenceCheck> {
        self.items.iter().filter(|r| !r.ok)
    }

    /// True when the method is known and every reference passed.
    pub fn all_ok(&self) -> bool {
        self.method.is_some() && self.items.iter().all(|r| r.ok)
    }

    /// The members whose check passed.
    pub fn protected(&self) -> impl Iterator<Item = &str> {
        self.items
            .iter()
            .filter(|r| r.ok)
            .filter_map(|r| r.member.as_deref())
    }
}

/// Checks every reference against the package.
pub fn check_references<R: Read + Seek>(
    package: &mut Package<R>,
    doc_dir: &str,
    check_method: Option<&str>,
    references: &[super::xml::ReferenceEntry],
) -> ReferencesReport {
    // GB/T 33190 gives MD5 as the default when CheckMethod is absent.
    let method = match check_method {
        None => Some(CheckMethod::Md5),
        Some(m) => CheckMethod::parse(m),
    };
    let items = references
        .iter()
        .map(|r| {
            let mut check = ReferenceCheck {
                file_ref: r.file_ref.clone(),
                member: None,
                ok: false,
                reason: String::new(),
            };
            // Absolute from the package root; relative from the document root's directory, or else
            // from the package root when only that names a member.
            let member = match package.locate(doc_dir, &r.file_ref) {
                Ok(m) => m,
                Err(e) => {
                    check.reason = e;
                    return check;
                }
            };
            check.member = Some(member.clone());
            let Some(method) = method else {
                check.reason = format!(
                    "unsupported CheckMethod {:?}",
                    check_method.unwrap_or_default()
                );
                return check;
            };
            let expected = match base64::engine::general_purpose::STANDARD
                .decode(r.check_value.split_whitespace().collect::<String>())
            {
                Ok(v) => v,
                Err(e) => {
                    check.reason = format!("CheckValue is not base64: {e}");
                    return check;
                }
            };
            match package.read(&member) {
                Err(e) => check.reason = e.to_string(),
                Ok(bytes) => {
                    if method.digest(&bytes) == expected {
                        check.ok = true;
                    } else {
                        check.reason = format!(
                            "/{member} was changed: its digest does not match the CheckValue"
                        );
                    }
                }
            }
            check
        })
        .collect::<Vec<_>>();
    ReferencesReport {
        check_method: check_method.map(str::to_string),
        method,
        weak: method.is_some_and(CheckMethod::is_weak),
        checked: items.len(),
        items,
    }
}
