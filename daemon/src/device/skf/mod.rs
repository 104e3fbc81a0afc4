//! GM/T 0016 SKF libraries, the interface most Chinese UKeys ship instead of PKCS#11.
//!
//! [`SkfLibrary`] loads a vendor's library with `libloading` and binds its symbols at load; a
//! symbol the library lacks makes only the operation that needs it unavailable. Devices are
//! named by the library but identified by the serial number in their DEVINFO, never by their
//! place in the list. The signing key is the sign key pair of a container in an application;
//! [`SkfContainer::sign_e`] signs e = SM3(Z‖M), computed by seald in software. Widths of
//! `ULONG`, `BOOL` and the blob fields follow the module's [`SkfAbi`].

mod abi;
mod library;
mod owner;

use std::ffi::CString;
use std::sync::Arc;

use secrecy::ExposeSecret;
use zeroize::Zeroizing;

pub(crate) use abi::right_aligned;
pub use abi::SkfAbi;
use library::{Handle, Symbols};
pub use owner::{SkfModule, SkfOwner};

use super::backend::DeviceEvent;
use super::pin::Pin;
use crate::crypto::{PublicKey, RawSignature};

/// `ADMIN_TYPE`: the administrator (SO) PIN.
pub const ADMIN_PIN: u64 = 0;
/// `USER_TYPE`: the user PIN.
pub const USER_PIN: u64 = 1;

/// GM/T 0016 error codes seald tells apart.
pub mod sar {
    /// Success.
    pub const OK: u32 = 0;
    /// The buffer is too small.
    pub const BUFFER_TOO_SMALL: u32 = 0x0A00_0020;
    /// No event (a cancelled `SKF_WaitForDevEvent`).
    pub const NOT_EVENT: u32 = 0x0A00_0022;
    /// The device was removed.
    pub const DEVICE_REMOVED: u32 = 0x0A00_0023;
    /// Wrong PIN.
    pub const PIN_INCORRECT: u32 = 0x0A00_0024;
    /// PIN locked.
    pub const PIN_LOCKED: u32 = 0x0A00_0025;
    /// PIN of a form the device refuses.
    pub const PIN_INVALID: u32 = 0x0A00_0026;
    /// PIN too short or too long.
    pub const PIN_LEN_RANGE: u32 = 0x0A00_0027;
    /// Not logged in.
    pub const USER_NOT_LOGGED_IN: u32 = 0x0A00_002D;
    /// No such application.
    pub const APPLICATION_NOT_EXISTS: u32 = 0x0A00_002E;
    /// No such file (GM/T 0016 has no container-specific code).
    pub const FILE_NOT_EXIST: u32 = 0x0A00_0031;
    /// A handle the library does not know (often: a device replugged since).
    pub const INVALID_HANDLE: u32 = 0x0A00_0005;
    /// No certificate.
    pub const CERT_NOT_FOUND: u32 = 0x0A00_001C;
}

