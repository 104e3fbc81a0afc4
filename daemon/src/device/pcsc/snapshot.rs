//! One look at the readers, without a watcher: for `sealctl devices`.

use std::sync::Arc;
use std::time::Duration;

use pcsc::{Context, ReaderState, Scope, State};

use super::atr::AtrTable;
use super::card::CardMapper;
use super::event::{PcscReport, PcscStatus, ReaderReport};
use crate::device::Devices;

/// Readers, cards, ATRs and the tokens each card became, read once. pcscd not running is a
/// report (`status: unavailable`), not an error.
pub fn snapshot(devices: Arc<Devices>, table: AtrTable) -> PcscReport {
    match read(devices, table) {
        Ok(readers) => PcscReport {
            status: PcscStatus::Available,
            error: None,
            readers,
        },
        Err(e) => PcscReport {
            status: PcscStatus::Unavailable,
            error: Some(match e {
                pcsc::Error::NoService | pcsc::Error::ServiceStopped => {
                    "pcscd is not running (start it to see readers and UKeys)".to_owned()
                }
                other => format!("PC/SC failed: {other}"),
            }),
            readers: Vec::new(),
        },
    }
}

fn read(devices: Arc<Devices>, table: AtrTable) -> Result<Vec<ReaderReport>, pcsc::Error> {
    let context = Context::establish(Scope::User)?;
    let names = match context.list_readers_owned() {
        Ok(names) => names,
        Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut states: Vec<ReaderState> = names
        .into_iter()
        .map(|name| ReaderState::new(name, State::UNAWARE))
        .collect();
    match context.get_status_change(Duration::ZERO, &mut states) {
        Ok(()) | Err(pcsc::Error::Timeout) => {}
        Err(e) => return Err(e),
    }
    let mapper = CardMapper::new(devices, table);
    let mut readers = Vec::with_capacity(states.len());
    for state in &states {
        let reader = state.name().to_string_lossy().into_owned();
        let flags = state.event_state();
        let card = if flags.contains(State::PRESENT) && !flags.contains(State::MUTE) {
            Some(mapper.identify(&context, &reader, state.atr()))
        } else {
            None
        };
        readers.push(ReaderReport { reader, card });
    }
    Ok(readers)
}
