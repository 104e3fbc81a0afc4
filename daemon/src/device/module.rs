//! A loaded PKCS#11 module: its context, profile and tokens.

use std::path::PathBuf;
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::MechanismType;
use cryptoki::slot::Slot;

use super::error::{DeviceError, DeviceResult};
use super::profile::{MechanismProfile, ProfileSetting};
use super::token::TokenInfo;
use super::DeviceModel;
use super::ModuleConfig;

/// A PKCS#11 module, initialised once and finalised on drop.
#[derive(Debug)]
pub struct Module {
    name: String,
    path: PathBuf,
    context: Option<Pkcs11>,
    profile_setting: Option<ProfileSetting>,
    profile: Mutex<Option<MechanismProfile>>,
    model: DeviceModel,
    max_sessions: usize,
}

impl Module {
    /// Loads and initialises the module a config entry names.
    pub fn open(config: &ModuleConfig) -> DeviceResult<Self> {
        let load_error = |reason: String| DeviceError::ModuleLoad {
            path: config.path.display().to_string(),
            reason,
        };
        let context = Pkcs11::new(&config.path).map_err(|e| load_error(e.to_string()))?;
        context
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| load_error(e.to_string()))?;
        let module = Self {
            name: config.name.clone(),
            path: config.path.clone(),
            context: Some(context),
            profile_setting: config.profile.clone(),
            profile: Mutex::new(None),
            model: config.model,
            max_sessions: config.max_sessions,
        };
        if let Some(setting) = &module.profile_setting {
            // Named and custom profiles are known now; `auto` waits for a token to probe.
            let resolved = setting
                .resolve(None)
                .map_err(|reason| load_error(format!("profile: {reason}")))?;
            *module.profile.lock().expect("profile lock") = resolved;
        }
        Ok(module)
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The library path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The device model.
    pub fn model(&self) -> DeviceModel {
        self.model
    }

    /// Sessions a token owner may open: one for a UKey, the configured pool for a cipher machine.
    pub fn sessions_per_token(&self) -> usize {
        match self.model {
            DeviceModel::Ukey => 1,
            DeviceModel::CipherMachine => self.max_sessions,
        }
    }

    /// The cryptoki context, for provisioning tools and tests.
    pub fn context(&self) -> &Pkcs11 {
        self.context.as_ref().expect("context lives until drop")
    }

    /// The SM2 profile, probing the module's mechanism list for `auto`.
    pub fn profile(&self, slot: Slot) -> DeviceResult<MechanismProfile> {
        let mut cached = self.profile.lock().expect("profile lock");
        if let Some(profile) = cached.as_ref() {
            return Ok(profile.clone());
        }
        let no_profile = || DeviceError::NoSm2Profile {
            module: self.name.clone(),
        };
        let setting = self.profile_setting.as_ref().ok_or_else(no_profile)?;
        let supports = |code: u64| self.supports(slot, code);
        let profile = setting
            .resolve(Some(&supports))
            .map_err(DeviceError::Other)?
            .ok_or_else(no_profile)?;
        *cached = Some(profile.clone());
        Ok(profile)
    }

    /// True when the slot's token offers mechanism `code`. Asked one code at a time with
    /// C_GetMechanismInfo: cryptoki's C_GetMechanismList wrapper drops vendor-defined codes.
    pub fn supports(&self, slot: Slot, code: u64) -> bool {
        let kind = match code {
            c if c >= 0x8000_0000 => MechanismType::new_vendor_defined(c),
            c => MechanismType::try_from(c),
        };
        kind.is_ok_and(|kind| self.context().get_mechanism_info(slot, kind).is_ok())
    }

    /// Every present token with its slot (slots are looked up afresh each time).
    pub fn tokens(&self) -> DeviceResult<Vec<(Slot, TokenInfo)>> {
        let context = self.context();
        let slots = context
            .get_slots_with_token()
            .map_err(|e| DeviceError::from_cryptoki(e, ""))?;
        let mut tokens = Vec::with_capacity(slots.len());
        for slot in slots {
            match context.get_token_info(slot) {
                Ok(info) if info.token_initialized() => tokens.push((slot, TokenInfo::from(&info))),
                Ok(_) => {}
                Err(e) => match DeviceError::from_cryptoki(e, "") {
                    // A token pulled between the two calls is simply absent.
                    error if error.is_removal() => {}
                    error => return Err(error),
                },
            }
        }
        Ok(tokens)
    }

    /// The slot currently holding the token with this serial number.
    pub fn find_slot(&self, serial: &str) -> DeviceResult<Slot> {
        self.tokens()?
            .into_iter()
            .find(|(_, info)| info.serial == serial)
            .map(|(slot, _)| slot)
            .ok_or_else(|| DeviceError::TokenNotPresent {
                serial: serial.to_owned(),
            })
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // cryptoki ≥ 0.11 does not finalize on drop: do it here.
        if let Some(context) = self.context.take() {
            if let Err(e) = context.finalize() {
                tracing::warn!(module = %self.name, error = %e, "C_Finalize failed");
            }
        }
    }
}
