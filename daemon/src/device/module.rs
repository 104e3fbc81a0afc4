//! A loaded device library: a PKCS#11 module (its context, profile and tokens) or an SKF
//! library (its devices).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::MechanismType;
use cryptoki::slot::Slot;

use super::backend::DeviceBackend;
use super::error::{DeviceError, DeviceResult};
use super::profile::{MechanismProfile, ProfileSetting};
use super::sdf::{SdfModule, SdfOwner};
use super::skf::{SkfError, SkfLibrary, SkfModule, SkfOwner};
use super::token::TokenInfo;
use super::{DeviceApi, DeviceModel, ModuleConfig};

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
    /// Set for an SKF library (then `context` is `None`).
    skf: Option<SkfModule>,
    /// Set for an SDF library (then `context` is `None`).
    sdf: Option<Arc<SdfModule>>,
}

impl Module {
    /// Loads and initialises the module a config entry names.
    pub fn open(config: &ModuleConfig) -> DeviceResult<Self> {
        let load_error = |reason: String| DeviceError::ModuleLoad {
            path: config.path.display().to_string(),
            reason,
        };
        let (skf, sdf) = match config.api {
            DeviceApi::Pkcs11 => (None, None),
            DeviceApi::Skf => {
                config
                    .skf
                    .abi()
                    .validate()
                    .map_err(|why| load_error(format!("[module.skf] {why}")))?;
                let library =
                    SkfLibrary::open(&config.path, config.skf.abi()).map_err(|e| match e {
                        SkfError::Load { reason, .. } => load_error(reason),
                        other => load_error(other.to_string()),
                    })?;
                let application = config.skf.application.clone();
                (
                    Some(SkfModule {
                        library,
                        application,
                    }),
                    None,
                )
            }
            DeviceApi::Sdf => {
                let keys = config.sdf.keys.clone();
                let sdf = SdfModule::open(&config.path, config.sdf.ecc_max_len, keys)
                    .map_err(load_error)?;
                (None, Some(sdf))
            }
        };
        if skf.is_some() || sdf.is_some() {
            return Ok(Self {
                name: config.name.clone(),
                path: config.path.clone(),
                context: None,
                profile_setting: None,
                profile: Mutex::new(None),
                model: config.model,
                max_sessions: config.max_sessions,
                skf,
                sdf,
            });
        }
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
            skf: None,
            sdf: None,
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

    /// The cryptoki context, for provisioning tools and tests (PKCS#11 modules only: see
    /// [`Module::skf`]).
    pub fn context(&self) -> &Pkcs11 {
        self.context
            .as_ref()
            .expect("a PKCS#11 module's context lives until drop")
    }

    /// The SKF library, for an SKF module.
    pub fn skf(&self) -> Option<&SkfModule> {
        self.skf.as_ref()
    }

    /// The module's interface.
    pub fn api(&self) -> DeviceApi {
        match (&self.skf, &self.sdf) {
            (Some(_), _) => DeviceApi::Skf,
            (_, Some(_)) => DeviceApi::Sdf,
            _ => DeviceApi::Pkcs11,
        }
    }

    /// What every present token (or SKF device) says about itself.
    pub fn token_infos(&self) -> DeviceResult<Vec<TokenInfo>> {
        if let Some(sdf) = &self.sdf {
            // A cipher machine that cannot be reached lists nothing.
            return Ok(sdf.describe().ok().into_iter().collect());
        }
        match &self.skf {
            None => Ok(self.tokens()?.into_iter().map(|(_, info)| info).collect()),
            // DEVINFO only: an application is opened by the device's owner, never here (closing
            // a second one could log the owner's out).
            Some(skf) => Ok(skf
                .library
                .devices()
                .map_err(DeviceError::from)?
                .iter()
                .map(|d| TokenInfo {
                    label: d.label.clone(),
                    serial: d.serial.clone(),
                    manufacturer: d.manufacturer.clone(),
                    model: "SKF".into(),
                    pin: super::PinState::unknown(),
                    pin_length: (0, 0),
                })
                .collect()),
        }
    }

    /// The backend that drives the token `serial` when this is not a PKCS#11 module.
    pub(crate) fn backend_for(&self, serial: &str) -> Option<Box<dyn DeviceBackend>> {
        if let Some(sdf) = &self.sdf {
            let owner = SdfOwner::new(sdf.clone(), serial, self.sessions_per_token());
            return Some(Box::new(owner));
        }
        self.skf
            .as_ref()
            .map(|skf| Box::new(SkfOwner::new(skf.clone(), serial)) as Box<dyn DeviceBackend>)
    }

    /// Whether the token (or SKF device) with this serial is present now.
    pub fn holds(&self, serial: &str) -> bool {
        if let Some(sdf) = &self.sdf {
            return sdf.serial().is_ok_and(|s| s == serial);
        }
        match &self.skf {
            None => self.find_slot(serial).is_ok(),
            Some(skf) => skf.library.connect_serial(serial).is_ok(),
        }
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
        let Some(context) = self.context.as_ref() else {
            return Ok(Vec::new()); // an SKF library: see `token_infos`
        };
        let slots = context
            .get_slots_with_token()
            .map_err(|e| DeviceError::from_cryptoki(e, ""))?;
        let mut tokens = Vec::with_capacity(slots.len());
        for slot in slots {
            match context.get_token_info(slot) {
                Ok(info) if info.token_initialized() => tokens.push((slot, TokenInfo::from(&info))),
                Ok(_) => {}
                // A token pulled between the two calls is simply absent, and one that cannot
                // be read (being created by another process, broken) must not hide the others.
                Err(e) => {
                    tracing::debug!(module = %self.name, error = %e, "a slot's token could not be read; skipped")
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(
        api: DeviceApi,
        skf: super::super::SkfSettings,
        sdf: super::super::SdfSettings,
    ) -> ModuleConfig {
        ModuleConfig {
            name: "vendor".into(),
            path: "/nonexistent/libvendor.so".into(),
            profile: None,
            model: DeviceModel::Ukey,
            max_sessions: 1,
            api,
            skf,
            sdf,
        }
    }

    #[test]
    fn a_bad_vendor_abi_is_refused_naming_the_setting() {
        let skf = super::super::SkfSettings {
            ulong: 6,
            ..Default::default()
        };
        let err = Module::open(&config(DeviceApi::Skf, skf, Default::default())).unwrap_err();
        assert!(err.to_string().contains("[module.skf] ulong is 6"), "{err}");
        let sdf = super::super::SdfSettings {
            ecc_max_len: 48,
            ..Default::default()
        };
        let err = Module::open(&config(DeviceApi::Sdf, Default::default(), sdf)).unwrap_err();
        assert!(
            err.to_string().contains("[module.sdf] ecc_max_len is 48"),
            "{err}"
        );
        let sdf = super::super::SdfSettings {
            keys: vec![0],
            ..Default::default()
        };
        let err = Module::open(&config(DeviceApi::Sdf, Default::default(), sdf)).unwrap_err();
        assert!(err.to_string().contains("[module.sdf] keys"), "{err}");
        // A library that is not there: the loader's own words, after one "cannot load".
        let err = Module::open(&config(
            DeviceApi::Skf,
            Default::default(),
            Default::default(),
        ))
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("cannot load device library /nonexistent/libvendor.so: "));
        assert_eq!(err.matches("cannot load").count(), 1, "{err}");
    }
}
