//! The SKF symbols, bound once when the library is loaded.
//!
//! By-value `ULONG` and `BOOL` arguments are passed as 64-bit integers (in registers on
//! x86-64 and aarch64: a library that reads 32 bits reads the same value); results are read as
//! 32 bits (every SAR code fits). Pointers to `ULONG`/`BOOL` point at 8 zeroed bytes read with
//! the module's [`super::SkfAbi`].

use std::ffi::{c_char, c_void};

use super::SkfError;

/// A device, application or container handle.
pub(super) type Handle = *mut c_void;

type EnumList = unsafe extern "C" fn(u64, *mut c_char, *mut c_void) -> u32;
type EnumIn = unsafe extern "C" fn(Handle, *mut c_char, *mut c_void) -> u32;
type ConnectDev = unsafe extern "C" fn(*const c_char, *mut Handle) -> u32;
type OpenIn = unsafe extern "C" fn(Handle, *const c_char, *mut Handle) -> u32;
type Close = unsafe extern "C" fn(Handle) -> u32;
type GetDevInfo = unsafe extern "C" fn(Handle, *mut u8) -> u32;
type GetPinInfo = unsafe extern "C" fn(Handle, u64, *mut u8, *mut u8, *mut u8) -> u32;
type VerifyPin = unsafe extern "C" fn(Handle, u64, *const c_char, *mut u8) -> u32;
type ChangePin = unsafe extern "C" fn(Handle, u64, *const c_char, *const c_char, *mut u8) -> u32;
type UnblockPin = unsafe extern "C" fn(Handle, *const c_char, *const c_char, *mut u8) -> u32;
type GetContainerType = unsafe extern "C" fn(Handle, *mut u8) -> u32;
type Export = unsafe extern "C" fn(Handle, u64, *mut u8, *mut u8) -> u32;
type EccSignData = unsafe extern "C" fn(Handle, *const u8, u64, *mut u8) -> u32;
type DigestInit = unsafe extern "C" fn(Handle, u64, *const u8, *const u8, u64, *mut Handle) -> u32;
type Digest = unsafe extern "C" fn(Handle, *const u8, u64, *mut u8, *mut u8) -> u32;
type DigestUpdate = unsafe extern "C" fn(Handle, *const u8, u64) -> u32;
type DigestFinal = unsafe extern "C" fn(Handle, *mut u8, *mut u8) -> u32;
type WaitForDevEvent = unsafe extern "C" fn(*mut c_char, *mut u8, *mut u8) -> u32;
type CancelWait = unsafe extern "C" fn() -> u32;

/// Declares the bound symbols and an accessor for each that says when it is missing.
macro_rules! symbols {
    ($($field:ident: $ty:ty = $name:literal;)*) => {
        /// The library and its SKF functions (each `None` when the library lacks it).
        pub(super) struct Symbols {
            $($field: Option<$ty>,)*
            _library: libloading::Library,
        }

        impl Symbols {
            /// Loads the library and binds every symbol it has.
            pub(super) fn load(path: &std::path::Path) -> Result<Self, SkfError> {
                // SAFETY: loading a vendor library runs its initialisers; that is what
                // configuring it as a module asks for.
                let library = unsafe { libloading::Library::new(path) }.map_err(|e| {
                    SkfError::Load {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    }
                })?;
                // SAFETY: each symbol is read with the prototype GM/T 0016 gives it.
                unsafe {
                    Ok(Self {
                        $($field: library
                            .get::<$ty>(concat!($name, "\0").as_bytes())
                            .ok()
                            .map(|s| *s),)*
                        _library: library,
                    })
                }
            }

            $(
                pub(super) fn $field(&self) -> Result<$ty, SkfError> {
                    self.$field.ok_or(SkfError::Missing { symbol: $name })
                }
            )*
        }

        impl std::fmt::Debug for Symbols {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let missing: Vec<&str> = [$((stringify!($field), self.$field.is_some(), $name)),*]
                    .iter()
                    .filter(|(_, present, _)| !present)
                    .map(|(_, _, name)| *name)
                    .collect();
                f.debug_struct("Symbols").field("missing", &missing).finish()
            }
        }
    };
}

symbols! {
    enum_dev: EnumList = "SKF_EnumDev";
    connect_dev: ConnectDev = "SKF_ConnectDev";
    disconnect_dev: Close = "SKF_DisConnectDev";
    get_dev_info: GetDevInfo = "SKF_GetDevInfo";
    enum_application: EnumIn = "SKF_EnumApplication";
    open_application: OpenIn = "SKF_OpenApplication";
    close_application: Close = "SKF_CloseApplication";
    get_pin_info: GetPinInfo = "SKF_GetPINInfo";
    verify_pin: VerifyPin = "SKF_VerifyPIN";
    change_pin: ChangePin = "SKF_ChangePIN";
    unblock_pin: UnblockPin = "SKF_UnblockPIN";
    clear_secure_state: Close = "SKF_ClearSecureState";
    enum_container: EnumIn = "SKF_EnumContainer";
    open_container: OpenIn = "SKF_OpenContainer";
    close_container: Close = "SKF_CloseContainer";
    get_container_type: GetContainerType = "SKF_GetContainerType";
    export_certificate: Export = "SKF_ExportCertificate";
    export_public_key: Export = "SKF_ExportPublicKey";
    ecc_sign_data: EccSignData = "SKF_ECCSignData";
    digest_init: DigestInit = "SKF_DigestInit";
    digest: Digest = "SKF_Digest";
    digest_update: DigestUpdate = "SKF_DigestUpdate";
    digest_final: DigestFinal = "SKF_DigestFinal";
    close_handle: Close = "SKF_CloseHandle";
    wait_for_dev_event: WaitForDevEvent = "SKF_WaitForDevEvent";
    cancel_wait_for_dev_event: CancelWait = "SKF_CancelWaitForDevEvent";
}
