//! hsm-sim: a stand-in for SM2 crypto hardware (UKeys, cipher machines) made by someone else.
//!
//! The cdylib is a PKCS#11 v2.40 module (`libhsm_sim.so`) with vendor SM2 mechanisms, and
//! also exports GM/T 0016 SKF functions (`SKF_*`, see `skf`) and GM/T 0018 SDF functions
//! (`SDF_*`, see `sdf`) over the same tokens;
//! the `hsm-sim` binary provisions tokens and runs a test CA. It shares no code with the daemon.

pub mod ca;
pub mod config;
pub mod crypto;
pub mod fault;
#[allow(non_snake_case)]
mod ffi;
pub use ffi::C_GetFunctionList;
#[allow(non_snake_case, clippy::missing_safety_doc)]
mod ffi_stubs;
pub mod module;
pub mod profile;
pub mod sdf;
pub mod skf;
pub mod store;
pub mod token;
pub mod vcard;

/// Finds the built module for a test binary of any workspace crate: cargo puts test binaries
/// and the cdylib in `target/<profile>/deps/`, and `cargo build` copies the cdylib up one level.
/// `HSM_SIM_MODULE` overrides the search.
pub fn module_path() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("HSM_SIM_MODULE") {
        return Some(p.into());
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [
        dir.join("libhsm_sim.so"),
        dir.join("deps/libhsm_sim.so"),
        dir.parent()?.join("libhsm_sim.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
}
