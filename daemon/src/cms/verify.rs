//! Checking one SignedData signer: message digest, signature (ECDSA P-256 or SM2 with the
//! default user ID), signing-certificate, validity at the signing time and the chain.

use sha2::{Digest, Sha256, Sha384, Sha512};
use sm3::Sm3;
use time::OffsetDateTime;

use super::oid;
use super::parse::{cert_issuer_serial, strip_zeros, SignedAttrs, SignedData, SignerId};
use crate::cert::{rfc3339, CertFacts, Certificate, TrustStore};
use crate::crypto::{KeyAlgorithm, VerifyingKey};
use crate::revocation::{verify_status, Checker, Judgement};
use crate::ses::der::{read_single, tag};
use crate::ses::verify::read_signature_value;

/// The outcome of a CMS signature check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CmsReport {
    /// True when every check that was made passed.
    pub valid: bool,
    /// `plain` (the signature covers the content) or `authenticated-attributes`.
    pub form: &'static str,
    /// The signer's certificate, if found.
    pub signer: Option<CertFacts>,
    /// `signingTime`, if given.
    #[serde(with = "time::serde::rfc3339::option")]
    pub signing_time: Option<OffsetDateTime>,
    /// What was checked, each line `ok:` or `FAILED:` or `n/a:`.
    pub checks: Vec<String>,
}

/// Check lines being gathered: `ok: …`, `FAILED: …`, `n/a: …`.
#[derive(Debug, Clone)]
pub struct CmsChecks {
    /// False once a check failed.
    pub ok: bool,
    /// The lines, in order.
    pub lines: Vec<String>,
}

impl Default for CmsChecks {
    fn default() -> Self {
        Self {
            ok: true,
            lines: Vec::new(),
        }
    }
}

impl CmsChecks {
    /// Records a check that passed or failed.
    pub fn check(&mut self, passed: bool, text: impl Into<String>) {
        self.ok &= passed;
        let mark = if passed { "ok" } else { "FAILED" };
        self.lines.push(format!("{mark}: {}", text.into()));
    }

    /// Records a check that was not made.
    pub fn na(&mut self, text: impl Into<String>) {
        self.lines.push(format!("n/a: {}", text.into()));
    }
}

/// A digest algorithm a SignedData may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
    /// SM3.
    Sm3,
}

impl DigestAlgorithm {
    /// The algorithm of `oid`, if supported.
    pub fn from_oid(id: &str) -> Option<Self> {
        match id {
            oid::SHA256 => Some(Self::Sha256),
            oid::SHA384 => Some(Self::Sha384),
            oid::SHA512 => Some(Self::Sha512),
            oid::SM3 => Some(Self::Sm3),
            _ => None,
        }
    }

    /// Its usual name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
            Self::Sm3 => "SM3",
        }
    }

    /// The digest of the concatenation of `chunks`.
    pub fn digest(self, chunks: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(chunks: &[&[u8]]) -> Vec<u8> {
            let mut h = D::new();
            for c in chunks {
                h.update(c);
            }
            h.finalize().to_vec()
        }
        match self {
            Self::Sha256 => run::<Sha256>(chunks),
            Self::Sha384 => run::<Sha384>(chunks),
            Self::Sha512 => run::<Sha512>(chunks),
            Self::Sm3 => run::<Sm3>(chunks),
        }
    }
}

/// Where the content digest comes from.
#[derive(Debug, Clone, Copy)]
pub enum ContentDigest<'a> {
    /// The signed content, in pieces (e.g. the two parts of a PDF `/ByteRange`), hashed with
    /// the SignerInfo's digest algorithm.
    Chunks(&'a [&'a [u8]]),
}

