//! `sealctl`: custodian and administrator commands, one module per command.

pub mod args;
pub mod audit;
pub mod backup;
pub mod client;
pub mod console;
pub mod custody;
pub mod devices;
pub mod doctor;
pub mod enroll;
pub mod key;
pub mod pin;
pub mod progress;
pub mod prompt;
pub mod remote;
pub mod seal;
pub mod stamp;
pub mod token;
pub mod user;
pub mod verify;
