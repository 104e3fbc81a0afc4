//! Shared test harness: a temp store and config per test, the built cdylib loaded through
//! `cryptoki`, and the `hsm-sim` CLI run as a child process.
//!
//! The module's state is process-global, so tests in one binary take a lock and finalize
//! before the next one initializes.
#![allow(dead_code)]

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

static LOCK: Mutex<()> = Mutex::new(());

pub const SO_PIN: &str = "87654321";
pub const USER_PIN: &str = "123456";
pub const SERIAL0: &str = "SIMTOKEN00000000";
pub const SERIAL1: &str = "SIMTOKEN00000001";

/// Path of the `hsm-sim` binary cargo built for these tests.
pub fn cli_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hsm-sim"))
}

/// Path of the cdylib built with this test (found beside the test binary in `deps/`).
pub fn lib_path() -> PathBuf {
    let p = hsm_sim::module_path().expect("libhsm_sim.so is built with the crate's tests");
    assert!(p.exists(), "{} missing", p.display());
    p
}

/// A vendor-defined mechanism without parameters.
pub fn mech(code: u64) -> Mechanism<'static> {
    let t = MechanismType::new_vendor_defined(code).expect("vendor code");
    Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(t, None))
}

/// A vendor-defined mechanism with raw parameter bytes (the SM2 user ID).
pub fn mech_with<const N: usize>(code: u64, param: &[u8; N]) -> Mechanism<'_> {
    let t = MechanismType::new_vendor_defined(code).expect("vendor code");
    Mechanism::VendorDefined(VendorDefinedMechanism::new::<[u8; N]>(t, Some(param)))
}

pub fn pin(s: &str) -> AuthPin {
    AuthPin::from(s)
}

/// Codes of a profile: (key type, keygen, raw sign, sm3+sm2, sm3).
pub fn codes(profile: &str) -> (u64, u64, u64, u64, u64) {
    match profile {
        "sansec" => (
            0x8000_0004,
            0x8000_8001,
            0x8000_8104,
            0x8000_8100,
            0x8000_9001,
        ),
        "tass" => (
            0x8000_0004,
            0x8000_8001,
            0x8000_8000,
            0x8000_8100,
            0x8000_0005,
        ),
        _ => panic!("profile"),
    }
}

/// One test's store, config and loaded module.
pub struct Env {
    p11: Option<Pkcs11>,
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    _guard: MutexGuard<'static, ()>,
}

impl Env {
    /// Writes a config (`store` and the two fixed serials are added) and loads the module.
    pub fn new(extra: &str) -> Env {
        let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("hsm-sim.toml");
        let body = format!(
            "store = \"{}\"\n{extra}\n[[token]]\nslot = 0\nserial = \"{SERIAL0}\"\n[[token]]\nslot = 1\nserial = \"{SERIAL1}\"\n",
            dir.path().join("tokens").display()
        );
        std::fs::write(&conf, body).expect("write config");
        // Set while holding the lock; the module reads it in C_Initialize.
        std::env::set_var("HSM_SIM_CONF", &conf);
        let p11 = Pkcs11::new(lib_path()).expect("load module");
        p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .expect("C_Initialize");
        Env {
            p11: Some(p11),
            dir,
            conf,
            _guard: guard,
        }
    }

    pub fn p11(&self) -> &Pkcs11 {
        self.p11.as_ref().expect("initialized")
    }

    /// Finalizes and initializes again (a fresh process view of the same store).
    pub fn restart(&mut self) {
        if let Some(p) = self.p11.take() {
            p.finalize().expect("C_Finalize");
        }
        let p11 = Pkcs11::new(lib_path()).expect("load module");
        p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .expect("C_Initialize");
        self.p11 = Some(p11);
    }

    /// Runs the CLI with this config; `stdin` is written to its standard input.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        run_cli(&self.conf, args, stdin)
    }

    /// Runs the CLI and insists on success; returns stdout.
    pub fn cli_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.cli(args, stdin);
        assert!(
            out.status.success(),
            "hsm-sim {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn slot(&self, idx: usize) -> Slot {
        self.p11().get_all_slots().expect("slots")[idx]
    }

    /// Initializes slot `idx` through the API with SO_PIN and USER_PIN.
    pub fn init_token(&self, idx: usize, label: &str) -> Slot {
        let slot = self.slot(idx);
        self.p11()
            .init_token(slot, &pin(SO_PIN), label)
            .expect("C_InitToken");
        let s = self.p11().open_rw_session(slot).expect("open");
        s.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
        s.init_pin(&pin(USER_PIN)).expect("C_InitPIN");
        s.logout().expect("logout");
        slot
    }

    /// A R/W session logged in as the user.
    pub fn user_session(&self, slot: Slot) -> Session {
        let s = self.p11().open_rw_session(slot).expect("open");
        s.login(UserType::User, Some(&pin(USER_PIN)))
            .expect("login");
        s
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(p) = self.p11.take() {
            let _ = p.finalize();
        }
    }
}

