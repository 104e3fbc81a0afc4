//! X.509 certificates with SM2 and P-256 keys: chains, validity, key usage.
