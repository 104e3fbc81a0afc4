//! The binary layout of a vendor's SKF library (GM/T 0016-2012): how wide its `ULONG` and
//! `BOOL` are and how wide the coordinate fields of its ECC blobs are, and the blobs and
//! structs read and written with that layout. See `firmware-notes/skf.md`.

use crate::crypto::{KeyAlgorithm, PublicKey, RawSignature};

/// A vendor library's ABI, from the module's config (`[module.skf]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkfAbi {
    /// Bytes of a `ULONG` in structs and behind `ULONG*`: 4 (`uint32_t`, GmSSL's header) or 8
    /// (`unsigned long` on 64-bit Linux, in some vendors' headers).
    pub ulong: usize,
    /// Bytes of a `BOOL` behind `BOOL*`: 4 or 8.
    pub bool: usize,
    /// Bytes of each coordinate field (X, Y, r, s) in the ECC blobs: 64 (GM/T 0016,
    /// `ECC_MAX_XCOORDINATE_BITS_LEN` 512) or 32 (some vendors' headers).
    pub ecc_field: usize,
}

impl Default for SkfAbi {
    fn default() -> Self {
        Self {
            ulong: 4,
            bool: 4,
            ecc_field: 64,
        }
    }
}

/// DEVINFO offsets that do not depend on the ABI: Version (2), Manufacturer (64), Issuer (64),
/// then Label (32) and SerialNumber (32).
const LABEL_AT: usize = 2 + 64 + 64;
const SERIAL_AT: usize = LABEL_AT + 32;

