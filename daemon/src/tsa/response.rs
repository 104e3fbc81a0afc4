//! TimeStampResp (RFC 3161 §2.4.2):
//!
//! ```text
//! TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken TimeStampToken OPTIONAL }
//! PKIStatusInfo ::= SEQUENCE { status PKIStatus, statusString PKIFreeText OPTIONAL,
//!                              failInfo PKIFailureInfo OPTIONAL }
//! ```

use crate::ses::der::{read_single, tag, DerError};

/// PKIStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkiStatus {
    /// 0: a token is included.
    Granted,
    /// 1: a token is included, the TSA changed something.
    GrantedWithMods,
    /// 2: no token.
    Rejection,
    /// 3: no token yet.
    Waiting,
    /// 4: a revocation is imminent.
    RevocationWarning,
    /// 5: a revocation has occurred.
    RevocationNotification,
    /// Any other value.
    Other(i64),
}

impl PkiStatus {
    fn from_int(v: i64) -> Self {
        match v {
            0 => PkiStatus::Granted,
            1 => PkiStatus::GrantedWithMods,
            2 => PkiStatus::Rejection,
            3 => PkiStatus::Waiting,
            4 => PkiStatus::RevocationWarning,
            5 => PkiStatus::RevocationNotification,
            n => PkiStatus::Other(n),
        }
    }

    /// The RFC's name.
    pub fn name(self) -> String {
        match self {
            PkiStatus::Granted => "granted".into(),
            PkiStatus::GrantedWithMods => "grantedWithMods".into(),
            PkiStatus::Rejection => "rejection".into(),
            PkiStatus::Waiting => "waiting".into(),
            PkiStatus::RevocationWarning => "revocationWarning".into(),
            PkiStatus::RevocationNotification => "revocationNotification".into(),
            PkiStatus::Other(n) => format!("unknown status {n}"),
        }
    }

    /// Whether a token comes with it.
    pub fn is_granted(self) -> bool {
        matches!(self, PkiStatus::Granted | PkiStatus::GrantedWithMods)
    }
}

/// PKIFailureInfo bit names (RFC 3161 §2.4.2), by bit number.
const FAIL_INFO: &[(usize, &str)] = &[
    (0, "badAlg (unrecognised or unsupported algorithm)"),
    (2, "badRequest (transaction not permitted or supported)"),
    (5, "badDataFormat (the data submitted has the wrong format)"),
    (
        14,
        "timeNotAvailable (the TSA's time source is not available)",
    ),
    (
        15,
        "unacceptedPolicy (the requested TSA policy is not supported)",
    ),
    (
        16,
        "unacceptedExtension (the requested extension is not supported)",
    ),
    (
        17,
        "addInfoNotAvailable (the additional information requested is not available)",
    ),
    (
        25,
        "systemFailure (the request cannot be handled due to system failure)",
    ),
];

/// A parsed TimeStampResp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStampResp {
    /// PKIStatus.
    pub status: PkiStatus,
    /// statusString texts.
    pub status_text: Vec<String>,
    /// failInfo, as bit names.
    pub fail_info: Vec<String>,
    /// The token (the whole ContentInfo, as found), if any.
    pub token: Option<Vec<u8>>,
}

fn der(e: DerError) -> String {
    format!("TimeStampResp: {e}")
}

impl TimeStampResp {
    /// Parses a DER TimeStampResp.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let resp = read_single(bytes, tag::SEQUENCE, "TimeStampResp").map_err(der)?;
        let mut r = resp.children();
        let info = r.next(tag::SEQUENCE, "PKIStatusInfo").map_err(der)?;
        let mut i = info.children();
        let status = i
            .next(tag::INTEGER, "PKIStatus")
            .map_err(der)?
            .int()
            .map_err(der)?;
        let mut status_text = Vec::new();
        if let Some(free) = i.optional(tag::SEQUENCE, "statusString").map_err(der)? {
            let mut texts = free.children();
            while !texts.is_empty() {
                let t = texts.next_any("PKIFreeText").map_err(der)?;
                status_text.push(t.string().map_err(der)?);
            }
        }
        let mut fail_info = Vec::new();
        if let Some(bits) = i.optional(tag::BIT_STRING, "failInfo").map_err(der)? {
            let body = bits.value.get(1..).unwrap_or_default();
            for (bit, name) in FAIL_INFO {
                if body
                    .get(bit / 8)
                    .is_some_and(|b| b & (0x80 >> (bit % 8)) != 0)
                {
                    fail_info.push((*name).to_owned());
                }
            }
            if fail_info.is_empty() && body.iter().any(|b| *b != 0) {
                fail_info.push(format!("unknown failInfo bits {}", hex::encode(body)));
            }
        }
        i.finish().map_err(der)?;
        let token = if r.is_empty() {
            None
        } else {
            Some(
                r.next(tag::SEQUENCE, "timeStampToken")
                    .map_err(der)?
                    .raw
                    .to_vec(),
            )
        };
        r.finish().map_err(der)?;
        Ok(Self {
            status: PkiStatus::from_int(status),
            status_text,
            fail_info,
            token,
        })
    }

    /// The status in words: PKIStatus, failInfo and statusString.
    pub fn describe(&self) -> String {
        let mut out = format!("PKIStatus {}", self.status.name());
        if !self.fail_info.is_empty() {
            out.push_str(&format!(", failInfo {}", self.fail_info.join(", ")));
        }
        if !self.status_text.is_empty() {
            out.push_str(&format!(", \"{}\"", self.status_text.join("; ")));
        }
        out
    }

    /// The token of a granted answer, or why there is none.
    pub fn into_token(self) -> Result<Vec<u8>, (bool, String)> {
        if !self.status.is_granted() {
            return Err((true, self.describe()));
        }
        let described = self.describe();
        self.token
            .ok_or_else(|| (false, format!("{described} but no token is included")))
    }
}
