//! Shared harness for the end-to-end tests: temporary SoftHSM and hsm-sim tokens, the real
//! binaries, log capture.

pub mod bins;
pub mod browser;
pub mod checks;
pub mod daemon;
pub mod deployment;
pub mod hsmsim;
pub mod logs;
pub mod loopback_http;
pub mod ofd;
pub mod openssl;
pub mod pcsc;
pub mod pdf;
pub mod postgres;
pub mod pty;
pub mod revocation;
pub mod sealctl;
pub mod softhsm;
pub mod sse;
pub mod stamping;
pub mod tsa;
