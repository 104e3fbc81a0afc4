//! The registry's rules as pure functions: names against the certificate, validity against the
//! certificate, lifecycle transitions, expiry warnings.

use unicode_normalization::UnicodeNormalization;

use crate::clock::Timestamp;
use crate::store::model::{CertFacts, SealKind, SealState};

use super::SealError;

/// Warn this many days before a seal expires (renew within 30 days before expiry).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Normalises a name for comparison: Unicode NFKC (full-width forms such as （）Ａ１ become
/// half-width, the ideographic space a space, compatibility characters such as ㈱ their plain
/// form), then all whitespace is dropped. Nothing else is folded (not case): a different
/// character is a different name.
pub fn normalise_name(name: &str) -> String {
    name.nfkc().filter(|c| !c.is_whitespace()).collect()
}

/// The key under which the one-legal-name-seal rule compares organisations: the
/// [`normalise_name`] form, the same one an organisation is matched to its certificate's O
/// with, so that no spelling of one organisation (full-width or half-width brackets and
/// letters, extra, leading or trailing spaces) can hold a second legal-name seal.
pub fn organisation_key(organisation: &str) -> String {
    normalise_name(organisation)
}

/// Checks the seal's organisation and name against its certificate.
///
/// - personal-name seal: the name must equal the certificate CN;
/// - legal-name seal: organisation and name must both equal the certificate's O;
/// - other seals: the organisation must equal O and the name must begin with it
///   ("某某有限公司合同专用章").
pub fn check_name(
    kind: SealKind,
    organisation: &str,
    name: &str,
    cert: &CertFacts,
) -> Result<(), SealError> {
    let n = normalise_name(name);
    if n.is_empty() {
        return Err(SealError::EmptyName);
    }
    if kind == SealKind::PersonalName {
        return if n == normalise_name(&cert.common_name) {
            Ok(())
        } else {
            Err(SealError::NameMismatch {
                name: name.to_owned(),
                certificate: cert.common_name.clone(),
                field: "CN",
            })
        };
    }
    let cert_org = cert
        .organisation
        .as_deref()
        .ok_or(SealError::CertificateWithoutOrganisation)?;
    let o = normalise_name(cert_org);
    if normalise_name(organisation) != o {
        return Err(SealError::OrganisationMismatch {
            organisation: organisation.to_owned(),
            certificate: cert_org.to_owned(),
        });
    }
    let matches = match kind {
        SealKind::LegalName => n == o,
        _ => n.starts_with(&o),
    };
    if matches {
        Ok(())
    } else {
        Err(SealError::NameMismatch {
            name: name.to_owned(),
            certificate: cert_org.to_owned(),
            field: "O",
        })
    }
}

/// The seal's validity, inside the certificate's.
///
/// A bound the caller leaves out takes the certificate's (start no earlier than `now`). A bound
/// the caller gives outside the certificate is **refused**, not clipped: the custodian asked for
/// a date the law does not allow, and silently issuing a seal that ends earlier than they think
/// would surprise them at the worst moment.
pub fn validity(
    requested_from: Option<Timestamp>,
    requested_to: Option<Timestamp>,
    cert: &CertFacts,
    now: Timestamp,
) -> Result<(Timestamp, Timestamp), SealError> {
    if cert.not_after <= now {
        return Err(SealError::CertificateExpired {
            not_after: cert.not_after,
        });
    }
    let from = match requested_from {
        Some(f) if f < cert.not_before => {
            return Err(SealError::ValidityBeforeCertificate {
                requested: f,
                not_before: cert.not_before,
            })
        }
        Some(f) => f,
        None => now.max(cert.not_before),
    };
    let to = match requested_to {
        Some(t) if t > cert.not_after => {
            return Err(SealError::ValidityPastCertificate {
                requested: t,
                not_after: cert.not_after,
            })
        }
        Some(t) => t,
        None => cert.not_after,
    };
    if to <= from {
        return Err(SealError::EmptyValidity { from, to });
    }
    Ok((from, to))
}

/// Whether a seal may go from `from` to `to`. Revoked and lost are final; expired may only be
/// revoked or reported lost (renewal makes a new seal).
pub fn transition_allowed(from: SealState, to: SealState) -> bool {
    use SealState::*;
    matches!(
        (from, to),
        (Active, Suspended | Revoked | Lost | Expired)
            | (Suspended, Active | Revoked | Lost | Expired)
            | (Expired, Revoked | Lost)
    )
}

/// How close a seal is to the end of its validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum Expiry {
    /// More than [`EXPIRY_WARNING_DAYS`] left.
    Valid,
    /// Within the warning period: renew.
    ExpiresSoon {
        /// Whole days left (0 on the last day).
        days_left: i64,
    },
    /// Past its end.
    Expired,
    /// Its validity has not started.
    NotYetValid,
}

/// The expiry status of a validity period at `now`.
pub fn expiry(valid_from: Timestamp, valid_to: Timestamp, now: Timestamp) -> Expiry {
    if now >= valid_to {
        Expiry::Expired
    } else if now < valid_from {
        Expiry::NotYetValid
    } else {
        let left = valid_to - now;
        if left <= EXPIRY_WARNING_DAYS * 86_400 {
            Expiry::ExpiresSoon {
                days_left: left / 86_400,
            }
        } else {
            Expiry::Valid
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisation_keys_fold_width_and_spaces() {
        let key = organisation_key;
        assert_eq!(
            key("示例科技（北京）有限公司"),
            key("示例科技(北京)有限公司")
        );
        assert_eq!(key("ＡＢＣ Trading Co."), key("ABC Trading Co."));
        assert_eq!(key("  ABC   Trading\u{3000}Co. "), key("ABC Trading Co."));
        assert_eq!(key("㈱示例"), key("(株)示例"));
        // Different letters (or case) stay different organisations.
        assert_ne!(key("ABC Trading Co."), key("ABD Trading Co."));
        assert_ne!(key("abc Trading Co."), key("ABC Trading Co."));
    }
}
