//! Tokens (PIN flags, login state), seals and certificates, trust roots.

use super::*;

/// The seals and the PIN modes of their policies.
#[derive(Debug, Default)]
pub(super) struct SealsRead {
    pub(super) seals: Vec<Seal>,
    pin_modes: HashMap<SealId, PinMode>,
}

pub(super) fn read_seals(store: &Store) -> Result<SealsRead, StoreError> {
    store.read(|tx| {
        let seals = tx.seals()?;
        let mut pin_modes = HashMap::new();
        for seal in &seals {
            if let Some(policy) = tx.policy(seal.id)? {
                pin_modes.insert(seal.id, policy.pin_mode);
            }
        }
        Ok(SealsRead { seals, pin_modes })
    })
}

/// What the running daemon says about token logins.
pub(super) enum LoginState {
    /// Serial → logged in.
    Known(HashMap<String, bool>),
    /// Not asked, and why.
    NotAsked(String),
    /// Asked, and the question failed.
    Failed(String),
}

pub(super) fn login_state(
    url: &Result<String, String>,
    answering: bool,
    args: &DoctorArgs,
) -> LoginState {
    let Ok(url) = url else {
        return LoginState::NotAsked("the daemon's address is not known".into());
    };
    if !answering {
        return LoginState::NotAsked("seald is not answering".into());
    }
    let token_file = args.token_file.clone().or_else(|| {
        std::env::var_os(crate::cli::client::TOKEN_FILE_ENV).map(std::path::PathBuf::from)
    });
    let Some(token_file) = token_file else {
        return LoginState::NotAsked(
            "give --token-file with an API token file so the doctor can ask seald".into(),
        );
    };
    let answer = crate::cli::client::DaemonClient::new(url, Some(&token_file))
        .and_then(|client| client.call("GET", "/v1/devices", None));
    match answer {
        Ok(value) => {
            let mut known = HashMap::new();
            for module in value["modules"].as_array().into_iter().flatten() {
                for token in module["tokens"].as_array().into_iter().flatten() {
                    if let Some(serial) = token["serial"].as_str() {
                        known.insert(
                            serial.to_owned(),
                            token["logged_in"].as_bool().unwrap_or(false),
                        );
                    }
                }
            }
            LoginState::Known(known)
        }
        Err(e) => LoginState::Failed(e.to_string()),
    }
}

/// "seal 1 (合同专用章)", "seals 1, 2 and 3".
pub(super) fn seal_list(seals: &[&Seal]) -> String {
    match seals {
        [one] => format!("seal {} ({})", one.id, one.name),
        many => {
            let ids: Vec<String> = many.iter().map(|s| s.id.to_string()).collect();
            format!("seals {}", ids.join(", "))
        }
    }
}

/// One check per token present (PIN state, login) and per token a live seal needs but that is
/// not present.
pub(super) fn tokens(
    modules: &[ModuleReport],
    read: &SealsRead,
    login: &LoginState,
    url: &str,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut present = Vec::new();
    for module in modules {
        for token in &module.tokens {
            present.push(token.serial.clone());
            let seals: Vec<&Seal> = read
                .seals
                .iter()
                .filter(|s| s.state.is_live() && s.device_serial == token.serial)
                .collect();
            checks.push(token_check(&module.name, token, &seals, read, login, url));
        }
    }
    let mut missing: Vec<(&str, Vec<&Seal>)> = Vec::new();
    for seal in read.seals.iter().filter(|s| s.state.is_live()) {
        if present.contains(&seal.device_serial) {
            continue;
        }
        match missing
            .iter_mut()
            .find(|(serial, _)| *serial == seal.device_serial)
        {
            Some((_, seals)) => seals.push(seal),
            None => missing.push((&seal.device_serial, vec![seal])),
        }
    }
    for (serial, seals) in missing {
        checks.push(Check::warn(
            format!("token:{serial}"),
            format!(
                "token {serial} is not present, but {} {} on it: plug it in (or check the cipher machine's connection and the [[module]] it is in); stamps with {} fail until it is back",
                seal_list(&seals),
                if seals.len() == 1 { "lives" } else { "live" },
                if seals.len() == 1 { "it" } else { "them" },
            ),
        ));
    }
    checks
}

