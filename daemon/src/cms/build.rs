//! Building a detached SignedData over a content digest, signed through a
//! [`DocumentSigner`] (one device call; the device's signature is verified before use).

use time::OffsetDateTime;

use super::oid;
use super::parse::cert_issuer_serial;
use crate::crypto::{sha256, KeyAlgorithm};
use crate::ses::der::{tag, write};
use crate::ses::{BuildError, DocumentSigner};

/// Which flavour of SignedData to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// PAdES baseline B-B / CAdES (RFC 5652 OIDs, SHA-256, ECDSA): signed attributes
    /// content-type, message-digest and signing-certificate-v2; no signing-time (PAdES puts
    /// the claimed time in the signature dictionary's `/M`).
    Pades,
    /// GB/T 35275 (SM3, SM2): signed attributes content-type, signing-time, message-digest.
    Gm,
}

impl Profile {
    /// The profile for keys of `algorithm`.
    pub fn for_key(algorithm: KeyAlgorithm) -> Self {
        match algorithm {
            KeyAlgorithm::P256 => Self::Pades,
            KeyAlgorithm::Sm2 => Self::Gm,
        }
    }

    fn oids(self) -> (&'static str, &'static str, &'static str, &'static str) {
        // (SignedData, data, digest, signature)
        match self {
            Self::Pades => (oid::SIGNED_DATA, oid::DATA, oid::SHA256, oid::ECDSA_SHA256),
            Self::Gm => (oid::SIGNED_DATA_GM, oid::DATA_GM, oid::SM3, oid::SM2_SM3),
        }
    }
}

/// id-aa-signatureTimeStampToken (RFC 3161 appendix A).
pub const SIGNATURE_TIME_STAMP_TOKEN: &str = "1.2.840.113549.1.9.16.2.14";

/// `[1] IMPLICIT` (constructed): SignerInfo.unsignedAttrs.
const UNSIGNED_ATTRS: u8 = 0xa1;

/// Worst-case DER ECDSA / SM2 signature length: SEQUENCE { INTEGER(33), INTEGER(33) }.
const MAX_DER_SIGNATURE: usize = 72;

fn o(dotted: &str) -> Vec<u8> {
    write::oid(dotted).unwrap_or_else(|| unreachable!("constant OID {dotted}"))
}

fn set(parts: &[&[u8]]) -> Vec<u8> {
    write::constructed(tag::SET, parts)
}

fn attribute(id: &str, value: &[u8]) -> Vec<u8> {
    write::seq(&[&o(id), &set(&[value])])
}

/// The signed attributes, each a whole DER Attribute, sorted as DER sorts a SET OF.
fn signed_attrs(
    profile: Profile,
    cert: &[u8],
    content_digest: &[u8; 32],
    time: OffsetDateTime,
) -> Result<Vec<Vec<u8>>, BuildError> {
    let (_, data, _, _) = profile.oids();
    let mut attrs = vec![
        attribute(oid::CONTENT_TYPE, &o(data)),
        attribute(oid::MESSAGE_DIGEST, &write::octets(content_digest)),
    ];
    match profile {
        Profile::Pades => {
            let (issuer, serial) = cert_issuer_serial(cert)
                .ok_or_else(|| BuildError::Field("the signer certificate's issuer".into()))?;
            let general_names = write::seq(&[&write::constructed(0xa4, &[issuer])]);
            let issuer_serial = write::seq(&[&general_names, serial]);
            // hashAlgorithm omitted: SHA-256 is the DEFAULT (RFC 5035).
            let cert_id = write::seq(&[&write::octets(&sha256(cert)), &issuer_serial]);
            let signing_cert = write::seq(&[&write::seq(&[&cert_id])]);
            attrs.push(attribute(oid::SIGNING_CERTIFICATE_V2, &signing_cert));
        }
        Profile::Gm => attrs.push(attribute(oid::SIGNING_TIME, &write::time(time))),
    }
    attrs.sort();
    Ok(attrs)
}

