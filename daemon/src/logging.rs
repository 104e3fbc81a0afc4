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
        LogFormat::Text => {
            let builder = builder
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter_reloading();
            let handle = builder.reload_handle();
            keep_level_setter(move |filter| handle.reload(filter).map_err(|e| e.to_string()));
            builder.init()
        }
        LogFormat::Json => {
            let builder = builder
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_filter_reloading();
            let handle = builder.reload_handle();
            keep_level_setter(move |filter| handle.reload(filter).map_err(|e| e.to_string()));
            builder.init()
        }
    }
}

type LevelSetter = Box<dyn Fn(tracing_subscriber::EnvFilter) -> Result<(), String> + Send + Sync>;

/// How the running subscriber's filter is replaced (set once, by [`init_with`]).
static LEVEL_SETTER: std::sync::OnceLock<LevelSetter> = std::sync::OnceLock::new();

fn keep_level_setter(
    set: impl Fn(tracing_subscriber::EnvFilter) -> Result<(), String> + Send + Sync + 'static,
) {
    let _ = LEVEL_SETTER.set(Box::new(set));
}

/// What a reload did to the log level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LevelChange {
    /// The filter is now `level` (the config's, or `info` without one).
    Set(String),
    /// `SEALD_LOG` is set and wins over the config: nothing changed.
    EnvironmentWins,
}

/// Applies `config.level` to the running log (a config reload), unless `SEALD_LOG` is set.
pub fn reload_level(config: &LogConfig) -> Result<LevelChange, String> {
    if std::env::var_os("SEALD_LOG").is_some() {
        return Ok(LevelChange::EnvironmentWins);
    }
    let level = config.level.clone().unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .map_err(|e| format!("{level:?} is not a log level: {e}"))?;
    let set = LEVEL_SETTER
        .get()
        .ok_or("the log was not set up by seald (no level to change)")?;
    set(filter)?;
    Ok(LevelChange::Set(level))
}
