//! A SoftHSM token store in a temporary directory, shared by the tests of one process.
//!
//! A PKCS#11 library can be initialised once per process, so every test in a test binary uses
//! the same module and gets its own freshly initialised token (its own label and serial).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::UserType;
use seald::config::ModuleConfig;
use seald::device::{DeviceModel, Devices, Module, ProfileSetting, P256_OID_DER, SM2_OID_DER};
use secrecy::SecretString;

/// Where Debian installs SoftHSM's module.
pub const LIBRARY: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The SO PIN every test token gets.
pub const SO_PIN: &str = "so-secret-7391";
/// The user PIN every test token starts with.
pub const USER_PIN: &str = "user-secret-2468";

/// A temporary SoftHSM store and the daemon's device layer over it.
#[derive(Debug)]
pub struct SoftHsm {
    dir: tempfile::TempDir,
    /// The device layer with one module, `softhsm`, as a cipher machine with two sessions per
    /// token and the Sansec SM2 profile (which SoftHSM cannot honour).
    pub devices: Devices,
    init_lock: Mutex<()>,
}

/// A token provisioned for one test.
#[derive(Debug, Clone)]
pub struct TestToken {
    /// Its label.
    pub label: String,
    /// Its serial number, as the daemon identifies it.
    pub serial: String,
}

/// Which curve a generated key is on.
#[derive(Debug, Clone, Copy)]
pub enum Curve {
    /// NIST P-256.
    P256,
    /// The SM2 curve (SoftHSM makes the key but can only sign ECDSA with it).
    Sm2,
}

static SHARED: OnceLock<SoftHsm> = OnceLock::new();

fn secret(pin: &str) -> SecretString {
    SecretString::from(pin.to_owned())
}

impl SoftHsm {
    /// The process-wide SoftHSM store, created on first use.
    pub fn shared() -> &'static SoftHsm {
        Self::shared_with(Self::module_config())
    }

    /// [`Self::shared`] with another module entry (model, sessions); the first call in a
    /// process decides, later ones get the same store.
    pub fn shared_with(module: ModuleConfig) -> &'static SoftHsm {
        SHARED.get_or_init(|| {
            assert!(
                Path::new(LIBRARY).exists(),
                "{LIBRARY} is missing: install softhsm2 (scripts/setup.sh does)"
            );
            let dir = tempfile::tempdir().expect("temp dir");
            std::fs::create_dir(dir.path().join("tokens")).expect("token dir");
            let conf = dir.path().join("softhsm2.conf");
            std::fs::write(
                &conf,
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                    dir.path().join("tokens").display()
                ),
            )
            .expect("write softhsm2.conf");
            // Read by SoftHSM at C_Initialize; set once, before the module loads.
            std::env::set_var("SOFTHSM2_CONF", &conf);
            let devices = Devices::open(&[module]).expect("load SoftHSM");
            SoftHsm {
                dir,
                devices,
                init_lock: Mutex::new(()),
            }
        })
    }

    /// The module entry the shared store is loaded with.
    pub fn module_config() -> ModuleConfig {
        ModuleConfig {
            name: "softhsm".into(),
            path: LIBRARY.into(),
            profile: Some(ProfileSetting::Named("sansec".into())),
            model: DeviceModel::CipherMachine,
            max_sessions: 2,
            api: Default::default(),
            skf: Default::default(),
            sdf: Default::default(),
            isolation: None,
            call_timeout_secs: 30,
        }
    }

    /// The `softhsm2.conf` a child process needs to see the same tokens.
    pub fn conf_path(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// The loaded module.
    pub fn module(&self) -> &Arc<Module> {
        &self.devices.modules()[0]
    }

    /// Initialises a fresh token with [`SO_PIN`] and [`USER_PIN`].
    pub fn new_token(&self, label: &str) -> TestToken {
        let _guard = self.init_lock.lock().unwrap_or_else(|e| e.into_inner());
        let context = self.module().context().expect("PKCS#11 context");
        let empty = context
            .get_all_slots()
            .expect("slots")
            .into_iter()
            .find(|slot| {
                !context
                    .get_token_info(*slot)
                    .expect("token info")
                    .token_initialized()
            })
            .expect("SoftHSM always offers an empty slot");
        context
            .init_token(empty, &secret(SO_PIN), label)
            .expect("C_InitToken");
        // SoftHSM moves an initialised token to a new slot id: find it again by label.
        let (slot, info) = self
            .module()
            .tokens()
            .expect("tokens")
            .into_iter()
            .find(|(_, info)| info.label == label)
            .expect("the new token");
        let session = context.open_rw_session(slot).expect("session");
        session
            .login(UserType::So, Some(&secret(SO_PIN)))
            .expect("SO login");
        session.init_pin(&secret(USER_PIN)).expect("C_InitPIN");
        session.logout().expect("SO logout");
        TestToken {
            label: label.to_owned(),
            serial: info.serial,
        }
    }

    /// Generates a key pair with CKA_ID `id` as the user (then logs out), and returns the slot's
    /// token serial for convenience.
    pub fn generate_key(&self, token: &TestToken, id: &[u8], curve: Curve) {
        let params = match curve {
            Curve::P256 => P256_OID_DER.to_vec(),
            Curve::Sm2 => SM2_OID_DER.to_vec(),
        };
        self.as_user(token, |session| {
            session
                .generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &[
                        Attribute::Token(true),
                        Attribute::Id(id.to_vec()),
                        Attribute::EcParams(params.clone()),
                        Attribute::Verify(true),
                    ],
                    &[
                        Attribute::Token(true),
                        Attribute::Id(id.to_vec()),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Sign(true),
                        Attribute::KeyType(KeyType::EC),
                    ],
                )
                .expect("C_GenerateKeyPair");
        });
    }

    /// Stores a certificate object (CKO_CERTIFICATE, X.509) with CKA_ID `id`.
    pub fn import_certificate(&self, token: &TestToken, id: &[u8], der: &[u8]) {
        self.as_user(token, |session| {
            session
                .create_object(&[
                    Attribute::Class(ObjectClass::CERTIFICATE),
                    Attribute::CertificateType(cryptoki::object::CertificateType::X_509),
                    Attribute::Token(true),
                    Attribute::Id(id.to_vec()),
                    Attribute::Subject(b"\x30\x00".to_vec()),
                    Attribute::Value(der.to_vec()),
                ])
                .expect("C_CreateObject certificate");
        });
    }

    fn as_user(&self, token: &TestToken, f: impl FnOnce(&cryptoki::session::Session)) {
        let slot = self.module().find_slot(&token.serial).expect("token slot");
        let session = self
            .module()
            .context()
            .expect("PKCS#11 context")
            .open_rw_session(slot)
            .expect("session");
        session
            .login(UserType::User, Some(&secret(USER_PIN)))
            .expect("user login");
        f(&session);
        session.logout().expect("logout");
    }
}