/// Assembles the ContentInfo around the signed attributes and a signature value.
fn assemble(
    profile: Profile,
    cert: &[u8],
    chain: &[Vec<u8>],
    attrs: &[Vec<u8>],
    signature: &[u8],
    time_stamp: Option<&[u8]>,
) -> Result<Vec<u8>, BuildError> {
    let (signed_data, data, digest, sig_alg) = profile.oids();
    let (issuer, serial) = cert_issuer_serial(cert)
        .ok_or_else(|| BuildError::Field("the signer certificate's issuer and serial".into()))?;
    let digest_alg = write::seq(&[&o(digest)]);
    let attr_refs: Vec<&[u8]> = attrs.iter().map(Vec::as_slice).collect();
    let signed_attrs = write::constructed(tag::CONTEXT_0, &attr_refs);
    let sig_alg = write::seq(&[&o(sig_alg)]);
    let signature = write::octets(signature);
    let issuer_serial = write::seq(&[issuer, serial]);
    let version = write::int(1);
    let mut parts: Vec<&[u8]> = vec![
        &version,
        &issuer_serial,
        &digest_alg,
        &signed_attrs,
        &sig_alg,
        &signature,
    ];
    // RFC 3161 appendix A: the token over the signature value, as the unsigned attribute
    // id-aa-signatureTimeStampToken (`[1] IMPLICIT SET OF Attribute`).
    let unsigned = time_stamp.map(|token| {
        write::constructed(
            UNSIGNED_ATTRS,
            &[&attribute(SIGNATURE_TIME_STAMP_TOKEN, token)],
        )
    });
    if let Some(u) = &unsigned {
        parts.push(u);
    }
    let signer_info = write::seq(&parts);
    let mut certs: Vec<&[u8]> = vec![cert];
    certs.extend(chain.iter().map(Vec::as_slice));
    let body = write::seq(&[
        &write::int(1),
        &set(&[&digest_alg]),
        &write::seq(&[&o(data)]),
        &write::constructed(tag::CONTEXT_0, &certs),
        &set(&[&signer_info]),
    ]);
    Ok(write::seq(&[
        &o(signed_data),
        &write::constructed(tag::CONTEXT_0, &[&body]),
    ]))
}

/// A detached SignedData over content whose digest is `content_digest` (SHA-256 for P-256
/// keys, SM3 for SM2 keys), signed by `signer` at `time` (written as signing-time in the GM
/// profile only), with `chain` (DER) after the signer's certificate.
pub fn build_detached(
    signer: &DocumentSigner<'_>,
    chain: &[Vec<u8>],
    content_digest: &[u8; 32],
    time: OffsetDateTime,
) -> Result<Vec<u8>, BuildError> {
    let profile = Profile::for_key(signer.algorithm());
    let cert = signer.signer_cert();
    let attrs = signed_attrs(profile, cert, content_digest, time)?;
    let attr_refs: Vec<&[u8]> = attrs.iter().map(Vec::as_slice).collect();
    let signature = signer.sign_message(&set(&attr_refs))?.to_der();
    let token = signer.time_stamp(&signature)?;
    assemble(profile, cert, chain, &attrs, &signature, token.as_deref())
}

/// The longest [`build_detached`] can be for this signer and chain (a 72-byte signature and
/// the longest time encoding); no device call.
pub fn max_detached_len(signer: &DocumentSigner<'_>, chain: &[Vec<u8>]) -> usize {
    let profile = Profile::for_key(signer.algorithm());
    let cert = signer.signer_cert();
    // GeneralizedTime (year 2050 on) is the longer time encoding.
    let late =
        OffsetDateTime::from_unix_timestamp(2_556_144_000).unwrap_or(OffsetDateTime::now_utc());
    signed_attrs(profile, cert, &[0xff; 32], late)
        .and_then(|attrs| {
            assemble(
                profile,
                cert,
                chain,
                &attrs,
                &[0xff; MAX_DER_SIGNATURE],
                None,
            )
        })
        .map(|v| v.len() + signer.time_stamp_reserve())
        // An unreadable certificate fails in build_detached too; any size will do.
        .unwrap_or(4096 + cert.len() + chain.iter().map(Vec::len).sum::<usize>())
}
