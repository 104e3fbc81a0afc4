//! Verification of seals and signatures in the GB/T 38540 / GM/T 0031 order, as a report.
//!
//! Every check is listed with its outcome; nothing is summed up into a bare bool until the end.
//! Signatures are verified over the bytes found in the file. Validity of the seal and of the
//! certificates is judged at the signature's `timeInfo`, never at "now".

use std::path::Path;

use time::OffsetDateTime;

use super::types::{CertList, FormatVersion, Seal, SesSignature};
use crate::cert::{signature_algorithm, CertFacts, Certificate, TrustStore};
use crate::crypto::{
    data_digest, data_digest_reader, sha256, sm3, KeyAlgorithm, RawSignature, VerifyingKey,
};
use crate::revocation::{verify_status, CertStatus, Checker, Judgement};

/// Outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    /// The check was made and passed.
    Passed,
    /// The check was made and failed.
    Failed,
    /// The check could not or need not be made (the detail says why).
    NotApplicable,
}

/// One verification step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `maker-signature`.
    pub id: &'static str,
    /// What was checked, in words.
    pub title: &'static str,
    /// Outcome.
    pub status: CheckStatus,
    /// Whether a failure makes the object invalid.
    pub required: bool,
    /// Why it passed, failed or was not applicable.
    pub detail: String,
}

/// What the checked seal says about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SealSummary {
    /// Layout.
    pub format: FormatVersion,
    /// Header version field.
    pub header_version: i64,
    /// Vendor (Vid).
    pub vid: String,
    /// esID.
    pub es_id: String,
    /// Seal name.
    pub name: String,
    /// Seal type.
    pub seal_type: i64,
    /// Picture type and size (mm).
    pub picture: String,
    /// validStart.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_start: OffsetDateTime,
    /// validEnd.
    #[serde(with = "time::serde::rfc3339")]
    pub valid_end: OffsetDateTime,
    /// The seal maker's certificate, if readable.
    pub maker: Option<CertFacts>,
}

/// The result of verifying one seal or signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// "seal" or "signature".
    pub object: &'static str,
    /// True when no required check failed.
    pub valid: bool,
    /// The seal.
    pub seal: SealSummary,
    /// The signer's certificate (signatures only).
    pub signer: Option<CertFacts>,
    /// timeInfo (signatures only).
    #[serde(with = "time::serde::rfc3339::option")]
    pub time_info: Option<OffsetDateTime>,
    /// What the signature's timestamp token says, if it has one that could be read.
    pub timestamp: Option<crate::tsa::TokenFacts>,
    /// When the signer's certificate and the seal were judged (signatures only): the genTime
    /// of a trusted timestamp, else timeInfo.
    #[serde(with = "time::serde::rfc3339::option")]
    pub judged_at: Option<OffsetDateTime>,
    /// Which time that is: `timestamp` or `timeInfo` (signatures only).
    pub judged_by: Option<&'static str>,
    /// What the CAs say of the signer's and the maker's certificates (when checked).
    pub revocation: Vec<CertStatus>,
    /// propertyInfo (signatures only).
    pub property_info: Option<String>,
    /// dataHash, hex (signatures only).
    pub data_hash: Option<String>,
    /// The checks, in the order made.
    pub checks: Vec<Check>,
}

