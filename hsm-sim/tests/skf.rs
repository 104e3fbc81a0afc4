//! The GM/T 0016 SKF entry points of the built module, loaded with `libloading` like a vendor's
//! SKF library: devices, application, PINs shared with PKCS#11, containers, public key,
//! certificate, signatures over e, eject, device events; for each `[skf]` ABI width.

mod common;
use common::*;
use cryptoki::error::RvError;
use cryptoki::object::ObjectClass;
use cryptoki::session::UserType;
use std::ffi::{c_char, c_void, CString};
use std::path::Path;
use std::process::{Command, Stdio};

const SAR_OK: u32 = 0;
const SAR_INVALIDHANDLEERR: u32 = 0x0A00_0005;
const SAR_INDATALENERR: u32 = 0x0A00_0010;
const SAR_KEYNOTFOUNTERR: u32 = 0x0A00_001B;
const SAR_CERTNOTFOUNTERR: u32 = 0x0A00_001C;
const SAR_BUFFER_TOO_SMALL: u32 = 0x0A00_0020;
const SAR_NOT_EVENTERR: u32 = 0x0A00_0022;
const SAR_DEVICE_REMOVED: u32 = 0x0A00_0023;
const SAR_PIN_INCORRECT: u32 = 0x0A00_0024;
const SAR_PIN_LOCKED: u32 = 0x0A00_0025;
const SAR_USER_NOT_LOGGED_IN: u32 = 0x0A00_002D;
const SAR_APPLICATION_NOT_EXISTS: u32 = 0x0A00_002E;
const SAR_FILE_NOT_EXIST: u32 = 0x0A00_0031;
const ADMIN_TYPE: u64 = 0;
const USER_TYPE: u64 = 1;
/// Junk in the upper half of by-value ULONG/BOOL registers, for the 32-bit ABI.
const JUNK: u64 = 0xDEAD_BEEF_0000_0000;

type H = *mut c_void;
type P = *mut u8;

/// The SKF functions, with every by-value ULONG/BOOL as a 64-bit register and every
/// ULONG*/BOOL* as a byte pointer (their width is the config's).
struct Skf {
    _lib: libloading::Library,
    ulong: usize,
    boolw: usize,
    field: usize,
    enum_dev: unsafe extern "C" fn(u64, *mut c_char, P) -> u64,
    connect: unsafe extern "C" fn(*const c_char, *mut H) -> u64,
    disconnect: unsafe extern "C" fn(H) -> u64,
    dev_info: unsafe extern "C" fn(H, P) -> u64,
    enum_app: unsafe extern "C" fn(H, *mut c_char, P) -> u64,
    open_app: unsafe extern "C" fn(H, *const c_char, *mut H) -> u64,
    close_app: unsafe extern "C" fn(H) -> u64,
    pin_info: unsafe extern "C" fn(H, u64, P, P, P) -> u64,
    verify_pin: unsafe extern "C" fn(H, u64, *const c_char, P) -> u64,
    change_pin: unsafe extern "C" fn(H, u64, *const c_char, *const c_char, P) -> u64,
    unblock_pin: unsafe extern "C" fn(H, *const c_char, *const c_char, P) -> u64,
    clear: unsafe extern "C" fn(H) -> u64,
    enum_con: unsafe extern "C" fn(H, *mut c_char, P) -> u64,
    open_con: unsafe extern "C" fn(H, *const c_char, *mut H) -> u64,
    close_con: unsafe extern "C" fn(H) -> u64,
    con_type: unsafe extern "C" fn(H, P) -> u64,
    export_cert: unsafe extern "C" fn(H, u64, P, P) -> u64,
    export_pub: unsafe extern "C" fn(H, u64, P, P) -> u64,
    sign: unsafe extern "C" fn(H, *const u8, u64, P) -> u64,
    digest_init: unsafe extern "C" fn(H, u64, *const u8, *const u8, u64, *mut H) -> u64,
    digest: unsafe extern "C" fn(H, *const u8, u64, P, P) -> u64,
    digest_update: unsafe extern "C" fn(H, *const u8, u64) -> u64,
    digest_final: unsafe extern "C" fn(H, P, P) -> u64,
    close_handle: unsafe extern "C" fn(H) -> u64,
    wait: unsafe extern "C" fn(*mut c_char, P, P) -> u64,
    cancel: unsafe extern "C" fn() -> u64,
}

