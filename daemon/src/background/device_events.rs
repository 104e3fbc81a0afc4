//! Device events of SKF and isolated modules: a thread per module blocked in a wait.
//!
//! - SKF hot-plug: `SKF_WaitForDevEvent` (in seald, or in the module's helper process when the
//!   library is isolated). A removal logs the module's vanished devices out at once (their
//!   owners reset, the daemon forgets the login), tells subscribers and writes a usage record;
//!   an insertion is told and recorded. A library without the function leaves removals to be
//!   seen at the next operation.
//! - Isolated libraries: the wait also watches the helper (SKF or SDF) or the p11-kit server
//!   (PKCS#11). When the library crashes or is killed, every device of the module counts as
//!   removed at once (once per loss); for a helper, the thread's next wait, after the backoff,
//!   restarts it.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::NewRecord;
use crate::device::host::{DeviceHost, P11KitRemote};
use crate::device::skf::{SkfError, SkfLibrary};
use crate::device::{DeviceError, DeviceEvent};
use crate::runtime::{Event, Runtime};

/// Where a module's device events come from.
enum Source {
    /// The SKF library loaded in seald.
    Local(Arc<SkfLibrary>),
    /// The module's helper process.
    Isolated(Arc<DeviceHost>),
    /// The p11-kit server of a PKCS#11 module: only its losses.
    P11Kit(Arc<P11KitRemote>),
}

/// What one wait gave.
enum Wait {
    Event(Option<DeviceEvent>),
    /// The SKF library cannot report events: stop watching.
    Unsupported(String),
    /// The library was lost: `which` tells one loss from the next (reported once each).
    Lost {
        which: u64,
        reason: String,
    },
    /// The wait failed.
    Failed(String),
}

impl Source {
    fn wait(&self, reported: u64) -> Wait {
        match self {
            Source::Local(library) => match library.next_event() {
                Ok(event) => Wait::Event(event),
                Err(SkfError::Missing { .. }) => {
                    Wait::Unsupported("the SKF library has no SKF_WaitForDevEvent".into())
                }
                Err(e) => Wait::Failed(e.to_string()),
            },
            Source::Isolated(host) => match host.wait_event() {
                Ok(event) => Wait::Event(event),
                Err(e @ DeviceError::LibraryDown { .. }) => Wait::Lost {
                    which: host.starts(),
                    reason: e.to_string(),
                },
                Err(e) => Wait::Failed(e.to_string()),
            },
            Source::P11Kit(remote) => {
                let (which, reason) = remote.wait_for_loss(reported);
                Wait::Lost { which, reason }
            }
        }
    }
}

/// Starts one watcher thread per SKF or isolated module.
pub fn spawn(runtime: Arc<Runtime>) {
    for module in runtime.devices.modules() {
        let source = match (module.host(), module.skf(), module.p11_kit()) {
            (Some(host), _, _) => Source::Isolated(host.clone()),
            (None, Some(skf), _) => Source::Local(skf.library.clone()),
            (None, None, Some(remote)) => Source::P11Kit(remote.clone()),
            _ => continue,
        };
        let name = module.name().to_owned();
        let rt = runtime.clone();
        // The last loss reported, so a library that stays down for a while is reported once,
        // not at every retry.
        let mut reported = 0;
        let started = std::thread::Builder::new()
            .name(format!("device-events-{name}"))
            .spawn(move || loop {
                match source.wait(reported) {
                    Wait::Event(Some(DeviceEvent {
                        inserted: false, ..
                    })) => removed(&rt, &name, "SKF device event"),
                    Wait::Event(Some(DeviceEvent {
                        serial: Some(serial),
                        inserted: true,
                    })) => {
                        rt.events.publish(Event::DeviceInserted {
                            serial: serial.clone(),
                        });
                        record(&rt, &serial, "inserted", "SKF device event");
                    }
                    Wait::Event(_) => {}
                    Wait::Unsupported(why) => {
                        tracing::info!(module = %name, "{why}: a removed UKey is noticed at its next use");
                        break;
                    }
                    Wait::Lost { which, reason } => {
                        if which != reported {
                            reported = which;
                            announce(&rt, rt.devices.reset_module(&name), &reason);
                        }
                        if !matches!(source, Source::P11Kit(_)) {
                            // The next wait restarts the helper once its backoff has run.
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                    Wait::Failed(error) => {
                        tracing::warn!(module = %name, %error, "waiting for device events failed; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            });
        if let Err(e) = started {
            tracing::error!(module = %module.name(), error = %e, "cannot start the device event thread");
        }
    }
}

/// Logs out, announces and records every device of `module` that is no longer present;
/// `detail` says how it was noticed.
fn removed(rt: &Runtime, module: &str, detail: &str) {
    announce(rt, rt.devices.reset_removed(module, &[]), detail);
}

/// Forgets the logins of the devices `serials` (already reset), tells subscribers and writes
/// a usage record for each.
fn announce(rt: &Runtime, serials: Vec<String>, detail: &str) {
    for serial in serials {
        rt.set_login(&serial, None);
        rt.events.publish(Event::DeviceRemoved {
            serial: serial.clone(),
        });
        record(rt, &serial, "removed", detail);
    }
}

fn record(rt: &Runtime, serial: &str, what: &str, why: &str) {
    if let Err(e) = rt
        .services
        .audit
        .append(NewRecord::device(serial, what, why))
    {
        tracing::error!(token = %serial, error = %e, "could not write the usage record of a device {what} event");
    }
}
