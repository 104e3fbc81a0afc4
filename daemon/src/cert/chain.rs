//! Chains from a certificate to configured trust roots, judged at a given time.

use time::OffsetDateTime;

use super::{CertError, CertFacts, Certificate};

/// Longest chain followed (leaf included).
const MAX_DEPTH: usize = 8;

/// The trust roots of a running daemon, which a config reload may replace: readers take the
/// set current when they start (a check in progress keeps its set).
#[derive(Debug, Default)]
pub struct TrustRoots(std::sync::RwLock<std::sync::Arc<TrustStore>>);

impl TrustRoots {
    /// Starts with `roots`.
    pub fn new(roots: std::sync::Arc<TrustStore>) -> Self {
        Self(std::sync::RwLock::new(roots))
    }

    /// The roots now.
    pub fn current(&self) -> std::sync::Arc<TrustStore> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the roots (a config reload).
    pub fn replace(&self, roots: std::sync::Arc<TrustStore>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = roots;
    }
}

/// The configured trust roots.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    roots: Vec<Certificate>,
}

impl TrustStore {
    /// A store of the given roots.
    pub fn new(roots: Vec<Certificate>) -> Self {
        Self { roots }
    }

    /// Reads every `CERTIFICATE` in a PEM buffer, or one DER certificate.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, CertError> {
        if bytes.first() == Some(&0x30) {
            return Ok(Self::new(vec![Certificate::from_der(bytes)?]));
        }
        let mut roots = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(bytes) {
            let pem = pem.map_err(|e| CertError::Malformed(format!("PEM: {e}")))?;
            if pem.label == "CERTIFICATE" {
                roots.push(Certificate::from_der(&pem.contents)?);
            }
        }
        if roots.is_empty() {
            return Err(CertError::Malformed(
                "no CERTIFICATE found in the trust file".into(),
            ));
        }
        Ok(Self::new(roots))
    }

    /// Adds a root.
    pub fn add(&mut self, root: Certificate) {
        self.roots.push(root);
    }

    /// The configured roots.
    pub fn roots(&self) -> &[Certificate] {
        &self.roots
    }

    /// True when no root is configured.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// The roots that issued `leaf` (DER), to ship with a signature so that verifiers can
    /// build its chain.
    pub fn issuers_of(&self, leaf: &Certificate) -> Vec<Vec<u8>> {
        self.issuer_of(leaf)
            .map(|r| r.der().to_vec())
            .into_iter()
            .collect()
    }

    /// The root that issued `cert` (its name and its signature), if one did: whose CRLs and
    /// OCSP answers speak for `cert`.
    pub fn issuer_of(&self, cert: &Certificate) -> Option<&Certificate> {
        self.roots.iter().find(|r| {
            r.subject_raw() == cert.issuer_raw()
                && r.der() != cert.der()
                && cert.verify_signed_by(r).is_ok()
        })
    }

    /// Checks `leaf` for signing at `at` and builds its chain to a root through
    /// `intermediates`; returns the facts of each certificate, leaf first, root last.
    pub fn verify_signing_chain(
        &self,
        leaf: &Certificate,
        intermediates: &[Certificate],
        at: OffsetDateTime,
    ) -> Result<Vec<CertFacts>, CertError> {
        leaf.check_validity_at(at)?;
        leaf.check_signing_usage()?;
        let mut chain = vec![leaf.facts().clone()];
        let mut current = leaf.clone();
        for _ in 0..MAX_DEPTH {
            if self.roots.iter().any(|r| r.der() == current.der()) {
                return Ok(chain);
            }
            let candidates = self
                .roots
                .iter()
                .map(|c| (c, true))
                .chain(intermediates.iter().map(|c| (c, false)))
                .filter(|(c, _)| {
                    c.subject_raw() == current.issuer_raw() && c.der() != current.der()
                });
            let mut last_err = None;
            let mut next = None;
            for (issuer, is_root) in candidates {
                match current.verify_signed_by(issuer) {
                    Ok(()) => {
                        next = Some((issuer.clone(), is_root));
                        break;
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            let Some((issuer, is_root)) = next else {
                return Err(last_err.unwrap_or_else(|| CertError::UnknownIssuer {
                    subject: current.facts().display_name(),
                    issuer: current.facts().issuer.clone(),
                }));
            };
            issuer.check_validity_at(at)?;
            issuer.check_ca_usage()?;
            chain.push(issuer.facts().clone());
            if is_root {
                return Ok(chain);
            }
            current = issuer;
        }
        Err(CertError::ChainTooLong(MAX_DEPTH))
    }
}
