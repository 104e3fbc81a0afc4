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
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::cert::{rfc3339, Certificate};
use crate::fetch::{Exchange, FetchError};

pub use crl::CrlVerdict;
pub use ocsp::{OcspAnswer, OcspRequest};

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

/// A certificate's status as reports and usage records show it: serialised with `status`
/// (`good`, `revoked`, `unknown`), `revoked_at` and `reason` read from the [`Status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertStatus {
    /// Which certificate: `signer`, `maker`, `seal`.
    pub certificate: &'static str,
    /// Its subject (CN, else DN).
    pub subject: String,
    /// Its serial, hex.
    pub serial: String,
    /// Where the answer came from (`OCSP <url>`, `CRL <file or url>`), if one came.
    pub source: Option<String>,
    /// A sentence: the answer's particulars, or what was tried and why it failed.
    pub detail: String,
    status: Status,
}

impl Serialize for CertStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("CertStatus", 8)?;
        st.serialize_field("certificate", self.certificate)?;
        st.serialize_field("subject", &self.subject)?;
        st.serialize_field("serial", &self.serial)?;
        st.serialize_field("status", self.kind())?;
        st.serialize_field("revoked_at", &self.revoked_at().map(|t| rfc3339(&t)))?;
        st.serialize_field("reason", &self.reason())?;
        st.serialize_field("source", &self.source)?;
        st.serialize_field("detail", &self.detail)?;
        st.end()
    }
}

impl CertStatus {
    /// The status.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// `good`, `revoked` or `unknown`.
    pub fn kind(&self) -> &'static str {
        match self.status {
            Status::Good => "good",
            Status::Revoked { .. } => "revoked",
            Status::Unknown(_) => "unknown",
        }
    }

    /// When it was revoked.
    pub fn revoked_at(&self) -> Option<OffsetDateTime> {
        match self.status {
            Status::Revoked { at, .. } => Some(at),
            _ => None,
        }
    }

    /// Why it was revoked (CRLReason), when the CA said.
    pub fn reason(&self) -> Option<&'static str> {
        match self.status {
            Status::Revoked { reason, .. } => reason,
            _ => None,
        }
    }

    fn new(
        certificate: &'static str,
        cert: &Certificate,
        status: Status,
        source: Option<String>,
        detail: String,
    ) -> Self {
        Self {
            certificate,
            subject: cert.facts().display_name(),
            serial: cert.facts().serial_hex.clone(),
            source,
            detail,
            status,
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
        match &self.status {
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

/// What stamping and verification do when no source can give a certificate's status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnUnknown {
    /// Refuse to sign, and count the status check as failed at verification (the default: a
    /// seal whose status cannot be known is not relied on).
    #[default]
    Refuse,
    /// Sign, and say so in the usage log; at verification the check is not applicable.
    Allow,
}

/// How certificate status is found (`[revocation]` in the config, or `sealctl verify`'s
/// options).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// CRL files (PEM or DER), read at each check.
    pub crl_files: Vec<PathBuf>,
    /// An OCSP responder asked for every certificate before those a certificate names.
    pub ocsp_url: Option<String>,
    /// Follow the OCSP and CRL URLs written in certificates.
    pub fetch: bool,
    /// How long one OCSP or CRL exchange may take.
    pub timeout: Duration,
    /// What stamping and verification do when the status is unknown.
    pub on_unknown: OnUnknown,
}

/// How long a fetched CRL is reused at most (bounded by its nextUpdate).
const CRL_REUSE: time::Duration = time::Duration::hours(1);

/// A fetched CRL that verified with its issuer's key, kept until `until`.
#[derive(Debug, Clone)]
struct CachedCrl {
    der: Arc<Vec<u8>>,
    until: OffsetDateTime,
}

/// Finds certificate status from OCSP and CRLs (see the module documentation).
#[derive(Debug)]
pub struct Checker {
    settings: Settings,
    /// Fetched CRLs by URL and issuer key.
    crls: Mutex<HashMap<(String, String), CachedCrl>>,
}

/// Where a CRL comes from.
enum CrlSource<'a> {
    File(&'a std::path::Path),
    Url(String),
}

impl CrlSource<'_> {
    fn name(&self) -> String {
        match self {
            CrlSource::File(p) => format!("CRL {}", p.display()),
            CrlSource::Url(u) => format!("CRL {u}"),
        }
    }
}

