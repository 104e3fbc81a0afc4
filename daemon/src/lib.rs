//! seald: electronic seals (电子印章) whose keys live in crypto hardware.
//!
//! Layers, pointing one way (see DESIGN.md §1): `api`, `cli` → `approval`, `seal`, `audit`
//! → `ofd`, `ses`, `cert`, `crypto`, `device`, `store`.

pub mod api;
pub mod approval;
pub mod audit;
pub mod cert;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod custody;
pub mod demo;
pub mod device;
pub mod hardening;
pub mod identity;
pub mod ofd;
pub mod seal;
pub mod services;
pub mod ses;
pub mod stamp;
pub mod store;
