//! TimeStampToken (RFC 3161 §2.4.2): a CMS SignedData (RFC 5652 OIDs, one SignerInfo) whose
//! encapsulated content is a TSTInfo, read with [`crate::cms::SignedData`] and
//! [`crate::cms::SignedAttrs`], and its checks.
//!
//! ```text
//! TSTInfo ::= SEQUENCE {
//!   version INTEGER { v1(1) }, policy TSAPolicyId, messageImprint MessageImprint,
//!   serialNumber INTEGER, genTime GeneralizedTime, accuracy Accuracy OPTIONAL,
//!   ordering BOOLEAN DEFAULT FALSE, nonce INTEGER OPTIONAL, tsa [0] GeneralName OPTIONAL,
//!   extensions [1] IMPLICIT Extensions OPTIONAL }
//! ```
//!
//! The TSA signs DER(SET OF signed attributes): `contentType` must be id-ct-TSTInfo,
//! `messageDigest` the digest of the TSTInfo's bytes, and an ESS `signingCertificate(V2)`
//! attribute, when present, must name the TSA certificate by its hash. The TSA certificate is
//! the one in the token (or among the configured ones) that the SignerInfo names; it must chain
//! to a configured TSA root at `genTime` and name `timeStamping` in its extended key usage.

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use super::request::strip_zeros;
use super::{HashAlgorithm, OID_SHA1, OID_SHA256, OID_SM3, OID_TST_INFO};
use crate::cert::{CertFacts, Certificate, TrustStore};
use crate::cms::{oid, EssCertId, SignedAttrs, SignedData};
use crate::crypto::{KeyAlgorithm, VerifyingKey};
use crate::ses::der::{read_single, read_tlv, tag, DerError, Tlv};
use crate::ses::verify::read_signature_value;

fn der(e: DerError) -> String {
    format!("timestamp token: {e}")
}

/// An error of the CMS reader, said of the token.
fn cms(e: String) -> String {
    format!("timestamp token: {}", e.strip_prefix("CMS: ").unwrap_or(&e))
}

/// How the SignerInfo names the TSA's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SignerId {
    /// issuerAndSerialNumber: the issuer's DER name and the serial's magnitude.
    IssuerSerial(Vec<u8>, Vec<u8>),
    /// `[0]` subjectKeyIdentifier.
    KeyId(Vec<u8>),
}

/// What a token says, once read (nothing checked yet).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenFacts {
    /// genTime.
    #[serde(with = "time::serde::rfc3339")]
    pub gen_time: OffsetDateTime,
    /// serialNumber, lowercase hex of its magnitude.
    pub serial_hex: String,
    /// The TSA policy OID.
    pub policy: String,
    /// The imprint's hash algorithm (its OID when seald does not know it).
    pub hash: String,
    /// The imprint, hex.
    pub imprint: String,
    /// The nonce, hex, if any.
    pub nonce: Option<String>,
    /// The TSA (the signing certificate's facts), once found.
    pub tsa: Option<CertFacts>,
}

/// A parsed TimeStampToken.
#[derive(Debug, Clone)]
pub struct TimeStampToken {
    /// The token's DER, as found.
    pub der: Vec<u8>,
    gen_time: OffsetDateTime,
    serial: Vec<u8>,
    policy: String,
    imprint_oid: String,
    imprint: Vec<u8>,
    nonce: Option<Vec<u8>>,
    /// The TSTInfo's bytes (the eContent OCTET STRING's value).
    tst_info: Vec<u8>,
    certs: Vec<Vec<u8>>,
    signer: SignerId,
    digest_oid: String,
    /// The signed attributes as the TSA signed them (DER SET OF Attribute), if any.
    signed_attrs: Option<Vec<u8>>,
    signature_oid: String,
    signature: Vec<u8>,
}

fn alg_oid(t: Tlv<'_>, element: &'static str) -> Result<String, String> {
    t.children()
        .next(tag::OID, element)
        .map_err(der)?
        .oid()
        .map_err(der)
}

