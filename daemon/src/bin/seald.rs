//! `seald`: the electronic seal daemon.

use std::io::BufRead;
use std::path::PathBuf;

use clap::Parser;
use seald::cli::args::{SealdArgs as Args, SealdCommand as Cmd};
use seald::config::Config;

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // The daemon logs as its config says; a config that cannot be read is reported by `run`.
    let log = match args.command {
        None => Config::load(&args.config)
            .map(|c| c.log)
            .unwrap_or_default(),
        Some(_) => Default::default(),
    };
    seald::logging::init_with(&log);
    seald::hardening::forbid_core_dumps();
    let result = match args.command {
        Some(Cmd::Demo {
            dir,
            profile,
            listen,
            extra_seals,
            setup_only,
            store,
        }) => demo(dir, profile, listen, extra_seals, setup_only, store),
        None => prepare_isolation(&args.config).and_then(|()| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| e.into())
                .and_then(|rt| rt.block_on(run(args.config, args.init)))
        }),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seald: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Provisions (single-threaded: it sets `HSM_SIM_CONF` for the simulator), then runs the daemon
/// as a child process on the demo config and prints the curl lines.
fn demo(
    dir: Option<PathBuf>,
    profile: String,
    listen: String,
    extra_seals: bool,
    setup_only: bool,
    store: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = dir.unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        std::env::temp_dir().join(format!("seald-demo-{}-{stamp}", std::process::id()))
    });
    let made = seald::demo::provision(&seald::demo::DemoOptions {
        dir: dir.clone(),
        profile,
        extra_seals,
        listen,
        store,
    })?;
    println!("demo directory: {}", dir.display());
    println!("config: {}", made.config.display());
    if setup_only {
        return Ok(());
    }
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command
        .arg("--config")
        .arg(&made.config)
        .env("HSM_SIM_CONF", &made.hsm_sim_conf)
        .stdout(std::process::Stdio::piped());
    // The daemon stops when the demo does, however the demo ends.
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout from the daemon")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let first = lines.next().ok_or("the daemon exited before listening")??;
    let base = first
        .strip_prefix("seald listening on ")
        .ok_or_else(|| format!("unexpected daemon output: {first}"))?
        .to_owned();
    println!("{first}");
    println!(
        "# Tokens are in {} (0600); the custodian's PIN in {} (0600).",
        made.tokens.display(),
        made.login_body.display()
    );
    println!("# Paste these lines into bash: custodian login, request, two approvals, signature, verify.");
    print!("{}", seald::demo::curl_script(&base, &made));
    println!("# end of curl lines");
    println!(
        "# The web console: open {base}/ in a browser on this machine and paste a token from {} \
         (or print a one-time link: sealctl console --daemon {base} --token-file FILE).",
        made.tokens.display()
    );
    use std::io::Write;
    std::io::stdout().flush()?;
    for line in lines.map_while(Result::ok) {
        println!("{line}");
    }
    let status = child.wait()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the daemon exited: {status}").into())
    }
}

/// Points p11-kit's client at seald's own server while seald has one thread: setting the
/// environment later would race with threads reading it. Only for a config that puts a
/// PKCS#11 module behind p11-kit (errors in the config are reported by `run`).
fn prepare_isolation(config: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let Ok(config) = Config::load(config) else {
        return Ok(());
    };
    let behind_p11_kit = config
        .modules
        .iter()
        .any(|m| m.isolation() == seald::device::Isolation::P11Kit);
    if behind_p11_kit {
        seald::device::host::prepare_p11_kit_address()?;
    }
    Ok(())
}

async fn run(path: PathBuf, init: bool) -> Result<(), Box<dyn std::error::Error>> {
    let (config, text) = Config::load_with_text(&path)?;
    seald::config::require_store(&config.store, init)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = listener.local_addr()?;
    let state = seald::api::server::build_state(&config, address)?;
    // Before serving: tidy unfinished files and list approved requests while nothing runs.
    let approved = seald::background::recover(&state.runtime);
    seald::background::spawn(state.runtime.clone(), approved);
    seald::background::device_events::spawn(state.runtime.clone());
    // UKey hot-plug: a thread of its own, off the runtime; removals reset token owners at once.
    let watcher = if config.pcsc.enabled {
        let (watcher, changes) = seald::device::pcsc::Watcher::start_subscribed(
            state.devices.clone(),
            config.atr_table()?,
            (&config.pcsc).into(),
        )?;
        seald::background::hotplug::bridge(state.runtime.clone(), changes);
        Some(watcher)
    } else {
        None
    };
    tracing::info!(%address, "seald listening");
    // One line on stdout for scripts and tests that start seald on port 0.
    println!("seald listening on http://{address}");
    use std::io::Write;
    std::io::stdout().flush()?;
    // SIGHUP is handled before READY: a reload right after the start must not end seald.
    spawn_reloads(
        state.clone(),
        seald::api::reload::Reloader::new(&path, text),
    )?;
    seald::supervisor::ready(address);
    let _watchdog = seald::supervisor::spawn_watchdog();
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated => {}
        }
        seald::supervisor::stopping();
    };
    seald::api::connections::serve(
        listener,
        seald::api::app(state.clone()),
        seald::api::connections::ConnectionLimits::from_config(&config.api),
        shutdown,
    )
    .await;
    seald::background::flush_on_shutdown(&state.runtime);
    if let Some(watcher) = watcher {
        watcher.stop();
    }
    Ok(())
}

/// Reloads the config on each SIGHUP (`systemctl reload seald`), one at a time; what could not
/// be applied without a restart is logged.
fn spawn_reloads(
    state: seald::api::SharedState,
    reloader: seald::api::reload::Reloader,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let reloader = std::sync::Arc::new(reloader);
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            seald::supervisor::reloading();
            let (state, reloader) = (state.clone(), reloader.clone());
            let outcome = tokio::task::spawn_blocking(move || reloader.reload(&state))
                .await
                .unwrap_or_else(|e| Err(format!("config not reloaded: {e}")));
            let status = match outcome {
                Ok(report) => {
                    let summary = report.summary();
                    if report.needs_restart.is_empty() {
                        tracing::info!("{summary}");
                    } else {
                        tracing::warn!("{summary}");
                    }
                    summary
                }
                Err(e) => {
                    tracing::error!("{e}");
                    e
                }
            };
            seald::supervisor::reloaded(&status);
        }
    });
    Ok(())
}
