//! DER builders for v4 SESeal and SES_Signature. Keys stay wherever the [`PrehashSigner`] keeps
//! them (usually a token); the digest is computed here in software, and every signature a
//! device returns is verified before it is used.

use time::OffsetDateTime;

use super::der::{tag, write};
use super::parse::ParseError;
use super::types::{CertList, ExtData, FormatVersion, Seal, SealInfo, SesSignature};
use crate::cert::{signature_oid, CertError, Certificate};
use crate::crypto::{PrehashSigner, RawSignature, SignerError, VerifyError, VerifyingKey};

/// Why a seal or signature could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The device (or software key) refused or failed to sign.
    #[error("the signing key failed to sign: {0}")]
    Signer(SignerError),
    /// The device returned a signature that does not verify: nothing was produced.
    #[error(
        "the signing device returned a signature that does not verify ({0}); nothing was produced"
    )]
    BadDeviceSignature(VerifyError),
    /// The signer's public key cannot be used.
    #[error("the signer's public key is unusable: {0}")]
    BadKey(VerifyError),
    /// The device computed SM3(Z‖M) and got another value than seald.
    #[error("the device's SM3(Z‖M) differs from seald's; nothing was signed (the container's key may not be the certificate's, or the device computes Z differently: check the seal's key, or set [module.skf] digest = \"software\")")]
    DeviceDigestMismatch,
    /// The certificate given is unreadable.
    #[error("the certificate is unusable: {0}")]
    Cert(#[from] CertError),
    /// The certificate does not hold the signer's key.
    #[error("the certificate does not belong to the signing key")]
    KeyMismatch,
    /// A field cannot be encoded (bad OID, wrong string type, …).
    #[error("cannot encode {0}")]
    Field(String),
    /// Only v4 (GB/T 38540) objects are written.
    #[error("seald writes GB/T 38540 v4 only; {0}")]
    Unsupported(&'static str),
    /// No timestamp could be had and the policy requires one (the message names the TSA and
    /// what went wrong).
    #[error("{0}")]
    TimeStamp(String),
    /// The encoded result did not read back (a bug).
    #[error("the encoded result does not read back: {0}")]
    ReadBack(#[from] ParseError),
}

fn oid(dotted: &str) -> Result<Vec<u8>, BuildError> {
    write::oid(dotted).ok_or_else(|| BuildError::Field(format!("OID {dotted:?}")))
}

fn ia5(field: &str, s: &str) -> Result<Vec<u8>, BuildError> {
    if s.is_ascii() {
        Ok(write::ia5(s))
    } else {
        Err(BuildError::Field(format!(
            "{field}: IA5String must be ASCII"
        )))
    }
}

fn int(field: &str, v: i64) -> Result<Vec<u8>, BuildError> {
    u64::try_from(v)
        .map(write::int)
        .map_err(|_| BuildError::Field(format!("{field}: negative integer")))
}

fn ext_datas(list: &[ExtData]) -> Result<Vec<u8>, BuildError> {
    let mut items = Vec::with_capacity(list.len());
    for e in list {
        let mut parts = vec![oid(&e.id)?];
        if e.critical {
            parts.push(write::boolean(true)); // DEFAULT FALSE is omitted in DER
        }
        parts.push(write::octets(&e.value));
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        items.push(write::seq(&refs));
    }
    let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
    Ok(write::seq(&refs))
}

/// DER of a v4 SES_SealInfo: exactly the bytes the seal maker signs.
pub fn encode_seal_info(info: &SealInfo) -> Result<Vec<u8>, BuildError> {
    let h = &info.header;
    let header = write::seq(&[
        &ia5("header.ID", &h.id)?,
        &int("header.version", h.version)?,
        &ia5("header.Vid", &h.vid)?,
    ]);
    let p = &info.property;
    let (list_type, list) = match &p.cert_list {
        CertList::Certs(certs) => {
            let items: Vec<Vec<u8>> = certs.iter().map(|c| write::octets(c)).collect();
            let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
            (1, write::seq(&refs))
        }
        CertList::Digests(digests) => {
            let items: Vec<Vec<u8>> = digests
                .iter()
                .map(|d| write::seq(&[&write::printable(&d.algorithm), &write::octets(&d.value)]))
                .collect();
            let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
            (2, write::seq(&refs))
        }
    };
    let list_type = p.cert_list_type.unwrap_or(list_type);
    let property = write::seq(&[
        &int("property.type", p.seal_type)?,
        &write::utf8(&p.name),
        &int("property.certListType", list_type)?,
        &list,
        &write::generalized_time(p.create_date),
        &write::generalized_time(p.valid_start),
        &write::generalized_time(p.valid_end),
    ]);
    let pic = &info.picture;
    let picture = write::seq(&[
        &ia5("picture.type", &pic.kind)?,
        &write::octets(&pic.data),
        &int("picture.width", pic.width)?,
        &int("picture.height", pic.height)?,
    ]);
    let mut parts = vec![header, ia5("esID", &info.es_id)?, property, picture];
    if let Some(list) = &info.ext_datas {
        parts.push(ext_datas(list)?);
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    Ok(write::seq(&refs))
}

/// `SES_Signature.timeStamp` holding `token`: `[0] EXPLICIT BIT STRING`, as ofdrw writes it
/// (GB/T 38540 v4: `timeStamp [0] BIT STRING OPTIONAL`).
pub fn time_stamp_field(token: &[u8]) -> Vec<u8> {
    write::constructed(tag::CONTEXT_0, &[&write::bits(token)])
}

/// Signs `message` with `signer` (digest computed here, and by the device too when it is set
/// to make it) and verifies the result.
pub fn sign_message(
    signer: &dyn PrehashSigner,
    message: &[u8],
) -> Result<RawSignature, BuildError> {
    let vk = VerifyingKey::cached(signer.public_key()).map_err(BuildError::BadKey)?;
    let digest = vk.message_digest(message);
    // A device that makes the digest itself must agree with seald's before it signs it.
    if let Some(device) = signer.device_digest(message) {
        if device.map_err(BuildError::Signer)? != digest {
            return Err(BuildError::DeviceDigestMismatch);
        }
    }
    let sig = signer.sign_prehash(&digest).map_err(BuildError::Signer)?;
    vk.verify_digest(&digest, &sig)
        .map_err(BuildError::BadDeviceSignature)?;
    Ok(sig)
}

fn check_cert_key(cert_der: &[u8], signer: &dyn PrehashSigner) -> Result<(), BuildError> {
    let cert = Certificate::from_der(cert_der)?;
    if cert.public_key()? != signer.public_key() {
        return Err(BuildError::KeyMismatch);
    }
    Ok(())
}

/// Builds a v4 SESeal: the maker signs DER(SES_SealInfo) with the key of `maker_cert`.
pub fn build_seal(
    info: &SealInfo,
    maker_cert: &[u8],
    maker: &dyn PrehashSigner,
) -> Result<Seal, BuildError> {
    check_cert_key(maker_cert, maker)?;
    let info_der = encode_seal_info(info)?;
    let sig = sign_message(maker, &info_der)?;
    let der = write::seq(&[
        &info_der,
        &write::octets(maker_cert),
        &oid(signature_oid(maker.public_key().algorithm))?,
        &write::bits(&sig.to_der()),
    ]);
    Ok(Seal::parse(&der)?)
}

/// What a document signature says besides the seal.
#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    /// The seal, as parsed (its original bytes are embedded).
    pub seal: &'a Seal,
    /// timeInfo: when the document is signed.
    pub time_info: OffsetDateTime,
    /// dataHash: SM3 (SM2 keys) or SHA-256 (P-256 keys) of the protected data.
    pub data_hash: &'a [u8],
    /// propertyInfo: e.g. the path of the protected file in an OFD.
    pub property_info: &'a str,
    /// extDatas of TBS_Sign.
    pub ext_datas: Option<&'a [ExtData]>,
    /// The signer's certificate (DER).
    pub signer_cert: &'a [u8],
}

/// Builds a v4 SES_Signature: the signer signs DER(TBS_Sign) with the key of `signer_cert`.
pub fn build_signature(
    req: &SignRequest<'_>,
    signer: &dyn PrehashSigner,
) -> Result<SesSignature, BuildError> {
    DocumentSigner::new(req.seal, req.signer_cert, signer)?.sign(
        req.time_info,
        req.data_hash,
        req.property_info,
        req.ext_datas,
    )
}

/// Gets an RFC 3161 timestamp token over a signature value (the BIT STRING contents of
/// `SES_Signature.signature`) for `SES_Signature.timeStamp`. `Ok(None)`: sign without one
/// (the policy allows it); `Err`: nothing may be signed, the message says why.
pub trait TimeStamper: Sync {
    /// A token (DER TimeStampToken) over `signature_value`, already checked.
    fn time_stamp(&self, signature_value: &[u8]) -> Result<Option<Vec<u8>>, String>;

    /// The longest token this stamper hands back: room kept for it where space is reserved
    /// ahead (a PDF's `/Contents`).
    fn max_token_len(&self) -> usize {
        MAX_TIME_STAMP_TOKEN
    }
}

/// The longest timestamp token seald takes by default (a token with a TSA chain of a few
/// RSA or EC certificates fits).
pub const MAX_TIME_STAMP_TOKEN: usize = 8192;

/// One seal and one signing key, checked once (v4 seal, certificate of that key), for
/// signing any number of documents: a batch parses the certificate once, not per document.
/// `Sync`, so a batch can sign on several threads (a cipher machine's sessions).
pub struct DocumentSigner<'a> {
    seal: &'a Seal,
    signer_cert: &'a [u8],
    signer: &'a dyn PrehashSigner,
    signature_oid: Vec<u8>,
    time_stamper: Option<&'a dyn TimeStamper>,
}

impl std::fmt::Debug for DocumentSigner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentSigner")
            .field("es_id", &self.seal.info.es_id)
            .field("key", self.signer.public_key())
            .finish_non_exhaustive()
    }
}

