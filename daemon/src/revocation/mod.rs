//! Certificate status: whether a seal's, maker's or signer's certificate was revoked by its
//! CA, from OCSP (RFC 6960) and CRLs (RFC 5280).
//!
//! A [`Checker`] asks, in order: the configured OCSP responder, the responders named in the
//! certificate (AuthorityInfoAccess), the configured CRL files, the CRLs named in the
//! certificate (CRLDistributionPoints). The first definite answer (good or revoked) wins;
//! when none comes, the status is unknown and says what was tried. The URLs in a certificate
//! are followed only when `fetch` is on and only for certificates whose issuer is a configured
//! trust root (callers pass that issuer), so a document cannot make seald fetch from a URL of
//! its choosing. Without network, CRL files alone serve (`fetch = false`).
//!
//! At stamping, a revoked certificate refuses the request, and so does an unknown status
//! under `on_unknown = "refuse"` (the default). At verification, a signature whose trusted
//! time (an RFC 3161 timestamp) is before the revocation stands; see [`judge_signature`].

mod crl;
mod ocsp;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::cert::{rfc3339, Certificate};
use crate::fetch::{Exchange, FetchError};

pub use crl::CrlVerdict;
pub use ocsp::OcspRequest;

/// Largest OCSP answer read.
const MAX_OCSP_ANSWER: u64 = 64 * 1024;
/// Largest CRL read (from a file or a URL).
const MAX_CRL: u64 = 32 * 1024 * 1024;

/// What a CA says of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Not revoked.
    Good,
    /// Revoked at `at` (CRLReason name, when given).
    Revoked {
        /// When (for a key compromise with an earlier invalidityDate, that date).
        at: OffsetDateTime,
        /// The CRLReason, e.g. `keyCompromise`.
        reason: Option<&'static str>,
    },
    /// No source could say (why).
    Unknown(String),
}

/// The name of a CRLReason code (RFC 5280 §5.3.1).
pub fn reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "an unknown reason",
    }
}

/// A certificate's status as reports and usage records show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertStatus {
    /// Which certificate: `signer`, `maker`, `seal`.
    pub certificate: &'static str,
    /// Its subject (CN, else DN).
    pub subject: String,
    /// Its serial, hex.
    pub serial: String,
    /// `good`, `revoked` or `unknown`.
    pub status: &'static str,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Why (CRLReason).
    pub reason: Option<&'static str>,
    /// Where the answer came from (`OCSP <url>`, `CRL <file or url>`), if one came.
    pub source: Option<String>,
    /// A sentence: the answer's particulars, or what was tried and why it failed.
    pub detail: String,
    #[serde(skip)]
    raw: Status,
}

impl CertStatus {
    /// The status.
    pub fn status(&self) -> &Status {
        &self.raw
    }

    fn new(
        certificate: &'static str,
        cert: &Certificate,
        raw: Status,
        source: Option<String>,
        detail: String,
    ) -> Self {
        let (status, revoked_at, reason) = match &raw {
            Status::Good => ("good", None, None),
            Status::Revoked { at, reason } => ("revoked", Some(*at), *reason),
            Status::Unknown(_) => ("unknown", None, None),
        };
        Self {
            certificate,
            subject: cert.facts().display_name(),
            serial: cert.facts().serial_hex.clone(),
            status,
            revoked_at,
            reason,
            source,
            detail,
            raw,
        }
    }

    /// One sentence for messages: "certificate X (serial …) was revoked on … (keyCompromise), per …".
    pub fn sentence(&self) -> String {
        let who = format!(
            "the {} certificate {} (serial {})",
            self.certificate, self.subject, self.serial
        );
        let from = self
            .source
            .as_deref()
            .map(|s| format!(", per {s}"))
            .unwrap_or_default();
        match &self.raw {
            Status::Good => format!("{who} is not revoked{from} ({})", self.detail),
            Status::Revoked { at, reason } => format!(
                "{who} was revoked on {}{}{from}",
                rfc3339(at),
                reason.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
            Status::Unknown(why) => format!("the status of {who} is unknown: {why}"),
        }
    }
}

/// What stamping does when no source can give a certificate's status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnUnknown {
    /// Refuse to sign (the default: a seal whose status cannot be known is not used).
    #[default]
    Refuse,
    /// Sign, and say so in the usage log.
    Allow,
}

