//! The `[pcsc]` section of the config file: how the watcher runs.

use serde::Deserialize;

/// The PC/SC watcher's settings (`[pcsc]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcscConfig {
    /// Watch readers through pcscd (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Events closer together than this (milliseconds) are collapsed into their final state.
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
    /// How often to try reaching pcscd again while it is not running (milliseconds).
    #[serde(default = "default_retry_ms")]
    pub retry_ms: u64,
}

impl Default for PcscConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            debounce_ms: default_debounce_ms(),
            retry_ms: default_retry_ms(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_debounce_ms() -> u64 {
    200
}

fn default_retry_ms() -> u64 {
    5000
}
