//! The card's command set: SELECT by AID and GET DATA for the token serial (ISO/IEC 7816-4).

/// The application identifier the card answers to: proprietary (`F` first nibble,
/// ISO/IEC 7816-5), then "HSMSIMUK".
pub const AID: &[u8] = &[0xF0, 0x48, 0x53, 0x4D, 0x53, 0x49, 0x4D, 0x55, 0x4B];
/// GET DATA P1-P2 for the token serial (proprietary class 0x80).
pub const SERIAL_TAG: u16 = 0x0101;

/// Status words.
pub mod sw {
    /// Success.
    pub const OK: [u8; 2] = [0x90, 0x00];
    /// Wrong length (malformed APDU).
    pub const WRONG_LENGTH: [u8; 2] = [0x67, 0x00];
    /// Conditions of use not satisfied (GET DATA before SELECT).
    pub const CONDITIONS: [u8; 2] = [0x69, 0x85];
    /// File or application not found.
    pub const NOT_FOUND: [u8; 2] = [0x6A, 0x82];
    /// Incorrect P1-P2.
    pub const WRONG_P1P2: [u8; 2] = [0x6A, 0x86];
    /// Referenced data not found (unknown GET DATA tag).
    pub const DATA_NOT_FOUND: [u8; 2] = [0x6A, 0x88];
    /// Instruction not supported.
    pub const INS_NOT_SUPPORTED: [u8; 2] = [0x6D, 0x00];
    /// Class not supported.
    pub const CLA_NOT_SUPPORTED: [u8; 2] = [0x6E, 0x00];
}

/// The card's volatile state: which application is selected. Power off and reset clear it.
#[derive(Debug, Default)]
pub struct Card {
    serial: String,
    selected: bool,
}

impl Card {
    /// A card reporting this token serial.
    pub fn new(serial: &str) -> Self {
        Self {
            serial: serial.trim().to_owned(),
            selected: false,
        }
    }

    /// Power off or reset: forget the selection.
    pub fn reset(&mut self) {
        self.selected = false;
    }

    /// Answers one command APDU with a response APDU (data ‖ SW1 SW2).
    pub fn respond(&mut self, apdu: &[u8]) -> Vec<u8> {
        if apdu.len() < 4 {
            return sw::WRONG_LENGTH.to_vec();
        }
        let (cla, ins, p1, p2) = (apdu[0], apdu[1], apdu[2], apdu[3]);
        if cla != 0x00 && cla != 0x80 {
            return sw::CLA_NOT_SUPPORTED.to_vec();
        }
        match ins {
            0xA4 => self.select(p1, data(apdu)),
            0xCA => self.get_data(u16::from_be_bytes([p1, p2])),
            _ => sw::INS_NOT_SUPPORTED.to_vec(),
        }
    }

    fn select(&mut self, p1: u8, aid: Option<&[u8]>) -> Vec<u8> {
        if p1 != 0x04 {
            return sw::WRONG_P1P2.to_vec();
        }
        let Some(aid) = aid else {
            return sw::WRONG_LENGTH.to_vec();
        };
        self.selected = aid == AID;
        if self.selected {
            sw::OK.to_vec()
        } else {
            sw::NOT_FOUND.to_vec()
        }
    }

    fn get_data(&self, tag: u16) -> Vec<u8> {
        if tag != SERIAL_TAG {
            return sw::DATA_NOT_FOUND.to_vec();
        }
        if !self.selected {
            return sw::CONDITIONS.to_vec();
        }
        let mut response = self.serial.as_bytes().to_vec();
        response.extend_from_slice(&sw::OK);
        response
    }
}

/// The command data of a short APDU (case 3 or 4: `CLA INS P1 P2 Lc data [Le]`), if well formed.
fn data(apdu: &[u8]) -> Option<&[u8]> {
    let lc = *apdu.get(4)? as usize;
    if lc == 0 {
        return None;
    }
    let body = apdu.get(5..5 + lc)?;
    // Anything after the data may only be a one-byte Le.
    (apdu.len() <= 5 + lc + 1).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select_apdu(aid: &[u8]) -> Vec<u8> {
        let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, aid.len() as u8];
        apdu.extend_from_slice(aid);
        apdu.push(0x00);
        apdu
    }

    #[test]
    fn select_then_get_serial() {
        let mut card = Card::new("SIM0000000000001");
        let get = [0x80, 0xCA, 0x01, 0x01, 0x00];
        assert_eq!(card.respond(&get), sw::CONDITIONS);
        assert_eq!(
            card.respond(&select_apdu(&[0xA0, 0, 0, 0, 3])),
            sw::NOT_FOUND
        );
        assert_eq!(card.respond(&select_apdu(AID)), sw::OK);
        let response = card.respond(&get);
        assert_eq!(&response[..response.len() - 2], b"SIM0000000000001");
        assert_eq!(&response[response.len() - 2..], sw::OK);
        assert_eq!(
            card.respond(&[0x80, 0xCA, 0x9F, 0x7F, 0x00]),
            sw::DATA_NOT_FOUND
        );
        card.reset();
        assert_eq!(card.respond(&get), sw::CONDITIONS, "reset forgets SELECT");
    }

    #[test]
    fn unknown_class_instruction_and_malformed() {
        let mut card = Card::new("S");
        assert_eq!(card.respond(&[0x00, 0xB0, 0, 0, 0]), sw::INS_NOT_SUPPORTED);
        assert_eq!(card.respond(&[0xA0, 0xA4, 4, 0, 0]), sw::CLA_NOT_SUPPORTED);
        assert_eq!(card.respond(&[0x00, 0xA4]), sw::WRONG_LENGTH);
        assert_eq!(
            card.respond(&[0x00, 0xA4, 0x04, 0x00, 0x09, 0xF0]),
            sw::WRONG_LENGTH
        );
        assert_eq!(
            card.respond(&[0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00]),
            sw::WRONG_P1P2
        );
    }
}