impl<'a> DocumentSigner<'a> {
    /// Checks that `seal` is v4 and `signer_cert` holds `signer`'s public key.
    pub fn new(
        seal: &'a Seal,
        signer_cert: &'a [u8],
        signer: &'a dyn PrehashSigner,
    ) -> Result<Self, BuildError> {
        if seal.version != FormatVersion::V4 {
            return Err(BuildError::Unsupported("GM/T 0031 v1 seals are read-only"));
        }
        check_cert_key(signer_cert, signer)?;
        Ok(Self {
            seal,
            signer_cert,
            signer,
            signature_oid: oid(signature_oid(signer.public_key().algorithm))?,
            time_stamper: None,
        })
    }

    /// Asks `stamper` for a timestamp over every signature value this signer makes and puts
    /// it in `SES_Signature.timeStamp` (`[0] EXPLICIT BIT STRING`, after the signature), or in
    /// a CMS SignerInfo's unsigned `signature-time-stamp` attribute.
    pub fn with_time_stamper(mut self, stamper: &'a dyn TimeStamper) -> Self {
        self.time_stamper = Some(stamper);
        self
    }

    /// A timestamp token over `signature_value` from the stamper, if this signer has one and
    /// the policy gives one; `Err` when the policy requires one and none could be had.
    pub fn time_stamp(&self, signature_value: &[u8]) -> Result<Option<Vec<u8>>, BuildError> {
        match self.time_stamper {
            Some(stamper) => stamper
                .time_stamp(signature_value)
                .map_err(BuildError::TimeStamp),
            None => Ok(None),
        }
    }

