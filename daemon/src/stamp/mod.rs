//! Stamping approved requests on the device, and keeping their signatures.

pub mod batch;
pub mod results;
pub mod worker;

use std::sync::Arc;

use crate::approval::RequestId;
use crate::runtime::Runtime;

/// Starts the signing worker for an approved request, on the blocking pool.
pub fn spawn_signing(runtime: Arc<Runtime>, id: RequestId) {
    tokio::task::spawn_blocking(move || {
        if let Err(e) = worker::run(&runtime, id) {
            tracing::warn!(request = id, error = %e, "request not signed");
        }
    });
}
