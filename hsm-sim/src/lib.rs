//! hsm-sim: a stand-in for SM2 crypto hardware (UKeys, cipher machines) made by someone else.
//!
//! The cdylib is a PKCS#11 v2.40 module (`libhsm_sim.so`) with vendor SM2 mechanisms;
//! the `hsm-sim` binary provisions tokens and runs a test CA. It shares no code with the daemon.

pub mod ca;
pub mod config;
pub mod crypto;
#[allow(non_snake_case)]
mod ffi;
pub use ffi::C_GetFunctionList;
#[allow(non_snake_case, clippy::missing_safety_doc)]
mod ffi_stubs;
pub mod module;
pub mod profile;
pub mod store;
pub mod token;