/// The certificate's serial as an unsigned big-endian number (no leading zeros).
pub(crate) fn serial_of(cert: &Certificate) -> Result<Vec<u8>, String> {
    let raw = hex::decode(&cert.facts().serial_hex)
        .map_err(|_| "the certificate's serial cannot be read".to_string())?;
    Ok(crate::cms::strip_zeros(&raw).to_vec())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Checker {
    /// A checker with `settings` and nothing fetched yet.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            crls: Mutex::new(HashMap::new()),
        }
    }

    /// The status of `cert` (called `which` in the answer), issued by `issuer`, at `now`.
    /// A "good" for a certificate already expired proves nothing (CAs drop expired
    /// certificates from CRLs and OCSP): it is reported unknown.
    pub fn status(
        &self,
        which: &'static str,
        cert: &Certificate,
        issuer: &Certificate,
        now: OffsetDateTime,
    ) -> CertStatus {
        let (status, source, detail) = self.find(cert, issuer, now);
        if status == Status::Good && cert.facts().not_after < now {
            let why = format!(
                "{} says it is not revoked, but it expired on {} and CAs stop listing expired certificates, so that proves nothing",
                source.as_deref().unwrap_or("its CA"),
                rfc3339(&cert.facts().not_after)
            );
            return CertStatus::new(which, cert, Status::Unknown(why.clone()), source, why);
        }
        CertStatus::new(which, cert, status, source, detail)
    }

    /// Asks the sources in order: OCSP (the first definite answer counts), then every CRL (a
    /// revocation in any counts; else a current CRL that does not list it says good).
    fn find(
        &self,
        cert: &Certificate,
        issuer: &Certificate,
        now: OffsetDateTime,
    ) -> (Status, Option<String>, String) {
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
                Ok((status, detail)) => return (status, Some(format!("OCSP {url}")), detail),
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
        let mut good = None;
        let mut other_issuers = 0;
        for source in sources {
            let name = source.name();
            match self.judge_crl(&source, cert, issuer, now) {
                Err(why) => tried.push(format!("{name}: {why}")),
                Ok(CrlVerdict::OtherIssuer) => other_issuers += 1,
                Ok(CrlVerdict::Unusable(why)) => tried.push(format!("{name}: {why}")),
                Ok(CrlVerdict::Says(Status::Good, detail, _)) => {
                    good.get_or_insert((Some(name), detail));
                }
                Ok(CrlVerdict::Says(status, detail, _)) => return (status, Some(name), detail),
            }
        }
        if let Some((source, detail)) = good {
            return (Status::Good, source, detail);
        }
        if other_issuers > 0 {
            tried.push(format!("{other_issuers} CRL(s) read are another issuer's"));
        }
        let why = if tried.is_empty() {
            "no OCSP responder or CRL is configured for it, and it names none seald may follow"
                .to_string()
        } else {
            tried.join("; ")
        };
        (Status::Unknown(why.clone()), None, why)
    }

    fn ask_ocsp(
        &self,
        url: &str,
        cert: &Certificate,
        issuer: &Certificate,
        now: OffsetDateTime,
    ) -> Result<(Status, String), String> {
        let request = OcspRequest::new(cert, issuer)?;
        let body = Exchange {
            url,
            post: Some(("application/ocsp-request", &request.encode())),
            accept: &["application/ocsp-response"],
            timeout: self.settings.timeout,
            limit: MAX_OCSP_ANSWER,
        }
        .run()
        .map_err(fetch_error)?;
        let answer = request.check_answer(&body, issuer, now)?;
        Ok((answer.status, answer.detail))
    }

    /// Reads the CRL of `source` (a file: at each check; a URL: fetched, and kept while it is
    /// current, once it verified with `issuer`'s key) and judges `cert` against it.
    fn judge_crl(
        &self,
        source: &CrlSource<'_>,
        cert: &Certificate,
        issuer: &Certificate,
        now: OffsetDateTime,
    ) -> Result<CrlVerdict, String> {
        let url = match source {
            CrlSource::File(path) => {
                let size = std::fs::metadata(path)
                    .map_err(|e| format!("cannot read it: {e}"))?
                    .len();
                if size > MAX_CRL {
                    return Err(format!("it is larger than {MAX_CRL} bytes"));
                }
                let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
                return Ok(crl::judge(&crl::to_der(&bytes)?, cert, issuer, now));
            }
            CrlSource::Url(url) => url,
        };
        let key = (url.clone(), issuer.facts().sm3_fingerprint.clone());
        let cached = lock(&self.crls)
            .get(&key)
            .filter(|c| c.until > now)
            .cloned();
        let der = match cached {
            Some(c) => c.der,
            None => {
                let body = Exchange {
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
                .map_err(fetch_error)?;
                Arc::new(crl::to_der(&body)?)
            }
        };
        let verdict = crl::judge(&der, cert, issuer, now);
        match &verdict {
            CrlVerdict::Says(_, _, next_update) => {
                let until = (*next_update).min(now + CRL_REUSE);
                lock(&self.crls).insert(key, CachedCrl { der, until });
            }
            _ => {
                lock(&self.crls).remove(&key);
            }
        }
        Ok(verdict)
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
    /// The certificate was revoked before the signature was provably made, or its status is
    /// unknown under `on_unknown = "refuse"`.
    Fails(String),
    /// Not checked, or unknown under `on_unknown = "allow"`.
    NotApplicable(String),
}

/// Judges `status` for a signature whose trusted time (the genTime of a trusted RFC 3161
/// timestamp) is `trusted_time`: a revocation after that time leaves the signature standing;
/// without a trusted time, a self-declared signing time proves nothing, so any revocation
/// fails the signature. An unknown status follows `on_unknown`.
pub fn judge_signature(
    status: &CertStatus,
    trusted_time: Option<OffsetDateTime>,
    on_unknown: OnUnknown,
) -> Judgement {
    let sentence = status.sentence();
    match (status.status(), trusted_time) {
        (Status::Good, _) => Judgement::Stands(sentence),
        (Status::Unknown(_), _) if on_unknown == OnUnknown::Allow => {
            Judgement::NotApplicable(sentence)
        }
        (Status::Unknown(_), _) => Judgement::Fails(format!(
            "{sentence}; [revocation] on_unknown = \"refuse\" does not rely on a certificate whose status is unknown"
        )),
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

/// The verifiers' status check of `cert` (`which`: signer, maker): not applicable without a
/// checker or when no root in `trust` issued it (seald then asks no source it names); else
/// its status judged against the signature's trusted time.
pub fn verify_status(
    checker: Option<&Checker>,
    which: &'static str,
    cert: &Certificate,
    trust: Option<&crate::cert::TrustStore>,
    trusted_time: Option<OffsetDateTime>,
) -> (Judgement, Option<CertStatus>) {
    let Some(checker) = checker else {
        return (
            Judgement::NotApplicable(
                "certificate status was not checked: no [revocation] sources were given".into(),
            ),
            None,
        );
    };
    let Some(issuer) = trust.and_then(|t| t.issuer_of(cert)) else {
        return (
            Judgement::NotApplicable(
                "certificate status was not checked: its issuer is not a trust root, so seald does not ask the sources it names".into(),
            ),
            None,
        );
    };
    let status = checker.status(which, cert, issuer, OffsetDateTime::now_utc());
    let judgement = judge_signature(&status, trusted_time, checker.settings.on_unknown);
    (judgement, Some(status))
}