impl TimeStampToken {
    /// Parses a token (a CMS ContentInfo of SignedData over a TSTInfo).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let sd = SignedData::parse(bytes, false).map_err(cms)?;
        if sd.content_type != oid::SIGNED_DATA {
            return Err(format!(
                "timestamp token: content type {} is not CMS SignedData",
                sd.content_type
            ));
        }
        if sd.encap_content_type != OID_TST_INFO {
            return Err(format!(
                "timestamp token: encapsulated content type {} is not id-ct-TSTInfo",
                sd.encap_content_type
            ));
        }
        let tst_info = sd
            .content
            .ok_or("timestamp token: the TSTInfo is missing (no eContent)")?
            .to_vec();
        let certs = sd
            .certs
            .iter()
            .filter(|c| c.first() == Some(&tag::SEQUENCE))
            .map(|c| c.to_vec())
            .collect();
        let si = &sd.signer;
        let signer = match si.sid {
            crate::cms::SignerId::IssuerSerial { issuer, serial } => {
                SignerId::IssuerSerial(issuer.to_vec(), serial.to_vec())
            }
            crate::cms::SignerId::KeyId(id) => SignerId::KeyId(id.to_vec()),
        };

        // TSTInfo
        let info = read_single(&tst_info, tag::SEQUENCE, "TSTInfo").map_err(der)?;
        let mut t = info.children();
        let version = t.next(tag::INTEGER, "TSTInfo.version").map_err(der)?;
        if version.int().map_err(der)? != 1 {
            return Err("timestamp token: TSTInfo version is not 1".into());
        }
        let policy = t
            .next(tag::OID, "TSTInfo.policy")
            .map_err(der)?
            .oid()
            .map_err(der)?;
        let mi = t.next(tag::SEQUENCE, "messageImprint").map_err(der)?;
        let mut m = mi.children();
        let imprint_oid = alg_oid(
            m.next(tag::SEQUENCE, "hashAlgorithm").map_err(der)?,
            "hashAlgorithm",
        )?;
        let imprint = m
            .next(tag::OCTET_STRING, "hashedMessage")
            .map_err(der)?
            .value
            .to_vec();
        let serial = strip_zeros(
            t.next(tag::INTEGER, "TSTInfo.serialNumber")
                .map_err(der)?
                .value,
        )
        .to_vec();
        let gen_time = t
            .next(tag::GENERALIZED_TIME, "TSTInfo.genTime")
            .map_err(der)?
            .time()
            .map_err(der)?;
        t.optional(tag::SEQUENCE, "TSTInfo.accuracy").map_err(der)?;
        t.optional(tag::BOOLEAN, "TSTInfo.ordering").map_err(der)?;
        let nonce = t
            .optional(tag::INTEGER, "TSTInfo.nonce")
            .map_err(der)?
            .map(|n| strip_zeros(n.value).to_vec());
        // tsa [0] and extensions [1] are not needed.
        Ok(Self {
            der: bytes.to_vec(),
            gen_time,
            serial,
            policy,
            imprint_oid,
            imprint,
            nonce,
            tst_info,
            certs,
            signer,
            digest_oid: si.digest_algorithm.clone(),
            signed_attrs: si.signed_attrs_message(),
            signature_oid: si.signature_algorithm.clone(),
            signature: si.signature.to_vec(),
        })
    }

    /// genTime: when the TSA says the token was made.
    pub fn gen_time(&self) -> OffsetDateTime {
        self.gen_time
    }

    /// The token's serial number, hex.
    pub fn serial_hex(&self) -> String {
        hex::encode(&self.serial)
    }

    /// The nonce's magnitude, if the token has one.
    pub fn nonce(&self) -> Option<&[u8]> {
        self.nonce.as_deref()
    }

    /// What the token says (the TSA certificate's facts when it can be found).
    pub fn facts(&self, extra: &[Certificate]) -> TokenFacts {
        TokenFacts {
            gen_time: self.gen_time,
            serial_hex: self.serial_hex(),
            policy: self.policy.clone(),
            hash: HashAlgorithm::from_oid(&self.imprint_oid)
                .map(|h| h.name().to_owned())
                .unwrap_or_else(|| self.imprint_oid.clone()),
            imprint: hex::encode(&self.imprint),
            nonce: self.nonce.as_ref().map(hex::encode),
            tsa: self
                .signer_certificate(extra)
                .ok()
                .map(|c| c.facts().clone()),
        }
    }

    /// Checks that the token's imprint is the digest of `data` (for a seal: the signature
    /// value) under the token's own imprint algorithm.
    pub fn check_imprint(&self, data: &[u8]) -> Result<String, String> {
        let hash = HashAlgorithm::from_oid(&self.imprint_oid).ok_or_else(|| {
            format!(
                "the imprint's hash algorithm {} is not SM3 or SHA-256",
                self.imprint_oid
            )
        })?;
        if hash.digest(data)[..] == self.imprint[..] {
            Ok(format!(
                "the {} imprint {} is the digest of this signature's value",
                hash.name(),
                hex::encode(&self.imprint)
            ))
        } else {
            Err(format!(
                "the token's {} imprint {} is not the digest of this signature's value ({}): the token was made for other data",
                hash.name(),
                hex::encode(&self.imprint),
                hex::encode(hash.digest(data))
            ))
        }
    }

    /// The certificates the token carries, readable ones only.
    fn token_certs(&self) -> Vec<Certificate> {
        self.certs
            .iter()
            .filter_map(|c| Certificate::from_der(c).ok())
            .collect()
    }

    fn names_signer(&self, cert: &Certificate) -> bool {
        match &self.signer {
            SignerId::IssuerSerial(issuer, serial) => {
                cert.issuer_raw() == &issuer[..]
                    && hex::decode(&cert.facts().serial_hex)
                        .is_ok_and(|s| strip_zeros(&s) == &serial[..])
            }
            SignerId::KeyId(id) => X509Certificate::from_der(cert.der())
                .ok()
                .and_then(|(_, c)| {
                    c.extensions()
                        .iter()
                        .find_map(|e| match e.parsed_extension() {
                            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                            _ => None,
                        })
                })
                .is_some_and(|k| &k == id),
        }
    }

    /// The TSA certificate the SignerInfo names: from the token, else from `extra` (the
    /// configured TSA certificates).
    pub fn signer_certificate(&self, extra: &[Certificate]) -> Result<Certificate, String> {
        self.token_certs()
            .into_iter()
            .chain(extra.iter().cloned())
            .find(|c| self.names_signer(c))
            .ok_or_else(|| {
                "the TSA's certificate is neither in the token nor among the configured TSA certificates"
                    .to_string()
            })
    }

    /// Why seald cannot check this token's signature at all, if so: the TSA's certificate is
    /// neither in the token nor in `extra`, its key is of an algorithm seald does not verify
    /// (e.g. RSA), or the digest is not SM3 or SHA-256. Such a token is not a failure of the
    /// signature it stamps: its time is simply not trusted.
    pub fn uncheckable(&self, extra: &[Certificate]) -> Option<String> {
        let why = match self.signer_certificate(extra) {
            Err(e) => e,
            Ok(cert) => match cert.public_key() {
                Err(e @ crate::cert::CertError::UnsupportedAlgorithm(_)) => e.to_string(),
                _ if HashAlgorithm::from_oid(&self.digest_oid).is_none() => format!(
                    "the token's digest algorithm {} is not SM3 or SHA-256",
                    self.digest_oid
                ),
                _ => return None,
            },
        };
        Some(format!("the TSA's signature cannot be checked: {why}"))
    }

    /// Checks the signed attributes and the TSA's signature over them; returns the TSA's
    /// certificate.
    pub fn check_signature(&self, extra: &[Certificate]) -> Result<(Certificate, String), String> {
        let cert = self.signer_certificate(extra)?;
        let attrs = self
            .signed_attrs
            .as_deref()
            .ok_or("the token has no signed attributes (RFC 3161 requires them)")?;
        let digest_alg = HashAlgorithm::from_oid(&self.digest_oid).ok_or_else(|| {
            format!(
                "the token's digest algorithm {} is not SM3 or SHA-256",
                self.digest_oid
            )
        })?;
        let (tlv, _) = read_tlv(attrs, 0, "signedAttrs").map_err(der)?;
        let read = SignedAttrs::read(&tlv).map_err(cms)?;
        match read.content_type.as_deref() {
            Some(OID_TST_INFO) => {}
            Some(other) => {
                return Err(format!(
                    "the signed contentType {other} is not id-ct-TSTInfo"
                ))
            }
            None => return Err("the signed attributes have no contentType".into()),
        }
        let digest = read
            .message_digest
            .ok_or("the signed attributes have no messageDigest")?;
        if digest[..] != digest_alg.digest(&self.tst_info)[..] {
            return Err(format!(
                "the signed messageDigest is not the {} of the TSTInfo: the token was altered",
                digest_alg.name()
            ));
        }
        let ess_note = match &read.signing_certificate {
            Some(id) => {
                check_ess(id, &cert)?;
                if id.v2 {
                    "ESS signingCertificateV2 names it"
                } else {
                    "ESS signingCertificate names it"
                }
            }
            None => "no ESS signing-certificate attribute",
        };
        let key = cert.public_key().map_err(|e| e.to_string())?;
        let consistent = matches!(
            (key.algorithm, digest_alg, self.signature_oid.as_str()),
            (
                KeyAlgorithm::P256,
                HashAlgorithm::Sha256,
                oid::ECDSA_SHA256 | oid::EC_PUBLIC_KEY
            ) | (
                KeyAlgorithm::Sm2,
                HashAlgorithm::Sm3,
                oid::SM2_SM3 | oid::SM2_1 | oid::EC_PUBLIC_KEY
            )
        );
        if !consistent {
            return Err(format!(
                "signature algorithm {} with digest {} does not fit the TSA's {:?} key (seald reads ECDSA P-256 with SHA-256 and SM2 with SM3)",
                self.signature_oid,
                digest_alg.name(),
                key.algorithm
            ));
        }
        let (sig, encoding) = read_signature_value(&self.signature)?;
        let vk = VerifyingKey::cached(key).map_err(|e| e.to_string())?;
        vk.verify(attrs, &sig).map_err(|e| {
            format!(
                "the TSA's {encoding} signature does not verify with {}: {e}",
                cert.facts().display_name()
            )
        })?;
        let detail = format!(
            "{encoding} signature by {} verifies over the signed attributes; messageDigest matches the TSTInfo; {ess_note}",
            cert.facts().display_name()
        );
        Ok((cert, detail))
    }

    /// Checks the TSA's certificate: it chains to a root of `trust` at genTime (certificates in
    /// the token serve as intermediates) and names timeStamping in its extended key usage.
    pub fn check_tsa_chain(
        &self,
        cert: &Certificate,
        trust: &TrustStore,
    ) -> Result<String, String> {
        let critical = cert
            .check_time_stamping_usage()
            .map_err(|e| e.to_string())?;
        let intermediates = self.token_certs();
        let chain = trust
            .verify_signing_chain(cert, &intermediates, self.gen_time)
            .map_err(|e| format!("{e} (judged at the token's genTime)"))?;
        let names: Vec<String> = chain.iter().map(CertFacts::display_name).collect();
        Ok(format!(
            "chain: {}, judged at genTime {}; extended key usage timeStamping{}",
            names.join(" <- "),
            crate::cert::rfc3339(&self.gen_time),
            if critical {
                " (critical)"
            } else {
                " (not marked critical)"
            }
        ))
    }

    /// Every check a fresh token must pass before seald uses it: the imprint is the digest of
    /// `data`, the nonce is `nonce`, the TSA's signature verifies and its certificate chains
    /// to `trust` with timeStamping. Returns the facts (with the TSA) on success.
    pub fn verify_fresh(
        &self,
        data: &[u8],
        nonce: &[u8],
        trust: &TrustStore,
        extra: &[Certificate],
    ) -> Result<TokenFacts, String> {
        self.check_imprint(data)?;
        match self.nonce() {
            Some(n) if n == strip_zeros(nonce) => {}
            Some(n) => {
                return Err(format!(
                    "the token's nonce {} is not the request's {}: it answers another request",
                    hex::encode(n),
                    hex::encode(strip_zeros(nonce))
                ))
            }
            None => return Err("the token carries no nonce, though the request had one".into()),
        }
        let (cert, _) = self.check_signature(extra)?;
        if trust.is_empty() {
            return Err("no trusted TSA certificates are configured ([tsa] trusted_certs)".into());
        }
        self.check_tsa_chain(&cert, trust)?;
        let mut facts = self.facts(extra);
        facts.tsa = Some(cert.facts().clone());
        Ok(facts)
    }
}

