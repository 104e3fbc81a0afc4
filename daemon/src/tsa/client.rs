//! The HTTP client of a TSA (RFC 3161 §3.4: a POST of `application/timestamp-query`, the
//! answer `application/timestamp-reply`), and the [`Stamper`] the signing worker hands to the
//! SES builder: it asks for a token over each signature value and applies the policy.

use std::sync::Mutex;
use std::time::Duration;

use super::{
    HashAlgorithm, TimeStampReq, TimeStampResp, TimeStampToken, TokenFacts, TsaError, TsaPolicy,
};
use crate::cert::TrustStore;

/// Largest answer read from a TSA.
const MAX_RESPONSE: u64 = 256 * 1024;

/// A configured TSA: where it is, which imprint to ask for, how long to wait, whom to trust.
#[derive(Debug, Clone)]
pub struct TsaClient {
    url: String,
    hash: HashAlgorithm,
    timeout: Duration,
    trust: TrustStore,
}

impl TsaClient {
    /// A client of the TSA at `url` (plain `http://`: the token is signed, the request holds
    /// only a digest); tokens must chain to `trust` (TSA roots, or the TSA's own certificate).
    pub fn new(url: &str, hash: HashAlgorithm, timeout: Duration, trust: TrustStore) -> Self {
        Self {
            url: url.to_owned(),
            hash,
            timeout,
            trust,
        }
    }

    /// The TSA's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The imprint algorithm asked for.
    pub fn hash(&self) -> HashAlgorithm {
        self.hash
    }

    /// The trusted TSA certificates.
    pub fn trust(&self) -> &TrustStore {
        &self.trust
    }

    /// POSTs `query` and returns the answer's body.
    fn post(&self, query: &[u8]) -> Result<Vec<u8>, TsaError> {
        let exchange = crate::fetch::Exchange {
            url: &self.url,
            post: Some(("application/timestamp-query", query)),
            accept: &[
                "application/timestamp-reply",
                "application/timestamp-response",
            ],
            timeout: self.timeout,
            limit: MAX_RESPONSE,
        };
        exchange.run().map_err(|e| match e {
            crate::fetch::FetchError::Unreachable(reason) => TsaError::Unreachable {
                url: self.url.clone(),
                reason,
            },
            crate::fetch::FetchError::Http(what) => TsaError::Http {
                url: self.url.clone(),
                what,
            },
        })
    }

    /// Asks for a token over `data` and checks it (imprint, nonce, the TSA's signature, its
    /// certificate's chain to the trusted TSA certificates and its timeStamping usage).
    /// Returns the token's DER and what it says.
    pub fn timestamp(&self, data: &[u8]) -> Result<(Vec<u8>, TokenFacts), TsaError> {
        let req = TimeStampReq::new(self.hash, data).map_err(|reason| TsaError::Unreachable {
            url: self.url.clone(),
            reason,
        })?;
        let body = self.post(&req.encode())?;
        let malformed = |reason: String| TsaError::Malformed {
            url: self.url.clone(),
            reason,
        };
        let resp = TimeStampResp::parse(&body).map_err(malformed)?;
        let token = resp.into_token().map_err(|(refused, status)| {
            if refused {
                TsaError::Refused {
                    url: self.url.clone(),
                    status,
                }
            } else {
                TsaError::Malformed {
                    url: self.url.clone(),
                    reason: status,
                }
            }
        })?;
        let parsed = TimeStampToken::parse(&token).map_err(malformed)?;
        let facts = parsed
            .verify_fresh(data, req.nonce_value(), &self.trust, self.trust.roots())
            .map_err(|reason| TsaError::BadToken {
                url: self.url.clone(),
                reason,
            })?;
        let skew = (facts.gen_time - time::OffsetDateTime::now_utc()).abs();
        if skew > time::Duration::minutes(10) {
            tracing::warn!(
                tsa = %self.url,
                gen_time = %crate::cert::rfc3339(&facts.gen_time),
                skew_secs = skew.whole_seconds(),
                "the TSA's time and this machine's clock differ by more than 10 minutes: one of them is wrong"
            );
        }
        Ok((token, facts))
    }
}

/// What happened when a timestamp was asked for one signature.
#[derive(Debug, Clone)]
pub struct TsaOutcome {
    /// SM3 of the signature value the token was asked for.
    pub signature_value_sm3: [u8; 32],
    /// The token's facts, or why there is none.
    pub result: Result<TokenFacts, TsaError>,
}

/// Asks a TSA for a token over each signature value the SES builder hands it, under a policy;
/// remembers every outcome for the usage log.
#[derive(Debug)]
pub struct Stamper<'a> {
    client: &'a TsaClient,
    policy: TsaPolicy,
    outcomes: Mutex<Vec<TsaOutcome>>,
}

impl<'a> Stamper<'a> {
    /// A stamper for `client` under `policy` (`off` never asks).
    pub fn new(client: &'a TsaClient, policy: TsaPolicy) -> Self {
        Self {
            client,
            policy,
            outcomes: Mutex::new(Vec::new()),
        }
    }

    /// The outcomes so far, in the order they came.
    pub fn outcomes(&self) -> Vec<TsaOutcome> {
        self.outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The client.
    pub fn client(&self) -> &TsaClient {
        self.client
    }

    /// The policy.
    pub fn policy(&self) -> TsaPolicy {
        self.policy
    }
}

impl crate::ses::TimeStamper for Stamper<'_> {
    fn time_stamp(&self, signature_value: &[u8]) -> Result<Option<Vec<u8>>, String> {
        if self.policy == TsaPolicy::Off {
            return Ok(None);
        }
        let max = crate::ses::MAX_TIME_STAMP_TOKEN;
        let result = self
            .client
            .timestamp(signature_value)
            .and_then(|(token, facts)| {
                if token.len() > max {
                    Err(TsaError::BadToken {
                        url: self.client.url().to_owned(),
                        reason: format!(
                            "the token is {} bytes, more than the {max} seald keeps room for",
                            token.len()
                        ),
                    })
                } else {
                    Ok((token, facts))
                }
            });
        let outcome = TsaOutcome {
            signature_value_sm3: crate::crypto::sm3(signature_value),
            result: result.clone().map(|(_, facts)| facts),
        };
        self.outcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(outcome);
        match result {
            Ok((token, _)) => Ok(Some(token)),
            Err(e) if self.policy == TsaPolicy::Required => Err(format!(
                "no trusted timestamp: {e}; the [tsa] policy is `required`, so nothing was signed"
            )),
            Err(e) => {
                tracing::warn!(error = %e, "no timestamp (policy best-effort): the signature is kept without one");
                Ok(None)
            }
        }
    }
}