/// What went wrong in an SKF call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkfError {
    /// The library could not be loaded.
    #[error("cannot load the SKF library {path}: {reason}")]
    Load {
        /// Its path.
        path: String,
        /// The loader's reason.
        reason: String,
    },
    /// The library lacks a function.
    #[error("the SKF library has no {symbol}, so this operation is not available with it")]
    Missing {
        /// The symbol.
        symbol: &'static str,
    },
    /// No present device has this serial number.
    #[error("no SKF device with serial {0} is present")]
    NoSuchDevice(String),
    /// The device was removed.
    #[error("the SKF device was removed")]
    Removed,
    /// A wrong PIN; the device says how many tries are left.
    #[error("wrong PIN: {tries_left} tries left")]
    PinIncorrect {
        /// Tries left before the PIN locks.
        tries_left: u64,
    },
    /// The PIN is locked.
    #[error("the PIN is locked: an administrator must unblock it")]
    PinLocked,
    /// The PIN's length or form is refused.
    #[error("the device refuses this PIN's length or form")]
    PinRefused,
    /// Signing needs a login.
    #[error("the device is not logged in: a custodian must enter the PIN")]
    NotLoggedIn,
    /// Any other failure code.
    #[error("{function} failed with {code:#010x}")]
    Code {
        /// The function.
        function: &'static str,
        /// Its SAR code.
        code: u32,
    },
    /// The library answered something unreadable.
    #[error("{function} answered something unreadable: {reason}")]
    Garbled {
        /// The function.
        function: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// Maps a SAR code of `function` to an error (`Ok` for SAR_OK).
fn check(function: &'static str, code: u32) -> Result<(), SkfError> {
    match code {
        sar::OK => Ok(()),
        sar::DEVICE_REMOVED => Err(SkfError::Removed),
        sar::PIN_LOCKED => Err(SkfError::PinLocked),
        sar::PIN_INVALID | sar::PIN_LEN_RANGE => Err(SkfError::PinRefused),
        sar::USER_NOT_LOGGED_IN => Err(SkfError::NotLoggedIn),
        code => Err(SkfError::Code { function, code }),
    }
}

fn c_string(function: &'static str, text: &str) -> Result<CString, SkfError> {
    CString::new(text).map_err(|_| SkfError::Garbled {
        function,
        reason: "a name with a NUL byte".into(),
    })
}

/// A NUL-terminated copy of a PIN, zeroized when dropped.
fn pin_bytes(pin: &Pin) -> Result<Zeroizing<Vec<u8>>, SkfError> {
    let text = pin.auth().expose_secret();
    if text.as_bytes().contains(&0) {
        return Err(SkfError::PinRefused);
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() + 1));
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(0);
    Ok(bytes)
}

/// Splits a GM/T 0016 name list (names ending in NUL, the list in a double NUL).
fn name_list(raw: &[u8]) -> Vec<String> {
    raw.split(|b| *b == 0)
        .take_while(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

/// A loaded SKF library.
#[derive(Debug)]
pub struct SkfLibrary {
    symbols: Symbols,
    abi: SkfAbi,
}

/// What a device says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkfDeviceInfo {
    /// The name the library lists it by.
    pub name: String,
    /// DEVINFO Manufacturer.
    pub manufacturer: String,
    /// DEVINFO Label.
    pub label: String,
    /// DEVINFO SerialNumber: how seald knows the device.
    pub serial: String,
}

/// PIN state from `SKF_GetPINInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkfPinInfo {
    /// Tries a PIN has.
    pub max_tries: u64,
    /// Tries left.
    pub tries_left: u64,
    /// The PIN is still the factory default and must be changed.
    pub is_default: bool,
}

impl SkfLibrary {
    /// Loads the library at `path` with the layout `abi`.
    pub fn open(path: &std::path::Path, abi: SkfAbi) -> Result<Arc<Self>, SkfError> {
        abi.validate().map_err(|reason| SkfError::Load {
            path: path.display().to_string(),
            reason,
        })?;
        let symbols = Symbols::load(path)?;
        Ok(Arc::new(Self { symbols, abi }))
    }

    /// The layout it was loaded with.
    pub fn abi(&self) -> SkfAbi {
        self.abi
    }

