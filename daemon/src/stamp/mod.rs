//! Stamping approved requests on the device, and keeping their signatures.

pub mod batch;
pub mod claims;
pub mod documents;
pub mod results;
pub mod worker;

use std::sync::Arc;

use crate::approval::RequestId;
use crate::runtime::Runtime;

/// Starts the signing worker for an approved request, on the blocking pool.
pub fn spawn_signing(runtime: Arc<Runtime>, id: RequestId) {
    tokio::task::spawn_blocking(move || {
        match worker::run(&runtime, id) {
            Ok(_) => {}
            Err(
                e @ (worker::StampError::NotClaimed(_) | worker::StampError::LeftForAnotherNode(_)),
            ) => tracing::debug!(request = id, reason = %e, "request not signed here"),
            Err(e) => tracing::warn!(request = id, error = %e, "request not signed"),
        }
        remove_final_uploads(&runtime);
    });
}

/// Removes the uploaded OFD files of requests that are final (signed, rejected, expired,
/// failed): the sealed files (or nothing) are what is kept. Returns how many were removed.
pub fn remove_final_uploads(runtime: &Runtime) -> usize {
    let due = match runtime.services.store.read(|tx| tx.final_uploads()) {
        Ok(due) if !due.is_empty() => due,
        Ok(_) => return 0,
        Err(e) => {
            tracing::error!(error = %e, "cannot list the uploads of final requests");
            return 0;
        }
    };
    let mut removed = Vec::new();
    for (request, n, relative) in due {
        match runtime.documents.remove(&relative) {
            Ok(()) => removed.push((request, n)),
            Err(e) => tracing::error!(request, n, error = %e, "cannot remove an upload"),
        }
    }
    let count = removed.len();
    let cleared = runtime.services.store.write(move |tx| {
        for (request, n) in removed {
            tx.clear_file_upload(request, n)?;
        }
        Ok::<_, crate::store::StoreError>(())
    });
    if let Err(e) = cleared {
        tracing::error!(error = %e, "cannot record removed uploads");
    }
    count
}