impl SkfAbi {
    /// Checks the widths; says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !matches!(self.ulong, 4 | 8) {
            return Err(format!("ulong is {}: it must be 4 or 8", self.ulong));
        }
        if !matches!(self.bool, 4 | 8) {
            return Err(format!("bool is {}: it must be 4 or 8", self.bool));
        }
        if !matches!(self.ecc_field, 32 | 64) {
            return Err(format!(
                "ecc_field is {}: it must be 32 or 64",
                self.ecc_field
            ));
        }
        Ok(())
    }

    /// Reads a `ULONG` written behind a `ULONG*` (little-endian, `ulong` bytes).
    pub fn read_ulong(&self, raw: &[u8; 8]) -> u64 {
        let mut v = [0u8; 8];
        v[..self.ulong].copy_from_slice(&raw[..self.ulong]);
        u64::from_le_bytes(v)
    }

    /// A `ULONG` to put behind a `ULONG*` (the rest of the 8 bytes zero).
    pub fn write_ulong(&self, value: u64) -> [u8; 8] {
        let mut raw = [0u8; 8];
        raw[..self.ulong].copy_from_slice(&value.to_le_bytes()[..self.ulong]);
        raw
    }

    /// Reads a `BOOL` written behind a `BOOL*`.
    pub fn read_bool(&self, raw: &[u8; 8]) -> bool {
        raw[..self.bool].iter().any(|b| *b != 0)
    }

    /// Size of DEVINFO: the fixed part, 8 `ULONG`s and 64 reserved bytes.
    pub fn dev_info_len(&self) -> usize {
        SERIAL_AT + 32 + 2 + 2 + 8 * self.ulong + 64
    }

    /// Size of ECCPUBLICKEYBLOB: `ULONG BitLen`, X, Y.
    pub fn public_key_blob_len(&self) -> usize {
        self.ulong + 2 * self.ecc_field
    }

    /// Size of ECCSIGNATUREBLOB: r, s.
    pub fn signature_blob_len(&self) -> usize {
        2 * self.ecc_field
    }

    /// The manufacturer, label and serial number of a DEVINFO.
    pub fn dev_info_names(&self, raw: &[u8]) -> Result<(String, String, String), String> {
        if raw.len() < self.dev_info_len() {
            return Err(format!(
                "DEVINFO is {} bytes, {} expected",
                raw.len(),
                self.dev_info_len()
            ));
        }
        let text = |field: &[u8]| {
            let end = field.iter().position(|b| *b == 0).unwrap_or(field.len());
            String::from_utf8_lossy(&field[..end]).trim().to_string()
        };
        Ok((
            text(&raw[2..2 + 64]),
            text(&raw[LABEL_AT..LABEL_AT + 32]),
            text(&raw[SERIAL_AT..SERIAL_AT + 32]),
        ))
    }

    /// The SM2 public key of an ECCPUBLICKEYBLOB (BitLen 256; X and Y right-aligned).
    pub fn read_public_key(&self, blob: &[u8]) -> Result<PublicKey, String> {
        if blob.len() < self.public_key_blob_len() {
            return Err(format!(
                "ECCPUBLICKEYBLOB is {} bytes, {} expected",
                blob.len(),
                self.public_key_blob_len()
            ));
        }
        let mut bits = [0u8; 8];
        bits[..self.ulong].copy_from_slice(&blob[..self.ulong]);
        let bits = self.read_ulong(&bits);
        if bits != 256 {
            return Err(format!("ECCPUBLICKEYBLOB BitLen is {bits}, not 256"));
        }
        let x = self.coordinate(&blob[self.ulong..self.ulong + self.ecc_field], "X")?;
        let y = self.coordinate(
            &blob[self.ulong + self.ecc_field..self.ulong + 2 * self.ecc_field],
            "Y",
        )?;
        let mut point = [0u8; 65];
        point[0] = 0x04;
        point[1..33].copy_from_slice(x);
        point[33..].copy_from_slice(y);
        Ok(PublicKey {
            algorithm: KeyAlgorithm::Sm2,
            point,
        })
    }

    /// The ECCPUBLICKEYBLOB of an SM2 point (BitLen 256; X and Y right-aligned).
    pub fn public_key_blob(&self, point: &[u8; 65]) -> Vec<u8> {
        let mut blob = vec![0u8; self.public_key_blob_len()];
        blob[..self.ulong].copy_from_slice(&self.write_ulong(256)[..self.ulong]);
        let pad = self.ecc_field - 32;
        let x_at = self.ulong + pad;
        let y_at = self.ulong + self.ecc_field + pad;
        blob[x_at..x_at + 32].copy_from_slice(&point[1..33]);
        blob[y_at..y_at + 32].copy_from_slice(&point[33..]);
        blob
    }

    /// r‖s of an ECCSIGNATUREBLOB.
    pub fn read_signature(&self, blob: &[u8]) -> Result<RawSignature, String> {
        if blob.len() < self.signature_blob_len() {
            return Err(format!(
                "ECCSIGNATUREBLOB is {} bytes, {} expected",
                blob.len(),
                self.signature_blob_len()
            ));
        }
        let r = self.coordinate(&blob[..self.ecc_field], "r")?;
        let s = self.coordinate(&blob[self.ecc_field..2 * self.ecc_field], "s")?;
        let mut raw = [0u8; 64];
        raw[..32].copy_from_slice(r);
        raw[32..].copy_from_slice(s);
        Ok(RawSignature(raw))
    }

    /// The 32 value bytes of a right-aligned field; the bytes before them must be zero.
    fn coordinate<'a>(&self, field: &'a [u8], name: &str) -> Result<&'a [u8], String> {
        right_aligned(field, name, "ecc_field")
    }
}