    /// Calls a list function (`SKF_EnumDev`, `SKF_EnumApplication`, `SKF_EnumContainer`)
    /// twice: for the size, then for the list.
    fn list(
        &self,
        function: &'static str,
        call: impl Fn(*mut u8, *mut [u8; 8]) -> u32,
    ) -> Result<Vec<String>, SkfError> {
        for _ in 0..3 {
            let mut size = self.abi.write_ulong(0);
            check(function, call(std::ptr::null_mut(), &mut size))?;
            let len = self.abi.read_ulong(&size);
            if len <= 2 {
                return Ok(Vec::new()); // nothing listed (some libraries say 0, others 2)
            }
            if len > 1 << 20 {
                return Err(SkfError::Garbled {
                    function,
                    reason: format!("a list of {len} bytes"),
                });
            }
            let mut buf = vec![0u8; len as usize + 2];
            let mut size = self.abi.write_ulong(len);
            match call(buf.as_mut_ptr(), &mut size) {
                // The list grew between the calls: ask again.
                sar::BUFFER_TOO_SMALL => continue,
                code => check(function, code)?,
            }
            let got = (self.abi.read_ulong(&size) as usize).min(len as usize);
            return Ok(name_list(&buf[..got]));
        }
        Err(SkfError::Garbled {
            function,
            reason: "the list kept growing".into(),
        })
    }

    /// The names of the present devices.
    pub fn device_names(&self) -> Result<Vec<String>, SkfError> {
        let f = self.symbols.enum_dev()?;
        self.list("SKF_EnumDev", |buf, size| unsafe {
            f(1, buf.cast(), size.cast())
        })
    }

    /// Connects to the device listed as `name`.
    pub fn connect(self: &Arc<Self>, name: &str) -> Result<Arc<SkfDevice>, SkfError> {
        let f = self.symbols.connect_dev()?;
        let c_name = c_string("SKF_ConnectDev", name)?;
        let mut handle: Handle = std::ptr::null_mut();
        check("SKF_ConnectDev", unsafe { f(c_name.as_ptr(), &mut handle) })?;
        Ok(Arc::new(SkfDevice {
            library: self.clone(),
            handle,
            name: name.to_owned(),
        }))
    }