pub(super) fn token_check(
    module: &str,
    token: &TokenInfo,
    seals: &[&Seal],
    read: &SealsRead,
    login: &LoginState,
    url: &str,
) -> Check {
    let serial = &token.serial;
    let holds = if seals.is_empty() {
        "no live seal on it".to_owned()
    } else {
        format!("holds {}", seal_list(seals))
    };
    let mut parts = vec![(
        Status::Ok,
        format!(
            "token {serial} (\"{}\", module {module}) is present, {holds}",
            token.label
        ),
    )];
    parts.extend(pin_problems(serial, &token.pin));
    if token.pin.summary() == "ok" {
        parts.push((Status::Ok, "PIN state ok".into()));
    }
    // Seals whose policy keeps a login open need one; each-stamp seals log in per request.
    let need_login = seals
        .iter()
        .any(|s| !matches!(read.pin_modes.get(&s.id), Some(PinMode::EachStamp)));
    match login {
        _ if !need_login => {}
        LoginState::Known(known) if known.get(serial).copied().unwrap_or(false) => {
            parts.push((Status::Ok, "logged in through seald".into()));
        }
        LoginState::Known(_) => parts.push((
            Status::Warn,
            format!(
                "it is not logged in: stamps of {} will fail until a custodian logs in (sealctl login --daemon {url} --token {serial})",
                seal_list(seals)
            ),
        )),
        LoginState::NotAsked(why) => {
            parts.push((Status::Ok, format!("login not checked ({why})")));
        }
        LoginState::Failed(_) => {
            parts.push((Status::Ok, "login not checked (see login_state)".into()));
        }
    }
    combine(format!("token:{serial}"), parts)
}

/// What the PIN flags say needs doing.
pub(super) fn pin_problems(serial: &str, pin: &PinState) -> Vec<(Status, String)> {
    let mut out = Vec::new();
    if !pin.user_pin_initialized {
        out.push((Status::Fail, "its user PIN is not initialised: nothing on it can sign until the token is initialised with the vendor's tool".to_owned()));
    }
    if pin.locked {
        out.push((Status::Fail, format!("its user PIN is LOCKED: nothing on it can sign; re-set it with the SO PIN (sealctl pin-unblock --token {serial})")));
    } else if pin.final_try {
        out.push((Status::Warn, "one user PIN try is left: one more wrong PIN locks the token; log in only with the right PIN".to_owned()));
    } else if pin.count_low {
        out.push((Status::Warn, "wrong user PINs were entered and few tries are left before the token locks; make sure custodians use the right PIN".to_owned()));
    }
    if pin.to_be_changed {
        out.push((Status::Warn, format!("its user PIN must be changed before it signs (sealctl pin-change --token {serial})")));
    }
    if pin.so_locked {
        out.push((Status::Warn, "its SO PIN is locked: a locked user PIN could no longer be re-set; ask the vendor how to recover".to_owned()));
    }
    out
}

/// One check per seal that is not revoked: state, validity and certificate expiry.
pub(super) fn seal_checks(seals: &[Seal], clock: &Clock) -> Vec<Check> {
    if seals.iter().all(|s| s.state == SealState::Revoked) {
        return vec![Check::ok(
            "seals",
            "no seal is enrolled (or every seal is revoked): nothing to check",
        )];
    }
    seals
        .iter()
        .filter(|s| s.state != SealState::Revoked)
        .map(|s| seal_check(s, clock))
        .collect()
}

