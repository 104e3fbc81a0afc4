//! The GM/T 0018 SDF entry points of the built module, loaded with `libloading` like a cipher
//! machine's SDF library: device, sessions, per-session private-key access rights backed by the
//! user PIN (shared with PKCS#11), public key, signatures over e, eject; for each
//! `[sdf] ecc_max_len`; and a C client written from GmSSL's sdf.h.

mod common;
use common::*;
use cryptoki::error::RvError;
use cryptoki::object::ObjectClass;
use cryptoki::session::UserType;
use std::ffi::{c_int, c_uint, c_void};
use std::path::Path;
use std::process::{Command, Stdio};

const SDR_OK: u32 = 0;
const SDR_COMMFAIL: u32 = 0x0100_0003;
const SDR_OPENDEVICE: u32 = 0x0100_0005;
const SDR_KEYNOTEXIST: u32 = 0x0100_0008;
const SDR_VERIFYERR: u32 = 0x0100_000E;
const SDR_PRKRERR: u32 = 0x0100_0018;
const SDR_INARGERR: u32 = 0x0100_001D;
const SDR_OUTARGERR: u32 = 0x0100_001E;
/// hsm-sim's vendor code for a locked user PIN.
const SDR_PIN_LOCKED: u32 = 0x0101_0018;

type H = *mut c_void;

/// The SDF functions as GmSSL's sdf.h declares them (structs as byte pointers).
struct Sdf {
    _lib: libloading::Library,
    len: usize,
    open_device: unsafe extern "C" fn(*mut H) -> c_int,
    close_device: unsafe extern "C" fn(H) -> c_int,
    open_session: unsafe extern "C" fn(H, *mut H) -> c_int,
    close_session: unsafe extern "C" fn(H) -> c_int,
    device_info: unsafe extern "C" fn(H, *mut u8) -> c_int,
    random: unsafe extern "C" fn(H, c_uint, *mut u8) -> c_int,
    get_right: unsafe extern "C" fn(H, c_uint, *const u8, c_uint) -> c_int,
    release_right: unsafe extern "C" fn(H, c_uint) -> c_int,
    export_pub: unsafe extern "C" fn(H, c_uint, *mut u8) -> c_int,
    sign: unsafe extern "C" fn(H, c_uint, *const u8, c_uint, *mut u8) -> c_int,
    verify: unsafe extern "C" fn(H, c_uint, *const u8, c_uint, *const u8) -> c_int,
}

macro_rules! sym {
    ($lib:expr, $name:literal) => {
        // SAFETY: the declared type matches the export's ABI (GmSSL sdf.h prototypes).
        *unsafe { $lib.get($name.as_bytes()) }.expect($name)
    };
}

fn sdr(v: c_int) -> u32 {
    v as u32
}

fn res<T>(rv: c_int, v: T) -> Result<T, u32> {
    if sdr(rv) == SDR_OK {
        Ok(v)
    } else {
        Err(sdr(rv))
    }
}

impl Sdf {
    fn load(len: usize) -> Sdf {
        // SAFETY: loading our own module; its initializers are trivial.
        let lib = unsafe { libloading::Library::new(lib_path()) }.expect("dlopen");
        Sdf {
            len,
            open_device: sym!(lib, "SDF_OpenDevice"),
            close_device: sym!(lib, "SDF_CloseDevice"),
            open_session: sym!(lib, "SDF_OpenSession"),
            close_session: sym!(lib, "SDF_CloseSession"),
            device_info: sym!(lib, "SDF_GetDeviceInfo"),
            random: sym!(lib, "SDF_GenerateRandom"),
            get_right: sym!(lib, "SDF_GetPrivateKeyAccessRight"),
            release_right: sym!(lib, "SDF_ReleasePrivateKeyAccessRight"),
            export_pub: sym!(lib, "SDF_ExportSignPublicKey_ECC"),
            sign: sym!(lib, "SDF_InternalSign_ECC"),
            verify: sym!(lib, "SDF_InternalVerify_ECC"),
            _lib: lib,
        }
    }

    fn open_device(&self) -> Result<H, u32> {
        let mut h: H = std::ptr::null_mut();
        // SAFETY: out pointer.
        let rv = unsafe { (self.open_device)(&mut h) };
        res(rv, h)
    }

