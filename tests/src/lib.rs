//! Shared harness for the end-to-end tests: temporary SoftHSM and hsm-sim tokens, daemon processes.
