//! OCSP (RFC 6960): the request seald sends for one certificate (SHA-1 CertID, a nonce) and
//! the checks on the answer: a successful basic response, signed by the certificate's issuer
//! or by a responder the issuer delegated (id-kp-OCSPSigning), for this CertID, with our nonce
//! echoed if the responder echoes one, and current (thisUpdate not in the future, nextUpdate
//! not past).

use sha1::{Digest, Sha1};
use time::OffsetDateTime;

use super::Status;
use crate::cert::Certificate;
use crate::ses::der::{read_single, read_tlv, tag, write, Tlv};

/// id-pkix-ocsp-basic.
const OID_OCSP_BASIC: &str = "1.3.6.1.5.5.7.48.1.1";
/// id-pkix-ocsp-nonce.
const OID_OCSP_NONCE: &str = "1.3.6.1.5.5.7.48.1.2";
/// SHA-1, the CertID hash every responder knows.
const OID_SHA1: &str = "1.3.14.3.2.26";
/// invalidityDate (a CRL entry and SingleResponse extension).
const OID_INVALIDITY_DATE: &str = "2.5.29.24";
/// How far in the future a thisUpdate may be (clocks differ).
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// A request for one certificate, with what its answer must match.
#[derive(Debug, Clone)]
pub struct OcspRequest {
    cert_id: Vec<u8>,
    nonce: Vec<u8>,
}

fn oid(dotted: &str) -> Vec<u8> {
    write::oid(dotted).unwrap_or_else(|| unreachable!("constant OID {dotted}"))
}

impl OcspRequest {
    /// A request for `cert` issued by `issuer`, with a fresh 16-byte nonce.
    pub fn new(cert: &Certificate, issuer: &Certificate) -> Result<Self, String> {
        let key = issuer
            .public_key()
            .map_err(|e| format!("the issuer's key: {e}"))?;
        let serial = hex::decode(&cert.facts().serial_hex)
            .map_err(|_| "the certificate's serial cannot be read".to_string())?;
        let cert_id = write::seq(&[
            &write::seq(&[&oid(OID_SHA1), &write::tlv(tag::NULL, &[])]),
            &write::octets(&Sha1::digest(cert.issuer_raw())),
            &write::octets(&Sha1::digest(key.point)),
            &write::tlv(tag::INTEGER, &serial),
        ]);
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| format!("no random nonce: {e}"))?;
        Ok(Self {
            cert_id,
            nonce: write::octets(&nonce),
        })
    }

    /// The DER OCSPRequest.
    pub fn encode(&self) -> Vec<u8> {
        let nonce_ext = write::seq(&[&oid(OID_OCSP_NONCE), &write::octets(&self.nonce)]);
        let tbs = write::seq(&[
            &write::seq(&[&write::seq(&[&self.cert_id])]),
            &write::constructed(0xa2, &[&write::seq(&[&nonce_ext])]),
        ]);
        write::seq(&[&tbs])
    }

    /// Checks `answer` (a DER OCSPResponse) against this request, `issuer` and `now`.
    pub fn check_answer(
        &self,
        answer: &[u8],
        issuer: &Certificate,
        now: OffsetDateTime,
    ) -> Result<OcspAnswer, String> {
        let basic = basic_response(answer)?;
        let responder = basic.responder(issuer, now)?;
        if let Some(nonce) = &basic.nonce {
            if *nonce != self.nonce {
                return Err("the answer's nonce is not the request's: it answers another request (a replay?)".into());
            }
        }
        let single = basic
            .responses
            .iter()
            .find(|r| r.cert_id == self.cert_id)
            .ok_or("the answer does not speak of the certificate asked about")?;
        if single.this_update > now + CLOCK_SKEW {
            return Err(format!(
                "the answer's thisUpdate {} is in the future",
                crate::cert::rfc3339(&single.this_update)
            ));
        }
        match single.next_update {
            Some(next) if next < now => {
                return Err(format!(
                    "the answer is stale: its nextUpdate {} has passed",
                    crate::cert::rfc3339(&next)
                ))
            }
            // Without our nonce and without a nextUpdate, nothing bounds a replay but its age.
            None if basic.nonce.is_none() && single.this_update < now - CLOCK_SKEW => {
                return Err(format!(
                    "the answer carries neither our nonce nor a nextUpdate, and its thisUpdate {} is not recent: it may be replayed",
                    crate::cert::rfc3339(&single.this_update)
                ))
            }
            _ => {}
        }
        let nonce_note = if basic.nonce.is_some() {
            "nonce echoed"
        } else {
            "the responder did not echo the nonce"
        };
        Ok(OcspAnswer {
            status: single.status.clone(),
            detail: format!(
                "signed by {responder}, thisUpdate {}, {nonce_note}",
                crate::cert::rfc3339(&single.this_update)
            ),
            next_update: single.next_update,
        })
    }
}

