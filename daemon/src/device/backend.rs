//! The seam between a token owner and the interface its device library speaks.
//!
//! PKCS#11 is built into [`super::TokenOwner`] (its session pool and login state); every other
//! interface (GM/T 0016 SKF for UKeys, GM/T 0018 SDF for cipher machines) implements
//! [`DeviceBackend`], and the owner hands each operation to it. The owner keeps what is common:
//! the final-try guard, PIN length checks, one PIN operation at a time, logging.

use super::error::DeviceResult;
use super::key::KeySelector;
use super::pin::Pin;
use super::token::TokenInfo;
use crate::crypto::{PublicKey, RawSignature};

/// What a token owner asks of a device that is not driven through PKCS#11 in seald's own
/// process (an SKF or SDF library, or any library in seald's device helper).
pub trait DeviceBackend: std::fmt::Debug + Send + Sync {
    /// Counts resets (removals, closed sessions): a signature that straddles one is not used.
    fn generation(&self) -> u64;
    /// Drops the device's sessions and login.
    fn reset(&self);
    /// Label, serial, manufacturer and PIN state.
    fn info(&self) -> DeviceResult<TokenInfo>;
    /// Whether the user's login holds.
    fn logged_in(&self) -> DeviceResult<bool>;
    /// Logs the user in with `pin`.
    fn login(&self, pin: &Pin) -> DeviceResult<()>;
    /// Logs the user out (twice is not an error).
    fn logout(&self) -> DeviceResult<()>;
    /// Changes the user PIN.
    fn change_pin(&self, old: &Pin, new: &Pin) -> DeviceResult<()>;
    /// Re-sets the user PIN with the administrator's.
    fn unblock(&self, admin: &Pin, new_user: &Pin) -> DeviceResult<()>;
    /// The device's own name for the key `selector` picks (a container, a key index).
    fn key_name(&self, selector: &KeySelector) -> DeviceResult<String>;
    /// The public key of key `name`.
    fn public_key(&self, name: &str) -> DeviceResult<PublicKey>;
    /// Whether key `name` has its private half (`None` when that cannot be known before
    /// login).
    fn key_present(&self, name: &str) -> DeviceResult<Option<bool>>;
    /// The certificate stored with key `name`.
    fn certificate(&self, name: &str) -> DeviceResult<Vec<u8>>;
    /// e = SM3(Z‖`message`) for key `name` computed by the device, when it is set to
    /// (`None`: seald computes it).
    fn digest(&self, _name: &str, _message: &[u8]) -> DeviceResult<Option<[u8; 32]>> {
        Ok(None)
    }
    /// Signs e = SM3(Z‖M) with key `name`.
    fn sign(&self, name: &str, e: &[u8; 32]) -> DeviceResult<RawSignature>;
}

/// A device insertion or removal, as a device library reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceEvent {
    /// The inserted device's serial, when it could be read.
    pub serial: Option<String>,
    /// True for an insertion.
    pub inserted: bool,
}
