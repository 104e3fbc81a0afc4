//! Talking to a card and mapping it: the serial-number APDUs, the ATR table, the device layer.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::sync::Arc;

use super::atr::{format_atr, AtrTable};
use super::event::{CardReport, DeviceEvent};
use crate::device::Devices;

/// Why the serial could not be read from a card.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// PC/SC refused the connection or the exchange.
    #[error("the card could not be read through PC/SC: {0}")]
    Pcsc(#[from] pcsc::Error),
    /// The card answered with an error status word.
    #[error("the card answered {0:04X} to the serial number request; check `serial_apdus` for this card")]
    Status(u16),
}

/// Sends `apdus` in order on a shared connection; the data of the last answer is the serial
/// (printable ASCII as is, anything else in hex).
pub fn read_serial(
    context: &pcsc::Context,
    reader: &CStr,
    apdus: &[Vec<u8>],
) -> Result<String, SerialError> {
    let card = context.connect(reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)?;
    let mut buffer = [0u8; pcsc::MAX_BUFFER_SIZE];
    let mut serial = String::new();
    for apdu in apdus {
        let response = card.transmit(apdu, &mut buffer)?;
        let Some((data, sw)) = response.split_last_chunk::<2>() else {
            return Err(SerialError::Status(0));
        };
        let sw = u16::from_be_bytes(*sw);
        if sw != 0x9000 {
            return Err(SerialError::Status(sw));
        }
        serial = if data.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            String::from_utf8_lossy(data).trim().to_owned()
        } else {
            hex::encode_upper(data)
        };
    }
    let _ = card.disconnect(pcsc::Disposition::LeaveCard);
    Ok(serial)
}

/// What the daemon knows about the card in one reader.
#[derive(Debug, Clone)]
struct Known {
    report: CardReport,
    /// True when the serials were read from the card itself, not guessed from the module.
    read_from_card: bool,
}

/// Maps cards to modules and tokens, and resets token owners when their card leaves.
#[derive(Debug)]
pub struct CardMapper {
    devices: Arc<Devices>,
    table: AtrTable,
    cards: BTreeMap<String, Known>,
}

impl CardMapper {
    /// A mapper over the device layer with this ATR table.
    pub fn new(devices: Arc<Devices>, table: AtrTable) -> Self {
        Self {
            devices,
            table,
            cards: BTreeMap::new(),
        }
    }

    /// The card in `reader`, if one is known.
    pub fn card(&self, reader: &str) -> Option<&CardReport> {
        self.cards.get(reader).map(|k| &k.report)
    }

    /// Identifies a card: its ATR entry, module, model and tokens (read by APDU if the entry
    /// says how, else the module's present tokens no other reader claims).
    fn identify_known(&self, context: &pcsc::Context, reader: &str, atr: &[u8]) -> Known {
        let mut report = CardReport {
            atr: format_atr(atr),
            name: None,
            module: None,
            profile: None,
            model: None,
            tokens: Vec::new(),
        };
        let Some(entry) = self.table.lookup(atr) else {
            return Known {
                report,
                read_from_card: false,
            };
        };
        report.name = Some(entry.name.clone());
        report.module = Some(entry.module.clone());
        report.profile = entry.profile.clone();
        let module = self.devices.module_named(&entry.module);
        report.model = entry.model.or(module.map(|m| m.model()));
        if !entry.serial_apdus.is_empty() {
            let name = std::ffi::CString::new(reader).unwrap_or_default();
            match read_serial(context, &name, &entry.serial_apdus) {
                Ok(serial) => {
                    report.tokens = vec![serial];
                    return Known {
                        report,
                        read_from_card: true,
                    };
                }
                Err(e) => {
                    tracing::warn!(%reader, error = %e, "cannot read the card's serial number; guessing its token from the module")
                }
            }
        }
        let claimed: Vec<&String> = self
            .cards
            .iter()
            .filter(|(r, _)| r.as_str() != reader)
            .flat_map(|(_, k)| &k.report.tokens)
            .collect();
        if let Some(module) = module {
            report.tokens = module
                .token_infos()
                .unwrap_or_default()
                .into_iter()
                .map(|info| info.serial)
                .filter(|s| !claimed.contains(&s))
                .collect();
        }
        Known {
            report,
            read_from_card: false,
        }
    }

    /// What a card is (ATR entry, module, model, tokens), without remembering it.
    pub fn identify(&self, context: &pcsc::Context, reader: &str, atr: &[u8]) -> CardReport {
        self.identify_known(context, reader, atr).report
    }

    /// A card arrived: identify it and remember it.
    pub fn inserted(&mut self, context: &pcsc::Context, reader: &str, atr: &[u8]) -> DeviceEvent {
        let known = self.identify_known(context, reader, atr);
        let card = known.report.clone();
        self.cards.insert(reader.to_owned(), known);
        tracing::info!(%reader, atr = %card.atr, module = ?card.module, tokens = ?card.tokens, "card inserted");
        DeviceEvent::CardInserted {
            reader: reader.to_owned(),
            card,
        }
    }

    /// A card left: reset the owners of its tokens (and of any token of its module that is no
    /// longer present) at once, so the login and sessions are gone.
    pub fn removed(&mut self, reader: &str, atr: &[u8]) -> DeviceEvent {
        let known = self.cards.remove(reader).unwrap_or_else(|| {
            let entry = self.table.lookup(atr);
            Known {
                report: CardReport {
                    atr: format_atr(atr),
                    name: entry.map(|e| e.name.clone()),
                    module: entry.map(|e| e.module.clone()),
                    profile: entry.and_then(|e| e.profile.clone()),
                    model: entry.and_then(|e| e.model),
                    tokens: Vec::new(),
                },
                read_from_card: false,
            }
        });
        let mut card = known.report;
        if let Some(module) = &card.module {
            let certain: &[String] = if known.read_from_card {
                &card.tokens
            } else {
                &[]
            };
            let mut reset = self.devices.reset_removed(module, certain);
            reset.extend(certain.iter().cloned());
            reset.sort();
            reset.dedup();
            card.tokens = reset;
        }
        tracing::info!(%reader, atr = %card.atr, module = ?card.module, reset = ?card.tokens, "card removed; its tokens are logged out");
        DeviceEvent::CardRemoved {
            reader: reader.to_owned(),
            card,
        }
    }
}