/// What a checked OCSP answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspAnswer {
    /// The certificate's status.
    pub status: Status,
    /// Who signed it, its thisUpdate, the nonce.
    pub detail: String,
    /// Until when it holds, if it says.
    pub next_update: Option<OffsetDateTime>,
}

/// One SingleResponse.
struct SingleResponse {
    cert_id: Vec<u8>,
    status: Status,
    this_update: OffsetDateTime,
    next_update: Option<OffsetDateTime>,
}

/// A BasicOCSPResponse, read.
struct BasicResponse<'a> {
    tbs: &'a [u8],
    signature_oid: String,
    signature: &'a [u8],
    certs: Vec<Certificate>,
    responses: Vec<SingleResponse>,
    nonce: Option<Vec<u8>>,
}

fn der(e: crate::ses::der::DerError) -> String {
    format!("malformed OCSP answer: {e}")
}

/// Reads an OCSPResponse down to its BasicOCSPResponse; a responder's refusal is an error.
fn basic_response(answer: &[u8]) -> Result<BasicResponse<'_>, String> {
    let top = read_single(answer, tag::SEQUENCE, "OCSPResponse").map_err(der)?;
    let mut parts = top.children();
    let status = parts.next(0x0a, "responseStatus").map_err(der)?;
    let code = status.value.first().copied().unwrap_or(0xff);
    if status.value.len() != 1 || code != 0 {
        let what = match code {
            1 => "malformedRequest",
            2 => "internalError",
            3 => "tryLater",
            5 => "sigRequired",
            6 => "unauthorized",
            _ => "an unknown status",
        };
        return Err(format!("the responder answered {what} ({code})"));
    }
    let bytes = parts.next(0xa0, "responseBytes").map_err(der)?;
    let bytes = read_single(bytes.value, tag::SEQUENCE, "ResponseBytes").map_err(der)?;
    let mut rb = bytes.children();
    let kind = rb.next(tag::OID, "responseType").map_err(der)?;
    let kind = kind.oid().map_err(der)?;
    if kind != OID_OCSP_BASIC {
        return Err(format!(
            "the answer is of type {kind}, not a basic OCSP response"
        ));
    }
    let inner = rb.next(tag::OCTET_STRING, "response").map_err(der)?;
    let basic = read_single(inner.value, tag::SEQUENCE, "BasicOCSPResponse").map_err(der)?;
    let mut b = basic.children();
    let tbs = b.next(tag::SEQUENCE, "tbsResponseData").map_err(der)?;
    let alg = b.next(tag::SEQUENCE, "signatureAlgorithm").map_err(der)?;
    let signature_oid = alg
        .children()
        .next(tag::OID, "algorithm")
        .and_then(|o| o.oid())
        .map_err(der)?;
    let signature = b
        .next(tag::BIT_STRING, "signature")
        .and_then(|s| s.bits())
        .map_err(der)?;
    let mut certs = Vec::new();
    if let Some(list) = b.optional(0xa0, "certs").map_err(der)? {
        let seq = read_single(list.value, tag::SEQUENCE, "certs").map_err(der)?;
        let mut items = seq.children();
        while !items.is_empty() {
            let c = items.next(tag::SEQUENCE, "certificate").map_err(der)?;
            certs.push(
                Certificate::from_der(c.raw)
                    .map_err(|e| format!("a certificate in the answer: {e}"))?,
            );
        }
    }
    let (responses, nonce) = response_data(&tbs)?;
    Ok(BasicResponse {
        tbs: tbs.raw,
        signature_oid,
        signature,
        certs,
        responses,
        nonce,
    })
}

/// ResponseData: the single responses and the nonce extension's value, if any.
fn response_data(tbs: &Tlv<'_>) -> Result<(Vec<SingleResponse>, Option<Vec<u8>>), String> {
    let mut d = tbs.children();
    d.optional(0xa0, "version").map_err(der)?;
    let responder_id = d.next_any("responderID").map_err(der)?;
    if responder_id.tag != 0xa1 && responder_id.tag != 0xa2 {
        return Err("malformed OCSP answer: unknown responderID".into());
    }
    d.next(tag::GENERALIZED_TIME, "producedAt").map_err(der)?;
    let list = d.next(tag::SEQUENCE, "responses").map_err(der)?;
    let mut responses = Vec::new();
    let mut items = list.children();
    while !items.is_empty() {
        let single = items.next(tag::SEQUENCE, "SingleResponse").map_err(der)?;
        responses.push(single_response(&single)?);
    }
    let mut nonce = None;
    if let Some(exts) = d.optional(0xa1, "responseExtensions").map_err(der)? {
        let seq = read_single(exts.value, tag::SEQUENCE, "Extensions").map_err(der)?;
        let mut list = seq.children();
        while !list.is_empty() {
            let ext = list.next(tag::SEQUENCE, "Extension").map_err(der)?;
            let (id, critical, value) = extension(&ext)?;
            if id == OID_OCSP_NONCE {
                nonce = Some(value.to_vec());
            } else if critical {
                return Err(format!(
                    "the answer has a critical extension seald does not read ({id})"
                ));
            }
        }
    }
    Ok((responses, nonce))
}