/// The certificate named by the SignerInfo, among the SignedData's certificates: by issuer and
/// serial (falling back to the serial alone, as some writers re-encode the issuer name), or
/// by subject key identifier.
pub(crate) fn find_signer(sd: &SignedData<'_>) -> Option<Certificate> {
    fn serial_of(cert: &[u8]) -> Option<(&[u8], &[u8])> {
        let (issuer, serial) = cert_issuer_serial(cert)?;
        let serial = read_single(serial, tag::INTEGER, "serialNumber").ok()?;
        Some((issuer, strip_zeros(serial.value)))
    }
    let found = match sd.signer.sid {
        SignerId::IssuerSerial { issuer, serial } => sd
            .certs
            .iter()
            .find(|c| serial_of(c) == Some((issuer, serial)))
            .or_else(|| {
                sd.certs
                    .iter()
                    .find(|c| serial_of(c).is_some_and(|(_, s)| s == serial))
            }),
        SignerId::KeyId(id) => sd
            .certs
            .iter()
            .find(|c| subject_key_id(c).as_deref() == Some(id)),
    }?;
    Certificate::from_der(found).ok()
}

fn subject_key_id(cert: &[u8]) -> Option<Vec<u8>> {
    use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};
    let (_, c) = X509Certificate::from_der(cert).ok()?;
    c.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
}

/// The 32-byte value the signer's key signed over `message` (given in pieces): for SM2,
/// SM3(Z ‖ message) with the default user ID; for P-256, the digest algorithm's hash of the
/// message, truncated to 256 bits as ECDSA does.
fn signed_digest(
    vk: &VerifyingKey,
    digest: DigestAlgorithm,
    message: &[&[u8]],
) -> Result<[u8; 32], String> {
    let e = match (vk.public_key().algorithm, vk.z()) {
        (KeyAlgorithm::Sm2, Some(z)) => {
            let mut parts: Vec<&[u8]> = vec![z];
            parts.extend_from_slice(message);
            DigestAlgorithm::Sm3.digest(&parts)
        }
        (KeyAlgorithm::Sm2, None) => return Err("SM2 key without Z".into()),
        (KeyAlgorithm::P256, _) => {
            if digest == DigestAlgorithm::Sm3 {
                return Err("an ECDSA P-256 signature with SM3 is not supported".into());
            }
            digest.digest(message)
        }
    };
    e.get(..32)
        .and_then(|e| e.try_into().ok())
        .ok_or_else(|| "digest shorter than 256 bits".into())
}

/// Whether `sig_alg` fits a key of `key`.
fn signature_algorithm_fits(sig_alg: &str, key: KeyAlgorithm) -> bool {
    match key {
        // 1.2.156.10197.1.501, or the SM2 key OID 1.2.156.10197.1.301(.x) some writers use.
        KeyAlgorithm::Sm2 => {
            sig_alg == oid::SM2_SM3
                || sig_alg == oid::SM2
                || sig_alg.starts_with("1.2.156.10197.1.301.")
        }
        KeyAlgorithm::P256 => matches!(
            sig_alg,
            oid::ECDSA_SHA256 | oid::ECDSA_SHA384 | oid::ECDSA_SHA512 | oid::EC_PUBLIC_KEY
        ),
    }
}

/// Verifies the signer's signature over `message` (in pieces); says what verified.
pub(crate) fn verify_signature(
    sd: &SignedData<'_>,
    cert: &Certificate,
    digest: DigestAlgorithm,
    message: &[&[u8]],
) -> Result<String, String> {
    let key = cert.public_key().map_err(|e| e.to_string())?;
    let sig_alg = &sd.signer.signature_algorithm;
    if !signature_algorithm_fits(sig_alg, key.algorithm) {
        return Err(format!(
            "signature algorithm {sig_alg} does not fit the signer's {:?} key",
            key.algorithm
        ));
    }
    let (sig, encoding) = read_signature_value(sd.signer.signature)?;
    let vk = VerifyingKey::cached(key).map_err(|e| e.to_string())?;
    // ecdsa-with-SHAxxx names the hash the signature uses; id-ecPublicKey leaves it to the
    // digest algorithm.
    let digest = match sig_alg.as_str() {
        oid::ECDSA_SHA256 => DigestAlgorithm::Sha256,
        oid::ECDSA_SHA384 => DigestAlgorithm::Sha384,
        oid::ECDSA_SHA512 => DigestAlgorithm::Sha512,
        _ => digest,
    };
    let e = signed_digest(&vk, digest, message)?;
    vk.verify_digest(&e, &sig).map_err(|e| e.to_string())?;
    let what = match key.algorithm {
        KeyAlgorithm::Sm2 => "SM2 (SM3, default user ID)".to_string(),
        KeyAlgorithm::P256 => format!("ECDSA P-256 with {}", digest.name()),
    };
    Ok(format!(
        "{encoding} {what} signature verifies with {}",
        cert.facts().display_name()
    ))
}

