//! TimeStampReq (RFC 3161 §2.4.1):
//!
//! ```text
//! TimeStampReq ::= SEQUENCE {
//!   version        INTEGER { v1(1) },
//!   messageImprint MessageImprint,   -- SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }
//!   reqPolicy      TSAPolicyId OPTIONAL,
//!   nonce          INTEGER OPTIONAL,
//!   certReq        BOOLEAN DEFAULT FALSE,
//!   extensions     [0] IMPLICIT Extensions OPTIONAL }
//! ```

use super::HashAlgorithm;
use crate::ses::der::write;

/// One request: the imprint of the data to be timestamped and a fresh nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStampReq {
    /// The imprint's digest algorithm.
    pub hash: HashAlgorithm,
    /// The digest of the data (for a seal: of the signature value).
    pub imprint: [u8; 32],
    /// A random 64-bit nonce, big-endian: the token must carry it back.
    pub nonce: [u8; 8],
    /// Whether the TSA is asked to put its certificate in the token.
    pub cert_req: bool,
}

impl TimeStampReq {
    /// A request over `data` with a random nonce and `certReq` true.
    pub fn new(hash: HashAlgorithm, data: &[u8]) -> Result<Self, String> {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| format!("random generator failed: {e}"))?;
        // A positive, non-zero INTEGER of 8 bytes or fewer.
        nonce[0] &= 0x7f;
        nonce[7] |= 1;
        Ok(Self {
            hash,
            imprint: hash.digest(data),
            nonce,
            cert_req: true,
        })
    }

    /// DER of the request.
    pub fn encode(&self) -> Vec<u8> {
        let alg = write::seq(&[
            &write::oid(self.hash.oid()).expect("constant OID"),
            &write::tlv(crate::ses::der::tag::NULL, &[]),
        ]);
        let imprint = write::seq(&[&alg, &write::octets(&self.imprint)]);
        let mut parts = vec![write::int(1), imprint, write::uint_bytes(&self.nonce)];
        if self.cert_req {
            parts.push(write::boolean(true));
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        write::seq(&refs)
    }

    /// The nonce as an INTEGER's magnitude (no leading zeros), to compare with a token's.
    pub fn nonce_value(&self) -> &[u8] {
        strip_zeros(&self.nonce)
    }
}

/// An unsigned big-endian integer without leading zero bytes (one zero byte for zero).
pub(crate) fn strip_zeros(v: &[u8]) -> &[u8] {
    let mut v = v;
    while v.len() > 1 && v[0] == 0 {
        v = &v[1..];
    }
    v
}
