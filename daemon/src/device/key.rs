//! Keys and certificates on a token, and signing with them.

use std::fmt;
use std::sync::{Arc, Mutex};

use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState};

use super::error::{DeviceError, DeviceResult};
use super::keys::{curve_from_params, public_key};
use super::owner::TokenOwner;
use super::profile::{MechanismProfile, SignatureEncoding};
use crate::crypto::{KeyAlgorithm, PrehashSigner, PublicKey, RawSignature, SignerError};

/// How a key or certificate is found on a token: by CKA_ID or by CKA_LABEL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeySelector {
    /// CKA_ID bytes.
    Id(Vec<u8>),
    /// CKA_LABEL text.
    Label(String),
}

impl fmt::Display for KeySelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySelector::Id(id) => write!(f, "id {}", hex::encode(id)),
            KeySelector::Label(label) => write!(f, "label `{label}`"),
        }
    }
}

impl KeySelector {
    fn template(&self, class: ObjectClass) -> Vec<Attribute> {
        let selector = match self {
            KeySelector::Id(id) => Attribute::Id(id.clone()),
            KeySelector::Label(label) => Attribute::Label(label.as_bytes().to_vec()),
        };
        vec![Attribute::Class(class), selector]
    }
}

/// Finds exactly one object of `class` matching `selector`.
fn find_one(
    owner: &TokenOwner,
    session: &Session,
    selector: &KeySelector,
    class: ObjectClass,
    what: &'static str,
) -> DeviceResult<ObjectHandle> {
    let found = session
        .find_objects(&selector.template(class))
        .map_err(|e| owner.error(e))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(DeviceError::ObjectNotFound {
            what,
            selector: selector.to_string(),
            serial: owner.serial().to_owned(),
        }),
        _ => Err(DeviceError::BadKey(format!(
            "{} {what}s match {selector}; give each key its own CKA_ID",
            found.len()
        ))),
    }
}

fn attribute_bytes(attribute: &Attribute) -> Option<&[u8]> {
    match attribute {
        Attribute::Id(v) | Attribute::EcParams(v) | Attribute::EcPoint(v) | Attribute::Value(v) => {
            Some(v)
        }
        _ => None,
    }
}

/// Reads raw byte attributes of an object, in the order asked.
fn read_bytes(
    owner: &TokenOwner,
    session: &Session,
    object: ObjectHandle,
    types: &[AttributeType],
) -> DeviceResult<Vec<Vec<u8>>> {
    let attributes = session
        .get_attributes(object, types)
        .map_err(|e| owner.error(e))?;
    types
        .iter()
        .map(|wanted| {
            attributes
                .iter()
                .find(|a| a.attribute_type() == *wanted)
                .and_then(attribute_bytes)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| DeviceError::BadKey(format!("attribute {wanted} is missing")))
        })
        .collect()
}

/// A private key on a token, usable as a [`PrehashSigner`]. The handle is cached per pool
/// generation and looked up again after the token was replugged.
#[derive(Debug)]
pub struct TokenKey {
    owner: Arc<TokenOwner>,
    selector: KeySelector,
    public_key: PublicKey,
    mechanism: (u64, SignatureEncoding),
    handle: Mutex<Option<(u64, ObjectHandle)>>,
    /// On a device driven through a [`super::DeviceBackend`]: the device's name for the key.
    backend_key: Option<String>,
}

impl TokenKey {
    /// Opens a key by its public half (a public object, readable before login) and decides SM2
    /// or P-256 from its attributes. The private key is found at the first signature, when the
    /// token is logged in and its private objects are visible.
    pub fn open(owner: Arc<TokenOwner>, selector: KeySelector) -> DeviceResult<Self> {
        if let Some(backend) = owner.backend() {
            let name = backend.key_name(&selector)?;
            let public_key = backend.public_key(&name)?;
            return Ok(Self {
                owner,
                selector,
                public_key,
                mechanism: (0, SignatureEncoding::Raw),
                handle: Mutex::new(None),
                backend_key: Some(name),
            });
        }
        let (public_key, mechanism) = owner.run(|lease| {
            let session = lease.session();
            let public = find_one(
                &owner,
                session,
                &selector,
                ObjectClass::PUBLIC_KEY,
                "public key",
            )?;
            let key_type = session
                .get_attributes(public, &[AttributeType::KeyType])
                .map_err(|e| owner.error(e))?
                .into_iter()
                .find_map(|a| match a {
                    Attribute::KeyType(t) => Some(t),
                    _ => None,
                })
                .ok_or_else(|| DeviceError::BadKey("CKA_KEY_TYPE is missing".into()))?;
            let [params, point] = read_bytes(
                &owner,
                session,
                public,
                &[AttributeType::EcParams, AttributeType::EcPoint],
            )?
            .try_into()
            .expect("two attributes asked");
            let algorithm = if key_type == KeyType::EC {
                curve_from_params(&params).ok_or_else(|| {
                    DeviceError::BadKey(format!(
                        "the key's curve (CKA_EC_PARAMS {}) is neither P-256 nor SM2",
                        hex::encode(&params)
                    ))
                })?
            } else {
                KeyAlgorithm::Sm2 // a vendor-defined SM2 key type, checked against the profile below
            };
            let mechanism = match algorithm {
                KeyAlgorithm::P256 => (u64::from(MechanismType::ECDSA), SignatureEncoding::Raw),
                KeyAlgorithm::Sm2 => {
                    let profile: MechanismProfile = owner.module().profile(lease.slot)?;
                    if key_type != KeyType::EC && u64::from(key_type) != profile.key_type {
                        return Err(DeviceError::BadKey(format!(
                            "key type {key_type} is not the SM2 key type of profile `{}` ({:#x})",
                            profile.name, profile.key_type
                        )));
                    }
                    (profile.sign_raw, profile.encoding)
                }
            };
            let public_key = public_key(algorithm, &point).map_err(DeviceError::BadKey)?;
            Ok((public_key, mechanism))
        })?;
        Ok(Self {
            owner,
            selector,
            public_key,
            mechanism,
            handle: Mutex::new(None),
            backend_key: None,
        })
    }

