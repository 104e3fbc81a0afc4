//! The plain HTTP exchanges seald makes with outside services: time-stamping authorities
//! (RFC 3161 §3.4), OCSP responders (RFC 6960 appendix A) and CRL distribution points
//! (RFC 5280 §4.2.1.13). No redirects, a time limit, a size limit, the answer's content type
//! checked. What comes back is signed data that its caller verifies.

use std::time::Duration;

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// No connection, a timeout, or a broken answer.
    Unreachable(String),
    /// An HTTP error status or a wrong content type.
    Http(String),
}

/// One request: where, what to send (`None`: a GET), which content types are accepted.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// An `http://` URL.
    pub url: &'a str,
    /// The POST body and its content type; `None` for a GET.
    pub post: Option<(&'a str, &'a [u8])>,
    /// Accepted answer content types (the first is sent as `Accept`); a prefix match.
    pub accept: &'a [&'a str],
    /// How long the whole exchange may take.
    pub timeout: Duration,
    /// Largest answer read.
    pub limit: u64,
}

impl Exchange<'_> {
    /// Sends the request and returns the answer's body.
    pub fn run(&self) -> Result<Vec<u8>, FetchError> {
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .max_redirects(0);
        if is_loopback_url(self.url) {
            // A service on this machine is asked directly, whatever proxy the environment names.
            config = config.proxy(None);
        }
        let agent: ureq::Agent = config.build().into();
        let accept = self.accept.first().copied().unwrap_or("*/*");
        let sent = match self.post {
            Some((content_type, body)) => agent
                .post(self.url)
                .header("Content-Type", content_type)
                .header("Accept", accept)
                .send(body),
            None => agent.get(self.url).header("Accept", accept).call(),
        };
        let mut response = sent.map_err(|e| FetchError::Unreachable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Http(format!("HTTP {status}")));
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !self.accept.iter().any(|a| content_type.starts_with(a)) {
            return Err(FetchError::Http(format!(
                "with content type {content_type:?}, not {accept}"
            )));
        }
        response
            .body_mut()
            .with_config()
            .limit(self.limit)
            .read_to_vec()
            .map_err(|e| FetchError::Unreachable(format!("reading the answer: {e}")))
    }
}

/// Whether `url` (`http://host[:port]/…`) names this machine: 127.0.0.0/8, `[::1]` or
/// `localhost`.
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks that `url` is a plain `http://` URL naming a host; says why not.
pub fn check_http_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}` is not an http:// URL"))?;
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') || url.chars().any(char::is_whitespace) {
        return Err(format!(
            "`{url}` does not name a host (write http://host[:port]/path)"
        ));
    }
    Ok(())
}