    fn open_session(&self, dev: H) -> Result<H, u32> {
        let mut h: H = std::ptr::null_mut();
        // SAFETY: out pointer.
        let rv = unsafe { (self.open_session)(dev, &mut h) };
        res(rv, h)
    }

    fn close_session(&self, s: H) -> u32 {
        // SAFETY: handle only.
        sdr(unsafe { (self.close_session)(s) })
    }

    fn close_device(&self, d: H) -> u32 {
        // SAFETY: handle only.
        sdr(unsafe { (self.close_device)(d) })
    }

    fn info(&self, s: H) -> Result<Vec<u8>, u32> {
        let mut b = vec![0x55u8; 108];
        // SAFETY: 100 writable bytes and 8 spare.
        let rv = unsafe { (self.device_info)(s, b.as_mut_ptr()) };
        res(rv, ())?;
        assert_eq!(&b[100..], &[0x55; 8], "DEVICEINFO is 100 bytes");
        b.truncate(100);
        Ok(b)
    }

    fn right(&self, s: H, idx: u32, pwd: &str) -> u32 {
        // SAFETY: pwd readable.
        sdr(unsafe { (self.get_right)(s, idx, pwd.as_ptr(), pwd.len() as c_uint) })
    }

    fn release(&self, s: H, idx: u32) -> u32 {
        // SAFETY: handle only.
        sdr(unsafe { (self.release_right)(s, idx) })
    }

    /// ExportSignPublicKey_ECC: 04‖x‖y, checking size, bits and alignment.
    fn public(&self, s: H, idx: u32) -> Result<Vec<u8>, u32> {
        let l = self.len;
        let mut b = vec![0x55u8; 4 + 2 * l + 8];
        // SAFETY: sizeof(ECCrefPublicKey) writable bytes and 8 spare.
        let rv = unsafe { (self.export_pub)(s, idx, b.as_mut_ptr()) };
        res(rv, ())?;
        assert_eq!(&b[4 + 2 * l..], &[0x55; 8], "ECCrefPublicKey size");
        assert_eq!(b[..4], 256u32.to_ne_bytes(), "bits");
        let (x, y) = (&b[4..4 + l], &b[4 + l..4 + 2 * l]);
        assert!(x[..l - 32].iter().chain(&y[..l - 32]).all(|c| *c == 0));
        let mut pt = vec![4u8];
        pt.extend_from_slice(&x[l - 32..]);
        pt.extend_from_slice(&y[l - 32..]);
        Ok(pt)
    }

    /// InternalSign_ECC: r‖s, checking size and alignment.
    fn sign(&self, s: H, idx: u32, e: &[u8]) -> Result<[u8; 64], u32> {
        let l = self.len;
        let mut b = vec![0x55u8; 2 * l + 8];
        // SAFETY: e readable; sizeof(ECCSignature) writable bytes and 8 spare.
        let rv = unsafe { (self.sign)(s, idx, e.as_ptr(), e.len() as c_uint, b.as_mut_ptr()) };
        res(rv, ())?;
        assert_eq!(&b[2 * l..], &[0x55; 8], "ECCSignature size");
        assert!(b[..l - 32].iter().chain(&b[l..2 * l - 32]).all(|c| *c == 0));
        let mut rs = [0u8; 64];
        rs[..32].copy_from_slice(&b[l - 32..l]);
        rs[32..].copy_from_slice(&b[2 * l - 32..2 * l]);
        Ok(rs)
    }

    /// InternalVerify_ECC of r‖s laid out as ECCSignature.
    fn verify(&self, s: H, idx: u32, e: &[u8], rs: &[u8; 64]) -> u32 {
        let l = self.len;
        let mut b = vec![0u8; 2 * l];
        b[l - 32..l].copy_from_slice(&rs[..32]);
        b[2 * l - 32..].copy_from_slice(&rs[32..]);
        // SAFETY: e and the signature readable.
        sdr(unsafe { (self.verify)(s, idx, e.as_ptr(), e.len() as c_uint, b.as_ptr()) })
    }
}

fn sm2_verify_e(point: &[u8], e: &[u8], rs: &[u8; 64]) -> bool {
    use sm2::dsa::signature::hazmat::PrehashVerifier;
    let vk = sm2::dsa::VerifyingKey::from_sec1_bytes("1234567812345678", point).expect("point");
    let sig = sm2::dsa::Signature::from_slice(rs).expect("sig");
    vk.verify_prehash(e, &sig).is_ok()
}

