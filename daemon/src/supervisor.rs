//! Telling a service manager (systemd, `Type=notify`) how seald is, over `NOTIFY_SOCKET`:
//! `READY=1` once the store and devices are open and the listener is bound, `WATCHDOG=1`
//! keep-alives while the runtime answers, `RELOADING=1` around a config reload and
//! `STOPPING=1` at shutdown. Without `NOTIFY_SOCKET` (not under systemd) each call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// Serving: the store and devices are open and the listener is bound to `address`.
pub fn ready(address: std::net::SocketAddr) {
    notify(&[
        NotifyState::Ready,
        NotifyState::Status(&format!("listening on http://{address}")),
    ]);
}

/// A config reload begins.
pub fn reloading() {
    let now = NotifyState::monotonic_usec_now();
    match now {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

/// A config reload ended (`status`: what it did, or why it did nothing). Only the first line
/// of `status`, clipped, is shown (`systemctl status` is readable by every local user, and a
/// parse error's later lines quote the file, which may hold a password).
pub fn reloaded(status: &str) {
    let line = status.lines().next().unwrap_or_default();
    let shown: String = line.chars().take(300).collect();
    notify(&[NotifyState::Ready, NotifyState::Status(&shown)]);
}

/// Shutting down.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// When the service manager expects keep-alives (`WatchdogSec=`), a task that sends one every
/// half period, each only after a task on the blocking pool (where stamps, store and device
/// calls run) has answered: a runtime whose threads are all stuck stops the keep-alives and
/// systemd restarts seald.
pub fn spawn_watchdog() -> Option<tokio::task::JoinHandle<()>> {
    let period = sd_notify::watchdog_enabled()?;
    let every = (period / 2).max(Duration::from_millis(100));
    tracing::info!(
        period_ms = period.as_millis() as u64,
        "watchdog keep-alives on"
    );
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let probe = tokio::task::spawn_blocking(|| ());
            match tokio::time::timeout(every, probe).await {
                Ok(Ok(())) => notify(&[NotifyState::Watchdog]),
                _ => tracing::warn!("the blocking pool did not answer: no watchdog keep-alive"),
            }
        }
    }))
}
