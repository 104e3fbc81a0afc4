//! Test CA.
