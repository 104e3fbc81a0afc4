//! CRLs (RFC 5280 §5): whether one speaks for a certificate (same issuer name, signed by the
//! issuer's key), whether it is current (nextUpdate not past), and what it says of the
//! certificate's serial.

use time::OffsetDateTime;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::Status;
use crate::cert::Certificate;

/// What one CRL says of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlVerdict {
    /// The CRL is another issuer's: it says nothing of the certificate.
    OtherIssuer,
    /// The CRL speaks for the certificate: its status, a sentence on the CRL, and the CRL's
    /// nextUpdate (until when it holds).
    Says(Status, String, OffsetDateTime),
    /// The CRL is the issuer's but cannot be used (expired, bad signature, …): why.
    Unusable(String),
}

/// The DER of a CRL given as DER or PEM (`X509 CRL`).
pub fn to_der(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.first() == Some(&0x30) {
        return Ok(bytes.to_vec());
    }
    for pem in x509_parser::pem::Pem::iter_from_buffer(bytes) {
        let pem = pem.map_err(|e| format!("PEM: {e}"))?;
        if pem.label == "X509 CRL" {
            return Ok(pem.contents);
        }
    }
    Err("neither a DER CRL nor a PEM `X509 CRL`".into())
}

fn utc(t: x509_parser::time::ASN1Time) -> Result<OffsetDateTime, String> {
    OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|_| "a date out of range".into())
}

/// Judges `cert` (issued by `issuer`) against the CRL `der` at `now`.
pub fn judge(
    der: &[u8],
    cert: &Certificate,
    issuer: &Certificate,
    now: OffsetDateTime,
) -> CrlVerdict {
    match read(der, cert, issuer, now) {
        Ok(v) => v,
        Err(why) => CrlVerdict::Unusable(why),
    }
}

fn read(
    der: &[u8],
    cert: &Certificate,
    issuer: &Certificate,
    now: OffsetDateTime,
) -> Result<CrlVerdict, String> {
    let (rest, crl) =
        CertificateRevocationList::from_der(der).map_err(|e| format!("not a readable CRL: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after the CRL".into());
    }
    if crl.issuer().as_raw() != cert.issuer_raw() {
        return Ok(CrlVerdict::OtherIssuer);
    }
    let tbs: &[u8] = crl.tbs_cert_list.as_ref();
    issuer
        .verify_data(
            &crl.signature_algorithm.algorithm.to_id_string(),
            tbs,
            &crl.signature_value.data,
        )
        .map_err(|e| format!("its signature does not verify with the issuer's key ({e})"))?;
    if issuer.facts().key_usage.is_some_and(|ku| !ku.crl_sign) {
        return Err("its issuer's key usage does not allow signing CRLs".into());
    }
    check_scope(&crl, cert)?;
    let this_update = utc(crl.last_update())?;
    if this_update > now + time::Duration::minutes(5) {
        return Err(format!(
            "its thisUpdate {} is in the future",
            crate::cert::rfc3339(&this_update)
        ));
    }
    let next_update = match crl.next_update().map(utc).transpose()? {
        Some(next) if next < now => {
            return Err(format!(
                "it expired on {} (its nextUpdate): a newer CRL is needed",
                crate::cert::rfc3339(&next)
            ))
        }
        None => return Err("it has no nextUpdate, so its freshness cannot be judged".into()),
        Some(next) => next,
    };
    let serial = super::serial_of(cert)?;
    let about = format!(
        "issued {}, next update {}",
        crate::cert::rfc3339(&this_update),
        crate::cert::rfc3339(&next_update)
    );
    for entry in crl.iter_revoked_certificates() {
        if crate::cms::strip_zeros(entry.raw_serial()) != serial.as_slice() {
            continue;
        }
        if let Some(ext) = entry.extensions().iter().find(|e| e.critical) {
            return Err(format!(
                "its entry for this certificate has a critical extension seald does not read ({})",
                ext.oid.to_id_string()
            ));
        }
        let reason = entry.reason_code().map(|(_, r)| r.0);
        if reason == Some(8) {
            return Err(
                "it lists the certificate as removeFromCRL, which only a delta CRL may".into(),
            );
        }
        // A key compromised before it was revoked (invalidityDate) is judged from then.
        let mut at = utc(entry.revocation_date)?;
        if let Some((_, invalid)) = entry.invalidity_date() {
            at = at.min(utc(invalid)?);
        }
        return Ok(CrlVerdict::Says(
            Status::Revoked {
                at,
                reason: reason.map(super::reason_name),
            },
            about,
            next_update,
        ));
    }
    Ok(CrlVerdict::Says(Status::Good, about, next_update))
}

/// Fails unless the CRL covers every certificate of its issuer, `cert` included: no delta-CRL
/// indicator, no issuing distribution point that narrows it (CA certificates only, some
/// reasons, an indirect CRL, attribute certificates; user certificates only when `cert` is a
/// CA), no other critical extension.
fn check_scope(crl: &CertificateRevocationList<'_>, cert: &Certificate) -> Result<(), String> {
    use x509_parser::extensions::ParsedExtension;
    for ext in crl.extensions() {
        let oid = ext.oid.to_id_string();
        match ext.parsed_extension() {
            ParsedExtension::IssuingDistributionPoint(idp) => {
                let narrowed = if idp.only_contains_ca_certs {
                    Some("CA certificates only")
                } else if idp.only_contains_user_certs && cert.facts().is_ca {
                    Some("user certificates only")
                } else if idp.only_some_reasons.is_some() {
                    Some("some reasons only")
                } else if idp.indirect_crl {
                    Some("an indirect CRL")
                } else if idp.only_contains_attribute_certs {
                    Some("attribute certificates only")
                } else {
                    None
                };
                if let Some(what) = narrowed {
                    return Err(format!("it is a partial CRL ({what})"));
                }
            }
            _ if oid == OID_DELTA_CRL_INDICATOR => {
                return Err("it is a delta CRL; seald reads complete CRLs".into())
            }
            _ if ext.critical && !KNOWN.contains(&oid.as_str()) => {
                return Err(format!(
                    "it has a critical extension seald does not read ({oid})"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// deltaCRLIndicator.
const OID_DELTA_CRL_INDICATOR: &str = "2.5.29.27";
/// CRL extensions that change nothing of what the CRL says: CRL number, authority key id.
const KNOWN: [&str; 2] = ["2.5.29.20", "2.5.29.35"];
