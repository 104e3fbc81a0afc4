//! Per-seal approval policies and the stamp request state machine.
