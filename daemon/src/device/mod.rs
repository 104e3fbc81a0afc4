//! Hardware: PKCS#11 modules and tokens, vendor mechanism profiles, PC/SC watcher.
//!
//! [`Devices`] loads the configured modules and hands out one [`TokenOwner`] per token serial.

mod backend;
mod config;
mod error;
pub mod host;
mod key;
mod keygen;
mod keys;
mod module;
mod owner;
pub mod pcsc;
mod pin;
mod profile;
pub mod sdf;
pub mod skf;
mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

pub use backend::{DeviceBackend, DeviceEvent};
pub use config::{DeviceApi, Isolation, ModuleConfig, SdfSettings, SkfDigest, SkfSettings};
pub use error::{DeviceError, DeviceResult, TriesLeft};
pub use key::{certificate_der, KeySelector, TokenKey};
pub use keygen::{generate_key_pair, store_certificate, NewKeyPair};
pub use keys::{curve_from_params, point_from_attribute, P256_OID_DER, SM2_OID_DER};
pub use module::Module;
pub use owner::{FinalTry, TokenOwner};
pub use pin::Pin;
pub use profile::{builtin, probe, MechanismProfile, ProfileSetting, SignatureEncoding};
pub use token::{PinState, TokenInfo};

/// What kind of device a module drives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceModel {
    /// A USB key: one operation at a time, one session.
    #[default]
    Ukey,
    /// A server cipher machine: a pool of sessions.
    CipherMachine,
}

/// All configured modules and the owners of the tokens found in them.
#[derive(Debug, Default)]
pub struct Devices {
    // Owners first: fields drop in order, and sessions must close before the module finalizes.
    owners: Mutex<HashMap<String, Arc<TokenOwner>>>,
    modules: Vec<Arc<Module>>,
}

/// One module's state for `sealctl devices` and the API.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleReport {
    /// Configured name.
    pub name: String,
    /// Library path.
    pub path: String,
    /// Its interface (`pkcs11`, `skf`).
    pub api: DeviceApi,
    /// Device model.
    pub model: DeviceModel,
    /// SM2 profile name, if any is known yet.
    pub profile: Option<String>,
    /// Tokens present now.
    pub tokens: Vec<TokenInfo>,
    /// Why the tokens could not be listed, if they could not.
    pub error: Option<String>,
}

impl Devices {
    /// Loads every configured module; the first that fails stops start-up with its reason.
    pub fn open(configs: &[ModuleConfig]) -> DeviceResult<Self> {
        let modules = configs
            .iter()
            .map(|config| Module::open(config).map(Arc::new))
            .collect::<DeviceResult<_>>()?;
        Ok(Self {
            modules,
            owners: Mutex::new(HashMap::new()),
        })
    }

    /// The loaded modules.
    pub fn modules(&self) -> &[Arc<Module>] {
        &self.modules
    }

    /// Lists every module and its present tokens.
    pub fn scan(&self) -> Vec<ModuleReport> {
        self.modules
            .iter()
            .map(|module| {
                let (found, error) = match module.tokens() {
                    Ok(found) => (found, None),
                    Err(e) => (Vec::new(), Some(e.to_string())),
                };
                // `auto` profiles are probed on the first present token.
                let mut profile = found
                    .first()
                    .and_then(|(slot, _)| module.profile(*slot).ok())
                    .map(|p| p.name);
                let mut tokens: Vec<TokenInfo> = found.into_iter().map(|(_, info)| info).collect();
                let mut error = error;
                if module.api() != DeviceApi::Pkcs11 || module.host().is_some() {
                    profile = None;
                    (tokens, error) = self.backend_tokens(module);
                }
                ModuleReport {
                    name: module.name().to_owned(),
                    path: module.path().display().to_string(),
                    api: module.api(),
                    model: module.model(),
                    profile,
                    tokens,
                    error,
                }
            })
            .collect()
    }

    /// The devices of a module driven through another interface than PKCS#11: what an existing
    /// owner says (it holds the device's sessions), else what the module reads.
    fn backend_tokens(&self, module: &Arc<Module>) -> (Vec<TokenInfo>, Option<String>) {
        let owned: Vec<Arc<TokenOwner>> = self
            .owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|o| Arc::ptr_eq(o.module(), module))
            .cloned()
            .collect();
        // A cipher machine with a pool: ask through the pool's device, open no second handle.
        if module.api() == DeviceApi::Sdf && !owned.is_empty() {
            return match owned.iter().map(|o| o.info()).collect() {
                Ok(tokens) => (tokens, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
        }
        let listed = match module.token_infos() {
            Ok(listed) => listed,
            Err(e) => return (Vec::new(), Some(e.to_string())),
        };
        let tokens = listed
            .into_iter()
            .map(|info| {
                owned
                    .iter()
                    .find(|o| o.serial() == info.serial)
                    .and_then(|o| o.info().ok())
                    .unwrap_or(info)
            })
            .collect();
        (tokens, None)
    }

    /// The loaded module with this configured name.
    pub fn module_named(&self, name: &str) -> Option<&Arc<Module>> {
        self.modules.iter().find(|m| m.name() == name)
    }

    /// After a card left: resets (logs out, drops the sessions of) the owners of `serials`, and
    /// of every token of `module` that is no longer present. Returns the serials reset.
    pub fn reset_removed(&self, module: &str, serials: &[String]) -> Vec<String> {
        // Asking a module whether it holds a token may wait on its library: not under the lock.
        let owners = self.owners_of(module);
        let mut reset = Vec::new();
        for (serial, owner) in owners {
            if serials.contains(&serial) || !owner.module().holds(&serial) {
                owner.reset();
                reset.push(serial);
            }
        }
        reset
    }

    /// The owners of `module`'s tokens, taken out of the lock.
    fn owners_of(&self, module: &str) -> Vec<(String, Arc<TokenOwner>)> {
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, owner)| owner.module().name() == module)
            .map(|(serial, owner)| (serial.clone(), owner.clone()))
            .collect()
    }

    /// After the module's library was lost (crashed, killed): resets (logs out, drops the
    /// sessions of) every owner of `module`. Returns the serials reset.
    pub fn reset_module(&self, module: &str) -> Vec<String> {
        let owners = self.owners_of(module);
        for (_, owner) in &owners {
            owner.reset();
        }
        owners.into_iter().map(|(serial, _)| serial).collect()
    }

    /// Whether the token `serial` is present and logged in (false when it is absent or cannot
    /// say).
    pub fn is_logged_in(&self, serial: &str) -> bool {
        self.token(serial)
            .and_then(|owner| owner.logged_in())
            .unwrap_or(false)
    }

    /// The owner of the token with this serial, in whichever module holds it now.
    pub fn token(&self, serial: &str) -> DeviceResult<Arc<TokenOwner>> {
        if let Some(owner) = self
            .owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(serial)
        {
            return Ok(owner.clone());
        }
        // Asking the modules may wait on a library: not under the lock.
        let module = self
            .modules
            .iter()
            .find(|m| m.holds(serial))
            .ok_or_else(|| DeviceError::TokenNotPresent {
                serial: serial.to_owned(),
            })?;
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let owner = owners
            .entry(serial.to_owned())
            .or_insert_with(|| Arc::new(TokenOwner::new(module.clone(), serial)));
        Ok(owner.clone())
    }
}