/// Provisions slots 0 and 1 (label `sdf-machine`) through the CLI; slot 0 gets SM2 keys with
/// CKA_ID 01 and 02 (the demo's) and one with a two-byte id. Returns the points of 01 and 02.
fn provision(env: &Env) -> (Vec<u8>, Vec<u8>) {
    for slot in ["0", "1"] {
        env.cli_ok(
            &["init-token", "--slot", slot, "--label", "sdf-machine"],
            &format!("{SO_PIN}\n{USER_PIN}\n"),
        );
    }
    let mut pts = Vec::new();
    for id in ["01", "02", "0102"] {
        let pt = env.cli_ok(
            &["keygen", "--serial", SERIAL0, "--id", id, "--label", "k"],
            &format!("{USER_PIN}\n"),
        );
        pts.push(hex::decode(pt.trim()).unwrap());
    }
    (pts[0].clone(), pts[1].clone())
}

fn full_run(len: usize, model: &str) {
    let env = Env::new(&format!(
        "user_pin_max_tries = 3\nmodel = \"{model}\"\n[sdf]\necc_max_len = {len}\n"
    ));
    let (pt1, pt2) = provision(&env);
    let sdf = Sdf::load(len);

    // Device: the first initialized token.
    let dev = sdf.open_device().unwrap();
    assert!(!dev.is_null());
    let a = sdf.open_session(dev).unwrap();
    let b = sdf.open_session(dev).unwrap();
    assert_ne!(a, b);
    let info = sdf.info(a).unwrap();
    assert_eq!(&info[..8], b"hsm-sim\0");
    assert_eq!(
        &info[40..56],
        b"sdf-machine\0\0\0\0\0",
        "DeviceName = label"
    );
    assert_eq!(&info[56..72], SERIAL0.as_bytes(), "DeviceSerial = serial");
    assert_eq!(info[72..76], 1u32.to_ne_bytes());
    assert_eq!(info[80..84], 0x0002_0300u32.to_ne_bytes());
    assert_eq!(info[92..96], 1u32.to_ne_bytes(), "SGD_SM3");
    assert_eq!(
        sdf.info(dev),
        Err(SDR_INARGERR),
        "a device is not a session"
    );
    // SAFETY: NULL output.
    assert_eq!(
        sdr(unsafe { (sdf.device_info)(a, std::ptr::null_mut()) }),
        SDR_OUTARGERR
    );
    let mut rnd = [0u8; 48];
    // SAFETY: 48 writable bytes.
    assert_eq!(
        sdr(unsafe { (sdf.random)(a, 32, rnd.as_mut_ptr()) }),
        SDR_OK
    );
    assert!(rnd[..32].iter().any(|c| *c != 0) && rnd[32..].iter().all(|c| *c == 0));

    // Public keys: index N = CKA_ID N; equal to the PKCS#11 points; no right needed.
    assert_eq!(sdf.public(a, 1).unwrap(), pt1);
    assert_eq!(sdf.public(b, 2).unwrap(), pt2);
    {
        let s = env.p11().open_ro_session(env.slot(0)).unwrap();
        let p11 = point(&s, find(&s, ObjectClass::PUBLIC_KEY, &[1])[0]);
        assert_eq!(p11, sdf.public(a, 1).unwrap(), "SDF and PKCS#11 agree");
    }
    for idx in [0, 3, 258, 0x0102] {
        assert_eq!(sdf.public(a, idx), Err(SDR_KEYNOTEXIST), "index {idx}");
    }

    // Signing needs the right on this session for this index.
    let e = hsm_sim::crypto::e_value(b"1234567812345678", &pt1, b"sdf message").unwrap();
    assert_eq!(sdf.sign(a, 1, &e), Err(SDR_PRKRERR));
    assert_eq!(sdf.sign(a, 3, &e), Err(SDR_KEYNOTEXIST));
    assert_eq!(sdf.right(a, 3, USER_PIN), SDR_KEYNOTEXIST, "not counted");
    assert_eq!(sdf.right(a, 1, "000000"), SDR_PRKRERR);
    assert_eq!(sdf.right(a, 1, USER_PIN), SDR_OK);
    let rs = sdf.sign(a, 1, &e).unwrap();
    assert!(sm2_verify_e(&pt1, &e, &rs), "signature verifies");
    assert!(sm2_verify_msg(&pt1, b"sdf message", &rs), "e = SM3(Z||M)");
    assert_eq!(sdf.verify(b, 1, &e, &rs), SDR_OK, "InternalVerify");
    let mut bad = rs;
    bad[63] ^= 1;
    assert_eq!(sdf.verify(b, 1, &e, &bad), SDR_VERIFYERR);
    assert_eq!(sdf.verify(b, 2, &e, &rs), SDR_VERIFYERR, "other key");
    assert_eq!(sdf.sign(a, 1, &e[..31]), Err(SDR_INARGERR));
    assert_eq!(sdf.sign(a, 1, &[0u8; 33]), Err(SDR_INARGERR));
    assert_eq!(sdf.sign(a, 2, &e), Err(SDR_PRKRERR), "rights are per index");
    assert_eq!(
        sdf.sign(b, 1, &e),
        Err(SDR_PRKRERR),
        "rights are per session"
    );
    assert_eq!(sdf.sign(dev, 1, &e), Err(SDR_INARGERR), "a device handle");

    // Release: refused again; releasing again is harmless.
    assert_eq!(sdf.release(a, 1), SDR_OK);
    assert_eq!(sdf.sign(a, 1, &e), Err(SDR_PRKRERR));
    assert_eq!(sdf.release(a, 1), SDR_OK);

    // Closing a session drops its rights and the handle.
    let c = sdf.open_session(dev).unwrap();
    assert_eq!(sdf.right(c, 2, USER_PIN), SDR_OK);
    assert!(sdf.sign(c, 2, &e).is_ok());
    assert_eq!(sdf.close_session(c), SDR_OK);
    assert_eq!(sdf.sign(c, 2, &e), Err(SDR_INARGERR));
    assert_eq!(sdf.close_session(c), SDR_INARGERR);

    // A session keeps its right while another locks the PIN.
    assert_eq!(sdf.right(b, 2, USER_PIN), SDR_OK);
    assert_eq!(sdf.right(a, 1, "000000"), SDR_PRKRERR);
    assert_eq!(sdf.right(a, 1, "000000"), SDR_PRKRERR);
    assert_eq!(sdf.right(a, 1, "000000"), SDR_PIN_LOCKED, "last try");
    assert_eq!(sdf.right(a, 1, USER_PIN), SDR_PIN_LOCKED, "locked");
    assert_eq!(sdf.right(b, 1, USER_PIN), SDR_PIN_LOCKED);
    {
        let s = env.p11().open_rw_session(env.slot(0)).unwrap();
        assert_eq!(
            rv(s.login(UserType::User, Some(&pin(USER_PIN))).unwrap_err()),
            RvError::PinLocked,
            "C_Login sees the SDF lock"
        );
    }
    assert!(
        sdf.sign(b, 2, &e).is_ok(),
        "a right granted before the lock"
    );

    // Eject: calls on the open handles answer SDR_COMMFAIL (also after reinsertion),
    // SDF_OpenDevice SDR_OPENDEVICE while ejected.
    env.cli_ok(&["eject", SERIAL0], "");
    assert_eq!(sdf.sign(b, 2, &e), Err(SDR_COMMFAIL));
    assert_eq!(sdf.info(a), Err(SDR_COMMFAIL));
    assert_eq!(sdf.public(a, 1), Err(SDR_COMMFAIL));
    assert_eq!(sdf.open_session(dev), Err(SDR_COMMFAIL));
    assert_eq!(
        sdf.open_device(),
        Err(SDR_OPENDEVICE),
        "slot 1 is not chosen"
    );
    env.cli_ok(&["insert", SERIAL0], "");
    assert_eq!(sdf.sign(b, 2, &e), Err(SDR_COMMFAIL));
    let dev2 = sdf.open_device().unwrap();
    let d = sdf.open_session(dev2).unwrap();
    assert_eq!(sdf.public(d, 2).unwrap(), pt2);
    assert_eq!(&sdf.info(d).unwrap()[56..72], SERIAL0.as_bytes());

    // Close: the device's sessions go with it.
    assert_eq!(sdf.close_session(a), SDR_OK);
    assert_eq!(sdf.close_device(dev), SDR_OK);
    assert_eq!(sdf.info(b), Err(SDR_INARGERR));
    assert_eq!(sdf.close_device(dev), SDR_INARGERR);
    assert_eq!(sdf.close_device(dev2), SDR_OK);
    assert_eq!(sdf.info(d), Err(SDR_INARGERR));
}

