//! PC/SC: card readers and UKeys through pcscd.
//!
//! [`Watcher`] runs one thread that waits on `\\?PnP?\Notification` and every reader, debounces
//! what it sees ([`debounce`]), maps cards to modules with the [`AtrTable`], resets the token
//! owners of a removed card at once and sends a [`DeviceEvent`] for every change. If pcscd is not
//! running it says so once and retries quietly; PKCS#11 tokens are served either way.
//! [`snapshot`] reads readers and cards once, for `sealctl devices`.

mod atr;
mod card;
mod config;
pub mod debounce;
mod event;
mod snapshot;
mod watcher;

pub use atr::{format_atr, parse_hex, AtrConfig, AtrConfigError, AtrEntry, AtrTable};
pub use card::{read_serial, CardMapper, SerialError};
pub use config::PcscConfig;
pub use event::{CardReport, DeviceEvent, PcscReport, PcscStatus, ReaderReport};
pub use snapshot::snapshot;
pub use watcher::{Watcher, WatcherOptions};
