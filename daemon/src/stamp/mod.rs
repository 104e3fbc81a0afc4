//! Stamping approved requests on the device, and keeping their signatures.

pub mod batch;
pub mod keys;
pub mod results;
pub mod worker;