/// The 32 value bytes of a right-aligned ECC field (SKF blobs, SDF `ECCref` structs); the
/// bytes before them must be zero, else the configured width (`setting`) is wrong.
pub(crate) fn right_aligned<'a>(
    field: &'a [u8],
    name: &str,
    setting: &str,
) -> Result<&'a [u8], String> {
    let (pad, value) = field.split_at(field.len() - 32);
    if pad.iter().any(|b| *b != 0) {
        return Err(format!(
            "the {name} field is not a right-aligned 256-bit value (its first {} bytes are not zero): check {setting}",
            pad.len()
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_key_blob_reads_back_in_both_field_widths() {
        let mut point = [0u8; 65];
        point[0] = 4;
        for (i, b) in point[1..].iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        for (ulong, ecc_field) in [(4, 64), (8, 32), (8, 64)] {
            let abi = SkfAbi {
                ulong,
                bool: 4,
                ecc_field,
            };
            let blob = abi.public_key_blob(&point);
            assert_eq!(blob.len(), abi.public_key_blob_len());
            assert_eq!(abi.read_public_key(&blob).unwrap().point, point);
        }
    }

    fn blob(abi: &SkfAbi, bits: u64, x: &[u8; 32], y: &[u8; 32]) -> Vec<u8> {
        let mut out = abi.write_ulong(bits)[..abi.ulong].to_vec();
        for v in [x, y] {
            out.extend(std::iter::repeat_n(0, abi.ecc_field - 32));
            out.extend(v);
        }
        out
    }

    #[test]
    fn blobs_are_read_in_every_layout() {
        for (ulong, ecc_field) in [(4, 64), (8, 64), (4, 32), (8, 32)] {
            let abi = SkfAbi {
                ulong,
                bool: 4,
                ecc_field,
            };
            let key = abi
                .read_public_key(&blob(&abi, 256, &[1; 32], &[2; 32]))
                .unwrap();
            assert_eq!(key.point[0], 4);
            assert_eq!(&key.point[1..33], &[1; 32]);
            assert_eq!(&key.point[33..], &[2; 32]);
            assert_eq!(
                abi.public_key_blob_len(),
                ulong + 2 * ecc_field,
                "{ulong}/{ecc_field}"
            );
            let sig = [
                vec![0; ecc_field - 32],
                vec![3; 32],
                vec![0; ecc_field - 32],
                vec![4; 32],
            ]
            .concat();
            let raw = abi.read_signature(&sig).unwrap();
            assert_eq!(raw.r(), &[3; 32]);
            assert_eq!(raw.s(), &[4; 32]);
        }
    }

    #[test]
    fn a_wrong_layout_is_named() {
        let abi = SkfAbi::default();
        // A 32-byte-field blob read as 64-byte fields: too short.
        let narrow = SkfAbi {
            ecc_field: 32,
            ..abi
        };
        let small = blob(&narrow, 256, &[1; 32], &[2; 32]);
        assert!(abi
            .read_public_key(&small)
            .unwrap_err()
            .contains("expected"));
        // An 8-byte BitLen read as 4 bytes: the fields shift and the padding is not zero.
        let wide = SkfAbi { ulong: 8, ..abi };
        let shifted = blob(&wide, 256, &[1; 32], &[2; 32]);
        let mut as_narrow = shifted.clone();
        as_narrow.truncate(abi.public_key_blob_len());
        assert!(abi.read_public_key(&as_narrow).is_err());
        assert!(abi
            .read_public_key(&blob(&abi, 384, &[1; 32], &[2; 32]))
            .unwrap_err()
            .contains("BitLen is 384"));
        assert!(SkfAbi { ulong: 2, ..abi }.validate().is_err());
    }

    #[test]
    fn ulongs_and_bools_keep_their_width() {
        let narrow = SkfAbi::default();
        let wide = SkfAbi {
            ulong: 8,
            bool: 8,
            ..narrow
        };
        assert_eq!(narrow.write_ulong(0x1_0000_0005), [5, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            wide.read_ulong(&wide.write_ulong(0x1_0000_0005)),
            0x1_0000_0005
        );
        // A 4-byte library leaves the upper half alone: it is ignored.
        assert_eq!(narrow.read_ulong(&[7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]), 7);
        assert!(wide.read_bool(&[0, 0, 0, 0, 1, 0, 0, 0]));
        assert!(!narrow.read_bool(&[0, 0, 0, 0, 1, 0, 0, 0]));
        assert_eq!(narrow.dev_info_len(), 294);
        assert_eq!(wide.dev_info_len(), 326);
    }
}