/// How certificate status is found (`[revocation]` in the config, or `sealctl verify`'s
/// options).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// CRL files (PEM or DER), read again when they change.
    pub crl_files: Vec<PathBuf>,
    /// An OCSP responder asked for every certificate before those a certificate names.
    pub ocsp_url: Option<String>,
    /// Follow the OCSP and CRL URLs written in certificates.
    pub fetch: bool,
    /// How long one OCSP or CRL exchange may take.
    pub timeout: Duration,
    /// What stamping does when the status is unknown.
    pub on_unknown: OnUnknown,
}

/// A CRL kept between checks: its DER, when it was read and (for a file) the file's stamp.
#[derive(Debug, Clone)]
struct CachedCrl {
    der: Arc<Vec<u8>>,
    file_stamp: Option<(SystemTime, u64)>,
    fetched_at: OffsetDateTime,
}

/// Finds certificate status from OCSP and CRLs (see the module documentation).
#[derive(Debug)]
pub struct Checker {
    settings: Settings,
    crls: Mutex<HashMap<String, CachedCrl>>,
}

/// Where a CRL comes from.
enum CrlSource<'a> {
    File(&'a std::path::Path),
    Url(String),
}

impl Checker {
    /// A checker with `settings` and no CRL read yet.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            crls: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The status of `cert` (called `which` in the answer), issued by `issuer`, at `now`.
    pub fn status(
        &self,
        which: &'static str,
        cert: &Certificate,
        issuer: &Certificate,
        now: OffsetDateTime,
    ) -> CertStatus {
        let mut tried = Vec::new();
        let urls = cert.status_urls();
        let mut responders: Vec<String> = self.settings.ocsp_url.iter().cloned().collect();
        if self.settings.fetch {
            for url in &urls.ocsp {
                if !responders.contains(url) {
                    responders.push(url.clone());
                }
            }
        }
        for url in responders {
            match self.ask_ocsp(&url, cert, issuer, now) {
                Ok((Status::Unknown(why), _)) => tried.push(format!("OCSP {url}: {why}")),
                Ok((status, detail)) => {
                    return CertStatus::new(
                        which,
                        cert,
                        status,
                        Some(format!("OCSP {url}")),
                        detail,
                    )
                }
                Err(why) => tried.push(format!("OCSP {url}: {why}")),
            }
        }
        let mut sources: Vec<CrlSource<'_>> = self
            .settings
            .crl_files
            .iter()
            .map(|p| CrlSource::File(p))
            .collect();
        if self.settings.fetch {
            sources.extend(urls.crl.into_iter().map(CrlSource::Url));
        }
        let mut crl_files_of_other_issuers = 0;
        for source in sources {
            let name = match &source {
                CrlSource::File(p) => format!("CRL {}", p.display()),
                CrlSource::Url(u) => format!("CRL {u}"),
            };
            let der = match self.crl(&source, now) {
                Ok(der) => der,
                Err(why) => {
                    tried.push(format!("{name}: {why}"));
                    continue;
                }
            };
            match crl::judge(&der, cert, issuer, now) {
                CrlVerdict::OtherIssuer => crl_files_of_other_issuers += 1,
                CrlVerdict::Says(status, detail) => {
                    return CertStatus::new(which, cert, status, Some(name), detail)
                }
                CrlVerdict::Unusable(why) => tried.push(format!("{name}: {why}")),
            }
        }
        if crl_files_of_other_issuers > 0 {
            tried.push(format!(
                "{crl_files_of_other_issuers} CRL(s) read are another issuer's"
            ));
        }
        let why = if tried.is_empty() {
            "no OCSP responder or CRL is configured for it, and it names none seald may follow"
                .to_string()
        } else {
            tried.join("; ")
        };
        CertStatus::new(which, cert, Status::Unknown(why.clone()), None, why)
    }

    fn ask_ocsp(
        &self,
        url: &str,
        cert: &Certificate,
        issuer: &Certificate,
        now: OffsetDateTime,
    ) -> Result<(Status, String), String> {
        let request = OcspRequest::new(cert, issuer)?;
        let answer = Exchange {
            url,
            post: Some(("application/ocsp-request", &request.encode())),
            accept: &["application/ocsp-response"],
            timeout: self.settings.timeout,
            limit: MAX_OCSP_ANSWER,
        }
        .run()
        .map_err(fetch_error)?;
        request.check_answer(&answer, issuer, now)
    }