    /// The selector this key was opened with.
    pub fn selector(&self) -> &KeySelector {
        &self.selector
    }

    /// The token this key lives on.
    pub fn owner(&self) -> &Arc<TokenOwner> {
        &self.owner
    }

    /// Whether the private half is on the token; `None` while the token is not logged in
    /// (private objects are invisible then). Nothing is signed to find out.
    pub fn private_key_present(&self) -> DeviceResult<Option<bool>> {
        if let (Some(backend), Some(name)) = (self.owner.backend(), &self.backend_key) {
            return backend.key_present(name);
        }
        self.owner.run(|lease| {
            let session = lease.session();
            if !is_user_session(&self.owner, session)? {
                return Ok(None);
            }
            match find_one(
                &self.owner,
                session,
                &self.selector,
                ObjectClass::PRIVATE_KEY,
                "private key",
            ) {
                Ok(_) => Ok(Some(true)),
                Err(DeviceError::ObjectNotFound { .. }) => Ok(Some(false)),
                Err(e) => Err(e),
            }
        })
    }

    /// Signs a 32-byte digest on the device and returns `r‖s`.
    pub fn sign(&self, digest: &[u8; 32]) -> DeviceResult<RawSignature> {
        if let (Some(backend), Some(name)) = (self.owner.backend(), &self.backend_key) {
            return backend.sign(name, digest);
        }
        let (code, encoding) = self.mechanism;
        let mechanism = match self.public_key.algorithm {
            KeyAlgorithm::P256 => Mechanism::Ecdsa,
            KeyAlgorithm::Sm2 => {
                let kind = MechanismType::new_vendor_defined(code).map_err(|e| {
                    DeviceError::Other(format!("mechanism {code:#x} is not vendor-defined: {e}"))
                })?;
                Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(kind, None))
            }
        };
        let what = match self.public_key.algorithm {
            KeyAlgorithm::P256 => "ECDSA sign",
            KeyAlgorithm::Sm2 => "SM2 raw sign",
        };
        let output = self.owner.run(|lease| {
            let handle = self.handle(lease.session(), lease.generation)?;
            let _watch = self.owner.module().watch("sign");
            lease
                .session()
                .sign(&mechanism, handle, digest)
                .map_err(|e| match self.owner.error(e) {
                    DeviceError::MechanismInvalid { .. } => DeviceError::MechanismInvalid {
                        mechanism: code,
                        what,
                    },
                    other => other,
                })
        });
        if let Err(DeviceError::KeyHandleInvalid { .. }) = &output {
            *self.handle.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        decode(&output?, encoding)
    }

    fn handle(&self, session: &Session, generation: u64) -> DeviceResult<ObjectHandle> {
        let mut cached = self.handle.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached_generation, handle)) = *cached {
            if cached_generation == generation {
                return Ok(handle);
            }
        }
        let handle = match find_one(
            &self.owner,
            session,
            &self.selector,
            ObjectClass::PRIVATE_KEY,
            "private key",
        ) {
            // Private objects are invisible until the user logs in.
            Err(DeviceError::ObjectNotFound { .. }) if !is_user_session(&self.owner, session)? => {
                return Err(DeviceError::UserNotLoggedIn)
            }
            other => other?,
        };
        *cached = Some((generation, handle));
        Ok(handle)
    }
}

pub(crate) fn is_user_session(owner: &TokenOwner, session: &Session) -> DeviceResult<bool> {
    let info = session.get_session_info().map_err(|e| owner.error(e))?;
    Ok(matches!(
        info.session_state(),
        SessionState::RoUser | SessionState::RwUser
    ))
}

fn decode(output: &[u8], encoding: SignatureEncoding) -> DeviceResult<RawSignature> {
    let result = match encoding {
        SignatureEncoding::Raw if output.len() != 64 => {
            return Err(DeviceError::BadSignature(format!(
                "expected 64 bytes r||s, got {} bytes",
                output.len()
            )))
        }
        SignatureEncoding::Der => RawSignature::from_der(output),
        SignatureEncoding::Raw | SignatureEncoding::Any => RawSignature::from_any(output),
    };
    result.map_err(|e| DeviceError::BadSignature(e.to_string()))
}

impl PrehashSigner for TokenKey {
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    fn sign_prehash(&self, digest: &[u8; 32]) -> Result<RawSignature, SignerError> {
        Ok(self.sign(digest)?)
    }

    fn device_digest(&self, message: &[u8]) -> Option<Result<[u8; 32], SignerError>> {
        let (Some(backend), Some(name)) = (self.owner.backend(), &self.backend_key) else {
            return None;
        };
        match backend.digest(name, message) {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => Some(Err(e.into())),
        }
    }
}

/// Reads the DER of the certificate stored with `selector` (CKO_CERTIFICATE, CKA_VALUE).
pub fn certificate_der(owner: &TokenOwner, selector: &KeySelector) -> DeviceResult<Vec<u8>> {
    if let Some(backend) = owner.backend() {
        let name = backend.key_name(selector)?;
        return backend.certificate(&name);
    }
    owner.run(|lease| {
        let session = lease.session();
        let cert = find_one(
            owner,
            session,
            selector,
            ObjectClass::CERTIFICATE,
            "certificate",
        )?;
        let [value] = read_bytes(owner, session, cert, &[AttributeType::Value])?
            .try_into()
            .expect("one attribute asked");
        Ok(value)
    })
}
