//! `sealctl`: custodian and administrator commands, one module per command.
