//! `sealctl devices`: modules, tokens and their PIN state. Needs no PIN.

use std::io::Write;

use crate::config::Config;
use crate::device::{Devices, ModuleReport};

/// Lists modules and tokens; `json` prints machine-readable output.
pub fn run(
    config: &Config,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), Box<dyn std::error::Error>> {
    let devices = Devices::open(&config.modules)?;
    let reports = devices.scan();
    if json {
        serde_json::to_writer_pretty(&mut *out, &reports)?;
        writeln!(out)?;
    } else {
        write_table(&reports, out)?;
    }
    Ok(())
}

fn write_table(reports: &[ModuleReport], out: &mut dyn Write) -> std::io::Result<()> {
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