macro_rules! sym {
    ($lib:expr, $name:literal) => {
        // SAFETY: the declared type matches the export's ABI (see the struct comment).
        *unsafe { $lib.get($name.as_bytes()) }.expect($name)
    };
}

fn cs(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// The SAR code as a caller with a 32-bit ULONG reads it.
fn sar(v: u64) -> u32 {
    v as u32
}

impl Skf {
    fn load(ulong: usize, boolw: usize, field: usize) -> Skf {
        // SAFETY: loading our own module; its initializers are trivial.
        let lib = unsafe { libloading::Library::new(lib_path()) }.expect("dlopen");
        Skf {
            ulong,
            boolw,
            field,
            enum_dev: sym!(lib, "SKF_EnumDev"),
            connect: sym!(lib, "SKF_ConnectDev"),
            disconnect: sym!(lib, "SKF_DisConnectDev"),
            dev_info: sym!(lib, "SKF_GetDevInfo"),
            enum_app: sym!(lib, "SKF_EnumApplication"),
            open_app: sym!(lib, "SKF_OpenApplication"),
            close_app: sym!(lib, "SKF_CloseApplication"),
            pin_info: sym!(lib, "SKF_GetPINInfo"),
            verify_pin: sym!(lib, "SKF_VerifyPIN"),
            change_pin: sym!(lib, "SKF_ChangePIN"),
            unblock_pin: sym!(lib, "SKF_UnblockPIN"),
            clear: sym!(lib, "SKF_ClearSecureState"),
            enum_con: sym!(lib, "SKF_EnumContainer"),
            open_con: sym!(lib, "SKF_OpenContainer"),
            close_con: sym!(lib, "SKF_CloseContainer"),
            con_type: sym!(lib, "SKF_GetContainerType"),
            export_cert: sym!(lib, "SKF_ExportCertificate"),
            export_pub: sym!(lib, "SKF_ExportPublicKey"),
            sign: sym!(lib, "SKF_ECCSignData"),
            digest_init: sym!(lib, "SKF_DigestInit"),
            digest: sym!(lib, "SKF_Digest"),
            digest_update: sym!(lib, "SKF_DigestUpdate"),
            digest_final: sym!(lib, "SKF_DigestFinal"),
            close_handle: sym!(lib, "SKF_CloseHandle"),
            wait: sym!(lib, "SKF_WaitForDevEvent"),
            cancel: sym!(lib, "SKF_CancelWaitForDevEvent"),
            _lib: lib,
        }
    }

    /// A by-value ULONG as a careless 32-bit caller might leave the register.
    fn arg(&self, v: u64) -> u64 {
        if self.ulong == 4 {
            v | JUNK
        } else {
            v
        }
    }

    /// A by-value BOOL likewise.
    fn barg(&self, v: bool) -> u64 {
        if self.boolw == 4 {
            v as u64 | JUNK
        } else {
            v as u64
        }
    }

    /// An 8-byte ULONG cell filled with 0xAA (to see how many bytes the module writes).
    fn cell(&self, v: u64) -> [u8; 8] {
        let mut c = [0xAAu8; 8];
        if self.ulong == 4 {
            c[..4].copy_from_slice(&(v as u32).to_ne_bytes());
        } else {
            c = v.to_ne_bytes();
        }
        c
    }

    /// Reads a ULONG cell, checking the module wrote exactly `ulong` bytes.
    fn get(&self, c: &[u8; 8]) -> u64 {
        if self.ulong == 4 {
            assert_eq!(&c[4..], &[0xAA; 4], "a 4-byte ULONG written as 8");
            u32::from_ne_bytes(c[..4].try_into().unwrap()) as u64
        } else {
            u64::from_ne_bytes(*c)
        }
    }

    /// Calls a (buffer, ULONG *len) function twice: size, then data; also checks a short buffer.
    fn sized(&self, f: impl Fn(P, P) -> u64) -> Result<Vec<u8>, u32> {
        let mut len = self.cell(0x1234);
        let rv = sar(f(std::ptr::null_mut(), len.as_mut_ptr()));
        if rv != SAR_OK {
            return Err(rv);
        }
        let n = self.get(&len) as usize;
        assert!(n > 0);
        let mut buf = vec![0x55u8; n + 4];
        let mut short = self.cell(n as u64 - 1);
        assert_eq!(
            sar(f(buf.as_mut_ptr(), short.as_mut_ptr())),
            SAR_BUFFER_TOO_SMALL
        );
        assert_eq!(self.get(&short) as usize, n, "needed size reported");
        assert!(buf.iter().all(|b| *b == 0x55), "nothing written when short");
        let mut len = self.cell(n as u64 + 4);
        assert_eq!(sar(f(buf.as_mut_ptr(), len.as_mut_ptr())), SAR_OK);
        assert_eq!(self.get(&len) as usize, n);
        assert_eq!(&buf[n..], &[0x55; 4]);
        buf.truncate(n);
        Ok(buf)
    }

    fn names(&self, f: impl Fn(P, P) -> u64) -> Vec<String> {
        let b = self.sized(f).expect("name list");
        assert!(b.ends_with(&[0, 0]), "double NUL at the end: {b:?}");
        b[..b.len() - 2]
            .split(|c| *c == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8(s.to_vec()).unwrap())
            .collect()
    }

    fn enum_dev(&self) -> Vec<String> {
        self.enum_dev_all(true)
    }

    fn enum_dev_all(&self, present: bool) -> Vec<String> {
        // SAFETY: pointers from `sized`.
        self.names(|b, l| unsafe { (self.enum_dev)(self.barg(present), b as *mut c_char, l) })
    }

    fn connect(&self, name: &str) -> Result<H, u32> {
        let mut h: H = std::ptr::null_mut();
        // SAFETY: valid string and out pointer.
        let rv = sar(unsafe { (self.connect)(cs(name).as_ptr(), &mut h) });
        if rv == SAR_OK {
            assert!(!h.is_null());
            Ok(h)
        } else {
            Err(rv)
        }
    }

    fn open(
        &self,
        f: unsafe extern "C" fn(H, *const c_char, *mut H) -> u64,
        parent: H,
        name: &str,
    ) -> Result<H, u32> {
        let mut h: H = std::ptr::null_mut();
        // SAFETY: valid string and out pointer.
        let rv = sar(unsafe { f(parent, cs(name).as_ptr(), &mut h) });
        if rv == SAR_OK {
            Ok(h)
        } else {
            Err(rv)
        }
    }

    fn dev_info(&self, h: H) -> Result<Vec<u8>, u32> {
        let n = 198 + 8 * self.ulong + 64;
        let mut buf = vec![0x55u8; n + 8];
        // SAFETY: n writable bytes (and 8 spare to catch overruns).
        let rv = sar(unsafe { (self.dev_info)(h, buf.as_mut_ptr()) });
        if rv != SAR_OK {
            return Err(rv);
        }
        assert_eq!(&buf[n..], &[0x55; 8], "DEVINFO is {n} bytes");
        buf.truncate(n);
        Ok(buf)
    }

    fn pin_info(&self, app: H, typ: u64) -> (u64, u64, bool) {
        let (mut m, mut r) = (self.cell(0), self.cell(0));
        let mut d = [0x77u8; 8];
        // SAFETY: out cells are 8 bytes.
        let rv = unsafe {
            (self.pin_info)(
                app,
                self.arg(typ),
                m.as_mut_ptr(),
                r.as_mut_ptr(),
                d.as_mut_ptr(),
            )
        };
        assert_eq!(sar(rv), SAR_OK);
        if self.boolw == 4 {
            assert_eq!(&d[4..], &[0x77; 4]);
        }
        let def = d[..self.boolw].iter().any(|b| *b != 0);
        (self.get(&m), self.get(&r), def)
    }

    /// VerifyPIN: (code, retry count cell if written).
    fn verify(&self, app: H, typ: u64, pin: &str) -> (u32, u64) {
        let mut r = self.cell(99);
        // SAFETY: valid string and cell.
        let rv = unsafe { (self.verify_pin)(app, self.arg(typ), cs(pin).as_ptr(), r.as_mut_ptr()) };
        (sar(rv), self.get(&r))
    }

    fn sign(&self, con: H, e: &[u8]) -> Result<[u8; 64], u32> {
        let f = self.field;
        let mut blob = vec![0x55u8; 2 * f + 8];
        // SAFETY: e readable, blob writable.
        let rv = sar(unsafe {
            (self.sign)(con, e.as_ptr(), self.arg(e.len() as u64), blob.as_mut_ptr())
        });
        if rv != SAR_OK {
            return Err(rv);
        }
        assert_eq!(
            &blob[2 * f..],
            &[0x55; 8],
            "ECCSIGNATUREBLOB is {} bytes",
            2 * f
        );
        assert!(blob[..f - 32].iter().all(|b| *b == 0), "r right-aligned");
        assert!(
            blob[f..2 * f - 32].iter().all(|b| *b == 0),
            "s right-aligned"
        );
        let mut rs = [0u8; 64];
        rs[..32].copy_from_slice(&blob[f - 32..f]);
        rs[32..].copy_from_slice(&blob[2 * f - 32..2 * f]);
        Ok(rs)
    }

    /// SKF_DigestInit (SGD_SM3; with `key`, Z of that ECCPUBLICKEYBLOB and the default ID),
    /// SKF_Digest of `msg`, SKF_CloseHandle.
    fn digest_of(&self, dev: H, key: Option<&[u8]>, msg: &[u8]) -> Result<Vec<u8>, u32> {
        let id = b"1234567812345678";
        let mut h: H = std::ptr::null_mut();
        // SAFETY: blob and id readable, out pointer writable.
        let rv = sar(unsafe {
            (self.digest_init)(
                dev,
                self.arg(1),
                key.map_or(std::ptr::null(), |k| k.as_ptr()),
                id.as_ptr(),
                self.arg(id.len() as u64),
                &mut h,
            )
        });
        if rv != SAR_OK {
            return Err(rv);
        }
        // One call for short messages, pieces for long ones (both must agree).
        let out = if msg.len() <= 64 {
            // SAFETY: pointers from `sized`, msg readable.
            self.sized(|b, l| unsafe {
                (self.digest)(h, msg.as_ptr(), self.arg(msg.len() as u64), b, l)
            })
        } else {
            for piece in msg.chunks(1000) {
                // SAFETY: piece readable.
                let rv = sar(unsafe {
                    (self.digest_update)(h, piece.as_ptr(), self.arg(piece.len() as u64))
                });
                assert_eq!(rv, SAR_OK);
            }
            // SAFETY: pointers from `sized`.
            self.sized(|b, l| unsafe { (self.digest_final)(h, b, l) })
        };
        // SAFETY: a handle from SKF_DigestInit.
        assert_eq!(sar(unsafe { (self.close_handle)(h) }), SAR_OK);
        out
    }

    /// WaitForDevEvent: (code, name, event).
    fn wait(&self) -> (u32, String, u64) {
        let mut name = vec![0u8; 128];
        let mut len = self.cell(128);
        let mut ev = self.cell(77);
        // SAFETY: 128-byte buffer, cells.
        let rv = sar(unsafe {
            (self.wait)(
                name.as_mut_ptr() as *mut c_char,
                len.as_mut_ptr(),
                ev.as_mut_ptr(),
            )
        });
        let n = (self.get(&len) as usize).min(128);
        let s = if rv == SAR_OK {
            assert_eq!(name[n - 1], 0, "length counts the NUL");
            String::from_utf8(name[..n - 1].to_vec()).unwrap()
        } else {
            String::new()
        };
        (rv, s, self.get(&ev))
    }
}

fn sm2_verify_e(point: &[u8], e: &[u8], rs: &[u8; 64]) -> bool {
    use sm2::dsa::signature::hazmat::PrehashVerifier;
    let vk = sm2::dsa::VerifyingKey::from_sec1_bytes("1234567812345678", point).expect("point");
    let sig = sm2::dsa::Signature::from_slice(rs).expect("sig");
    vk.verify_prehash(e, &sig).is_ok()
}

/// Provisions slot 0 (label `skf-ukey`, SM2 key id 0A0B label `seal`, certificate from the test
/// CA) and slot 1 (same label, no key) through the CLI. Returns (04‖x‖y, certificate DER).
fn provision(env: &Env) -> (Vec<u8>, Vec<u8>) {
    for slot in ["0", "1"] {
        env.cli_ok(
            &["init-token", "--slot", slot, "--label", "skf-ukey"],
            &format!("{SO_PIN}\n{USER_PIN}\n"),
        );
    }
    let pt = env.cli_ok(
        &[
            "keygen", "--serial", SERIAL0, "--id", "0A0B", "--label", "seal",
        ],
        &format!("{USER_PIN}\n"),
    );
    let ca = env.dir.path().join("ca");
    let ca_s = ca.to_str().unwrap();
    env.cli_ok(&["ca", "init", "--dir", ca_s, "--org", "SKF Test Root"], "");
    let leaf = env.cli_ok(
        &[
            "ca", "issue", "--dir", ca_s, "--serial", SERIAL0, "--id", "0A0B", "--org", "SKF Org",
            "--cn", "seal", "--days", "30",
        ],
        "",
    );
    let der = std::fs::read(leaf.trim().replace(".pem", ".der")).expect("issued DER");
    (hex::decode(pt.trim()).unwrap(), der)
}

fn full_run(ulong: usize, boolw: usize, field: usize, events: bool) {
    let env = Env::new(&format!(
        "user_pin_max_tries = 3\n[skf]\nulong = {ulong}\nbool = {boolw}\necc_field = {field}\n"
    ));
    let (pt, cert) = provision(&env);
    let skf = Skf::load(ulong, boolw, field);

    // Devices: names are labels; the second token with the same label gets its serial.
    let devs = skf.enum_dev();
    assert_eq!(
        devs,
        vec!["skf-ukey".to_string(), format!("skf-ukey ({SERIAL1})")]
    );
    assert_eq!(skf.connect("no such device"), Err(SAR_FILE_NOT_EXIST));
    let dev = skf.connect("skf-ukey").unwrap();
    let dev1 = skf.connect(&devs[1]).unwrap();
    let info = skf.dev_info(dev).unwrap();
    assert_eq!(&info[0..2], &[1, 0]);
    assert_eq!(&info[130..139], b"skf-ukey\0");
    assert!(
        info[130..162].iter().skip(8).all(|b| *b == 0),
        "label NUL-padded"
    );
    assert_eq!(&info[162..178], SERIAL0.as_bytes());
    assert!(info[178..194].iter().all(|b| *b == 0));
    let asym = &info[198 + ulong..198 + 2 * ulong];
    assert_eq!(asym[..4], 0x0002_0300u32.to_ne_bytes());
    assert_eq!(&skf.dev_info(dev1).unwrap()[162..178], SERIAL1.as_bytes());
    assert_eq!(
        skf.dev_info(std::ptr::null_mut()),
        Err(SAR_INVALIDHANDLEERR)
    );

    // Application.
    // SAFETY: pointers from `names`.
    let apps = skf.names(|b, l| unsafe { (skf.enum_app)(dev, b as *mut c_char, l) });
    assert_eq!(apps, vec!["SEALD"]);
    assert_eq!(
        skf.open(skf.open_app, dev, "OTHER"),
        Err(SAR_APPLICATION_NOT_EXISTS)
    );
    let app = skf.open(skf.open_app, dev, "SEALD").unwrap();
    assert_eq!(
        skf.dev_info(app),
        Err(SAR_INVALIDHANDLEERR),
        "an app is not a device"
    );

    // PINs.
    assert_eq!(skf.pin_info(app, USER_TYPE), (3, 3, false));
    assert_eq!(skf.pin_info(app, ADMIN_TYPE), (6, 6, false));
    assert_eq!(skf.verify(app, USER_TYPE, "000000"), (SAR_PIN_INCORRECT, 2));
    assert_eq!(skf.pin_info(app, USER_TYPE), (3, 2, false));
    assert_eq!(skf.verify(app, USER_TYPE, USER_PIN).0, SAR_OK);
    assert_eq!(
        skf.pin_info(app, USER_TYPE).1,
        3,
        "success resets the count"
    );

    // Containers.
    // SAFETY: pointers from `names`.
    let cons = skf.names(|b, l| unsafe { (skf.enum_con)(app, b as *mut c_char, l) });
    assert_eq!(cons, vec!["seal"]);
    assert_eq!(skf.open(skf.open_con, app, "nope"), Err(SAR_FILE_NOT_EXIST));
    let con = skf.open(skf.open_con, app, "seal").unwrap();
    let mut t = skf.cell(0);
    // SAFETY: cell.
    assert_eq!(sar(unsafe { (skf.con_type)(con, t.as_mut_ptr()) }), SAR_OK);
    assert_eq!(skf.get(&t), 2);

    // Public key: ECCPUBLICKEYBLOB, right-aligned, equal to what PKCS#11 reports.
    // SAFETY: pointers from `sized`.
    let blob = skf
        .sized(|b, l| unsafe { (skf.export_pub)(con, skf.barg(true), b, l) })
        .unwrap();
    assert_eq!(blob.len(), ulong + 2 * field);
    let mut bl = [0xAAu8; 8];
    bl[..ulong].copy_from_slice(&blob[..ulong]);
    assert_eq!(skf.get(&bl), 256);
    let (x, y) = (&blob[ulong..ulong + field], &blob[ulong + field..]);
    assert!(x[..field - 32].iter().all(|b| *b == 0) && y[..field - 32].iter().all(|b| *b == 0));
    let mut blob_pt = vec![4u8];
    blob_pt.extend_from_slice(&x[field - 32..]);
    blob_pt.extend_from_slice(&y[field - 32..]);
    assert_eq!(blob_pt, pt);
    {
        let s = env.p11().open_ro_session(env.slot(0)).unwrap();
        let p11_pt = point(&s, find(&s, ObjectClass::PUBLIC_KEY, &[0x0a, 0x0b])[0]);
        assert_eq!(p11_pt, blob_pt, "SKF and PKCS#11 report the same key");
    }
    // SAFETY: pointers from `sized`.
    assert_eq!(
        skf.sized(|b, l| unsafe { (skf.export_pub)(con, skf.barg(false), b, l) }),
        Err(SAR_KEYNOTFOUNTERR),
        "no encryption key pair"
    );

    // Certificate.
    // SAFETY: pointers from `sized`.
    let got = skf
        .sized(|b, l| unsafe { (skf.export_cert)(con, skf.barg(true), b, l) })
        .unwrap();
    assert_eq!(got, cert);
    // SAFETY: as above.
    assert_eq!(
        skf.sized(|b, l| unsafe { (skf.export_cert)(con, skf.barg(false), b, l) }),
        Err(SAR_CERTNOTFOUNTERR)
    );

    // The device's SM3: plain, and with Z of the exported key (what the sm2 crate then
    // verifies a signature of, over the message).
    let msg = b"skf device digest";
    let plain = skf.digest_of(dev, None, msg).unwrap();
    assert_eq!(plain, <sm3::Sm3 as sm3::Digest>::digest(msg).to_vec());
    let e_dev = skf.digest_of(dev, Some(&blob), msg).unwrap();
    assert_eq!(e_dev.len(), 32);
    let rs = skf.sign(con, &e_dev).unwrap();
    assert!(sm2_verify_msg(&blob_pt, msg, &rs), "device e = SM3(Z||M)");
    let long = vec![0x5Au8; 5000];
    let e_long = skf.digest_of(dev, Some(&blob), &long).unwrap();
    let rs = skf.sign(con, &e_long).unwrap();
    assert!(sm2_verify_msg(&blob_pt, &long, &rs), "in pieces too");
    let mut h: H = std::ptr::null_mut();
    // SAFETY: an out pointer; a container handle is not a device's.
    let code = sar(unsafe {
        (skf.digest_init)(
            con,
            skf.arg(1),
            std::ptr::null(),
            std::ptr::null(),
            0,
            &mut h,
        )
    });
    assert_eq!(
        code, SAR_INVALIDHANDLEERR,
        "DigestInit takes a device handle"
    );

    // Signing a 32-byte e.
    let e = hsm_sim::crypto::e_value(b"1234567812345678", &pt, b"skf message").unwrap();
    let rs = skf.sign(con, &e).unwrap();
    assert!(sm2_verify_e(&blob_pt, &e, &rs), "signature verifies");
    assert!(
        sm2_verify_msg(&blob_pt, b"skf message", &rs),
        "e = SM3(Z||M)"
    );
    assert_eq!(skf.sign(con, &e[..31]), Err(SAR_INDATALENERR));
    assert_eq!(skf.sign(app, &e), Err(SAR_INVALIDHANDLEERR));

    // Log out: signing refused.
    // SAFETY: handle only.
    assert_eq!(sar(unsafe { (skf.clear)(app) }), SAR_OK);
    assert_eq!(skf.sign(con, &e), Err(SAR_USER_NOT_LOGGED_IN));

    // Lock the user PIN through SKF; PKCS#11 sees the lock.
    assert_eq!(skf.verify(app, USER_TYPE, "000000"), (SAR_PIN_INCORRECT, 2));
    assert_eq!(skf.verify(app, USER_TYPE, "000000"), (SAR_PIN_INCORRECT, 1));
    assert_eq!(skf.verify(app, USER_TYPE, "000000"), (SAR_PIN_LOCKED, 0));
    assert_eq!(skf.verify(app, USER_TYPE, USER_PIN), (SAR_PIN_LOCKED, 0));
    assert_eq!(skf.pin_info(app, USER_TYPE), (3, 0, false));
    {
        let s = env.p11().open_rw_session(env.slot(0)).unwrap();
        assert_eq!(
            rv(s.login(UserType::User, Some(&pin(USER_PIN))).unwrap_err()),
            RvError::PinLocked
        );
    }

    // Unblock with the SO PIN (wrong once first), then sign again.
    let mut r = skf.cell(99);
    // SAFETY: strings and cell.
    let rv1 = unsafe {
        (skf.unblock_pin)(
            app,
            cs("11111111").as_ptr(),
            cs("24682468").as_ptr(),
            r.as_mut_ptr(),
        )
    };
    assert_eq!((sar(rv1), skf.get(&r)), (SAR_PIN_INCORRECT, 5));
    // SAFETY: strings and cell.
    let rv2 = unsafe {
        (skf.unblock_pin)(
            app,
            cs(SO_PIN).as_ptr(),
            cs("24682468").as_ptr(),
            r.as_mut_ptr(),
        )
    };
    assert_eq!(sar(rv2), SAR_OK);
    assert_eq!(skf.pin_info(app, USER_TYPE), (3, 3, false));
    assert_eq!(skf.pin_info(app, ADMIN_TYPE), (6, 6, false));
    assert_eq!(skf.verify(app, USER_TYPE, "24682468").0, SAR_OK);
    assert!(sm2_verify_e(&pt, &e, &skf.sign(con, &e).unwrap()));
    // A wrong old PIN counts like a wrong VerifyPIN.
    // SAFETY: strings and cell.
    let rvw = unsafe {
        (skf.change_pin)(
            app,
            skf.arg(USER_TYPE),
            cs("99999999").as_ptr(),
            cs(USER_PIN).as_ptr(),
            r.as_mut_ptr(),
        )
    };
    assert_eq!((sar(rvw), skf.get(&r)), (SAR_PIN_INCORRECT, 2));
    // Change it back through SKF; PKCS#11 logs in with it.
    // SAFETY: strings and cell.
    let rv3 = unsafe {
        (skf.change_pin)(
            app,
            skf.arg(USER_TYPE),
            cs("24682468").as_ptr(),
            cs(USER_PIN).as_ptr(),
            r.as_mut_ptr(),
        )
    };
    assert_eq!(sar(rv3), SAR_OK);
    env.user_session(env.slot(0));

    // Close and reopen the container; close the app: the login goes with it.
    // SAFETY: handles only.
    assert_eq!(sar(unsafe { (skf.close_con)(con) }), SAR_OK);
    assert_eq!(skf.sign(con, &e), Err(SAR_INVALIDHANDLEERR));
    // SAFETY: handle only.
    assert_eq!(sar(unsafe { (skf.close_app)(app) }), SAR_OK);
    let app = skf.open(skf.open_app, dev, "SEALD").unwrap();
    let con = skf.open(skf.open_con, app, "seal").unwrap();
    assert_eq!(skf.sign(con, &e), Err(SAR_USER_NOT_LOGGED_IN));
    assert_eq!(skf.verify(app, USER_TYPE, USER_PIN).0, SAR_OK);

    // Eject: every call on the old handles answers SAR_DEVICE_REMOVED, even after reinsertion.
    let waiter = events.then(|| {
        let ul = skf.ulong;
        std::thread::spawn(move || Skf::load(ul, 4, 64).wait())
    });
    env.cli_ok(&["eject", SERIAL0], "");
    if let Some(w) = waiter {
        assert_eq!(w.join().unwrap(), (SAR_OK, "skf-ukey".to_string(), 2));
    }
    assert_eq!(skf.dev_info(dev), Err(SAR_DEVICE_REMOVED));
    assert_eq!(skf.sign(con, &e), Err(SAR_DEVICE_REMOVED));
    assert_eq!(skf.verify(app, USER_TYPE, USER_PIN).0, SAR_DEVICE_REMOVED);
    assert_eq!(skf.enum_dev(), vec![format!("skf-ukey ({SERIAL1})")]);
    assert_eq!(
        skf.enum_dev_all(false).len(),
        2,
        "bPresent FALSE lists ejected ones too"
    );
    assert_eq!(skf.connect("skf-ukey"), Err(SAR_DEVICE_REMOVED));
    assert!(skf.dev_info(dev1).is_ok(), "the other device is unaffected");
    let waiter = events.then(|| {
        let ul = skf.ulong;
        std::thread::spawn(move || Skf::load(ul, 4, 64).wait())
    });
    if events {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    env.cli_ok(&["insert", SERIAL0], "");
    if let Some(w) = waiter {
        assert_eq!(w.join().unwrap(), (SAR_OK, "skf-ukey".to_string(), 1));
    }
    assert_eq!(skf.dev_info(dev), Err(SAR_DEVICE_REMOVED));
    // SAFETY: handle only.
    assert_eq!(sar(unsafe { (skf.disconnect)(dev) }), SAR_DEVICE_REMOVED);
    assert_eq!(
        skf.dev_info(dev),
        Err(SAR_INVALIDHANDLEERR),
        "released anyway"
    );
    let dev = skf.connect("skf-ukey").unwrap();
    assert!(skf.dev_info(dev).is_ok());

    if events {
        // A blocked wait returns when cancelled.
        let ul = skf.ulong;
        let w = std::thread::spawn(move || Skf::load(ul, 4, 64).wait());
        std::thread::sleep(std::time::Duration::from_millis(300));
        // SAFETY: no arguments.
        assert_eq!(sar(unsafe { (skf.cancel)() }), SAR_OK);
        let (rv, _, ev) = w.join().unwrap();
        assert_eq!((rv, ev), (SAR_NOT_EVENTERR, 0));
    }
    // SAFETY: handles only.
    unsafe {
        assert_eq!(sar((skf.disconnect)(dev)), SAR_OK);
        assert_eq!(sar((skf.disconnect)(dev1)), SAR_OK);
    }
}

#[test]
fn skf_32_bit_ulong() {
    full_run(4, 4, 64, true);
}

#[test]
fn skf_64_bit_ulong() {
    full_run(8, 8, 64, false);
}

#[test]
fn skf_32_byte_ecc_fields() {
    full_run(4, 4, 32, false);
}

/// The C client (`tests/skf_client.c`, GM/T 0016 declarations as in GmSSL's skf.h) against
/// the default ABI.
#[test]
fn skf_c_client() {
    let env = Env::new("");
    let (pt, _) = provision(&env);
    let exe = env.dir.path().join("skf_client");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/skf_client.c");
    let cc = Command::new("cc")
        .arg("-Wall")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .arg("-ldl")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `cc` ({e}): the SKF C client test needs a C compiler (build-essential)"
            )
        });
    assert!(
        cc.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let mut child = Command::new(&exe)
        .arg(lib_path())
        .env("HSM_SIM_CONF", &env.conf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run skf_client");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{USER_PIN}\n").as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "skf_client failed: {stdout}{}",
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
    assert_eq!(field("device"), "skf-ukey");
    assert_eq!(field("container"), "seal");
    let pubkey = hex::decode(field("pubkey")).unwrap();
    assert_eq!(pubkey, pt);
    let e = hex::decode(field("e")).unwrap();
    assert_eq!(e, (0u8..32).collect::<Vec<u8>>());
    let rs: [u8; 64] = hex::decode(field("sig")).unwrap().try_into().unwrap();
    assert!(sm2_verify_e(&pt, &e, &rs), "C client's signature verifies");
}
