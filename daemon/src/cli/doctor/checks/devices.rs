//! The device checks: each module on its own, and pcscd.

use super::*;

/// Loads each `[[module]]` on its own (so that each is reported) and lists its tokens; returns
/// what the loaded ones hold.
pub(super) fn modules(config: &Config, checks: &mut Vec<Check>) -> Vec<ModuleReport> {
    if config.modules.is_empty() {
        checks.push(Check::warn(
            "module",
            "no [[module]] is configured: seald has no device to sign with; add a [[module]] table naming the device's library",
        ));
        return Vec::new();
    }
    let mut reports = Vec::new();
    for module in &config.modules {
        let name = format!("module:{}", module.name);
        let devices = match Devices::open(std::slice::from_ref(module)) {
            Ok(devices) => devices,
            Err(e) => {
                let path = module.path.display().to_string();
                let why = e.to_string();
                // The device layer's message usually names the library already.
                let what = if why.contains(&path) {
                    why
                } else {
                    format!("cannot load {path}: {why}")
                };
                checks.push(Check::fail(
                    name,
                    format!(
                        "{what}; check `path` in the [[module]] named `{}` (the library must exist and be readable by the user seald runs as)",
                        module.name
                    ),
                ));
                continue;
            }
        };
        let Some(report) = devices.scan().into_iter().next() else {
            continue;
        };
        checks.push(module_check(name, &report));
        reports.push(report);
    }
    reports
}

pub(super) fn module_check(name: String, report: &ModuleReport) -> Check {
    let what = format!(
        "{} loaded ({}, model {}, SM2 profile {})",
        report.path,
        word(&report.api),
        word(&report.model),
        report.profile.as_deref().unwrap_or("none")
    );
    if let Some(error) = &report.error {
        return Check::fail(
            name,
            format!("{what}, but its tokens cannot be listed: {error}; check the device's connection and the vendor's driver"),
        );
    }
    let tokens = match report.tokens.len() {
        0 => "no token present".to_owned(),
        1 => "1 token present".to_owned(),
        n => format!("{n} tokens present"),
    };
    Check::ok(name, format!("{what}, {tokens}"))
}

/// Whether pcscd answers (when the PC/SC watcher is on).
pub(super) fn pcscd(config: &Config) -> Check {
    if !config.pcsc.enabled {
        return Check::ok(
            "pcscd",
            "not checked: the PC/SC watcher is off ([pcsc] enabled = false)",
        );
    }
    let context = match pcsc::Context::establish(pcsc::Scope::User) {
        Ok(context) => context,
        Err(e) => {
            return Check::fail(
                "pcscd",
                format!(
                    "pcscd is not running or not reachable ({e}): seald will not notice UKeys being plugged in or pulled out; start it (systemctl start pcscd), or set [pcsc] enabled = false if no UKey is used"
                ),
            )
        }
    };
    match context.list_readers_owned() {
        Ok(readers) => Check::ok(
            "pcscd",
            format!("pcscd answers; {} reader(s) attached", readers.len()),
        ),
        Err(pcsc::Error::NoReadersAvailable) => {
            Check::ok("pcscd", "pcscd answers; no reader attached")
        }
        Err(e) => Check::fail(
            "pcscd",
            format!("pcscd answers but cannot list its readers ({e}); restart it (systemctl restart pcscd)"),
        ),
    }
}