/// The certificate checks after the signature: validity at the signing time and
/// the chain to `trust` through the SignedData's other certificates.
pub(crate) fn certificate_checks(
    c: &mut CmsChecks,
    sd: &SignedData<'_>,
    cert: &Certificate,
    at: Option<(OffsetDateTime, &str)>,
    anchors: Anchors<'_>,
    trusted_time: Option<OffsetDateTime>,
) {
    let trust = anchors.roots;
    // With trust roots but no signing time (none signed, none claimed), the certificate is
    // judged now: a signature must not escape the chain check by leaving its time out.
    let at = at.or_else(|| {
        trust.map(|_| {
            (
                OffsetDateTime::now_utc(),
                "time of verification (the signature gives no signing time)",
            )
        })
    });
    match at {
        Some((t, what)) => {
            let r = cert.check_validity_at(t);
            c.check(
                r.is_ok(),
                match r {
                    Ok(()) => format!("signer's certificate valid at the {what} {}", rfc3339(&t)),
                    Err(e) => format!("signer's certificate at the {what}: {e}"),
                },
            );
        }
        None => c.na("certificate validity: no signing time to judge it at"),
    }
    match (trust, at) {
        (None, _) => c.na("chain: no trust roots configured"),
        (Some(_), None) => c.na("chain: no signing time to judge the certificate at"),
        (Some(store), Some((t, _))) => {
            let others: Vec<Certificate> = sd
                .certs
                .iter()
                .filter(|d| **d != cert.der())
                .filter_map(|d| Certificate::from_der(d).ok())
                .collect();
            let r = store.verify_signing_chain(cert, &others, t);
            c.check(
                r.is_ok(),
                match r {
                    Ok(chain) => format!("chain of {} certificate(s) to a trust root", chain.len()),
                    Err(e) => format!("chain: {e}"),
                },
            );
        }
    }
    revocation_check(c, cert, trust, anchors.revocation, trusted_time);
}

/// The signer's certificate status (see [`verify_status`]).
fn revocation_check(
    c: &mut CmsChecks,
    cert: &Certificate,
    trust: Option<&TrustStore>,
    revocation: Option<&Checker>,
    trusted_time: Option<OffsetDateTime>,
) {
    match verify_status(revocation, "signer", cert, trust, trusted_time).0 {
        Judgement::Stands(d) => c.check(true, d),
        Judgement::Fails(d) => c.check(false, d),
        Judgement::NotApplicable(d) => c.na(d),
    }
}

/// The signing-certificate(-v2) attribute names the signer's certificate.
fn signing_certificate_check(c: &mut CmsChecks, attrs: &SignedAttrs, cert: &Certificate) {
    let Some(id) = &attrs.signing_certificate else {
        c.na("no signing-certificate attribute");
        return;
    };
    let hash = match id.hash_algorithm.as_str() {
        oid::SHA1 => {
            use sha1::Digest as _;
            Some(sha1::Sha1::digest(cert.der()).to_vec())
        }
        other => DigestAlgorithm::from_oid(other).map(|d| d.digest(&[cert.der()])),
    };
    match hash {
        None => c.na(format!(
            "signing-certificate hash algorithm {} not supported",
            id.hash_algorithm
        )),
        Some(h) => {
            let serial_ok = id.serial.as_deref().is_none_or(|s| {
                cert_issuer_serial(cert.der()).is_some_and(|(_, raw)| {
                    read_single(raw, tag::INTEGER, "serialNumber")
                        .is_ok_and(|t| strip_zeros(t.value) == s)
                })
            });
            c.check(
                h == id.hash && serial_ok,
                "signing-certificate attribute names the signer's certificate",
            );
        }
    }
}

