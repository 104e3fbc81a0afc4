//! SKF hot-plug: a thread per SKF module blocked in `SKF_WaitForDevEvent`. A removal logs the
//! module's vanished devices out at once (their owners reset, the daemon forgets the login),
//! tells subscribers and writes a usage record; an insertion is told and recorded. A library
//! without the function leaves removals to be seen at the next operation.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::NewRecord;
use crate::device::skf::SkfError;
use crate::runtime::{Event, Runtime};

/// Starts one watcher thread per SKF module.
pub fn spawn(runtime: Arc<Runtime>) {
    for module in runtime.devices.modules() {
        let Some(skf) = module.skf() else { continue };
        let library = skf.library.clone();
        let name = module.name().to_owned();
        let rt = runtime.clone();
        let started = std::thread::Builder::new()
            .name(format!("skf-events-{name}"))
            .spawn(move || loop {
                match library.wait_for_event() {
                    Ok(Some((_, false))) => {
                        for serial in rt.devices.reset_removed(&name, &[]) {
                            rt.set_login(&serial, None);
                            rt.events.publish(Event::DeviceRemoved {
                                serial: serial.clone(),
                            });
                            record(&rt, &serial, "removed");
                        }
                    }
                    Ok(Some((device, true))) => {
                        let serial = library.connect(&device).and_then(|d| d.info());
                        if let Ok(info) = serial {
                            rt.events.publish(Event::DeviceInserted {
                                serial: info.serial.clone(),
                            });
                            record(&rt, &info.serial, "inserted");
                        }
                    }
                    Ok(None) => {}
                    Err(SkfError::Missing { .. }) => {
                        tracing::info!(module = %name, "the SKF library has no SKF_WaitForDevEvent: a removed UKey is noticed at its next use");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(module = %name, error = %e, "waiting for SKF device events failed; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            });
        if let Err(e) = started {
            tracing::error!(module = %module.name(), error = %e, "cannot start the SKF event thread");
        }
    }
}

fn record(rt: &Runtime, serial: &str, what: &str) {
    if let Err(e) = rt
        .services
        .audit
        .append(NewRecord::device(serial, what, "SKF device event"))
    {
        tracing::error!(token = %serial, error = %e, "could not write the usage record of a device {what} event");
    }
}