/// An Extension's id, criticality and value.
fn extension<'a>(ext: &Tlv<'a>) -> Result<(String, bool, &'a [u8]), String> {
    let mut e = ext.children();
    let id = e
        .next(tag::OID, "extnID")
        .and_then(|o| o.oid())
        .map_err(der)?;
    let critical = match e.optional(tag::BOOLEAN, "critical").map_err(der)? {
        Some(b) => b.boolean().map_err(der)?,
        None => false,
    };
    let value = e.next(tag::OCTET_STRING, "extnValue").map_err(der)?;
    Ok((id, critical, value.value))
}

fn single_response(single: &Tlv<'_>) -> Result<SingleResponse, String> {
    let mut s = single.children();
    let cert_id = s.next(tag::SEQUENCE, "certID").map_err(der)?;
    let status = s.next_any("certStatus").map_err(der)?;
    let status = match status.tag {
        0x80 => Status::Good,
        0xa1 => {
            let (time, rest) = read_tlv(status.value, 0, "revocationTime").map_err(der)?;
            let at = time.time().map_err(der)?;
            let reason = match read_tlv(rest, 0, "revocationReason") {
                Ok((r, _)) if r.tag == 0xa0 => read_single(r.value, 0x0a, "CRLReason")
                    .ok()
                    .and_then(|e| e.value.first().copied())
                    .map(super::reason_name),
                _ => None,
            };
            Status::Revoked { at, reason }
        }
        0x82 => Status::Unknown("the responder does not know this certificate".into()),
        other => {
            return Err(format!(
                "malformed OCSP answer: certStatus tag {other:#04x}"
            ))
        }
    };
    let this_update = s
        .next(tag::GENERALIZED_TIME, "thisUpdate")
        .and_then(|t| t.time())
        .map_err(der)?;
    let next_update = match s.optional(0xa0, "nextUpdate").map_err(der)? {
        Some(n) => Some(
            read_single(n.value, tag::GENERALIZED_TIME, "nextUpdate")
                .and_then(|t| t.time())
                .map_err(der)?,
        ),
        None => None,
    };
    let mut status = status;
    if let Some(exts) = s.optional(0xa1, "singleExtensions").map_err(der)? {
        let seq = read_single(exts.value, tag::SEQUENCE, "Extensions").map_err(der)?;
        let mut list = seq.children();
        while !list.is_empty() {
            let ext = list.next(tag::SEQUENCE, "Extension").map_err(der)?;
            let (id, critical, value) = extension(&ext)?;
            if id == OID_INVALIDITY_DATE {
                // A key compromised before it was revoked is judged from then.
                let since = read_single(value, tag::GENERALIZED_TIME, "invalidityDate")
                    .and_then(|t| t.time())
                    .map_err(der)?;
                if let Status::Revoked { at, .. } = &mut status {
                    *at = (*at).min(since);
                }
            } else if critical {
                return Err(format!(
                    "the answer has a critical extension seald does not read ({id})"
                ));
            }
        }
    }
    Ok(SingleResponse {
        cert_id: cert_id.raw.to_vec(),
        status,
        this_update,
        next_update,
    })
}

impl BasicResponse<'_> {
    /// Who signed the answer, if they may speak for `issuer`'s certificates: the issuer
    /// itself, or a certificate in the answer that the issuer signed, that names
    /// id-kp-OCSPSigning and is valid `now`.
    fn responder(&self, issuer: &Certificate, now: OffsetDateTime) -> Result<String, String> {
        if issuer
            .verify_data(&self.signature_oid, self.tbs, self.signature)
            .is_ok()
        {
            return Ok(format!("the issuer {}", issuer.facts().display_name()));
        }
        for cert in &self.certs {
            if cert
                .verify_data(&self.signature_oid, self.tbs, self.signature)
                .is_err()
            {
                continue;
            }
            let name = cert.facts().display_name();
            if cert.issuer_raw() != issuer.subject_raw() || cert.verify_signed_by(issuer).is_err() {
                return Err(format!(
                    "the answer is signed by {name}, which {} did not certify",
                    issuer.facts().display_name()
                ));
            }
            if !cert.allows_ocsp_signing() {
                return Err(format!(
                    "the answer is signed by {name}, whose certificate does not allow OCSP signing"
                ));
            }
            cert.check_validity_at(now).map_err(|e| e.to_string())?;
            return Ok(format!(
                "{name}, a responder delegated by {}",
                issuer.facts().display_name()
            ));
        }
        Err(format!(
            "the answer's signature verifies neither with {}'s key nor with a certificate in it",
            issuer.facts().display_name()
        ))
    }
}