/// What a CMS (or PDF) verifier trusts and asks beside the document.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anchors<'a> {
    /// Trust roots for the signer's chain; `None`: chains not checked.
    pub roots: Option<&'a TrustStore>,
    /// Trusted TSA certificates for a signature-time-stamp; `None`: its time is not trusted.
    pub tsa: Option<&'a TrustStore>,
    /// Where certificate status is found; `None`: not checked.
    pub revocation: Option<&'a Checker>,
}

impl<'a> Anchors<'a> {
    /// Trust roots only.
    pub fn roots(roots: Option<&'a TrustStore>) -> Self {
        Self {
            roots,
            ..Self::default()
        }
    }
}

/// The unsigned signature-time-stamp attribute (RFC 3161 appendix A): the token's imprint is
/// the digest of the signature value and the TSA's signature verifies; with TSA trust roots,
/// its chain and timeStamping usage too, and then its genTime is returned: the trusted time at
/// which the signer's certificate is judged.
fn time_stamp_checks(
    c: &mut CmsChecks,
    token: &[u8],
    signature: &[u8],
    tsa: Option<&TrustStore>,
) -> Option<OffsetDateTime> {
    use crate::tsa::TimeStampToken;
    let token = match TimeStampToken::parse(token) {
        Ok(t) => t,
        Err(e) => {
            c.check(false, format!("signature-time-stamp: {e}"));
            return None;
        }
    };
    let tsa = tsa.filter(|t| !t.is_empty());
    let extra = tsa.map(TrustStore::roots).unwrap_or_default();
    let imprint = token.check_imprint(signature);
    c.check(
        imprint.is_ok(),
        format!("signature-time-stamp: {}", imprint.unwrap_or_else(|e| e)),
    );
    let imprint_ok = c.ok;
    // A token seald cannot check (an RSA TSA, no certificate in it) does not fail the
    // signature: its time is not used either way.
    if let Some(why) = token.uncheckable(extra) {
        c.na(format!("signature-time-stamp: {why}"));
        return None;
    }
    let cert = match token.check_signature(extra) {
        Ok((cert, detail)) => {
            c.check(true, format!("signature-time-stamp: {detail}"));
            cert
        }
        Err(e) => {
            c.check(false, format!("signature-time-stamp: {e}"));
            return None;
        }
    };
    let at = crate::cert::rfc3339(&token.gen_time());
    let name = cert.facts().display_name();
    let Some(store) = tsa else {
        c.na(format!(
            "signature-time-stamp by {name} at {at}: no TSA trust roots given, so its time is not trusted and the certificate is judged at the signed or claimed time"
        ));
        return None;
    };
    match token.check_tsa_chain(&cert, store) {
        Ok(chain) => {
            c.check(true, format!("signature-time-stamp TSA {chain}"));
            imprint_ok.then(|| token.gen_time())
        }
        Err(e) => {
            c.check(false, format!("signature-time-stamp TSA chain: {e}"));
            None
        }
    }
}

