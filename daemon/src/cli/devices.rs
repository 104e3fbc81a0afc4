//! `sealctl devices`: modules, tokens and their PIN state; PC/SC readers, cards, ATRs and the
//! token each card became. Needs no PIN.

use std::io::Write;
use std::sync::Arc;

use serde::Serialize;

use crate::config::Config;
use crate::device::pcsc::{snapshot, PcscReport, PcscStatus};
use crate::device::{Devices, ModuleReport};

/// Everything `sealctl devices --json` prints.
#[derive(Debug, Serialize)]
pub struct DevicesReport {
    /// PKCS#11 modules and their tokens.
    pub modules: Vec<ModuleReport>,
    /// PC/SC readers and cards (status `off` when `[pcsc] enabled = false`).
    pub pcsc: PcscReport,
}

/// Lists modules, tokens, readers and cards; `json` prints machine-readable output.
pub fn run(
    config: &Config,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let table = config.atr_table()?;
    let devices = Arc::new(Devices::open(&config.modules)?);
    let modules = devices.scan();
    let pcsc = if config.pcsc.enabled {
        snapshot(devices, table)
    } else {
        PcscReport {
            status: PcscStatus::Off,
            ..PcscReport::default()
        }
    };
    let report = DevicesReport { modules, pcsc };
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        write_modules(&report.modules, out)?;
        write_readers(&report.pcsc, out)?;
    }
    Ok(())
}

fn write_modules(reports: &[ModuleReport], out: &mut dyn Write) -> std::io::Result<()> {
    if reports.is_empty() {
        writeln!(
            out,
            "no PKCS#11 modules configured (add [[module]] tables to the config)"
        )?;
    }
    for module in reports {
        let profile = module.profile.as_deref().unwrap_or("none");
        writeln!(
            out,
            "module {} ({}) model {:?} SM2 profile {profile}",
            module.name, module.path, module.model
        )?;
        if let Some(error) = &module.error {
            writeln!(out, "  error: {error}")?;
            continue;
        }
        if module.tokens.is_empty() {
            writeln!(out, "  no token present")?;
            continue;
        }
        writeln!(
            out,
            "  {:<18} {:<24} {:<16} {:<16} PIN",
            "SERIAL", "LABEL", "MANUFACTURER", "MODEL"
        )?;
        for token in &module.tokens {
            writeln!(
                out,
                "  {:<18} {:<24} {:<16} {:<16} {}",
                token.serial,
                token.label,
                token.manufacturer,
                token.model,
                token.pin.summary()
            )?;
        }
    }
    Ok(())
}

fn write_readers(report: &PcscReport, out: &mut dyn Write) -> std::io::Result<()> {
    match report.status {
        PcscStatus::Off => return writeln!(out, "PC/SC: off ([pcsc] enabled = false)"),
        PcscStatus::Unavailable | PcscStatus::Starting => {
            let error = report.error.as_deref().unwrap_or("not reachable");
            return writeln!(
                out,
                "PC/SC: {error}; the PKCS#11 tokens above are listed all the same"
            );
        }
        PcscStatus::Available => {}
    }
    if report.readers.is_empty() {
        return writeln!(out, "PC/SC: no reader");
    }
    writeln!(out, "PC/SC readers:")?;
    for reader in &report.readers {
        let Some(card) = &reader.card else {
            writeln!(out, "  {}: no card", reader.reader)?;
            continue;
        };
        writeln!(out, "  {}: card ATR {}", reader.reader, card.atr)?;
        match &card.module {
            Some(module) => writeln!(
                out,
                "    {} → module {module}, token(s) {}",
                card.name.as_deref().unwrap_or("known card"),
                if card.tokens.is_empty() {
                    "none found".to_owned()
                } else {
                    card.tokens.join(", ")
                }
            )?,
            None => writeln!(out, "    no [[atr]] entry matches this card")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::pcsc::{CardReport, ReaderReport};

    fn table(report: &PcscReport) -> String {
        let mut out = Vec::new();
        write_readers(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn readers_table_for_each_status() {
        let off = PcscReport {
            status: PcscStatus::Off,
            ..PcscReport::default()
        };
        assert!(table(&off).contains("off"));
        let absent = PcscReport {
            status: PcscStatus::Unavailable,
            error: Some("pcscd is not running".into()),
            readers: vec![],
        };
        assert!(table(&absent).starts_with("PC/SC: pcscd is not running; the PKCS#11 tokens"));
        let card = CardReport {
            atr: "3B 8D".into(),
            name: Some("virtual".into()),
            module: Some("ukey".into()),
            profile: None,
            model: None,
            tokens: vec!["S1".into()],
        };
        let unknown = CardReport {
            module: None,
            name: None,
            tokens: vec![],
            ..card.clone()
        };
        let readers = PcscReport {
            status: PcscStatus::Available,
            error: None,
            readers: vec![
                ReaderReport {
                    reader: "R0".into(),
                    card: Some(card),
                },
                ReaderReport {
                    reader: "R1".into(),
                    card: None,
                },
                ReaderReport {
                    reader: "R2".into(),
                    card: Some(unknown),
                },
            ],
        };
        let text = table(&readers);
        assert!(
            text.contains("R0: card ATR 3B 8D\n    virtual → module ukey, token(s) S1"),
            "{text}"
        );
        assert!(text.contains("R1: no card"), "{text}");
        assert!(
            text.contains("R2: card ATR 3B 8D\n    no [[atr]] entry matches"),
            "{text}"
        );
    }
}
