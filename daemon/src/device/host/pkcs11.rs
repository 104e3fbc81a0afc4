//! A PKCS#11 token driven inside the device helper: for a PKCS#11 module that seald runs out
//! of process (`isolation = "process"`). The helper keeps what seald keeps in process (a
//! token owner with its session pool, keys opened by selector) and answers the
//! [`DeviceBackend`] calls with it; seald's own owner applies the PIN guards first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::super::backend::DeviceBackend;
use super::super::error::{DeviceError, DeviceResult};
use super::super::key::{certificate_der, KeySelector, TokenKey};
use super::super::owner::{FinalTry, TokenOwner};
use super::super::pin::Pin;
use super::super::token::TokenInfo;
use crate::crypto::{PrehashSigner, PublicKey, RawSignature};

/// One token of the helper's PKCS#11 module.
#[derive(Debug)]
pub struct Pkcs11Backend {
    owner: Arc<TokenOwner>,
    /// Keys opened, with the token generation they were opened in (a replug or a reset may
    /// bring other keys: they are opened again then).
    keys: Mutex<HashMap<String, (u64, Arc<TokenKey>)>>,
}

impl Pkcs11Backend {
    /// Drives the token `owner` holds.
    pub fn new(owner: Arc<TokenOwner>) -> Self {
        Self {
            owner,
            keys: Mutex::default(),
        }
    }

    /// The key a name from [`DeviceBackend::key_name`] stands for, opened again after a reset.
    fn key(&self, name: &str) -> DeviceResult<Arc<TokenKey>> {
        let generation = self.owner.generation();
        let cached = self
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .filter(|(opened, _)| *opened == generation)
            .map(|(_, key)| key.clone());
        if let Some(key) = cached {
            return Ok(key);
        }
        // Opened outside the lock: reading a key from the token must not hold up signatures.
        let key = Arc::new(TokenKey::open(self.owner.clone(), selector_of(name)?)?);
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), (generation, key.clone()));
        Ok(key)
    }
}

/// A selector as a key name: `id:<hex>` or `label:<text>`.
fn name_of(selector: &KeySelector) -> String {
    match selector {
        KeySelector::Id(id) => format!("id:{}", hex::encode(id)),
        KeySelector::Label(label) => format!("label:{label}"),
    }
}

fn selector_of(name: &str) -> DeviceResult<KeySelector> {
    let bad = || DeviceError::Other(format!("`{name}` is not a key name of this helper"));
    match name.split_once(':') {
        Some(("id", id)) => hex::decode(id).map(KeySelector::Id).map_err(|_| bad()),
        Some(("label", label)) => Ok(KeySelector::Label(label.to_owned())),
        _ => Err(bad()),
    }
}

impl DeviceBackend for Pkcs11Backend {
    fn generation(&self) -> u64 {
        self.owner.generation()
    }

    fn reset(&self) {
        self.owner.reset();
    }

    fn info(&self) -> DeviceResult<TokenInfo> {
        self.owner.info()
    }

    fn logged_in(&self) -> DeviceResult<bool> {
        self.owner.logged_in()
    }

    // seald's owner has applied the final-try guards before asking.
    fn login(&self, pin: &Pin) -> DeviceResult<()> {
        self.owner.login(pin, FinalTry::Confirmed)
    }

    fn logout(&self) -> DeviceResult<()> {
        self.owner.logout()
    }

    fn change_pin(&self, old: &Pin, new: &Pin) -> DeviceResult<()> {
        self.owner.change_pin(old, new)
    }

    fn unblock(&self, admin: &Pin, new_user: &Pin) -> DeviceResult<()> {
        self.owner.unblock(admin, new_user)
    }

    /// The selector itself: whether it names a key is found when the key is used (a
    /// certificate is read without its key).
    fn key_name(&self, selector: &KeySelector) -> DeviceResult<String> {
        Ok(name_of(selector))
    }

    fn public_key(&self, name: &str) -> DeviceResult<PublicKey> {
        Ok(self.key(name)?.public_key().clone())
    }

    fn key_present(&self, name: &str) -> DeviceResult<Option<bool>> {
        self.key(name)?.private_key_present()
    }

    fn certificate(&self, name: &str) -> DeviceResult<Vec<u8>> {
        certificate_der(&self.owner, &selector_of(name)?)
    }

    fn sign(&self, name: &str, e: &[u8; 32]) -> DeviceResult<RawSignature> {
        self.key(name)?.sign(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_carry_their_selector_both_ways() {
        for selector in [
            KeySelector::Id(vec![0x0a, 0x0b]),
            KeySelector::Label("seal: 合同章".into()),
        ] {
            assert_eq!(selector_of(&name_of(&selector)).unwrap(), selector);
        }
        assert!(selector_of("container-1").is_err());
        assert!(selector_of("id:zz").is_err());
    }
}