/// Checks an ESS SigningCertificate(V2) reference: its first ESSCertID's hash is the
/// certificate's.
fn check_ess(id: &EssCertId, cert: &Certificate) -> Result<(), String> {
    let ours: Vec<u8> = match id.hash_algorithm.as_str() {
        OID_SHA256 => crate::crypto::sha256(cert.der()).to_vec(),
        OID_SM3 => crate::crypto::sm3(cert.der()).to_vec(),
        OID_SHA1 => {
            use sha1::Digest;
            sha1::Sha1::digest(cert.der()).to_vec()
        }
        other => {
            return Err(format!(
                "the ESS signing-certificate hash algorithm {other} is not SHA-1, SHA-256 or SM3"
            ))
        }
    };
    if ours == id.hash {
        Ok(())
    } else {
        Err(format!(
            "the ESS signing-certificate attribute names another certificate than {}, the one that signed",
            cert.facts().display_name()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ses::der::write;
    use crate::tsa::TimeStampResp;

    /// `bytes` (a run of TLVs) with `insert` put at offset `at`, every enclosing length redone.
    fn splice(bytes: &[u8], at: usize, insert: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            if pos == at {
                out.extend_from_slice(insert);
            }
            let (t, _) = read_tlv(&bytes[pos..], 0, "element").unwrap();
            let header = t.raw.len() - t.value.len();
            if pos + header <= at && at < pos + t.raw.len() {
                out.extend(write::tlv(
                    t.tag,
                    &splice(t.value, at - pos - header, insert),
                ));
            } else {
                out.extend_from_slice(t.raw);
            }
            pos += t.raw.len();
        }
        out
    }

    #[test]
    fn two_message_digest_attributes_are_refused() {
        let resp = TimeStampResp::parse(include_bytes!("testdata/granted-sm3.tsr")).unwrap();
        let token = resp.into_token().unwrap();
        TimeStampToken::parse(&token)
            .unwrap()
            .check_signature(&[])
            .expect("the OpenSSL token verifies");
        // Copy its messageDigest attribute to the front of the signed attributes.
        let sd = SignedData::parse(&token, false).unwrap();
        let attrs = sd.signer.signed_attrs.unwrap();
        let mut list = attrs.children();
        let digest_attr = loop {
            let a = list.next(tag::SEQUENCE, "Attribute").unwrap();
            let id = a
                .children()
                .next(tag::OID, "attrType")
                .unwrap()
                .oid()
                .unwrap();
            if id == oid::MESSAGE_DIGEST {
                break a.raw.to_vec();
            }
        };
        let doubled = splice(&token, attrs.value_offset, &digest_attr);
        assert!(doubled.len() >= token.len() + digest_attr.len());
        let e = TimeStampToken::parse(&doubled)
            .unwrap()
            .check_signature(&[])
            .unwrap_err();
        assert!(e.contains("two message-digest attributes"), "{e}");
    }
}
