//! The daemon's log: standard error, filtered by `SEALD_LOG` (`tracing` directives; default
//! `info`), in colour only on a terminal. Used by `seald` and its device helper alike.

/// Installs the log for this process.
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SEALD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
