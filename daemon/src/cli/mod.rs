//! `sealctl`: custodian and administrator commands, one module per command.

pub mod audit;
pub mod devices;
pub mod seal;
pub mod user;
pub mod verify;
