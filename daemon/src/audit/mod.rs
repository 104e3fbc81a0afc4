//! Hash-chained usage log: append, retention, export, chain verification.
