//! `sealctl`: custodian and administrator commands, one module per command.

pub mod devices;
pub mod verify;
