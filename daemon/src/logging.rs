//! The daemon's log: standard error, as text (in colour only on a terminal) or as one JSON
//! object per line (`[log] format = "json"`, for log collectors). The level comes from
//! `SEALD_LOG` (`tracing` directives) if set, else `[log] level`, else `info`. Used by `seald`
//! and its device helper alike. Lines logged while an API request is handled carry its id
//! (the `request` span, see `api::request_id`).

use serde::Deserialize;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields.message`, `target`, and the
    /// fields of the current span (`span.id` of an API request).
    Json,
}

/// The `[log]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    #[serde(default)]
    pub format: LogFormat,
    /// `tracing` directives, e.g. `info` or `info,seald::stamp=debug`; `SEALD_LOG` overrides.
    #[serde(default)]
    pub level: Option<String>,
}

impl LogConfig {
    /// Checks `level` parses as `tracing` directives.
    pub fn validate(&self) -> Result<(), String> {
        match &self.level {
            Some(level) => tracing_subscriber::EnvFilter::try_new(level)
                .map(|_| ())
                .map_err(|e| format!("{level:?} is not a log level: {e}")),
            None => Ok(()),
        }
    }
}

/// Installs the default log (text, `SEALD_LOG` or `info`) for this process.
pub fn init() {
    init_with(&LogConfig::default());
}

/// Installs the log `config` asks for.
pub fn init_with(config: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEALD_LOG").unwrap_or_else(|_| {
        config
            .level
            .as_deref()
            .and_then(|level| tracing_subscriber::EnvFilter::try_new(level).ok())
            .unwrap_or_else(|| "info".into())
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
