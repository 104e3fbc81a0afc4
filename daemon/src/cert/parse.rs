//! Reading one certificate into [`CertFacts`] plus what signature checks need.

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{
    signature_algorithm, CertError, CertFacts, KeyUsageFacts, OID_EC_PUBLIC_KEY, OID_P256_CURVE,
    OID_SM2_CURVE,
};
use crate::crypto::{sm3, KeyAlgorithm, PublicKey, RawSignature, VerifyingKey};

/// A parsed certificate, owning its DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    facts: CertFacts,
    tbs: std::ops::Range<usize>,
    signature_oid: String,
    signature: Vec<u8>,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
}

fn utc(t: &x509_parser::time::ASN1Time) -> Result<OffsetDateTime, CertError> {
    OffsetDateTime::from_unix_timestamp(t.timestamp())
        .map_err(|_| CertError::Malformed("validity date out of range".into()))
}

fn public_key_of(cert: &X509Certificate<'_>) -> Result<PublicKey, CertError> {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    let param = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.clone().oid().ok())
        .map(|o| o.to_id_string());
    let algorithm = match (alg.as_str(), param.as_deref()) {
        (OID_EC_PUBLIC_KEY, Some(OID_SM2_CURVE)) | (OID_SM2_CURVE, _) => KeyAlgorithm::Sm2,
        (OID_EC_PUBLIC_KEY, Some(OID_P256_CURVE)) => KeyAlgorithm::P256,
        (a, p) => {
            return Err(CertError::UnsupportedAlgorithm(match p {
                Some(p) => format!("key {a} on curve {p}"),
                None => format!("key {a}"),
            }))
        }
    };
    let point: [u8; 65] = spki
        .subject_public_key
        .data
        .as_ref()
        .try_into()
        .ok()
        .filter(|p: &[u8; 65]| p[0] == 0x04)
        .ok_or_else(|| {
            CertError::UnsupportedAlgorithm("compressed or malformed EC point".into())
        })?;
    Ok(PublicKey { algorithm, point })
}

