//! Signing keys kept open between stamps, so that a stamp asks the device only to sign: finding
//! a key and reading its public half are several PKCS#11 calls, each a round trip to a UKey.
//!
//! A key stays open for one login of its token: it is dropped when the token's sessions are
//! dropped (removal, reset) and whenever the daemon logs the token in or out. Whatever a stale
//! key might sign is still verified against the seal's certificate before it is used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::device::{DeviceResult, KeySelector, TokenKey, TokenOwner};

/// Token serial and CKA_ID.
type Slot = (String, Vec<u8>);

/// An open key and the session generation of its token it was opened in.
type Opened = (u64, Arc<TokenKey>);

/// Open keys by token serial and CKA_ID.
#[derive(Debug, Default)]
pub struct SigningKeys {
    open: Mutex<HashMap<Slot, Opened>>,
}

impl SigningKeys {
    /// The key with CKA_ID `id` on `owner`'s token: the one opened before if the token's
    /// sessions were not dropped since, else opened now.
    pub fn get(&self, owner: &Arc<TokenOwner>, id: &[u8]) -> DeviceResult<Arc<TokenKey>> {
        let generation = owner.generation();
        let slot = (owner.serial().to_owned(), id.to_vec());
        if let Some((opened_in, key)) = self.lock().get(&slot) {
            if *opened_in == generation && Arc::ptr_eq(key.owner(), owner) {
                return Ok(key.clone());
            }
        }
        let key = Arc::new(TokenKey::open(owner.clone(), KeySelector::Id(id.to_vec()))?);
        self.lock().insert(slot, (generation, key.clone()));
        Ok(key)
    }

    /// Closes every key of token `serial` (it was logged in or out, removed, or a stamp on it
    /// failed): the next stamp looks its key up afresh.
    pub fn forget(&self, serial: &str) {
        self.lock().retain(|(s, _), _| s != serial);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Slot, Opened>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}