/// The document a signature is checked against.
#[derive(Debug, Clone, Copy, Default)]
pub enum Document<'a> {
    /// None given: the data hash check is not applicable.
    #[default]
    None,
    /// The digest the signature should carry.
    Digest(&'a [u8]),
    /// The protected bytes.
    Bytes(&'a [u8]),
    /// A file holding the protected bytes (hashed as a stream).
    File(&'a Path),
}

/// How to verify.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions<'a> {
    /// The document, for the `dataHash` check.
    pub document: Document<'a>,
    /// Trust roots for the chain checks; `None` leaves them not applicable.
    pub trust: Option<&'a TrustStore>,
    /// For a bare seal: when to judge its validity (signatures use their timeInfo, or the
    /// genTime of a trusted timestamp).
    pub at: Option<OffsetDateTime>,
    /// Trusted TSA certificates (roots, or TSA certificates themselves) for the chain of a
    /// signature's timestamp; `None` leaves that check not applicable, and then the token's
    /// time is not trusted (validity is judged at timeInfo).
    pub tsa_trust: Option<&'a TrustStore>,
    /// Where certificate status is found (OCSP, CRLs); `None` leaves the revocation checks
    /// not applicable. Asked only for certificates whose issuer is one of `trust`'s roots.
    pub revocation: Option<&'a Checker>,
}

struct Checks(Vec<Check>);

impl Checks {
    fn push(&mut self, id: &'static str, title: &'static str, result: Result<String, String>) {
        let (status, detail) = match result {
            Ok(d) => (CheckStatus::Passed, d),
            Err(d) => (CheckStatus::Failed, d),
        };
        self.0.push(Check {
            id,
            title,
            status,
            required: true,
            detail,
        });
    }

    fn na(&mut self, id: &'static str, title: &'static str, detail: impl Into<String>) {
        self.0.push(Check {
            id,
            title,
            status: CheckStatus::NotApplicable,
            required: true,
            detail: detail.into(),
        });
    }
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Reads a signature value written as DER `SEQUENCE{r, s}` or as raw `r‖s`; says which.
pub fn read_signature_value(bits: &[u8]) -> Result<(RawSignature, &'static str), String> {
    if let Ok(sig) = RawSignature::from_der(bits) {
        return Ok((sig, "DER"));
    }
    if bits.len() == 64 {
        let mut raw = [0u8; 64];
        raw.copy_from_slice(bits);
        return Ok((RawSignature(raw), "raw r||s"));
    }
    Err(format!(
        "the {}-byte signature value is neither DER SEQUENCE{{r, s}} nor raw 64-byte r||s",
        bits.len()
    ))
}

/// Verifies `signature` (BIT STRING contents) over `message` with `cert`'s key under `alg_oid`.
fn check_signature(
    cert: Result<&Certificate, &String>,
    alg_oid: &str,
    message: &[u8],
    signature: &[u8],
) -> Result<String, String> {
    let cert = cert.map_err(|e| format!("the certificate cannot be read: {e}"))?;
    let alg = signature_algorithm(alg_oid)
        .ok_or_else(|| format!("unsupported signature algorithm {alg_oid}"))?;
    let key = cert.public_key().map_err(|e| e.to_string())?;
    if key.algorithm != alg {
        return Err(format!(
            "algorithm {alg_oid} does not match the certificate's {:?} key",
            key.algorithm
        ));
    }
    let (sig, encoding) = read_signature_value(signature)?;
    let vk = VerifyingKey::cached(key).map_err(|e| e.to_string())?;
    vk.verify(message, &sig)
        .map(|()| {
            format!(
                "{encoding} signature verifies with {}",
                cert.facts().display_name()
            )
        })
        .map_err(|e| format!("{encoding} signature: {e}"))
}

fn cert_validity(
    cert: Result<&Certificate, &String>,
    at: OffsetDateTime,
    what: &str,
) -> Result<String, String> {
    let cert = cert.map_err(|e| format!("the certificate cannot be read: {e}"))?;
    cert.check_validity_at(at)
        .map(|()| {
            format!(
                "{what} certificate valid {} .. {}, judged at {}",
                fmt_time(cert.facts().not_before),
                fmt_time(cert.facts().not_after),
                fmt_time(at)
            )
        })
        .map_err(|e| e.to_string())
}

fn summary(seal: &Seal, maker: Option<&Certificate>) -> SealSummary {
    let i = &seal.info;
    SealSummary {
        format: seal.version,
        header_version: i.header.version,
        vid: i.header.vid.clone(),
        es_id: i.es_id.clone(),
        name: i.property.name.clone(),
        seal_type: i.property.seal_type,
        picture: format!(
            "{} {}x{} mm",
            i.picture.kind, i.picture.width, i.picture.height
        ),
        valid_start: i.property.valid_start,
        valid_end: i.property.valid_end,
        maker: maker.map(|c| c.facts().clone()),
    }
}

/// The seal's own checks; `at` is when its validity is judged.
fn seal_checks(
    seal: &Seal,
    at: Option<(OffsetDateTime, &str)>,
    trust: Option<&TrustStore>,
    checks: &mut Checks,
) -> Option<Certificate> {
    let header = &seal.info.header;
    checks.push(
        "seal-header",
        "seal header identifies an electronic seal",
        if header.id == "ES" {
            Ok(format!(
                "ID \"ES\", version {}, vendor {}",
                header.version, header.vid
            ))
        } else {
            Err(format!("header ID is {:?}, not \"ES\"", header.id))
        },
    );
    let maker = Certificate::from_der(&seal.maker_cert).map_err(|e| e.to_string());
    let rule = match seal.version {
        FormatVersion::V4 => "over DER(SES_SealInfo)",
        FormatVersion::V1 => {
            "over DER(SEQUENCE{SES_SealInfo, cert, signatureAlgorithm}) (GM/T 0031)"
        }
    };
    checks.push(
        "maker-signature",
        "seal maker's signature",
        check_signature(
            maker.as_ref(),
            &seal.signature_algorithm,
            &seal.signed_bytes,
            &seal.signature,
        )
        .map(|d| format!("{d}, {rule}"))
        .map_err(|d| format!("{d}, {rule}")),
    );
    let p = &seal.info.property;
    checks.push(
        "maker-certificate-validity",
        "seal maker's certificate valid when the seal was made",
        cert_validity(maker.as_ref(), p.create_date, "maker"),
    );
    match at {
        Some((at, source)) => checks.push(
            "seal-validity",
            "seal within its validity period",
            if at < p.valid_start || at > p.valid_end {
                Err(format!(
                    "{source} {} is outside the seal's validity {} .. {}",
                    fmt_time(at),
                    fmt_time(p.valid_start),
                    fmt_time(p.valid_end)
                ))
            } else {
                Ok(format!(
                    "{source} {} is within {} .. {}",
                    fmt_time(at),
                    fmt_time(p.valid_start),
                    fmt_time(p.valid_end)
                ))
            },
        ),
        None => checks.na(
            "seal-validity",
            "seal within its validity period",
            format!(
                "no signing time to judge at (validity {} .. {})",
                fmt_time(p.valid_start),
                fmt_time(p.valid_end)
            ),
        ),
    }
    match (trust, maker.as_ref()) {
        (None, _) => checks.na(
            "maker-chain",
            "seal maker's certificate chains to a trust root",
            "no trust roots configured",
        ),
        (Some(_), Err(e)) => checks.push(
            "maker-chain",
            "seal maker's certificate chains to a trust root",
            Err(e.clone()),
        ),
        (Some(store), Ok(cert)) => checks.push(
            "maker-chain",
            "seal maker's certificate chains to a trust root",
            store
                .verify_signing_chain(cert, &[], p.create_date)
                .map(|chain| chain_text(&chain))
                .map_err(|e| e.to_string()),
        ),
    }
    maker.ok()
}

fn chain_text(chain: &[CertFacts]) -> String {
    let names: Vec<String> = chain.iter().map(CertFacts::display_name).collect();
    format!("chain: {}", names.join(" <- "))
}

/// When a signature is judged, and what its timestamp says.
#[derive(Default)]
struct Timing {
    timestamp: Option<crate::tsa::TokenFacts>,
    judged_at: Option<OffsetDateTime>,
    judged_by: Option<&'static str>,
    revocation: Vec<CertStatus>,
}

fn finish(
    object: &'static str,
    seal: SealSummary,
    signer: Option<CertFacts>,
    sig: Option<&SesSignature>,
    checks: Checks,
    timing: Timing,
) -> Report {
    let valid = !checks
        .0
        .iter()
        .any(|c| c.required && c.status == CheckStatus::Failed);
    Report {
        object,
        valid,
        seal,
        signer,
        time_info: sig.and_then(|s| s.tbs.time_info),
        timestamp: timing.timestamp,
        judged_at: timing.judged_at,
        judged_by: timing.judged_by,
        revocation: timing.revocation,
        property_info: sig.map(|s| s.tbs.property_info.clone()),
        data_hash: sig.map(|s| hex::encode(&s.tbs.data_hash)),
        checks: checks.0,
    }
}

/// Verifies a bare seal: the maker's signature, the maker's certificate at the seal's creation,
/// the seal's validity at `options.at` (if given) and the maker's chain (if roots are given).
pub fn verify_seal(seal: &Seal, options: &VerifyOptions<'_>) -> Report {
    let mut checks = Checks(Vec::new());
    let at = options.at.map(|t| (t, "the given time"));
    let maker = seal_checks(seal, at, options.trust, &mut checks);
    let revocation = revocation_check(
        &mut checks,
        ("maker-revocation", MAKER_REVOKED),
        ("maker", maker.as_ref()),
        options,
        None,
    );
    finish(
        "seal",
        summary(seal, maker.as_ref()),
        None,
        None,
        checks,
        Timing {
            revocation: revocation.into_iter().collect(),
            ..Timing::default()
        },
    )
}

fn digest_for(alg: KeyAlgorithm, doc: Document<'_>) -> Result<Option<Vec<u8>>, String> {
    Ok(match doc {
        Document::None => None,
        Document::Digest(d) => Some(d.to_vec()),
        Document::Bytes(b) => Some(data_digest(alg, b).to_vec()),
        Document::File(path) => {
            let file = std::fs::File::open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Some(
                data_digest_reader(alg, file)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                    .to_vec(),
            )
        }
    })
}

fn in_cert_list(list: &CertList, signer_der: &[u8]) -> Result<String, String> {
    match list {
        CertList::Certs(certs) => {
            if certs.iter().any(|c| c == signer_der) {
                Ok(format!(
                    "the signer's certificate is one of the seal's {} certificates",
                    certs.len()
                ))
            } else {
                Err(format!(
                    "the signer's certificate is not among the seal's {} certificates",
                    certs.len()
                ))
            }
        }
        CertList::Digests(digests) => {
            let mut unknown = Vec::new();
            for d in digests {
                let ours: Option<[u8; 32]> = match d.algorithm.to_ascii_lowercase().as_str() {
                    "sm3" | "1.2.156.10197.1.401" => Some(sm3(signer_der)),
                    "sha256" | "sha-256" | "2.16.840.1.101.3.4.2.1" => Some(sha256(signer_der)),
                    _ => None,
                };
                match ours {
                    Some(h) if h[..] == d.value[..] => {
                        return Ok(format!(
                            "the {} digest of the signer's certificate is in the seal's list",
                            d.algorithm
                        ))
                    }
                    Some(_) => {}
                    None => unknown.push(d.algorithm.clone()),
                }
            }
            let note = if unknown.is_empty() {
                String::new()
            } else {
                format!(" (digest types not understood: {})", unknown.join(", "))
            };
            Err(format!(
                "no digest in the seal's list of {} matches the signer's certificate{note}",
                digests.len()
            ))
        }
    }
}

const TS_IMPRINT: &str = "timestamp token covers this signature's value";
const TS_SIGNATURE: &str = "TSA's signature on the timestamp token";
const TS_CHAIN: &str = "TSA's certificate chains to a TSA trust root and allows time-stamping";

/// Checks the signature's timestamp token, if any (imprint over the signature value, the
/// TSA's signature, its chain and timeStamping usage); returns the token's facts and, when
/// every check passed against TSA trust roots, its trusted genTime and the TSA's name.
fn timestamp_checks(
    sig: &SesSignature,
    tsa_trust: Option<&TrustStore>,
    checks: &mut Checks,
) -> (
    Option<crate::tsa::TokenFacts>,
    Result<(OffsetDateTime, String), String>,
) {
    use crate::tsa::TimeStampToken;
    // No TSA roots at all is the same as none given: nothing to chain to.
    let tsa_trust = tsa_trust.filter(|t| !t.is_empty());
    let token = match sig.time_stamp_token() {
        None => return (None, Err("the signature has no timestamp".into())),
        Some(Err(e)) => {
            checks.push("timestamp", "timestamp token readable", Err(e.clone()));
            return (None, Err(e));
        }
        Some(Ok(bytes)) => match TimeStampToken::parse(&bytes) {
            Ok(t) => t,
            Err(e) => {
                checks.push("timestamp", "timestamp token readable", Err(e.clone()));
                return (None, Err(e));
            }
        },
    };
    let extra = tsa_trust.map(TrustStore::roots).unwrap_or_default();
    let mut facts = token.facts(extra);
    let imprint = token.check_imprint(&sig.signature);
    let imprint_ok = imprint.is_ok();
    checks.push("timestamp-imprint", TS_IMPRINT, imprint);
    // A token seald cannot check (e.g. an RSA TSA) is not a failure of the signature: the
    // token's time is then simply not trusted.
    if let Some(why) = token.uncheckable(extra) {
        checks.na("timestamp-signature", TS_SIGNATURE, why.clone());
        checks.na("timestamp-chain", TS_CHAIN, why.clone());
        return (Some(facts), Err(why));
    }
    let (cert, signed) = match token.check_signature(extra) {
        Ok((cert, detail)) => (Some(cert), Ok(detail)),
        Err(e) => (None, Err(e)),
    };
    checks.push("timestamp-signature", TS_SIGNATURE, signed);
    let name = cert
        .as_ref()
        .map(|c| c.facts().display_name())
        .unwrap_or_else(|| "an unidentified TSA".into());
    let chain = match (tsa_trust, cert.as_ref()) {
        (None, _) => {
            checks.na(
                "timestamp-chain",
                TS_CHAIN,
                "no TSA trust roots given: the timestamp's time is not trusted",
            );
            Err("no TSA trust roots were given".to_string())
        }
        (Some(_), None) => {
            let e = "the TSA's signature did not verify".to_string();
            checks.push("timestamp-chain", TS_CHAIN, Err(e.clone()));
            Err(e)
        }
        (Some(store), Some(cert)) => {
            let r = token.check_tsa_chain(cert, store);
            checks.push("timestamp-chain", TS_CHAIN, r.clone());
            r
        }
    };
    if let Some(cert) = &cert {
        facts.tsa = Some(cert.facts().clone());
    }
    let trusted = match chain {
        Ok(_) if imprint_ok => Ok((token.gen_time(), name)),
        Ok(_) => Err("the token was made for other data".into()),
        Err(e) => Err(e),
    };
    (Some(facts), trusted)
}

/// Verifies a SES_Signature in the GB/T 38540 order: the seal, the signer's signature over
/// TBS_Sign, the signer's certificate in the seal's list, a timestamp token (when present),
/// validity at the signing time (a trusted timestamp's genTime, else timeInfo), the data hash
/// (when a document is given) and the chains (when roots are given).
pub fn verify_signature(sig: &SesSignature, options: &VerifyOptions<'_>) -> Report {
    let mut checks = Checks(Vec::new());
    let mut ts_checks = Checks(Vec::new());
    let (timestamp, trusted) = timestamp_checks(sig, options.tsa_trust, &mut ts_checks);
    let (judged_at, judged_by, source) = match &trusted {
        Ok((t, _)) => (Some(*t), "timestamp", "the timestamp's genTime"),
        Err(_) => (sig.tbs.time_info, "timeInfo", "timeInfo"),
    };
    let seal = &sig.tbs.seal;
    let at = judged_at.map(|t| (t, source));
    let maker = seal_checks(seal, at, options.trust, &mut checks);
    let signer = Certificate::from_der(&sig.signer_cert).map_err(|e| e.to_string());
    checks.push(
        "signer-signature",
        "signer's signature over TBS_Sign",
        check_signature(
            signer.as_ref(),
            &sig.signature_algorithm,
            &sig.signed_bytes,
            &sig.signature,
        ),
    );
    checks.push(
        "signer-in-seal",
        "signer's certificate is listed in the seal",
        in_cert_list(&seal.info.property.cert_list, &sig.signer_cert),
    );
    checks.0.extend(ts_checks.0);
    const WHEN: &str = "time at which validity is judged";
    match (&trusted, timestamp.is_some(), sig.tbs.time_info) {
        (Ok((t, tsa)), _, time_info) => {
            // The token proves the signature existed at genTime: a later timeInfo can only be
            // the signing machine's clock running ahead.
            let note = match time_info {
                Some(ti) if ti > *t + time::Duration::minutes(5) => format!(
                    " (timeInfo {} is later than the timestamp: the signing machine's clock was ahead)",
                    fmt_time(ti)
                ),
                _ => String::new(),
            };
            checks.push(
                "signing-time",
                WHEN,
                Ok(format!(
                    "timestamp by {tsa} at {}; certificate validity judged at the timestamp's time{note}",
                    fmt_time(*t)
                )),
            )
        }
        (Err(why), true, Some(t)) => checks.push(
            "signing-time",
            WHEN,
            Ok(format!(
                "the timestamp is not trusted ({why}): validity judged at timeInfo {}, which the signing machine wrote itself",
                fmt_time(t)
            )),
        ),
        (Err(_), false, Some(t)) => checks.push(
            "signing-time",
            WHEN,
            Ok(format!(
                "no timestamp: validity judged at timeInfo {}, which the signing machine wrote itself",
                fmt_time(t)
            )),
        ),
        (Err(_), _, None) => checks.push(
            "signing-time",
            WHEN,
            Err("neither a trusted timestamp nor a readable timeInfo".into()),
        ),
    }
    const VALID_WHEN: &str = "signer's certificate valid when it signed";
    match (judged_at, signer.as_ref()) {
        (Some(t), s) => checks.push(
            "signer-certificate-validity",
            VALID_WHEN,
            cert_validity(s, t, "signer").map(|d| format!("{d} ({source})")),
        ),
        (None, _) => checks.push(
            "signer-certificate-validity",
            VALID_WHEN,
            Err("timeInfo cannot be read and there is no trusted timestamp, so validity cannot be judged".into()),
        ),
    }
    checks.push(
        "signer-key-usage",
        "signer's certificate allows digital signatures",
        match signer.as_ref() {
            Ok(c) => c
                .check_signing_usage()
                .map(|()| match c.facts().key_usage {
                    Some(_) => "digitalSignature or nonRepudiation is set".to_string(),
                    None => "no key usage extension: unrestricted".to_string(),
                })
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("the certificate cannot be read: {e}")),
        },
    );
    let alg = signature_algorithm(&sig.signature_algorithm).unwrap_or(KeyAlgorithm::Sm2);
    let hash_name = match alg {
        KeyAlgorithm::Sm2 => "SM3",
        KeyAlgorithm::P256 => "SHA-256",
    };
    match digest_for(alg, options.document) {
        Ok(None) => checks.na(
            "data-hash",
            "dataHash matches the document",
            "no document or digest given",
        ),
        Ok(Some(d)) => checks.push(
            "data-hash",
            "dataHash matches the document",
            if d == sig.tbs.data_hash {
                Ok(format!("{hash_name} {} matches", hex::encode(&d)))
            } else {
                Err(format!(
                    "dataHash {} differs from the document's {hash_name} {}",
                    hex::encode(&sig.tbs.data_hash),
                    hex::encode(&d)
                ))
            },
        ),
        Err(e) => checks.push("data-hash", "dataHash matches the document", Err(e)),
    }
    const CHAIN: &str = "signer's certificate chains to a trust root";
    match (options.trust, signer.as_ref(), judged_at) {
        (None, _, _) => checks.na("signer-chain", CHAIN, "no trust roots configured"),
        (Some(_), Err(e), _) => checks.push("signer-chain", CHAIN, Err(e.clone())),
        (Some(_), Ok(_), None) => {
            checks.push("signer-chain", CHAIN, Err("no readable timeInfo".into()))
        }
        (Some(store), Ok(cert), Some(t)) => checks.push(
            "signer-chain",
            CHAIN,
            store
                .verify_signing_chain(cert, &[], t)
                .map(|c| format!("{}, judged at {source}", chain_text(&c)))
                .map_err(|e| e.to_string()),
        ),
    }
    let trusted_time = trusted.as_ref().ok().map(|(t, _)| *t);
    let revocation = [
        revocation_check(
            &mut checks,
            ("signer-revocation", SIGNER_REVOKED),
            ("signer", signer.as_ref().ok()),
            options,
            trusted_time,
        ),
        revocation_check(
            &mut checks,
            ("maker-revocation", MAKER_REVOKED),
            ("maker", maker.as_ref()),
            options,
            trusted_time,
        ),
    ];
    let signer_facts = signer.ok().map(|c| c.facts().clone());
    finish(
        "signature",
        summary(seal, maker.as_ref()),
        signer_facts,
        Some(sig),
        checks,
        Timing {
            timestamp,
            judged_at,
            judged_by: Some(judged_by),
            revocation: revocation.into_iter().flatten().collect(),
        },
    )
}

const SIGNER_REVOKED: &str = "signer's certificate not revoked before it signed";
const MAKER_REVOKED: &str = "seal maker's certificate not revoked before the signature";

/// The status check of `cert` (see [`verify_status`]).
fn revocation_check(
    checks: &mut Checks,
    (id, title): (&'static str, &'static str),
    (which, cert): (&'static str, Option<&Certificate>),
    options: &VerifyOptions<'_>,
    trusted_time: Option<OffsetDateTime>,
) -> Option<CertStatus> {
    let Some(cert) = cert else {
        checks.na(id, title, "the certificate cannot be read");
        return None;
    };
    let (judgement, status) =
        verify_status(options.revocation, which, cert, options.trust, trusted_time);
    match judgement {
        Judgement::Stands(d) => checks.push(id, title, Ok(d)),
        Judgement::Fails(d) => checks.push(id, title, Err(d)),
        Judgement::NotApplicable(d) => checks.na(id, title, d),
    }
    status
}

impl Report {
    /// A readable multi-line report.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let s = &self.seal;
        let _ = writeln!(
            out,
            "{} ({:?} format): {}",
            self.object,
            s.format,
            if self.valid { "VALID" } else { "INVALID" }
        );
        let _ = writeln!(
            out,
            "  seal     {} (type {}, esID {}, vendor {})",
            s.name, s.seal_type, s.es_id, s.vid
        );
        let _ = writeln!(
            out,
            "  validity {} .. {}; picture {}",
            fmt_time(s.valid_start),
            fmt_time(s.valid_end),
            s.picture
        );
        if let Some(m) = &s.maker {
            let _ = writeln!(
                out,
                "  maker    {} (O={}, serial {})",
                m.display_name(),
                m.subject_o.as_deref().unwrap_or("-"),
                m.serial_hex
            );
        }
        if let Some(sg) = &self.signer {
            let _ = writeln!(
                out,
                "  signer   {} (O={}, serial {})",
                sg.display_name(),
                sg.subject_o.as_deref().unwrap_or("-"),
                sg.serial_hex
            );
        }
        if let Some(t) = self.time_info {
            let _ = writeln!(out, "  signed   {} (timeInfo)", fmt_time(t));
        }
        if let Some(ts) = &self.timestamp {
            let _ = writeln!(
                out,
                "  stamped  {} by {} (serial {}, {} imprint)",
                fmt_time(ts.gen_time),
                ts.tsa
                    .as_ref()
                    .map(CertFacts::display_name)
                    .unwrap_or_else(|| "an unidentified TSA".into()),
                ts.serial_hex,
                ts.hash
            );
        }
        if let (Some(t), Some(by)) = (self.judged_at, self.judged_by) {
            let _ = writeln!(out, "  judged   at {} ({by})", fmt_time(t));
        }
        for r in &self.revocation {
            let when = r
                .revoked_at()
                .map(|t| format!(" on {}", fmt_time(t)))
                .unwrap_or_default();
            let why = r.reason().map(|r| format!(" ({r})")).unwrap_or_default();
            let from = r.source.as_deref().unwrap_or("no source answered");
            let _ = writeln!(
                out,
                "  status   {} certificate {}{when}{why}, per {from}",
                r.certificate,
                r.kind()
            );
        }
        if let Some(p) = &self.property_info {
            let _ = writeln!(out, "  covers   {p}");
        }
        for c in &self.checks {
            let mark = match c.status {
                CheckStatus::Passed => "ok  ",
                CheckStatus::Failed => "FAIL",
                CheckStatus::NotApplicable => "n/a ",
            };
            let _ = writeln!(out, "  [{mark}] {}: {}", c.title, c.detail);
        }
        out
    }

    /// The check with this id, if made.
    pub fn check(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }
}

/// Parses `bytes` as whichever of SESeal or SES_Signature they hold and verifies it.
pub fn verify_der(bytes: &[u8], options: &VerifyOptions<'_>) -> Result<Report, super::ParseError> {
    use super::parse::{detect, ObjectKind, ParseError};
    match detect(bytes) {
        ObjectKind::Seal => Ok(verify_seal(&Seal::parse(bytes)?, options)),
        ObjectKind::Cms(oid) => Err(ParseError::NotSes(format!(
            "a CMS ContentInfo ({oid}), e.g. a GB/T 35275 signature"
        ))),
        ObjectKind::Signature | ObjectKind::Unknown => {
            Ok(verify_signature(&SesSignature::parse(bytes)?, options))
        }
    }
}