pub(super) fn seal_check(seal: &Seal, clock: &Clock) -> Check {
    let name = format!("seal:{}", seal.id);
    let who = format!("seal {} ({})", seal.id, seal.name);
    if !seal.state.is_live() {
        return Check::ok(
            name,
            format!(
                "{who} is {} since {}; it no longer stamps, nothing to check",
                seal.state,
                date(seal.state_changed_at)
            ),
        );
    }
    let mut parts = Vec::new();
    let state = if seal.state == SealState::Suspended {
        "suspended (it does not stamp until an admin resumes it: sealctl seal resume)"
    } else {
        "active"
    };
    let cert = format!("its certificate (serial {})", seal.cert.serial_hex);
    match clock.due(seal.cert.not_after) {
        Due::Ended => parts.push((Status::Fail, format!("{cert} expired on {}: the seal cannot stamp; have the CA issue a new certificate and enrol a new seal with it", date(seal.cert.not_after)))),
        Due::Soon(days) => parts.push((Status::Warn, format!("{cert} expires {} ({}, within the {} warning days): have the CA issue a new certificate and enrol a new seal before then", days_left(days), date(seal.cert.not_after), clock.warn_days))),
        Due::Later => {}
    }
    // A seal's validity ends with its certificate unless it was enrolled to end earlier: say
    // it once.
    let own_end = seal.valid_to < seal.cert.not_after;
    match clock.due(seal.valid_to) {
        _ if !own_end => {}
        Due::Ended => parts.push((Status::Fail, format!("its validity ended on {}: it cannot stamp; enrol a new seal if it is still needed (seald marks this one expired)", date(seal.valid_to)))),
        Due::Soon(days) => parts.push((Status::Warn, format!("its validity ends {} ({}, within the {} warning days): enrol a new seal before then", days_left(days), date(seal.valid_to), clock.warn_days))),
        Due::Later => {}
    }
    if seal.valid_from > clock.now {
        parts.push((
            Status::Warn,
            format!(
                "it is not valid before {}: it cannot stamp until then",
                date(seal.valid_from)
            ),
        ));
    }
    let summary = format!(
        "{who} is {state}, valid until {}, certificate until {}",
        date(seal.valid_to),
        date(seal.cert.not_after)
    );
    parts.insert(0, (Status::Ok, summary));
    combine(name, parts)
}

// ------------------------------------------------------------------ trust roots

pub(super) fn trust_roots(config: &Config, clock: &Clock) -> Check {
    if config.trust_roots.is_empty() {
        return Check::warn(
            "trust_roots",
            "no trust_roots configured: enrolling seals is refused and verification reports signer chains as unchecked; name the CA's root certificate in trust_roots",
        );
    }
    let mut parts = Vec::new();
    for path in &config.trust_roots {
        parts.push(trust_root(path, clock));
    }
    combine("trust_roots".into(), parts)
}

pub(super) fn trust_root(path: &Path, clock: &Clock) -> (Status, String) {
    let file = path.display();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            return (
                Status::Fail,
                format!(
                "cannot read {file}: {e}; fix the path in trust_roots or the file's permissions"
            ),
            )
        }
    };
    let roots = match crate::cert::TrustStore::from_pem_or_der(&bytes) {
        Ok(roots) => roots,
        Err(e) => {
            return (
                Status::Fail,
                format!(
                "{file} is not a PEM or DER certificate ({e}); put the CA's root certificate there"
            ),
            )
        }
    };
    let mut worst = Status::Ok;
    let mut notes = Vec::new();
    for root in roots.roots() {
        let facts = root.facts();
        let subject = facts.subject_cn.as_deref().unwrap_or(&facts.subject);
        let end = facts.not_after.unix_timestamp();
        match clock.due(end) {
            Due::Ended => {
                worst = Status::Fail;
                notes.push(format!("root \"{subject}\" in {file} EXPIRED on {}: certificates chained to it no longer verify; get the CA's new root and replace the file", date(end)));
            }
            Due::Soon(days) => {
                if worst == Status::Ok {
                    worst = Status::Warn;
                }
                notes.push(format!("root \"{subject}\" in {file} expires {} ({}): get the CA's new root before then", days_left(days), date(end)));
            }
            Due::Later => notes.push(format!(
                "root \"{subject}\" in {file} valid until {}",
                date(end)
            )),
        }
    }
    (worst, notes.join("; "))
}
