//! The virtual UKey's ATR (ISO/IEC 7816-3 §8), built byte by byte so each part can be checked.
//!
//! ```text
//! 3B        TS  direct convention
//! 8D        T0  Y1 = 8 (TD1 follows), K = 13 historical bytes
//! 01        TD1 Y2 = 0 (no more interface bytes), T = 1
//! 80        category indicator: COMPACT-TLV data objects follow (ISO/IEC 7816-4 §12.1.1)
//! 5B ...    tag 5 (card issuer's data), length 11: "HSMSIM-UKEY"
//! TCK       XOR of T0 ..= last historical byte (mandatory because T = 1 is offered)
//! ```

/// The card issuer's data carried in the historical bytes: names the card.
pub const ISSUER_DATA: &[u8] = b"HSMSIM-UKEY";

/// Historical bytes: category 0x80, then one COMPACT-TLV object (tag 5, card issuer's data).
pub fn historical_bytes() -> Vec<u8> {
    let mut bytes = vec![0x80, 0x50 | ISSUER_DATA.len() as u8];
    bytes.extend_from_slice(ISSUER_DATA);
    bytes
}

/// The complete ATR with its check byte.
pub fn atr() -> Vec<u8> {
    let historical = historical_bytes();
    assert!(historical.len() <= 15, "K is a 4-bit count");
    let mut atr = vec![0x3B, 0x80 | historical.len() as u8, 0x01];
    atr.extend_from_slice(&historical);
    atr.push(tck(&atr[1..]));
    atr
}

/// The check byte: XOR of every byte from T0 on, so that T0 ⊕ … ⊕ TCK = 0.
pub fn tck(from_t0: &[u8]) -> u8 {
    from_t0.iter().fold(0, |acc, b| acc ^ b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atr_structure_and_check_byte() {
        let atr = atr();
        assert_eq!(atr[0], 0x3B, "TS direct convention");
        let k = (atr[1] & 0x0F) as usize;
        assert_eq!(atr[1] & 0xF0, 0x80, "only TD1 follows T0");
        assert_eq!(atr[2], 0x01, "TD1: T=1, no more interface bytes");
        assert_eq!(atr.len(), 3 + k + 1, "TS T0 TD1 + K historical + TCK");
        assert_eq!(&atr[3..3 + k], historical_bytes().as_slice());
        assert_eq!(tck(&atr[1..]), 0, "T0 ..= TCK XOR to zero");
        assert!(atr.len() <= 33, "an ATR is at most 33 bytes");
        assert_eq!(
            hex::encode_upper(&atr),
            "3B8D01805B48534D53494D2D554B4559".to_owned() + &format!("{:02X}", atr[16])
        );
    }
}
