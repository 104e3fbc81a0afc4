//! Seal registry and lifecycle rules.
