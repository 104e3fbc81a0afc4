//! A loaded device library: a PKCS#11 module (its context, profile and tokens) or an SKF
//! library (its devices).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::MechanismType;
use cryptoki::slot::Slot;

use super::backend::DeviceBackend;
use super::error::{DeviceError, DeviceResult};
use super::host::{CallGuard, DeviceHost, P11KitRemote, RemoteBackend, Setup};
use super::profile::{MechanismProfile, ProfileSetting};
use super::sdf::{SdfModule, SdfOwner};
use super::skf::{SkfError, SkfLibrary, SkfModule, SkfOwner};
use super::token::TokenInfo;
use super::{DeviceApi, DeviceModel, Isolation, ModuleConfig};

/// A PKCS#11 module, initialised once and finalised on drop.
#[derive(Debug)]
pub struct Module {
    name: String,
    path: PathBuf,
    /// The PKCS#11 context (`None` for SKF and SDF libraries); replaced when an isolated
    /// module is reconnected.
    context: RwLock<Option<Pkcs11>>,
    /// Set for a PKCS#11 module isolated through p11-kit's remoting.
    p11_kit: Option<Arc<P11KitRemote>>,
    /// One reconnection at a time.
    reconnecting: Mutex<()>,
    profile_setting: Option<ProfileSetting>,
    profile: Mutex<Option<MechanismProfile>>,
    model: DeviceModel,
    max_sessions: usize,
    /// Set for an SKF library (then `context` is `None`).
    skf: Option<SkfModule>,
    /// Set for an SDF library (then `context` is `None`).
    sdf: Option<Arc<SdfModule>>,
    /// Set for a library running in seald's helper process (then the others are `None`).
    host: Option<Arc<DeviceHost>>,
    /// The library's interface.
    api: DeviceApi,
}

