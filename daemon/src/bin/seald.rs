//! `seald`: the electronic seal daemon.

use std::path::PathBuf;

use clap::Parser;
use seald::config::Config;

/// The electronic seal daemon: serves the localhost API.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML).
    #[arg(long, short, default_value = "config/seald.toml")]
    config: PathBuf,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SEALD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    seald::hardening::forbid_core_dumps();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seald: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load(&args.config)?;
    let table = config.atr_table()?;
    let devices = std::sync::Arc::new(seald::device::Devices::open(&config.modules)?);
    // UKey hot-plug: a thread of its own, off the runtime; removals reset token owners at once.
    let watcher = if config.pcsc.enabled {
        Some(seald::device::pcsc::Watcher::start(
            devices.clone(),
            table,
            (&config.pcsc).into(),
        )?)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = listener.local_addr()?;
    let policy = seald::api::GuardPolicy::new(
        address,
        &config.api.allowed_hosts,
        &config.api.allowed_origins,
        config.api.max_body_bytes,
        std::time::Duration::from_secs(config.api.request_timeout_secs),
    );
    tracing::info!(%address, "seald listening");
    // One line on stdout for scripts and tests that start seald on port 0.
    println!("seald listening on http://{address}");
    axum::serve(listener, seald::api::router(std::sync::Arc::new(policy)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    if let Some(watcher) = watcher {
        watcher.stop();
    }
    Ok(())
}
