//! The `/v1` handlers, one module per resource.

pub mod audit;
pub mod custody;
pub mod devices;
pub mod enrol;
pub mod events;
pub mod metrics;
pub mod pin;
pub mod seal_state;
pub mod seals;
pub mod stamp;
pub mod upload;
pub mod verify;
