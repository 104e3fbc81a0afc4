//! The ATR table (`[[atr]]` in seald.toml): which card is which module, profile and device model.

use serde::Deserialize;

use crate::device::DeviceModel;

/// One `[[atr]]` entry as written in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtrConfig {
    /// A name for the card family, shown in `sealctl devices` and events.
    #[serde(default)]
    pub name: Option<String>,
    /// The ATR (or its first bytes with `prefix = true`) in hex; spaces and colons are ignored.
    pub atr: String,
    /// Optional mask, same length as `atr`: only bits set in the mask are compared.
    #[serde(default)]
    pub mask: Option<String>,
    /// Match any ATR that starts with `atr` (under `mask`).
    #[serde(default)]
    pub prefix: bool,
    /// The `[[module]]` (by name) whose tokens this card carries.
    pub module: String,
    /// The SM2 mechanism profile the card is known to need (informative; the module's own
    /// `profile` is what signs).
    #[serde(default)]
    pub profile: Option<String>,
    /// The device model (defaults to the module's).
    #[serde(default)]
    pub model: Option<DeviceModel>,
    /// APDUs (hex) sent in order after insertion; the data of the last response (its status
    /// word must be 9000) is the token serial. Without them every token of the module that no
    /// other reader claims is taken to be this card's.
    #[serde(default)]
    pub serial_apdus: Vec<String>,
}

/// A parsed, validated entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtrEntry {
    /// Card family name (the ATR hex when the config gives none).
    pub name: String,
    pattern: Vec<u8>,
    mask: Vec<u8>,
    prefix: bool,
    /// Module name.
    pub module: String,
    /// Profile name, if given.
    pub profile: Option<String>,
    /// Device model, if given.
    pub model: Option<DeviceModel>,
    /// APDUs that read the token serial.
    pub serial_apdus: Vec<Vec<u8>>,
}

/// Why an `[[atr]]` entry is refused: the field (`atr`, `mask`, …) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct AtrConfigError {
    /// The key inside the entry.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Parses hex that may contain spaces or colons (`3B:8D 01…`).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    hex::decode(&digits).map_err(|e| format!("`{text}` is not hex bytes ({e})"))
}

/// Formats bytes as upper-case hex with spaces, the way ATRs are usually printed.
pub fn format_atr(atr: &[u8]) -> String {
    atr.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl AtrEntry {
    /// Validates one config entry (the module's existence is checked by the config).
    pub fn parse(config: &AtrConfig) -> Result<Self, AtrConfigError> {
        let err = |field, message: String| AtrConfigError { field, message };
        let pattern = parse_hex(&config.atr).map_err(|m| err("atr", m))?;
        if pattern.is_empty() || pattern.len() > 33 {
            return Err(err(
                "atr",
                format!("has {} bytes; an ATR has 1 to 33", pattern.len()),
            ));
        }
        let mask = match &config.mask {
            None => vec![0xFF; pattern.len()],
            Some(text) => {
                let mask = parse_hex(text).map_err(|m| err("mask", m))?;
                if mask.len() != pattern.len() {
                    return Err(err(
                        "mask",
                        format!(
                            "has {} bytes but `atr` has {}; they must be the same length",
                            mask.len(),
                            pattern.len()
                        ),
                    ));
                }
                mask
            }
        };
        let serial_apdus = config
            .serial_apdus
            .iter()
            .map(|apdu| match parse_hex(apdu) {
                Ok(bytes) if bytes.len() >= 4 => Ok(bytes),
                Ok(_) => Err(err(
                    "serial_apdus",
                    format!("`{apdu}` is shorter than an APDU header (4 bytes)"),
                )),
                Err(m) => Err(err("serial_apdus", m)),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: config.name.clone().unwrap_or_else(|| format_atr(&pattern)),
            pattern,
            mask,
            prefix: config.prefix,
            module: config.module.clone(),
            profile: config.profile.clone(),
            model: config.model,
            serial_apdus,
        })
    }

    /// True when `atr` matches this entry's pattern under its mask.
    pub fn matches(&self, atr: &[u8]) -> bool {
        let length_ok = if self.prefix {
            atr.len() >= self.pattern.len()
        } else {
            atr.len() == self.pattern.len()
        };
        length_ok
            && self
                .pattern
                .iter()
                .zip(&self.mask)
                .zip(atr)
                .all(|((p, m), a)| p & m == a & m)
    }
}

/// All `[[atr]]` entries, first match wins.
#[derive(Debug, Clone, Default)]
pub struct AtrTable {
    entries: Vec<AtrEntry>,
}

impl AtrTable {
    /// Builds the table from config entries; the error names the entry's index and field.
    pub fn from_config(configs: &[AtrConfig]) -> Result<Self, (usize, AtrConfigError)> {
        let entries = configs
            .iter()
            .enumerate()
            .map(|(i, c)| AtrEntry::parse(c).map_err(|e| (i, e)))
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }

    /// The first entry matching `atr`.
    pub fn lookup(&self, atr: &[u8]) -> Option<&AtrEntry> {
        self.entries.iter().find(|e| e.matches(atr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(atr: &str, mask: Option<&str>, prefix: bool) -> Result<AtrEntry, AtrConfigError> {
        AtrEntry::parse(&AtrConfig {
            name: None,
            atr: atr.into(),
            mask: mask.map(Into::into),
            prefix,
            module: "m".into(),
            profile: None,
            model: None,
            serial_apdus: vec![],
        })
    }

    #[test]
    fn exact_mask_and_prefix() {
        let exact = entry("3B:8D:01", None, false).unwrap();
        assert!(exact.matches(&[0x3B, 0x8D, 0x01]));
        assert!(!exact.matches(&[0x3B, 0x8D, 0x01, 0x00]));
        assert!(!exact.matches(&[0x3B, 0x8D]));
        let masked = entry("3B 80 01", Some("FF F0 FF"), false).unwrap();
        assert!(masked.matches(&[0x3B, 0x8D, 0x01]));
        assert!(!masked.matches(&[0x3B, 0x9D, 0x01]));
        let prefix = entry("3B 8D", None, true).unwrap();
        assert!(prefix.matches(&[0x3B, 0x8D, 0x01, 0x80]));
        assert!(!prefix.matches(&[0x3B]));
        assert_eq!(prefix.name, "3B 8D");
    }

    #[test]
    fn bad_entries_name_their_field() {
        assert_eq!(entry("3G", None, false).unwrap_err().field, "atr");
        assert_eq!(entry("", None, false).unwrap_err().field, "atr");
        let e = entry("3B 8D", Some("FF"), false).unwrap_err();
        assert_eq!(e.field, "mask");
        assert!(e.message.contains("same length"), "{e}");
    }
}