    /// The CRL of `source`: from the cache while it is current (a file: unchanged; a URL:
    /// before its nextUpdate), else read again.
    fn crl(&self, source: &CrlSource<'_>, now: OffsetDateTime) -> Result<Arc<Vec<u8>>, String> {
        let (key, stamp) = match source {
            CrlSource::File(path) => {
                let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
                let stamp = (
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                );
                (path.display().to_string(), Some(stamp))
            }
            CrlSource::Url(url) => (url.clone(), None),
        };
        let cached = self
            .crls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(c) = cached {
            let fresh = match (stamp, c.file_stamp) {
                (Some(now_stamp), Some(then)) => now_stamp == then,
                _ => crl_current(&c.der, now) && now - c.fetched_at < time::Duration::hours(1),
            };
            if fresh {
                return Ok(c.der);
            }
        }
        let bytes = match source {
            CrlSource::File(path) => {
                if stamp.is_some_and(|(_, len)| len > MAX_CRL) {
                    return Err(format!("it is larger than {MAX_CRL} bytes"));
                }
                std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?
            }
            CrlSource::Url(url) => Exchange {
                url,
                post: None,
                accept: &[
                    "application/pkix-crl",
                    "application/x-pkcs7-crl",
                    "application/octet-stream",
                ],
                timeout: self.settings.timeout,
                limit: MAX_CRL,
            }
            .run()
            .map_err(fetch_error)?,
        };
        let der = Arc::new(crl::to_der(&bytes)?);
        self.crls.lock().unwrap_or_else(|e| e.into_inner()).insert(
            key,
            CachedCrl {
                der: der.clone(),
                file_stamp: stamp,
                fetched_at: now,
            },
        );
        Ok(der)
    }

    /// For stamping: the status of `cert` (issued by `issuer`, when a trust root issued it),
    /// and why it may not sign, if it may not (revoked; unknown under
    /// `on_unknown = "refuse"`).
    pub fn check_for_signing(
        &self,
        which: &'static str,
        cert: &Certificate,
        issuer: Option<&Certificate>,
        now: OffsetDateTime,
    ) -> (CertStatus, Option<String>) {
        let status = match issuer {
            Some(issuer) => self.status(which, cert, issuer, now),
            None => {
                let why = "its issuer is not a configured trust root, so no CRL or OCSP answer can speak for it".to_string();
                CertStatus::new(which, cert, Status::Unknown(why.clone()), None, why)
            }
        };
        let refusal = match status.status() {
            Status::Good => None,
            Status::Unknown(_) if self.settings.on_unknown == OnUnknown::Allow => None,
            Status::Revoked { .. } => Some(format!(
                "{}; a revoked certificate cannot seal, so nothing was signed",
                status.sentence()
            )),
            Status::Unknown(_) => Some(format!(
                "{}; [revocation] on_unknown = \"refuse\", so nothing was signed",
                status.sentence()
            )),
        };
        (status, refusal)
    }
}

/// Whether the CRL `der` has a nextUpdate still to come.
fn crl_current(der: &[u8], now: OffsetDateTime) -> bool {
    use x509_parser::prelude::FromDer;
    x509_parser::revocation_list::CertificateRevocationList::from_der(der)
        .ok()
        .and_then(|(_, c)| c.next_update())
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.timestamp()).ok())
        .is_some_and(|next| next >= now)
}

fn fetch_error(e: FetchError) -> String {
    match e {
        FetchError::Unreachable(why) => format!("could not be reached ({why})"),
        FetchError::Http(what) => format!("answered {what}"),
    }
}

/// How a verifier judges a certificate's status for a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// The status does not stand against the signature (the sentence says why).
    Stands(String),
    /// The certificate was revoked before the signature was provably made.
    Fails(String),
    /// The status could not be known.
    Unknown(String),
}

/// Judges `status` for a signature whose trusted time (the genTime of a trusted RFC 3161
/// timestamp) is `trusted_time`: a revocation after that time leaves the signature standing;
/// without a trusted time, a self-declared signing time proves nothing, so any revocation
/// fails the signature.
pub fn judge_signature(status: &CertStatus, trusted_time: Option<OffsetDateTime>) -> Judgement {
    let sentence = status.sentence();
    match (status.status(), trusted_time) {
        (Status::Good, _) => Judgement::Stands(sentence),
        (Status::Unknown(_), _) => Judgement::Unknown(sentence),
        (Status::Revoked { at, .. }, Some(t)) if t < *at => Judgement::Stands(format!(
            "{sentence}, after the trusted timestamp {}: the signature was made before the revocation and stands",
            rfc3339(&t)
        )),
        (Status::Revoked { .. }, Some(t)) => Judgement::Fails(format!(
            "{sentence}, before the trusted timestamp {}",
            rfc3339(&t)
        )),
        (Status::Revoked { .. }, None) => Judgement::Fails(format!(
            "{sentence}; the signature has no trusted timestamp proving it was made before"
        )),
    }
}
