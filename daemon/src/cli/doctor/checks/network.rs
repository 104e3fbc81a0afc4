//! The listener and the HTTP guards.

use super::*;

/// The daemon's URL: `--daemon`, else `http://` + `listen`.
pub(super) fn daemon_url(config: &Config, args: &DoctorArgs) -> Result<String, String> {
    if let Some(url) = &args.daemon {
        let trimmed = url.trim_end_matches('/');
        let authority = trimmed.strip_prefix("http://").unwrap_or_default();
        if authority.is_empty() || authority.contains('/') {
            return Err(format!(
                "--daemon {url:?} is not a URL like http://127.0.0.1:7780"
            ));
        }
        return Ok(trimmed.to_owned());
    }
    if config.listen.port() == 0 {
        return Err(format!(
            "listen = \"{}\" picks a free port at each start, so the doctor cannot know it; give --daemon http://127.0.0.1:PORT",
            config.listen
        ));
    }
    Ok(format!("http://{}", config.listen))
}

/// `GET /v1/health` on the daemon.
pub(super) fn listener(url: &Result<String, String>) -> Check {
    let url = match url {
        Ok(url) => url,
        Err(why) => return Check::fail("listener", why.clone()),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(HEALTH_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .build()
        .into();
    let mut answer = match agent.get(format!("{url}/v1/health")).call() {
        Ok(answer) => answer,
        Err(e) => {
            return Check::fail(
                "listener",
                format!("seald is not answering on {url} ({e}); is it running? (systemctl status seald; its log says why it stopped)"),
            )
        }
    };
    let status = answer.status();
    if !status.is_success() {
        return Check::fail(
            "listener",
            format!("something answers on {url} but GET /v1/health gave HTTP {status}: it is not seald, or seald refused the Host; check listen and --daemon"),
        );
    }
    let body: serde_json::Value = answer.body_mut().read_json().unwrap_or_default();
    let Some(version) = body["version"].as_str() else {
        return Check::fail(
            "listener",
            format!("something answers on {url}, but not as seald does (no version in /v1/health); check that listen names seald's port"),
        );
    };
    let ours = env!("CARGO_PKG_VERSION");
    if version != ours {
        return Check::warn(
            "listener",
            format!("seald {version} answers on {url}, but this sealctl is {ours}: run the same version of both (an upgrade not finished?)"),
        );
    }
    Check::ok("listener", format!("seald {version} answers on {url}"))
}

/// `listen` loopback; `[api]` allowed_origins and allowed_hosts well formed.
pub(super) fn api_guards(config: &Config) -> Check {
    let mut parts = vec![(
        if config.listen.ip().is_loopback() {
            Status::Ok
        } else {
            Status::Fail
        },
        format!(
            "listen {} is {}",
            config.listen,
            if config.listen.ip().is_loopback() {
                "loopback"
            } else {
                "NOT loopback: seald must serve this machine only; use 127.0.0.1 or [::1]"
            }
        ),
    )];
    for origin in &config.api.allowed_origins {
        if let Some(problem) = origin_problem(origin) {
            parts.push((
                Status::Warn,
                format!("allowed_origins entry \"{origin}\" {problem}"),
            ));
        }
    }
    for host in &config.api.allowed_hosts {
        if let Some(problem) = host_problem(host) {
            parts.push((
                Status::Warn,
                format!("allowed_hosts entry \"{host}\" {problem}"),
            ));
        }
    }
    parts.push((
        Status::Ok,
        format!(
            "{} extra Host value(s) and {} browser origin(s) allowed",
            config.api.allowed_hosts.len(),
            config.api.allowed_origins.len()
        ),
    ));
    combine("api_guards".into(), parts)
}

/// Whether `host` (the host part of an origin or Host value, port removed) is this machine.
pub(super) fn loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host[:port]` (IPv6 in brackets) into host and port.
pub(super) fn split_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.split_once("]:") {
            Some((host, port)) => (&authority[..host.len() + 1], Some(port)),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

pub(super) fn origin_problem(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    if rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Some("has a path: a browser's Origin never has one, so it never matches; write scheme://host[:port]".into());
    }
    if rest.contains('*') {
        return Some("has a wildcard, which never matches: list each origin".into());
    }
    let (host, port) = split_port(rest);
    if port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return Some("has a port that is not a number".into());
    }
    if scheme.eq_ignore_ascii_case("http") && !loopback_host(host) {
        return Some("is plain http:// on another machine: anyone on the network path can change that page and call seald through the browser; serve it over https://".into());
    }
    None
}

pub(super) fn host_problem(host: &str) -> Option<String> {
    if host.contains('*') {
        return Some(
            "has a wildcard: Host values are compared exactly, so it never matches; list each name:port".into(),
        );
    }
    if host.contains('/') || host.contains("://") {
        return Some("is not name:port (no scheme, no path)".into());
    }
    let (_, port) = split_port(host);
    match port {
        None => Some("has no port: browsers send name:port for seald's port, so it never matches; write name:port".into()),
        Some(p) if p.parse::<u16>().is_err() => Some("has a port that is not a number".into()),
        Some(_) => None,
    }
}