impl Module {
    /// Loads and initialises the module a config entry names.
    pub fn open(config: &ModuleConfig) -> DeviceResult<Self> {
        let load_error = |reason: String| DeviceError::ModuleLoad {
            path: config.path.display().to_string(),
            reason,
        };
        match (config.isolation(), config.api) {
            (Isolation::Process, _) => return Self::open_isolated(config),
            (Isolation::P11Kit, DeviceApi::Skf | DeviceApi::Sdf) => {
                return Err(load_error(
                    "isolation = \"p11-kit\" is for PKCS#11 modules; an SKF or SDF library is isolated with isolation = \"process\"".into(),
                ))
            }
            _ => {}
        }
        let (skf, sdf) = match config.api {
            DeviceApi::Pkcs11 => (None, None),
            DeviceApi::Skf => {
                Self::validate(config)?;
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
                        digest: config.skf.digest,
                    }),
                    None,
                )
            }
            DeviceApi::Sdf => {
                Self::validate(config)?;
                let keys = config.sdf.keys.clone();
                let sdf = SdfModule::open(&config.path, config.sdf.ecc_max_len, keys)
                    .map_err(load_error)?;
                (None, Some(sdf))
            }
        };
        if skf.is_some() || sdf.is_some() {
            return Ok(Self::without_context(config, skf, sdf, None));
        }
        let p11_kit = match config.isolation() {
            Isolation::None | Isolation::Process => None,
            Isolation::P11Kit if config.profile.is_some() => {
                return Err(load_error(
                    "p11-kit's remoting carries only the standard mechanisms it knows: the vendor-defined SM2 mechanisms of this module's profile cannot cross it (see firmware-notes/p11-kit.md); isolate it with isolation = \"process\" instead".into(),
                ));
            }
            Isolation::P11Kit => Some(
                P11KitRemote::start(&config.name, &config.path, Self::call_timeout(config))
                    .map_err(load_error)?,
            ),
        };
        let library = p11_kit
            .as_ref()
            .map_or(config.path.as_path(), |remote| remote.client());
        let context = Self::load(library).map_err(load_error)?;
        let module = Self {
            name: config.name.clone(),
            path: config.path.clone(),
            context: RwLock::new(Some(context)),
            p11_kit,
            reconnecting: Mutex::new(()),
            profile_setting: config.profile.clone(),
            profile: Mutex::new(None),
            model: config.model,
            max_sessions: config.max_sessions,
            skf: None,
            sdf: None,
            host: None,
            api: DeviceApi::Pkcs11,
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

    /// Checks an SKF or SDF module's ABI settings before anything is loaded.
    fn validate(config: &ModuleConfig) -> DeviceResult<()> {
        let why = match config.api {
            DeviceApi::Pkcs11 => return Ok(()),
            DeviceApi::Skf => config
                .skf
                .abi()
                .validate()
                .map_err(|why| format!("[module.skf] {why}")),
            DeviceApi::Sdf => SdfModule::validate(config.sdf.ecc_max_len, &config.sdf.keys),
        };
        why.map_err(|reason| DeviceError::ModuleLoad {
            path: config.path.display().to_string(),
            reason,
        })
    }

    /// Starts a library in its helper process.
    fn open_isolated(config: &ModuleConfig) -> DeviceResult<Self> {
        Self::validate(config)?;
        let setup = Setup {
            name: config.name.clone(),
            path: config.path.clone(),
            api: config.api,
            profile: config.profile.clone(),
            model: config.model,
            max_sessions: config.max_sessions,
            skf: config.skf.clone(),
            sdf: config.sdf.clone(),
        };
        let host = DeviceHost::start(setup, Self::call_timeout(config))?;
        Ok(Self::without_context(
            config,
            None,
            None,
            Some(Arc::new(host)),
        ))
    }

    /// A module with no PKCS#11 context in seald: an SKF or SDF library, or a helper.
    fn without_context(
        config: &ModuleConfig,
        skf: Option<SkfModule>,
        sdf: Option<Arc<SdfModule>>,
        host: Option<Arc<DeviceHost>>,
    ) -> Self {
        Self {
            name: config.name.clone(),
            path: config.path.clone(),
            context: RwLock::new(None),
            p11_kit: None,
            reconnecting: Mutex::new(()),
            profile_setting: None,
            profile: Mutex::new(None),
            model: config.model,
            max_sessions: config.max_sessions,
            skf,
            sdf,
            host,
            api: config.api,
        }
    }

    fn call_timeout(config: &ModuleConfig) -> Duration {
        Duration::from_secs(config.call_timeout_secs.max(1))
    }

    /// Loads and initialises a PKCS#11 library.
    fn load(path: &std::path::Path) -> Result<Pkcs11, String> {
        let context = Pkcs11::new(path).map_err(|e| e.to_string())?;
        context
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| e.to_string())?;
        Ok(context)
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

    /// The cryptoki context (PKCS#11 modules only: see [`Module::skf`]). For a module isolated
    /// through p11-kit that was lost, this reconnects once its backoff has run, or says why
    /// it cannot yet.
    pub fn context(&self) -> DeviceResult<Pkcs11> {
        if let Some(remote) = &self.p11_kit {
            if remote.may_reconnect()? {
                self.reconnect(remote)?;
            }
        }
        Ok(self
            .context
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .expect("a PKCS#11 module's context lives until drop")
            .clone())
    }

    /// Replaces a lost p11-kit client by a fresh one (restarting the server if it is gone).
    /// The old client is not finalised: its sessions, still held by token owners, fail until
    /// the owners drop them (see [`Module::losses`]).
    fn reconnect(&self, remote: &Arc<P11KitRemote>) -> DeviceResult<()> {
        let _one = self.reconnecting.lock().unwrap_or_else(|e| e.into_inner());
        if !remote.may_reconnect()? {
            return Ok(()); // another thread just did it
        }
        let fresh = {
            let _watch = remote.watch("start the module");
            remote
                .ensure_server()
                .and_then(|()| Self::load(remote.client()))
        };
        match fresh {
            Ok(fresh) => {
                *self.context.write().unwrap_or_else(|e| e.into_inner()) = Some(fresh);
                remote.reconnected();
                tracing::info!(module = %self.name, "the PKCS#11 module was reconnected through a new p11-kit remote");
                Ok(())
            }
            Err(why) => Err(remote.reconnect_failed(why)),
        }
    }

    /// How many times this module's library was lost (always 0 unless isolated): sessions
    /// opened before a loss are dead.
    pub(crate) fn losses(&self) -> u64 {
        self.p11_kit.as_ref().map_or(0, |remote| remote.losses())
    }

    /// The p11-kit server of a PKCS#11 module isolated through p11-kit.
    pub fn p11_kit(&self) -> Option<&Arc<P11KitRemote>> {
        self.p11_kit.as_ref()
    }

    /// Maps a cryptoki error of this module; for an isolated module, an error that may mean
    /// its p11-kit remote died is checked (the client answers CKR_DEVICE_ERROR to everything
    /// then) and reported as [`DeviceError::LibraryDown`].
    pub(crate) fn error(&self, e: cryptoki::error::Error, serial: &str) -> DeviceError {
        let error = DeviceError::from_cryptoki(e, serial);
        let Some(remote) = &self.p11_kit else {
            return error;
        };
        if !matches!(
            error,
            DeviceError::DeviceFailure(_)
                | DeviceError::DeviceRemoved
                | DeviceError::SessionHandleInvalid
        ) {
            return error;
        }
        let context = self
            .context
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let alive = context.is_some_and(|c| {
            let _watch = remote.watch("check the module");
            c.get_library_info().is_ok()
        });
        if alive {
            return error;
        }
        remote.mark_lost("crashed (its p11-kit remote process ended)".into());
        remote.lost_error()
    }

    /// Watches a call that could hang, for a module isolated through p11-kit.
    pub(crate) fn watch(&self, what: &'static str) -> Option<CallGuard> {
        self.p11_kit.as_ref().map(|remote| remote.watch(what))
    }

    /// The SKF library, for an SKF module.
    pub fn skf(&self) -> Option<&SkfModule> {
        self.skf.as_ref()
    }

    /// The module's interface.
    pub fn api(&self) -> DeviceApi {
        self.api
    }

    /// The helper process running this module's library, when it is isolated.
    pub fn host(&self) -> Option<&Arc<DeviceHost>> {
        self.host.as_ref()
    }

    /// What every present token (or SKF device) says about itself.
    pub fn token_infos(&self) -> DeviceResult<Vec<TokenInfo>> {
        if let Some(host) = &self.host {
            return host.devices();
        }
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
        if let Some(host) = &self.host {
            return Some(Box::new(RemoteBackend::new(host.clone(), serial)));
        }
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
        if let Some(host) = &self.host {
            return host.holds(serial);
        }
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
        let Ok(context) = self.context() else {
            return false;
        };
        kind.is_ok_and(|kind| context.get_mechanism_info(slot, kind).is_ok())
    }

    /// Every present token with its slot (slots are looked up afresh each time).
    pub fn tokens(&self) -> DeviceResult<Vec<(Slot, TokenInfo)>> {
        if self.api != DeviceApi::Pkcs11 || self.host.is_some() {
            return Ok(Vec::new()); // SKF, SDF or in a helper: see `token_infos`
        }
        let context = self.context()?;
        let _watch = self.watch("list slots");
        let slots = context
            .get_slots_with_token()
            .map_err(|e| self.error(e, ""))?;
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
        let context = self.context.get_mut().map(|c| c.take()).unwrap_or_default();
        if let Some(context) = context {
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
            isolation: Some(Isolation::None),
            call_timeout_secs: 30,
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

    #[test]
    fn an_sm2_pkcs11_module_is_not_put_behind_p11_kit() {
        let mut config = config(DeviceApi::Pkcs11, Default::default(), Default::default());
        config.isolation = Some(Isolation::P11Kit);
        config.profile = Some(ProfileSetting::Named("sansec".into()));
        let err = Module::open(&config).unwrap_err().to_string();
        assert!(err.contains("vendor-defined SM2 mechanisms"), "{err}");
        assert!(err.contains("isolation = \"process\""), "{err}");
    }
}
