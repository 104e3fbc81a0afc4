//! Key lifecycle on a token: generate a key pair that never leaves it, store the CA's
//! certificate next to it.

use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, CertificateType, KeyType, ObjectClass};

use super::error::{DeviceError, DeviceResult};
use super::keys::{public_key, P256_OID_DER, SM2_OID_DER};
use super::owner::TokenOwner;
use crate::crypto::{KeyAlgorithm, PublicKey};

/// A key pair to generate: its curve and how it will be found again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKeyPair {
    /// SM2 (the module's profile decides the mechanism and key type) or P-256.
    pub algorithm: KeyAlgorithm,
    /// CKA_ID of both halves (and later of the certificate).
    pub id: Vec<u8>,
    /// CKA_LABEL of both halves.
    pub label: String,
}

/// Generates a key pair on the logged-in token: the private half is a token object,
/// CKA_PRIVATE, CKA_SENSITIVE and not extractable. Refuses a CKA_ID that is already in use.
pub fn generate_key_pair(owner: &TokenOwner, spec: &NewKeyPair) -> DeviceResult<PublicKey> {
    if spec.id.is_empty() {
        return Err(DeviceError::BadKey(
            "a new key needs a non-empty CKA_ID".into(),
        ));
    }
    owner.run(|lease| {
        let session = lease.session();
        if !super::key::is_user_session(owner, session)? {
            return Err(DeviceError::UserNotLoggedIn);
        }
        let taken = session
            .find_objects(&[Attribute::Id(spec.id.clone())])
            .map_err(|e| owner.error(e))?;
        if !taken.is_empty() {
            return Err(DeviceError::BadKey(format!(
                "CKA_ID {} is already used by {} object(s) on token {}; choose another id",
                hex::encode(&spec.id),
                taken.len(),
                owner.serial()
            )));
        }
        let (mechanism, key_type, params, what) = match spec.algorithm {
            KeyAlgorithm::P256 => (
                Mechanism::EccKeyPairGen,
                KeyType::EC,
                P256_OID_DER.to_vec(),
                "EC key-pair generation",
            ),
            KeyAlgorithm::Sm2 => {
                let profile = owner.module().profile(lease.slot)?;
                let kind = MechanismType::new_vendor_defined(profile.keygen).map_err(|e| {
                    DeviceError::Other(format!(
                        "keygen mechanism {:#x} is not vendor-defined: {e}",
                        profile.keygen
                    ))
                })?;
                let key_type = KeyType::new_vendor_defined(profile.key_type).map_err(|e| {
                    DeviceError::Other(format!(
                        "SM2 key type {:#x} is not vendor-defined: {e}",
                        profile.key_type
                    ))
                })?;
                (
                    Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(kind, None)),
                    key_type,
                    SM2_OID_DER.to_vec(),
                    "SM2 key-pair generation",
                )
            }
        };
        let code = u64::from(mechanism.mechanism_type());
        let label = spec.label.as_bytes().to_vec();
        let public_template = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::KeyType(key_type),
            Attribute::EcParams(params),
            Attribute::Verify(true),
            Attribute::Id(spec.id.clone()),
            Attribute::Label(label.clone()),
        ];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::KeyType(key_type),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Id(spec.id.clone()),
            Attribute::Label(label),
        ];
        let (public, _private) = session
            .generate_key_pair(&mechanism, &public_template, &private_template)
            .map_err(|e| match owner.error(e) {
                DeviceError::MechanismInvalid { .. } => DeviceError::MechanismInvalid {
                    mechanism: code,
                    what,
                },
                other => other,
            })?;
        let point = session
            .get_attributes(public, &[cryptoki::object::AttributeType::EcPoint])
            .map_err(|e| owner.error(e))?
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(p) => Some(p),
                _ => None,
            })
            .ok_or_else(|| DeviceError::BadKey("the new key has no CKA_EC_POINT".into()))?;
        let key = public_key(spec.algorithm, &point).map_err(DeviceError::BadKey)?;
        tracing::info!(token = %owner.serial(), id = %hex::encode(&spec.id), algorithm = ?spec.algorithm, "key pair generated on the device");
        Ok(key)
    })
}

/// Stores a certificate (CKO_CERTIFICATE, CKC_X_509) with `id` as its CKA_ID. The caller checks
/// first that it certifies the key with that id ([`crate::custody::keys::import_certificate`]).
/// Refuses when a certificate with that id is already on the token.
pub fn store_certificate(
    owner: &TokenOwner,
    id: &[u8],
    label: &str,
    subject_der: &[u8],
    der: &[u8],
) -> DeviceResult<()> {
    owner.run(|lease| {
        let session = lease.session();
        let existing = session
            .find_objects(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::Id(id.to_vec()),
            ])
            .map_err(|e| owner.error(e))?;
        if !existing.is_empty() {
            return Err(DeviceError::BadKey(format!(
                "token {} already holds a certificate with CKA_ID {}",
                owner.serial(),
                hex::encode(id)
            )));
        }
        session
            .create_object(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::CertificateType(CertificateType::X_509),
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Id(id.to_vec()),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Subject(subject_der.to_vec()),
                Attribute::Value(der.to_vec()),
            ])
            .map_err(|e| owner.error(e))?;
        tracing::info!(token = %owner.serial(), id = %hex::encode(id), "certificate stored on the device");
        Ok(())
    })
}
