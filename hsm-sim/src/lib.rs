//! hsm-sim: a stand-in for SM2 crypto hardware (UKeys, cipher machines) made by someone else.
//!
//! It shares no code with the daemon. The PKCS#11 module arrives with its own issue.