    /// Every present device and what it says about itself.
    pub fn devices(self: &Arc<Self>) -> Result<Vec<SkfDeviceInfo>, SkfError> {
        let mut out = Vec::new();
        for name in self.device_names()? {
            match self.connect(&name).and_then(|d| d.info()) {
                Ok(info) => out.push(info),
                // Pulled out between the list and the connection.
                Err(SkfError::Removed) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Blocks until a device is inserted or removed, and reads an inserted device's serial.
    pub fn next_event(self: &Arc<Self>) -> Result<Option<DeviceEvent>, SkfError> {
        Ok(self
            .wait_for_event()?
            .map(|(device, inserted)| DeviceEvent {
                serial: inserted
                    .then(|| self.connect(&device).and_then(|d| d.info()).ok())
                    .flatten()
                    .map(|info| info.serial),
                inserted,
            }))
    }

    /// Blocks until a device is inserted or removed (`SKF_WaitForDevEvent`); returns its name
    /// and whether it arrived. `Ok(None)` when the wait was cancelled or reported no event.
    pub fn wait_for_event(&self) -> Result<Option<(String, bool)>, SkfError> {
        let f = self.symbols.wait_for_dev_event()?;
        let mut name = vec![0u8; 512];
        let mut len = self.abi.write_ulong(name.len() as u64);
        let mut event = [0u8; 8];
        let code = unsafe {
            f(
                name.as_mut_ptr().cast(),
                len.as_mut_ptr(),
                event.as_mut_ptr(),
            )
        };
        if code == sar::NOT_EVENT {
            return Ok(None);
        }
        check("SKF_WaitForDevEvent", code)?;
        let got = (self.abi.read_ulong(&len) as usize).min(name.len());
        let name = name_list(&[&name[..got], b"\0\0"].concat())
            .into_iter()
            .next()
            .unwrap_or_default();
        Ok(match self.abi.read_ulong(&event) {
            1 => Some((name, true)),
            2 => Some((name, false)),
            _ => None,
        })
    }

    /// Makes a blocked [`SkfLibrary::wait_for_event`] return.
    pub fn cancel_wait(&self) {
        if let Ok(f) = self.symbols.cancel_wait_for_dev_event() {
            unsafe { f() };
        }
    }

    /// Connects to the present device whose serial number is `serial`.
    pub fn connect_serial(self: &Arc<Self>, serial: &str) -> Result<Arc<SkfDevice>, SkfError> {
        for name in self.device_names()? {
            let device = match self.connect(&name) {
                Ok(d) => d,
                Err(SkfError::Removed) => continue,
                Err(e) => return Err(e),
            };
            if device.info()?.serial == serial {
                return Ok(device);
            }
        }
        Err(SkfError::NoSuchDevice(serial.to_owned()))
    }
}

/// A connected device; disconnected when dropped.
#[derive(Debug)]
pub struct SkfDevice {
    library: Arc<SkfLibrary>,
    handle: Handle,
    name: String,
}

// The handle is an opaque token of the library, used behind the owner's lock.
unsafe impl Send for SkfDevice {}
unsafe impl Sync for SkfDevice {}

impl Drop for SkfDevice {
    fn drop(&mut self) {
        if let Ok(f) = self.library.symbols.disconnect_dev() {
            unsafe { f(self.handle) };
        }
    }
}

impl SkfDevice {
    /// e = SM3(Z ‖ `message`) computed by the device: `SKF_DigestInit` with SGD_SM3, the
    /// signer's public key and the default user ID, then the message in 1 KiB pieces
    /// (`SKF_DigestUpdate`, `SKF_DigestFinal`: UKeys take little at a time), or in one
    /// `SKF_Digest` from a library without them.
    pub fn sm3_with_z(&self, public_key: &PublicKey, message: &[u8]) -> Result<[u8; 32], SkfError> {
        const SGD_SM3: u64 = 0x0000_0001;
        let symbols = &self.library.symbols;
        let init = symbols.digest_init()?;
        let close = symbols.close_handle()?;
        let abi = self.library.abi;
        let blob = abi.public_key_blob(&public_key.point);
        let id = crate::crypto::DEFAULT_USER_ID;
        let mut hash: Handle = std::ptr::null_mut();
        // SAFETY: GM/T 0016 prototype; the blob is sizeof(ECCPUBLICKEYBLOB) for this ABI, the
        // ID `id.len()` bytes, `hash` a place for the handle.
        check("SKF_DigestInit", unsafe {
            init(
                self.handle,
                SGD_SM3,
                blob.as_ptr(),
                id.as_ptr(),
                id.len() as u64,
                &mut hash,
            )
        })?;
        let mut e = [0u8; 32];
        let mut len = abi.write_ulong(32);
        let done = match (symbols.digest_update(), symbols.digest_final()) {
            (Ok(update), Ok(finish)) => message
                .chunks(1024)
                .try_for_each(|piece| {
                    // SAFETY: `piece` is readable for its length.
                    check("SKF_DigestUpdate", unsafe {
                        update(hash, piece.as_ptr(), piece.len() as u64)
                    })
                })
                .and_then(|()| {
                    // SAFETY: 32 writable bytes, announced in `len`.
                    check("SKF_DigestFinal", unsafe {
                        finish(hash, e.as_mut_ptr(), len.as_mut_ptr())
                    })
                }),
            _ => symbols.digest().and_then(|digest| {
                // SAFETY: the message is readable; 32 writable bytes, announced in `len`.
                check("SKF_Digest", unsafe {
                    digest(
                        hash,
                        message.as_ptr(),
                        message.len() as u64,
                        e.as_mut_ptr(),
                        len.as_mut_ptr(),
                    )
                })
            }),
        };
        // SAFETY: a handle SKF_DigestInit gave.
        unsafe { close(hash) };
        done?;
        match abi.read_ulong(&len) {
            32 => Ok(e),
            n => Err(SkfError::Garbled {
                function: "SKF_DigestFinal",
                reason: format!("an SM3 digest of {n} bytes"),
            }),
        }
    }

    /// Label and serial number (`SKF_GetDevInfo`).
    pub fn info(&self) -> Result<SkfDeviceInfo, SkfError> {
        let f = self.library.symbols.get_dev_info()?;
        let abi = self.library.abi;
        // Room for the widest layout and then some: a library with a bigger struct than its
        // header says must not write past the buffer.
        let mut raw = vec![0u8; abi.dev_info_len() + 512];
        check("SKF_GetDevInfo", unsafe {
            f(self.handle, raw.as_mut_ptr())
        })?;
        let (manufacturer, label, serial) =
            abi.dev_info_names(&raw)
                .map_err(|reason| SkfError::Garbled {
                    function: "SKF_GetDevInfo",
                    reason,
                })?;
        Ok(SkfDeviceInfo {
            name: self.name.clone(),
            manufacturer,
            label,
            serial,
        })
    }

    /// The applications on the device.
    pub fn applications(&self) -> Result<Vec<String>, SkfError> {
        let f = self.library.symbols.enum_application()?;
        self.library
            .list("SKF_EnumApplication", |buf, size| unsafe {
                f(self.handle, buf.cast(), size.cast())
            })
    }

    /// Opens the application `name`.
    pub fn open_application(self: &Arc<Self>, name: &str) -> Result<SkfApplication, SkfError> {
        let f = self.library.symbols.open_application()?;
        let c_name = c_string("SKF_OpenApplication", name)?;
        let mut handle: Handle = std::ptr::null_mut();
        check("SKF_OpenApplication", unsafe {
            f(self.handle, c_name.as_ptr(), &mut handle)
        })?;
        Ok(SkfApplication {
            device: self.clone(),
            handle,
        })
    }
}

/// An open application (its PINs and containers); closed when dropped.
#[derive(Debug)]
pub struct SkfApplication {
    device: Arc<SkfDevice>,
    handle: Handle,
}

// As for the device: an opaque handle, used behind the owner's lock.
unsafe impl Send for SkfApplication {}
unsafe impl Sync for SkfApplication {}

impl Drop for SkfApplication {
    fn drop(&mut self) {
        if let Ok(f) = self.device.library.symbols.close_application() {
            unsafe { f(self.handle) };
        }
    }
}

impl SkfApplication {
    fn library(&self) -> &SkfLibrary {
        &self.device.library
    }

    /// The device the application is on.
    pub fn device(&self) -> &Arc<SkfDevice> {
        &self.device
    }

    /// Maps a PIN call's SAR code, reading the tries left on a wrong PIN.
    fn pin_result(
        &self,
        function: &'static str,
        code: u32,
        retry: &[u8; 8],
    ) -> Result<(), SkfError> {
        if code == sar::PIN_INCORRECT {
            let tries_left = self.library().abi.read_ulong(retry);
            return Err(if tries_left == 0 {
                SkfError::PinLocked
            } else {
                SkfError::PinIncorrect { tries_left }
            });
        }
        check(function, code)
    }

    /// Tries and default flag of PIN `kind` ([`USER_PIN`] or [`ADMIN_PIN`]).
    pub fn pin_info(&self, kind: u64) -> Result<SkfPinInfo, SkfError> {
        let f = self.library().symbols.get_pin_info()?;
        let abi = self.library().abi;
        let (mut max, mut left, mut default) = ([0u8; 8], [0u8; 8], [0u8; 8]);
        check("SKF_GetPINInfo", unsafe {
            f(
                self.handle,
                kind,
                max.as_mut_ptr(),
                left.as_mut_ptr(),
                default.as_mut_ptr(),
            )
        })?;
        Ok(SkfPinInfo {
            max_tries: abi.read_ulong(&max),
            tries_left: abi.read_ulong(&left),
            is_default: abi.read_bool(&default),
        })
    }

    /// Logs in with PIN `kind`.
    pub fn verify_pin(&self, kind: u64, pin: &Pin) -> Result<(), SkfError> {
        let f = self.library().symbols.verify_pin()?;
        let bytes = pin_bytes(pin)?;
        let mut retry = [0u8; 8];
        let code = unsafe { f(self.handle, kind, bytes.as_ptr().cast(), retry.as_mut_ptr()) };
        self.pin_result("SKF_VerifyPIN", code, &retry)
    }

    /// Changes PIN `kind` from `old` to `new`.
    pub fn change_pin(&self, kind: u64, old: &Pin, new: &Pin) -> Result<(), SkfError> {
        let f = self.library().symbols.change_pin()?;
        let (old, new) = (pin_bytes(old)?, pin_bytes(new)?);
        let mut retry = [0u8; 8];
        let code = unsafe {
            f(
                self.handle,
                kind,
                old.as_ptr().cast(),
                new.as_ptr().cast(),
                retry.as_mut_ptr(),
            )
        };
        self.pin_result("SKF_ChangePIN", code, &retry)
    }

    /// Unblocks the user PIN with the administrator PIN, setting `new_user`.
    pub fn unblock_pin(&self, admin: &Pin, new_user: &Pin) -> Result<(), SkfError> {
        let f = self.library().symbols.unblock_pin()?;
        let (admin, new_user) = (pin_bytes(admin)?, pin_bytes(new_user)?);
        let mut retry = [0u8; 8];
        let code = unsafe {
            f(
                self.handle,
                admin.as_ptr().cast(),
                new_user.as_ptr().cast(),
                retry.as_mut_ptr(),
            )
        };
        self.pin_result("SKF_UnblockPIN", code, &retry)
    }

    /// Logs out (`SKF_ClearSecureState`).
    pub fn log_out(&self) -> Result<(), SkfError> {
        let f = self.library().symbols.clear_secure_state()?;
        check("SKF_ClearSecureState", unsafe { f(self.handle) })
    }

    /// The containers in the application.
    pub fn containers(&self) -> Result<Vec<String>, SkfError> {
        let f = self.library().symbols.enum_container()?;
        self.library()
            .list("SKF_EnumContainer", |buf, size| unsafe {
                f(self.handle, buf.cast(), size.cast())
            })
    }

    /// Opens container `name`.
    pub fn open_container(&self, name: &str) -> Result<SkfContainer<'_>, SkfError> {
        let f = self.library().symbols.open_container()?;
        let c_name = c_string("SKF_OpenContainer", name)?;
        let mut handle: Handle = std::ptr::null_mut();
        check("SKF_OpenContainer", unsafe {
            f(self.handle, c_name.as_ptr(), &mut handle)
        })?;
        Ok(SkfContainer { app: self, handle })
    }
}

/// An open container: one sign key pair and its certificate; closed when dropped.
#[derive(Debug)]
pub struct SkfContainer<'a> {
    app: &'a SkfApplication,
    handle: Handle,
}

impl Drop for SkfContainer<'_> {
    fn drop(&mut self) {
        if let Ok(f) = self.app.library().symbols.close_container() {
            unsafe { f(self.handle) };
        }
    }
}