#[test]
fn sdf_ecc_max_len_64() {
    full_run(64, "ukey");
}

#[test]
fn sdf_ecc_max_len_32_cipher_machine() {
    full_run(32, "cipher-machine");
}

/// `[sdf] slot` picks the device; with no initialized token there is none.
#[test]
fn sdf_device_choice() {
    let env = Env::new("[sdf]\nslot = 1\n");
    let sdf = Sdf::load(64);
    assert_eq!(
        sdf.open_device(),
        Err(SDR_OPENDEVICE),
        "slot 1 not initialized"
    );
    provision(&env);
    let dev = sdf.open_device().unwrap();
    let s = sdf.open_session(dev).unwrap();
    assert_eq!(&sdf.info(s).unwrap()[56..72], SERIAL1.as_bytes());
    assert_eq!(sdf.public(s, 1), Err(SDR_KEYNOTEXIST), "keys are on slot 0");
    assert_eq!(sdf.close_device(dev), SDR_OK);
    drop(env);

    let _env = Env::new("");
    let sdf = Sdf::load(64);
    assert_eq!(
        sdf.open_device(),
        Err(SDR_OPENDEVICE),
        "no initialized token"
    );
}

/// Several sessions of one device signing at once (a daemon's pool).
#[test]
fn sdf_session_pool() {
    let env = Env::new("model = \"cipher-machine\"\nparallel = 4\nsign_latency_ms = 20\n");
    let (pt1, _) = provision(&env);
    let sdf = Sdf::load(64);
    let dev = sdf.open_device().unwrap();
    let sessions: Vec<usize> = (0..8)
        .map(|_| {
            let s = sdf.open_session(dev).unwrap();
            assert_eq!(sdf.right(s, 1, USER_PIN), SDR_OK);
            s as usize
        })
        .collect();
    let e = [7u8; 32];
    let sigs: Vec<[u8; 64]> = std::thread::scope(|sc| {
        let hs: Vec<_> = sessions
            .iter()
            .map(|s| {
                let sdf = &sdf;
                let s = *s;
                sc.spawn(move || sdf.sign(s as H, 1, &e).unwrap())
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(sigs.iter().all(|rs| sm2_verify_e(&pt1, &e, rs)));
    assert_eq!(sdf.close_device(dev), SDR_OK);
}

/// Runs the C client (`tests/sdf_client.c`, declarations from GmSSL's sdf.h), compiled for
/// `ECCref_MAX_LEN` 64 or (with `-DSGD_MAX_ECC_BITS_256`) 32, against a matching config.
fn c_client(len: usize) {
    let env = Env::new(&format!("[sdf]\necc_max_len = {len}\n"));
    let (pt1, _) = provision(&env);
    let exe = env.dir.path().join("sdf_client");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdf_client.c");
    let mut cmd = Command::new("cc");
    cmd.arg("-Wall").arg("-o").arg(&exe).arg(&src).arg("-ldl");
    if len == 32 {
        cmd.arg("-DSGD_MAX_ECC_BITS_256");
    }
    let cc = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run `cc` ({e}): the SDF C client test needs a C compiler (build-essential)")
    });
    assert!(
        cc.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let run = |pwd: &str| {
        let mut child = Command::new(&exe)
            .arg(lib_path())
            .env("HSM_SIM_CONF", &env.conf)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sdf_client");
        {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{pwd}\n").as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    };
    let bad = run("000000");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("0x01000018"),
        "wrong password: SDR_PRKRERR: {}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let out = run(USER_PIN);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "sdf_client failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |k: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k}= in {stdout}"))
            .to_string()
    };
    assert_eq!(field("serial"), SERIAL0);
    assert_eq!(field("device"), "sdf-machine");
    assert_eq!(hex::decode(field("pubkey")).unwrap(), pt1);
    let e = hex::decode(field("e")).unwrap();
    assert_eq!(e, (0u8..32).collect::<Vec<u8>>());
    let rs: [u8; 64] = hex::decode(field("sig")).unwrap().try_into().unwrap();
    assert!(sm2_verify_e(&pt1, &e, &rs), "C client's signature verifies");
}

#[test]
fn sdf_c_client_ecc_max_len_64() {
    c_client(64);
}

#[test]
fn sdf_c_client_ecc_max_len_32() {
    c_client(32);
}
