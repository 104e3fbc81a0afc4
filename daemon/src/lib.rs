//! seald: electronic seals (电子印章) whose keys live in crypto hardware.
//!
//! Layers, pointing one way (see DESIGN.md §1): front ends `api`, `cli` → services
//! `approval`, `seal`, `audit`, `custody`, `stamp`, `services`, `runtime` (event bus, logins,
//! signing keys), `background` → formats and hardware `ofd`, `pdf`, `cms`, `ses`, `cert`,
//! `crypto`, `device`, `store`. `config` assembles the sections each module owns.

pub mod api;
pub mod approval;
pub mod audit;
pub mod background;
pub mod cert;
pub mod cli;
pub mod clock;
pub mod cms;
pub mod config;
pub mod crypto;
pub mod custody;
pub mod demo;
pub mod device;
pub mod fetch;
pub mod hardening;
pub mod identity;
pub mod logging;
pub mod metrics;
pub mod ofd;
pub mod pdf;
pub mod revocation;
pub mod runtime;
pub mod seal;
pub mod services;
pub mod ses;
pub mod stamp;
pub mod store;
pub mod supervisor;
pub mod tsa;