impl Certificate {
    /// Parses a DER certificate (trailing bytes are refused).
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| CertError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertError::Malformed(
                "trailing bytes after the certificate".into(),
            ));
        }
        let tbs_bytes: &[u8] = cert.tbs_certificate.as_ref();
        let tbs_start = (tbs_bytes.as_ptr() as usize).wrapping_sub(der.as_ptr() as usize);
        let tbs = tbs_start..tbs_start.saturating_add(tbs_bytes.len());
        if der.get(tbs.clone()) != Some(tbs_bytes) {
            return Err(CertError::Malformed(
                "TBS certificate not inside the input".into(),
            ));
        }
        let name_attr = |it: &mut dyn Iterator<
            Item = &x509_parser::x509::AttributeTypeAndValue<'_>,
        >| { it.next().and_then(|a| a.as_str().ok().map(str::to_owned)) };
        let key_usage = cert
            .key_usage()
            .map_err(|e| CertError::Malformed(format!("key usage: {e}")))?
            .map(|ku| KeyUsageFacts {
                digital_signature: ku.value.digital_signature(),
                non_repudiation: ku.value.non_repudiation(),
                key_cert_sign: ku.value.key_cert_sign(),
                crl_sign: ku.value.crl_sign(),
            });
        let is_ca = cert
            .basic_constraints()
            .map_err(|e| CertError::Malformed(format!("basic constraints: {e}")))?
            .is_some_and(|bc| bc.value.ca);
        let facts = CertFacts {
            subject_o: name_attr(&mut cert.subject().iter_organization()),
            subject_cn: name_attr(&mut cert.subject().iter_common_name()),
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            serial_hex: hex::encode(cert.raw_serial()),
            not_before: utc(&cert.validity().not_before)?,
            not_after: utc(&cert.validity().not_after)?,
            public_key: public_key_of(&cert).ok(),
            key_usage,
            is_ca,
            sm3_fingerprint: hex::encode(sm3(der)),
        };
        Ok(Self {
            der: der.to_vec(),
            facts,
            tbs,
            signature_oid: cert.signature_algorithm.algorithm.to_id_string(),
            signature: cert.signature_value.data.to_vec(),
            subject_raw: cert.subject().as_raw().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
        })
    }

    /// The certificate's DER, as given.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The extracted facts.
    pub fn facts(&self) -> &CertFacts {
        &self.facts
    }

    /// The subject key, or why seald cannot use it.
    pub fn public_key(&self) -> Result<&PublicKey, CertError> {
        match &self.facts.public_key {
            Some(k) => Ok(k),
            None => {
                let parsed = X509Certificate::from_der(&self.der)
                    .map_err(|e| CertError::Malformed(e.to_string()))?
                    .1;
                Err(public_key_of(&parsed)
                    .err()
                    .unwrap_or_else(|| CertError::UnsupportedAlgorithm("unknown key".into())))
            }
        }
    }

    /// Raw DER of the subject name.
    pub fn subject_raw(&self) -> &[u8] {
        &self.subject_raw
    }

    /// Raw DER of the issuer name.
    pub fn issuer_raw(&self) -> &[u8] {
        &self.issuer_raw
    }

    /// True when subject and issuer names are the same.
    pub fn is_self_issued(&self) -> bool {
        self.subject_raw == self.issuer_raw
    }

    /// Fails unless `at` lies within notBefore..=notAfter.
    pub fn check_validity_at(&self, at: OffsetDateTime) -> Result<(), CertError> {
        if at < self.facts.not_before {
            return Err(CertError::NotYetValid {
                subject: self.facts.display_name(),
                not_before: self.facts.not_before,
                at,
            });
        }
        if at > self.facts.not_after {
            return Err(CertError::Expired {
                subject: self.facts.display_name(),
                not_after: self.facts.not_after,
                at,
            });
        }
        Ok(())
    }

    /// Fails unless the key may make signatures (digitalSignature or nonRepudiation, or no
    /// key usage extension at all).
    pub fn check_signing_usage(&self) -> Result<(), CertError> {
        match self.facts.key_usage {
            Some(ku) if !ku.digital_signature && !ku.non_repudiation => {
                Err(CertError::WrongKeyUsage {
                    subject: self.facts.display_name(),
                    wanted: "digital signatures",
                })
            }
            _ => Ok(()),
        }
    }

    /// Fails unless the extended key usage names timeStamping (1.3.6.1.5.5.7.3.8), as RFC 3161
    /// asks of a TSA's certificate; returns whether the extension is critical (RFC 3161 wants
    /// it critical).
    pub fn check_time_stamping_usage(&self) -> Result<bool, CertError> {
        let parsed = X509Certificate::from_der(&self.der)
            .map_err(|e| CertError::Malformed(e.to_string()))?
            .1;
        let eku = parsed
            .extended_key_usage()
            .map_err(|e| CertError::Malformed(format!("extended key usage: {e}")))?;
        match eku {
            Some(ext) if ext.value.time_stamping => Ok(ext.critical),
            _ => Err(CertError::WrongKeyUsage {
                subject: self.facts.display_name(),
                wanted: "time-stamping (its extended key usage does not name timeStamping)",
            }),
        }
    }

    /// Fails unless this certificate may issue certificates (cA and, if present, keyCertSign).
    pub fn check_ca_usage(&self) -> Result<(), CertError> {
        let ku_ok = self.facts.key_usage.is_none_or(|ku| ku.key_cert_sign);
        if self.facts.is_ca && ku_ok {
            Ok(())
        } else {
            Err(CertError::WrongKeyUsage {
                subject: self.facts.display_name(),
                wanted: "issuing certificates",
            })
        }
    }

    /// Verifies this certificate's signature with `issuer`'s key, over the TBS bytes as found.
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), CertError> {
        let tbs = self
            .der
            .get(self.tbs.clone())
            .ok_or_else(|| CertError::BadSignature {
                subject: self.facts.display_name(),
            })?;
        issuer
            .verify_data(&self.signature_oid, tbs, &self.signature)
            .map_err(|e| match e {
                CertError::BadSignature { .. } => CertError::BadSignature {
                    subject: self.facts.display_name(),
                },
                other => other,
            })
    }

    /// Verifies `signature` (DER or raw r‖s) under `alg_oid` over `message` with this
    /// certificate's key: how CRLs, OCSP answers and certificates it issued are checked.
    pub fn verify_data(
        &self,
        alg_oid: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CertError> {
        let alg = signature_algorithm(alg_oid)
            .ok_or_else(|| CertError::UnsupportedAlgorithm(format!("signature {alg_oid}")))?;
        let bad = || CertError::BadSignature {
            subject: self.facts.display_name(),
        };
        let key = self.public_key()?;
        if key.algorithm != alg {
            return Err(bad());
        }
        let sig = RawSignature::from_any(signature).map_err(|_| bad())?;
        let vk = VerifyingKey::cached(key).map_err(|_| bad())?;
        vk.verify(message, &sig).map_err(|_| bad())
    }

    /// Whether the extended key usage names id-kp-OCSPSigning (RFC 6960 §4.2.2.2: what a
    /// responder delegated by a CA must carry).
    pub fn allows_ocsp_signing(&self) -> bool {
        X509Certificate::from_der(&self.der)
            .ok()
            .and_then(|(_, c)| {
                c.extended_key_usage()
                    .ok()
                    .flatten()
                    .map(|e| e.value.ocsp_signing)
            })
            .unwrap_or(false)
    }

    /// The `http://` URLs of its OCSP responders (AuthorityInfoAccess, id-ad-ocsp) and of its
    /// CRLs (CRLDistributionPoints, full names), in the order written.
    pub fn status_urls(&self) -> StatusUrls {
        use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
        let mut urls = StatusUrls::default();
        let Ok((_, cert)) = X509Certificate::from_der(&self.der) else {
            return urls;
        };
        let uri = |name: &GeneralName<'_>| match name {
            GeneralName::URI(u) if u.starts_with("http://") => Some(u.to_string()),
            _ => None,
        };
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    for desc in &aia.accessdescs {
                        if desc.access_method.to_id_string() == OID_AD_OCSP {
                            urls.ocsp.extend(uri(&desc.access_location));
                        }
                    }
                }
                ParsedExtension::CRLDistributionPoints(points) => {
                    for point in points.iter() {
                        if let Some(DistributionPointName::FullName(names)) =
                            &point.distribution_point
                        {
                            urls.crl.extend(names.iter().filter_map(uri));
                        }
                    }
                }
                _ => {}
            }
        }
        urls
    }
}

/// id-ad-ocsp.
const OID_AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";

/// Where a certificate says its status is published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusUrls {
    /// OCSP responders (AuthorityInfoAccess).
    pub ocsp: Vec<String>,
    /// CRLs (CRLDistributionPoints).
    pub crl: Vec<String>,
}
