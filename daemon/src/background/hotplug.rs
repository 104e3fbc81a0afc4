//! Carries the PC/SC watcher's changes into events and usage records.
//!
//! The watcher has already reset the owners of a removed card's tokens (logged out, sessions
//! dropped); here the daemon forgets those logins, tells subscribers and writes the record.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::audit::NewRecord;
use crate::device::pcsc::DeviceEvent;
use crate::runtime::{Event, Runtime};

/// Forwards every watcher event until the watcher stops. Call inside the tokio runtime.
pub fn bridge(state: Arc<Runtime>, mut changes: broadcast::Receiver<DeviceEvent>) {
    tokio::spawn(async move {
        loop {
            match changes.recv().await {
                Ok(change) => handle(&state, change).await,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "device events were dropped; subscribers may be behind"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

async fn handle(state: &Runtime, change: DeviceEvent) {
    let (what, card) = match &change {
        DeviceEvent::CardInserted { card, .. } => ("inserted", Some(card)),
        DeviceEvent::CardRemoved { card, .. } => ("removed", Some(card)),
        _ => ("", None),
    };
    for serial in card.map(|c| c.tokens.as_slice()).unwrap_or_default() {
        if what == "removed" {
            state.set_login(serial, None);
            state.events.publish(Event::DeviceRemoved {
                serial: serial.clone(),
            });
        } else {
            state.events.publish(Event::DeviceInserted {
                serial: serial.clone(),
            });
        }
        let record = NewRecord::device(
            serial,
            what,
            &card.map(|c| c.atr.clone()).unwrap_or_default(),
        );
        if state.services.audit.append_async(record).await.is_err() {
            tracing::error!(token = %serial, "could not write the usage record of a device {what} event");
        }
    }
    state.events.publish(Event::Pcsc { change });
}