    /// Bytes to keep free for a timestamp token and its wrapping (0 without a stamper).
    pub fn time_stamp_reserve(&self) -> usize {
        self.time_stamper
            .map_or(0, |s| s.max_token_len().saturating_add(32))
    }

    /// The seal this signer signs with (its DER goes into `Seal.esl`, its picture size sets a
    /// stamp's default size).
    pub fn seal(&self) -> &'a Seal {
        self.seal
    }

    /// The signer's certificate (DER).
    pub fn signer_cert(&self) -> &'a [u8] {
        self.signer_cert
    }

    /// Signs `message` (the digest is computed here: SM3 with the default user ID for SM2,
    /// SHA-256 for P-256); the device's signature is verified before it is returned.
    pub fn sign_message(&self, message: &[u8]) -> Result<RawSignature, BuildError> {
        sign_message(self.signer, message)
    }

    /// The signing key's algorithm: it decides the dataHash digest (SM3 for SM2, SHA-256 for
    /// P-256) and the signature method.
    pub fn algorithm(&self) -> crate::crypto::KeyAlgorithm {
        self.signer.public_key().algorithm
    }

    /// Builds and signs one SES_Signature (dataHash, timeInfo, propertyInfo, extDatas); the
    /// device's signature is verified before the result is returned.
    pub fn sign(
        &self,
        time_info: OffsetDateTime,
        data_hash: &[u8],
        property_info: &str,
        extensions: Option<&[ExtData]>,
    ) -> Result<SesSignature, BuildError> {
        let mut parts = vec![
            write::int(4),
            self.seal.der.clone(),
            write::generalized_time(time_info),
            write::bits(data_hash),
            ia5("propertyInfo", property_info)?,
        ];
        if let Some(list) = extensions {
            parts.push(write::constructed(tag::CONTEXT_0, &[&ext_datas(list)?]));
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let tbs = write::seq(&refs);
        let sig = sign_message(self.signer, &tbs)?;
        let value = sig.to_der();
        let mut parts = vec![
            tbs,
            write::octets(self.signer_cert),
            self.signature_oid.clone(),
            write::bits(&value),
        ];
        if let Some(token) = self.time_stamp(&value)? {
            parts.push(time_stamp_field(&token));
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        Ok(SesSignature::parse(&write::seq(&refs))?)
    }
}