/// Verifies a detached SignedData over `content` (in pieces, e.g. a PDF's ByteRange).
/// `claimed_time` (e.g. a PDF's `/M`) judges the certificate when there is no signing-time
/// attribute. `Err` when the bytes are not a readable SignedData; zero padding after it is
/// allowed.
pub fn verify_detached(
    der: &[u8],
    content: ContentDigest<'_>,
    anchors: Anchors<'_>,
    claimed_time: Option<OffsetDateTime>,
) -> Result<CmsReport, String> {
    let ContentDigest::Chunks(chunks) = content;
    let sd = SignedData::parse(der, true)?;
    let mut c = CmsChecks::default();
    // The timestamp first (its lines go last): a trusted one sets when the certificate is
    // judged.
    let mut stamp_lines = CmsChecks::default();
    let trusted = sd.signer.signature_time_stamp().and_then(|token| {
        time_stamp_checks(&mut stamp_lines, token, sd.signer.signature, anchors.tsa)
    });
    let digest = DigestAlgorithm::from_oid(&sd.signer.digest_algorithm);
    match digest {
        Some(d) => c.check(true, format!("digest algorithm {}", d.name())),
        None => c.check(
            false,
            format!(
                "digest algorithm {} not supported",
                sd.signer.digest_algorithm
            ),
        ),
    }
    let digest = digest.unwrap_or(DigestAlgorithm::Sha256);
    if sd.content.is_some() {
        c.check(false, "the content is encapsulated, not detached");
    }
    let signer = find_signer(&sd);
    let attrs = match &sd.signer.signed_attrs {
        Some(a) => Some(SignedAttrs::read(a)?),
        None => None,
    };
    let content_digest = digest.digest(chunks);
    let form = if attrs.is_some() {
        "authenticated-attributes"
    } else {
        "plain"
    };
    if let Some(a) = &attrs {
        match &a.message_digest {
            None => c.check(false, "no message-digest attribute"),
            Some(md) => c.check(
                *md == content_digest,
                format!(
                    "message-digest is the {} of the signed bytes",
                    digest.name()
                ),
            ),
        }
        match &a.content_type {
            None => c.check(false, "no content-type attribute"),
            Some(t) => c.check(
                *t == sd.encap_content_type,
                format!("content-type attribute {t}"),
            ),
        }
    }
    let signing_time = attrs.as_ref().and_then(|a| a.signing_time);
    match &signer {
        None => c.check(
            false,
            "the signer's certificate is not among the SignedData's certificates",
        ),
        Some(cert) => {
            let message = sd.signer.signed_attrs_message();
            let pieces: Vec<&[u8]> = match &message {
                Some(m) => vec![m.as_slice()],
                None => chunks.to_vec(),
            };
            let r = verify_signature(&sd, cert, digest, &pieces);
            c.check(
                r.is_ok(),
                match r {
                    Ok(t) => format!("{t} ({form})"),
                    Err(e) => format!("signature ({form}): {e}"),
                },
            );
            if let Some(a) = &attrs {
                signing_certificate_check(&mut c, a, cert);
            }
            let usage = cert.check_signing_usage();
            c.check(
                usage.is_ok(),
                match usage {
                    Ok(()) => "signer's certificate allows digital signatures".to_string(),
                    Err(e) => e.to_string(),
                },
            );
            let at = trusted
                .map(|t| (t, "trusted timestamp's genTime"))
                .or(signing_time.map(|t| (t, "signing-time")))
                .or(claimed_time.map(|t| (t, "claimed signing time")));
            certificate_checks(&mut c, &sd, cert, at, anchors, trusted);
        }
    }
    c.ok &= stamp_lines.ok;
    c.lines.extend(stamp_lines.lines);
    Ok(CmsReport {
        valid: c.ok,
        form,
        signer: signer.map(|s| s.facts().clone()),
        signing_time,
        checks: c.lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::testing::parties;
    use crate::ses::der::write;
    use crate::ses::sign_message;

    /// A detached SignedData without signed attributes: the signature covers the content.
    fn plain(alg: KeyAlgorithm, content: &[u8]) -> Vec<u8> {
        let p = parties(alg);
        let sig = sign_message(&p.signer, content).unwrap().to_der();
        let (digest, sig_alg) = match alg {
            KeyAlgorithm::P256 => (oid::SHA256, oid::ECDSA_SHA256),
            KeyAlgorithm::Sm2 => (oid::SM3, oid::SM2_SM3),
        };
        let o = |s: &str| write::oid(s).unwrap();
        let (issuer, serial) = cert_issuer_serial(&p.signer_cert).unwrap();
        let digest_alg = write::seq(&[&o(digest)]);
        let signer_info = write::seq(&[
            &write::int(1),
            &write::seq(&[issuer, serial]),
            &digest_alg,
            &write::seq(&[&o(sig_alg)]),
            &write::octets(&sig),
        ]);
        let body = write::seq(&[
            &write::int(1),
            &write::constructed(tag::SET, &[&digest_alg]),
            &write::seq(&[&o(oid::DATA)]),
            &write::constructed(tag::CONTEXT_0, &[&p.signer_cert]),
            &write::constructed(tag::SET, &[&signer_info]),
        ]);
        write::seq(&[
            &o(oid::SIGNED_DATA),
            &write::constructed(tag::CONTEXT_0, &[&body]),
        ])
    }

    #[test]
    fn the_plain_form_verifies_over_the_content() {
        for alg in [KeyAlgorithm::P256, KeyAlgorithm::Sm2] {
            let der = plain(alg, b"first part, second part");
            let pieces: [&[u8]; 2] = [b"first part", b", second part"];
            let r = verify_detached(
                &der,
                ContentDigest::Chunks(&pieces),
                Anchors::roots(None),
                None,
            )
            .unwrap();
            assert!(r.valid, "{alg:?} {:#?}", r.checks);
            assert_eq!(r.form, "plain");
            assert!(r
                .checks
                .contains(&"n/a: certificate validity: no signing time to judge it at".into()));
            let other: [&[u8]; 2] = [b"first part", b", changed"];
            let r = verify_detached(
                &der,
                ContentDigest::Chunks(&other),
                Anchors::roots(None),
                None,
            )
            .unwrap();
            assert!(!r.valid, "{alg:?}");
        }
    }

    #[test]
    fn without_a_signing_time_trust_roots_judge_the_chain_now() {
        let der = plain(KeyAlgorithm::P256, b"data");
        let pieces: [&[u8]; 1] = [b"data"];
        let own = crate::cert::testing::parties(KeyAlgorithm::P256);
        let roots = TrustStore::new(vec![Certificate::from_der(&own.root_cert).unwrap()]);
        let r = verify_detached(
            &der,
            ContentDigest::Chunks(&pieces),
            Anchors::roots(Some(&roots)),
            None,
        )
        .unwrap();
        assert!(r.valid, "{:#?}", r.checks);
        assert!(
            r.checks.iter().any(|c| c.starts_with("ok: chain")),
            "{:#?}",
            r.checks
        );
        // Another root: the chain fails instead of being "not applicable".
        let other = crate::cert::testing::parties(KeyAlgorithm::Sm2);
        let foreign = TrustStore::new(vec![Certificate::from_der(&other.root_cert).unwrap()]);
        let r = verify_detached(
            &der,
            ContentDigest::Chunks(&pieces),
            Anchors::roots(Some(&foreign)),
            None,
        )
        .unwrap();
        assert!(!r.valid, "{:#?}", r.checks);
        assert!(
            r.checks.iter().any(|c| c.starts_with("FAILED: chain")),
            "{:#?}",
            r.checks
        );
    }

    #[test]
    fn digests_in_pieces() {
        let whole = DigestAlgorithm::Sm3.digest(&[b"abcdef"]);
        assert_eq!(whole, crate::crypto::sm3(b"abcdef"));
        assert_eq!(DigestAlgorithm::Sm3.digest(&[b"abc", b"", b"def"]), whole);
        assert_eq!(DigestAlgorithm::Sha384.digest(&[b"x"]).len(), 48);
        assert_eq!(
            DigestAlgorithm::from_oid(oid::SHA512),
            Some(DigestAlgorithm::Sha512)
        );
        assert_eq!(DigestAlgorithm::from_oid(oid::SHA1), None);
    }
}