/// Runs the CLI with a given config file.
pub fn run_cli(conf: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(cli_path())
        .arg("--config")
        .arg(conf)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hsm-sim");
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    child.wait_with_output().expect("wait hsm-sim")
}

/// Generates an SM2 key pair with CKA_ID `id`; returns (public, private) handles.
pub fn keygen(s: &Session, profile: &str, id: &[u8]) -> (ObjectHandle, ObjectHandle) {
    let (_, kg, _, _, _) = codes(profile);
    let pub_t = [
        Attribute::Token(true),
        Attribute::Id(id.to_vec()),
        Attribute::Label(b"seal".to_vec()),
    ];
    let priv_t = [
        Attribute::Token(true),
        Attribute::Id(id.to_vec()),
        Attribute::Label(b"seal".to_vec()),
        Attribute::Sign(true),
    ];
    s.generate_key_pair(&mech(kg), &pub_t, &priv_t)
        .expect("C_GenerateKeyPair")
}

/// The public point 04‖x‖y of a public key object (unwrapping the DER OCTET STRING).
pub fn point(s: &Session, pubk: ObjectHandle) -> Vec<u8> {
    let attrs = s
        .get_attributes(pubk, &[AttributeType::EcPoint])
        .expect("get EC_POINT");
    match &attrs[0] {
        Attribute::EcPoint(p) => {
            assert_eq!(&p[..2], &[0x04, 65], "CKA_EC_POINT is a DER OCTET STRING");
            p[2..].to_vec()
        }
        a => panic!("unexpected {a:?}"),
    }
}

/// Finds objects of a class with an id.
pub fn find(s: &Session, class: ObjectClass, id: &[u8]) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())])
        .expect("find")
}

/// r‖s from raw or DER.
pub fn rs_of(sig: &[u8]) -> [u8; 64] {
    hsm_sim::crypto::decode_sig(sig).expect("signature encoding")
}

/// Verifies r‖s over a message with the sm2 crate (Z with the default ID).
pub fn sm2_verify_msg(point: &[u8], msg: &[u8], rs: &[u8; 64]) -> bool {
    use sm2::dsa::signature::Verifier;
    let vk = sm2::dsa::VerifyingKey::from_sec1_bytes("1234567812345678", point).expect("point");
    let sig = sm2::dsa::Signature::from_slice(rs).expect("sig");
    vk.verify(msg, &sig).is_ok()
}

/// Verifies with OpenSSL 3: `openssl dgst -sm3 -verify pub.pem -signature sig.der -sigopt distid:...`.
pub fn openssl_verify(dir: &Path, point: &[u8], msg: &[u8], rs: &[u8; 64]) -> bool {
    use sm2::pkcs8::EncodePublicKey;
    let pk = sm2::PublicKey::from_sec1_bytes(point).expect("point");
    let pem = pk
        .to_public_key_pem(sm2::pkcs8::LineEnding::LF)
        .expect("pem");
    let (p, s, m) = (
        dir.join("pub.pem"),
        dir.join("sig.der"),
        dir.join("msg.bin"),
    );
    std::fs::write(&p, pem).expect("write");
    std::fs::write(&s, hsm_sim::crypto::der_sig(rs)).expect("write");
    std::fs::write(&m, msg).expect("write");
    let out = Command::new("openssl")
        .args(["dgst", "-sm3", "-verify"])
        .arg(&p)
        .arg("-signature")
        .arg(&s)
        .args(["-sigopt", "distid:1234567812345678"])
        .arg(&m)
        .output()
        .expect("run openssl");
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK")
}

/// The PKCS#11 return value inside a cryptoki error.
pub fn rv(e: cryptoki::error::Error) -> cryptoki::error::RvError {
    match e {
        cryptoki::error::Error::Pkcs11(rv, _) => rv,
        other => panic!("not a PKCS#11 error: {other:?}"),
    }
}