impl SkfContainer<'_> {
    fn library(&self) -> &SkfLibrary {
        self.app.library()
    }

    /// The device the container is on.
    pub fn device(&self) -> &Arc<SkfDevice> {
        self.app.device()
    }

    /// `SKF_GetContainerType`: 1 RSA, 2 ECC (SM2), 0 empty.
    pub fn kind(&self) -> Result<u64, SkfError> {
        let f = self.library().symbols.get_container_type()?;
        let mut kind = [0u8; 8];
        check("SKF_GetContainerType", unsafe {
            f(self.handle, kind.as_mut_ptr())
        })?;
        Ok(self.library().abi.read_ulong(&kind))
    }

    /// Reads a variable-length export (size query, then the bytes).
    fn export(
        &self,
        function: &'static str,
        call: impl Fn(*mut u8, *mut u8) -> u32,
        at_least: usize,
    ) -> Result<Vec<u8>, SkfError> {
        let abi = self.library().abi;
        let mut size = abi.write_ulong(0);
        check(function, call(std::ptr::null_mut(), size.as_mut_ptr()))?;
        let said = abi.read_ulong(&size) as usize;
        if said == 0 && at_least == 0 {
            return Ok(Vec::new());
        }
        let len = said.max(at_least);
        if len > 1 << 20 {
            return Err(SkfError::Garbled {
                function,
                reason: format!("{len} bytes"),
            });
        }
        let mut buf = vec![0u8; len];
        let mut size = abi.write_ulong(len as u64);
        check(function, call(buf.as_mut_ptr(), size.as_mut_ptr()))?;
        buf.truncate((abi.read_ulong(&size) as usize).min(len));
        Ok(buf)
    }

    /// The sign key pair's public key (`SKF_ExportPublicKey`, sign flag set).
    pub fn public_key(&self) -> Result<PublicKey, SkfError> {
        let f = self.library().symbols.export_public_key()?;
        let abi = self.library().abi;
        let blob = self.export(
            "SKF_ExportPublicKey",
            |buf, size| unsafe { f(self.handle, 1, buf, size) },
            abi.public_key_blob_len(),
        )?;
        abi.read_public_key(&blob)
            .map_err(|reason| SkfError::Garbled {
                function: "SKF_ExportPublicKey",
                reason,
            })
    }

    /// The sign certificate's DER (`SKF_ExportCertificate`, sign flag set); `None` when the
    /// container holds none.
    pub fn certificate(&self) -> Result<Option<Vec<u8>>, SkfError> {
        let f = self.library().symbols.export_certificate()?;
        match self.export(
            "SKF_ExportCertificate",
            |buf, size| unsafe { f(self.handle, 1, buf, size) },
            0,
        ) {
            Ok(der) if der.is_empty() => Ok(None),
            Ok(der) => Ok(Some(der)),
            Err(SkfError::Code {
                code: sar::CERT_NOT_FOUND,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Signs e = SM3(Z‖M) (32 bytes) with the sign private key (`SKF_ECCSignData`).
    pub fn sign_e(&self, e: &[u8; 32]) -> Result<RawSignature, SkfError> {
        let f = self.library().symbols.ecc_sign_data()?;
        let abi = self.library().abi;
        // Room for the widest blob whatever the header says.
        let mut blob = vec![0u8; 2 * 64 + 64];
        check("SKF_ECCSignData", unsafe {
            f(self.handle, e.as_ptr(), 32, blob.as_mut_ptr())
        })?;
        abi.read_signature(&blob)
            .map_err(|reason| SkfError::Garbled {
                function: "SKF_ECCSignData",
                reason,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_lists_end_at_the_double_nul() {
        assert_eq!(name_list(b"UKey A\0UKey B\0\0junk"), ["UKey A", "UKey B"]);
        assert!(name_list(b"\0\0").is_empty());
        assert!(name_list(b"").is_empty());
    }

    #[test]
    fn sar_codes_become_errors_a_person_reads() {
        assert_eq!(check("SKF_X", sar::OK), Ok(()));
        assert_eq!(check("SKF_X", sar::DEVICE_REMOVED), Err(SkfError::Removed));
        assert_eq!(check("SKF_X", sar::PIN_LOCKED), Err(SkfError::PinLocked));
        assert_eq!(
            check("SKF_X", sar::USER_NOT_LOGGED_IN),
            Err(SkfError::NotLoggedIn)
        );
        let other = check("SKF_ECCSignData", 0x0A00_0001).unwrap_err();
        assert_eq!(other.to_string(), "SKF_ECCSignData failed with 0x0a000001");
    }

    #[test]
    fn a_missing_library_is_named() {
        let err = SkfLibrary::open(
            std::path::Path::new("/nonexistent/libskf.so"),
            SkfAbi::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/libskf.so"), "{err}");
    }
}
