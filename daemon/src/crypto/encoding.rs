//! ECDSA/SM2 signature encodings: raw `r‖s` (64 bytes) and DER `SEQUENCE { r INTEGER, s INTEGER }`.
//!
//! Devices and files disagree on the encoding, so everything inside seald uses [`RawSignature`]
//! and converts at the edges.

use std::fmt;

/// A 256-bit curve signature as `r‖s`, each 32 bytes big-endian.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawSignature(pub [u8; 64]);

/// Why a signature could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    /// Neither 64 raw bytes nor a DER `SEQUENCE { INTEGER, INTEGER }`.
    #[error("signature is neither raw r||s (64 bytes) nor DER SEQUENCE {{r, s}}: {0}")]
    Unrecognised(&'static str),
}

impl fmt::Debug for RawSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawSignature({})", hex::encode(self.0))
    }
}

impl RawSignature {
    /// `r` as 32 big-endian bytes.
    pub fn r(&self) -> &[u8; 32] {
        self.0[..32].try_into().expect("32 bytes")
    }

    /// `s` as 32 big-endian bytes.
    pub fn s(&self) -> &[u8; 32] {
        self.0[32..].try_into().expect("32 bytes")
    }

    /// Reads raw `r‖s` (exactly 64 bytes) or DER `SEQUENCE { r, s }`.
    pub fn from_any(bytes: &[u8]) -> Result<Self, EncodingError> {
        if bytes.len() == 64 {
            let mut raw = [0u8; 64];
            raw.copy_from_slice(bytes);
            return Ok(Self(raw));
        }
        Self::from_der(bytes)
    }

    /// Reads DER `SEQUENCE { r INTEGER, s INTEGER }` with positive integers of at most 32 bytes.
    pub fn from_der(der: &[u8]) -> Result<Self, EncodingError> {
        let (tag, body, rest) = read_tlv(der)?;
        if tag != 0x30 || !rest.is_empty() {
            return Err(EncodingError::Unrecognised("not a single SEQUENCE"));
        }
        let (r, body) = read_integer(body)?;
        let (s, body) = read_integer(body)?;
        if !body.is_empty() {
            return Err(EncodingError::Unrecognised("trailing data after s"));
        }
        let mut raw = [0u8; 64];
        raw[32 - r.len()..32].copy_from_slice(r);
        raw[64 - s.len()..].copy_from_slice(s);
        Ok(Self(raw))
    }

    /// Minimal DER `SEQUENCE { r, s }`.
    pub fn to_der(&self) -> Vec<u8> {
        let r = integer_der(self.r());
        let s = integer_der(self.s());
        let mut out = Vec::with_capacity(r.len() + s.len() + 3);
        out.push(0x30);
        push_len(&mut out, r.len() + s.len());
        out.extend_from_slice(&r);
        out.extend_from_slice(&s);
        out
    }
}

fn integer_der(value: &[u8; 32]) -> Vec<u8> {
    let first = value.iter().position(|&b| b != 0).unwrap_or(31);
    let digits = &value[first..];
    let pad = digits[0] & 0x80 != 0;
    let len = digits.len() + usize::from(pad);
    let mut out = Vec::with_capacity(len + 2);
    out.push(0x02);
    out.push(len as u8);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
    out
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        out.push(0x81);
        out.push(len as u8);
    }
}

/// Reads one TLV with a definite length; returns (tag, value, rest).
fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), EncodingError> {
    let (&tag, input) = input
        .split_first()
        .ok_or(EncodingError::Unrecognised("empty"))?;
    let (&first, input) = input
        .split_first()
        .ok_or(EncodingError::Unrecognised("truncated length"))?;
    let (len, input) = match first {
        n if n < 0x80 => (usize::from(n), input),
        0x81 => {
            let (&n, input) = input
                .split_first()
                .ok_or(EncodingError::Unrecognised("truncated length"))?;
            (usize::from(n), input)
        }
        _ => {
            return Err(EncodingError::Unrecognised(
                "length too large for a signature",
            ))
        }
    };
    if input.len() < len {
        return Err(EncodingError::Unrecognised("truncated value"));
    }
    let (value, rest) = input.split_at(len);
    Ok((tag, value, rest))
}

fn read_integer(input: &[u8]) -> Result<(&[u8], &[u8]), EncodingError> {
    let (tag, mut value, rest) = read_tlv(input)?;
    if tag != 0x02 || value.is_empty() {
        return Err(EncodingError::Unrecognised("expected INTEGER"));
    }
    if value[0] & 0x80 != 0 {
        return Err(EncodingError::Unrecognised("negative INTEGER"));
    }
    if value.len() > 1 && value[0] == 0 {
        value = &value[1..];
    }
    if value.len() > 32 {
        return Err(EncodingError::Unrecognised("INTEGER longer than 32 bytes"));
    }
    Ok((value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_round_trip_keeps_high_bit_and_leading_zero_values() {
        let mut raw = [0u8; 64];
        raw[0] = 0x80; // r needs a 0x00 pad
        raw[31] = 1;
        raw[40] = 0x7f; // s starts with 8 zero bytes
        let sig = RawSignature(raw);
        let der = sig.to_der();
        assert_eq!(der[2..5], [0x02, 33, 0x00]);
        assert_eq!(RawSignature::from_der(&der).unwrap(), sig);
        assert_eq!(RawSignature::from_any(&der).unwrap(), sig);
        assert_eq!(RawSignature::from_any(&raw).unwrap(), sig);
    }

    #[test]
    fn rejects_garbage() {
        assert!(RawSignature::from_any(&[0x30, 0x03, 0x02, 0x01]).is_err());
        assert!(RawSignature::from_any(&[0x31, 0x00]).is_err());
        assert!(RawSignature::from_der(&[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01]).is_err());
        assert!(RawSignature::from_any(&[]).is_err());
    }
}
