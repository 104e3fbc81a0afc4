//! Constructors for the records the daemon writes, so every caller logs the same fields.
//! Digests, never document contents; never a PIN.

use serde_json::json;

use crate::store::model::{AuditKind, Digest32, SealId};

use super::NewRecord;

/// The facts of one signature, as the usage log keeps them (DESIGN §2 step 5).
#[derive(Debug, Clone)]
pub struct SignatureFacts {
    /// The seal used.
    pub seal_id: SealId,
    /// Serial of the seal's certificate, hex.
    pub cert_serial: String,
    /// SM3 of the document.
    pub document_digest: Digest32,
    /// The document's name.
    pub document_name: String,
    /// The stamp request.
    pub request_id: i64,
    /// The client app that asked.
    pub client: String,
    /// The client's origin, as the API saw it.
    pub origin: Option<String>,
    /// Who approved.
    pub approvers: Vec<String>,
    /// SM3 of the SES_Signature produced, if known.
    pub signature_digest: Option<Digest32>,
}

impl NewRecord {
    /// A record with free-form details.
    pub fn new(
        kind: AuditKind,
        actor: impl Into<String>,
        seal_id: Option<SealId>,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            kind,
            actor: actor.into(),
            seal_id,
            detail,
        }
    }

    /// A signature was made.
    pub fn signature(actor: impl Into<String>, f: &SignatureFacts) -> Self {
        Self::new(
            AuditKind::Signature,
            actor,
            Some(f.seal_id),
            json!({
                "cert_serial": f.cert_serial,
                "document_digest": f.document_digest,
                "document_name": f.document_name,
                "request_id": f.request_id,
                "client": f.client,
                "origin": f.origin,
                "approvers": f.approvers,
                "signature_digest": f.signature_digest,
            }),
        )
    }

    /// A timestamp was obtained for the signature of `document_digest` (when known) in
    /// request `request_id`, or could not be: the TSA, the token's serial and genTime, or the
    /// reason, and the policy that decided what followed.
    pub fn timestamp(
        seal_id: SealId,
        request_id: i64,
        document_digest: Option<Digest32>,
        tsa_url: &str,
        policy: crate::tsa::TsaPolicy,
        outcome: &crate::tsa::TsaOutcome,
    ) -> Self {
        let signature_value_sm3 = hex::encode(outcome.signature_value_sm3);
        let detail = match &outcome.result {
            Ok(facts) => json!({
                "request_id": request_id,
                "document_digest": document_digest,
                "signature_value_sm3": signature_value_sm3,
                "outcome": "obtained",
                "tsa_url": tsa_url,
                "tsa": facts.tsa.as_ref().map(|c| c.display_name()),
                "tsa_cert_serial": facts.tsa.as_ref().map(|c| c.serial_hex.clone()),
                "serial": facts.serial_hex,
                "gen_time": crate::cert::rfc3339(&facts.gen_time),
                "hash": facts.hash,
                "policy": policy.as_str(),
            }),
            Err(e) => json!({
                "request_id": request_id,
                "document_digest": document_digest,
                "signature_value_sm3": signature_value_sm3,
                "outcome": "failed",
                "tsa_url": tsa_url,
                "error": e.to_string(),
                "policy": policy.as_str(),
                "consequence": match policy {
                    crate::tsa::TsaPolicy::Required => "the request failed; nothing was released",
                    _ => "the signature was kept without a timestamp",
                },
            }),
        };
        Self::new(AuditKind::Timestamp, "seald", Some(seal_id), detail)
    }

    /// The status of a seal's certificate (`status.certificate`: `seal` or `maker`) was asked
    /// before request `request_id` was signed; `refused` when it stopped the request.
    pub fn revocation(
        seal_id: SealId,
        request_id: i64,
        status: &crate::revocation::CertStatus,
        refused: bool,
    ) -> Self {
        let consequence = match (status.kind(), refused) {
            (_, true) => "the request failed; nothing was signed",
            ("unknown", false) => "signed anyway: [revocation] on_unknown = \"allow\"",
            _ => "signing went on",
        };
        Self::new(
            AuditKind::Revocation,
            "seald",
            Some(seal_id),
            json!({
                "request_id": request_id,
                "certificate": status.certificate,
                "subject": status.subject,
                "serial": status.serial,
                "status": status.kind(),
                "revoked_at": status.revoked_at().map(|t| crate::cert::rfc3339(&t)),
                "reason": status.reason(),
                "source": status.source,
                "detail": status.detail,
                "consequence": consequence,
            }),
        )
    }

    /// A custodian logged a token in (`ok`) or the token refused the PIN (`!ok`).
    /// `tries_left` is what the device reported, when it does.
    pub fn pin_login(
        custodian: impl Into<String>,
        device_serial: &str,
        ok: bool,
        tries_left: Option<u32>,
    ) -> Self {
        let kind = if ok {
            AuditKind::PinLogin
        } else {
            AuditKind::PinFailure
        };
        Self::new(
            kind,
            custodian,
            None,
            json!({ "device_serial": device_serial, "tries_left": tries_left }),
        )
    }

    /// A PIN was changed or unblocked (`what`: "change", "unblock").
    pub fn pin_change(custodian: impl Into<String>, device_serial: &str, what: &str) -> Self {
        Self::new(
            AuditKind::PinChange,
            custodian,
            None,
            json!({ "device_serial": device_serial, "what": what }),
        )
    }

    /// A device event (`event`: "inserted", "removed", "error", …).
    pub fn device(device_serial: &str, event: &str, detail: &str) -> Self {
        Self::new(
            AuditKind::Device,
            "seald",
            None,
            json!({ "device_serial": device_serial, "event": event, "detail": detail }),
        )
    }

    /// A verification was asked for, with its outcome.
    pub fn verification(
        actor: impl Into<String>,
        document_digest: &Digest32,
        outcome: &str,
    ) -> Self {
        Self::new(
            AuditKind::Verification,
            actor,
            None,
            json!({ "document_digest": document_digest, "outcome": outcome }),
        )
    }

    /// The configuration was reloaded; `digest` is SM3 of the new file.
    pub fn config_reload(actor: impl Into<String>, digest: &Digest32) -> Self {
        Self::new(
            AuditKind::ConfigReload,
            actor,
            None,
            json!({ "config_digest": digest }),
        )
    }
}
