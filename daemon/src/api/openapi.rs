//! `GET /v1/openapi.json`: the OpenAPI 3 document of every route.

use serde_json::{json, Map, Value};

/// One route: method, path, summary, roles, success status, error codes.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    auth: bool,
    body: Option<Value>,
    ok: &'static str,
    errors: &'static [&'static str],
}

/// Every route the API serves (the router is checked against this list in the tests).
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/health"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/devices"),
    ("post", "/v1/devices/{serial}/login"),
    ("post", "/v1/devices/{serial}/logout"),
    ("post", "/v1/devices/{serial}/pin"),
    ("post", "/v1/devices/{serial}/pin-unblock"),
    ("get", "/v1/devices/{serial}/pin-status"),
    ("get", "/v1/seals"),
    ("post", "/v1/seals"),
    ("get", "/v1/seals/{id}"),
    ("get", "/v1/seals/{id}/status"),
    ("post", "/v1/seals/{id}/revoke"),
    ("post", "/v1/seals/{id}/suspend"),
    ("post", "/v1/seals/{id}/resume"),
    ("post", "/v1/seals/{id}/report-lost"),
    ("post", "/v1/seals/{id}/custody"),
    ("post", "/v1/stamp-requests"),
    ("get", "/v1/stamp-requests"),
    ("get", "/v1/stamp-requests/{id}"),
    ("post", "/v1/stamp-requests/{id}/approve"),
    ("post", "/v1/stamp-requests/{id}/reject"),
    ("post", "/v1/verify"),
    ("get", "/v1/audit"),
    ("get", "/v1/audit/head"),
    ("get", "/v1/events"),
];

const COMMON: &[&str] = &[
    "host_not_allowed",
    "origin_not_allowed",
    "unsupported_media_type",
    "body_too_large",
    "malformed_json",
    "invalid_request",
    "timeout",
];
const AUTH: &[&str] = &["unauthenticated", "forbidden", "rate_limited"];

const SEAL_STATE_ERRORS: &[&str] = &["seal_not_found", "seal_refused"];

const ENROL_ERRORS: &[&str] = &[
    "bad_policy",
    "maker_not_configured",
    "maker_not_present",
    "maker_not_logged_in",
    "maker_key_not_found",
    "maker_certificate_not_found",
    "device_not_present",
    "key_not_found",
    "key_mismatch",
    "certificate_refused",
    "certificate_expired",
    "bad_image",
    "bad_es_id",
    "name_mismatch",
    "bad_validity",
    "es_id_taken",
    "second_legal_name_seal",
    "seal_maker_failed",
];

fn enrol_body() -> Value {
    let b64 = json!({"type": "string", "format": "byte"});
    let names = json!({"type": "array", "items": {"type": "string"}});
    json!({"type": "object",
        "required": ["kind", "organisation", "name", "image", "es_id", "device_serial", "key_id", "certificate", "policy"],
        "properties": {
            "kind": {"type": "string", "enum": ["legal-name", "business", "finance", "contract", "invoice", "personal-name", "other"]},
            "organisation": {"type": "string"}, "name": {"type": "string"},
            "image": b64, "width_mm": {"type": "number"}, "height_mm": {"type": "number"},
            "es_id": {"type": "string"}, "device_serial": {"type": "string"},
            "key_id": {"type": "string", "pattern": "^[0-9a-fA-F]+$"},
            "certificate": b64, "intermediates": {"type": "array", "items": b64},
            "valid_from": {"type": "integer"}, "valid_to": {"type": "integer"},
            "policy": {"type": "object",
                "required": ["clients", "approvers", "required_approvals", "pin_mode", "request_ttl_secs"],
                "properties": {
                    "clients": names, "approvers": names,
                    "required_approvals": {"type": "integer"}, "daily_quota": {"type": "integer"},
                    "quota_utc_offset_minutes": {"type": "integer"},
                    "office_hours": {"type": "object", "properties": {
                        "utc_offset_minutes": {"type": "integer"}, "weekdays": {"type": "array", "items": {"type": "integer"}},
                        "start_minute": {"type": "integer"}, "end_minute": {"type": "integer"}}},
                    "pin_mode": {"type": "object", "required": ["mode"], "properties": {
                        "mode": {"type": "string", "enum": ["each-stamp", "window"]}, "minutes": {"type": "integer"}}},
                    "request_ttl_secs": {"type": "integer"}}}}})
}

fn reason() -> Value {
    json!({"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}})
}

fn ops() -> Vec<Op> {
    let digest = json!({"type": "string", "pattern": "^[0-9a-f]{64}$"});
    vec![
        Op { method: "get", path: "/v1/health", summary: "Liveness and version", auth: false, body: None, ok: "200", errors: &[] },
        Op { method: "get", path: "/v1/openapi.json", summary: "This document", auth: false, body: None, ok: "200", errors: &[] },
        Op { method: "get", path: "/v1/devices", summary: "PKCS#11 modules, tokens present, PIN state, login", auth: true, body: None, ok: "200", errors: &[] },
        Op { method: "post", path: "/v1/devices/{serial}/login", summary: "Custodian: log the token in with its PIN (never logged)", auth: true,
             body: Some(json!({"type": "object", "required": ["pin"], "properties": {"pin": {"type": "string", "format": "password"}, "confirm_final_try": {"type": "boolean"}}})),
             ok: "200", errors: &["pin_incorrect", "pin_locked", "pin_final_try", "pin_invalid", "already_logged_in", "device_not_present", "device_error"] },
        Op { method: "post", path: "/v1/devices/{serial}/logout", summary: "Custodian: log the token out", auth: true, body: None, ok: "200", errors: &["device_not_present", "device_error"] },
        Op { method: "post", path: "/v1/devices/{serial}/pin", summary: "Custodian: change the user PIN (policy from `[pin_policy]`; PINs never logged or echoed)", auth: true,
             body: Some(json!({"type": "object", "required": ["old_pin", "new_pin"], "properties": {"old_pin": {"type": "string", "format": "password"}, "new_pin": {"type": "string", "format": "password"}, "confirm_final_try": {"type": "boolean"}}})),
             ok: "200", errors: &["pin_incorrect", "pin_locked", "pin_final_try", "pin_invalid", "pin_policy", "device_not_present", "device_error"] },
        Op { method: "post", path: "/v1/devices/{serial}/pin-unblock", summary: "Custodian or admin: re-set the user PIN with the SO PIN (policy from `[pin_policy]` first; PINs never logged or echoed); the token is logged out afterwards; `pin-unblocked` event", auth: true,
             body: Some(json!({"type": "object", "required": ["so_pin", "new_pin"], "properties": {"so_pin": {"type": "string", "format": "password"}, "new_pin": {"type": "string", "format": "password"}, "confirm_final_try": {"type": "boolean"}}})),
             ok: "200", errors: &["so_pin_incorrect", "so_pin_locked", "so_pin_final_try", "pin_invalid", "pin_policy", "device_not_present", "device_error"] },
        Op { method: "get", path: "/v1/devices/{serial}/pin-status", summary: "Custodian, admin or auditor: tries left, last change, PIN age against policy, warning", auth: true, body: None, ok: "200", errors: &["device_not_present", "device_error"] },
        Op { method: "get", path: "/v1/seals", summary: "Seals with state, validity and expiry warning", auth: true, body: None, ok: "200", errors: &[] },
        Op { method: "post", path: "/v1/seals", summary: "Admin: enrol a seal whose key is on a token, signed by the `[maker]` key, with its policy (identities by name); 201 with the seal and policy; `seal-enrolled` event", auth: true,
             body: Some(enrol_body()), ok: "201", errors: ENROL_ERRORS },
        Op { method: "get", path: "/v1/seals/{id}", summary: "One seal and its state history", auth: true, body: None, ok: "200", errors: &["seal_not_found"] },
        Op { method: "get", path: "/v1/seals/{id}/status", summary: "Public seal status for verifiers (no token): state, when it changed, validity", auth: false, body: None, ok: "200", errors: &["seal_not_found", "rate_limited"] },
        Op { method: "post", path: "/v1/seals/{id}/revoke", summary: "Admin: revoke for good; open requests of the seal fail with the reason; `seal-state` event", auth: true, body: Some(reason()), ok: "200", errors: SEAL_STATE_ERRORS },
        Op { method: "post", path: "/v1/seals/{id}/suspend", summary: "Admin: suspend; open requests of the seal fail with the reason; `seal-state` event", auth: true, body: Some(reason()), ok: "200", errors: SEAL_STATE_ERRORS },
        Op { method: "post", path: "/v1/seals/{id}/resume", summary: "Admin: a suspended seal stamps again; `seal-state` event", auth: true, body: Some(reason()), ok: "200", errors: SEAL_STATE_ERRORS },
        Op { method: "post", path: "/v1/seals/{id}/report-lost", summary: "Admin or custodian: key or device lost; open requests fail with the reason; `seal-state` event", auth: true, body: Some(reason()), ok: "200", errors: SEAL_STATE_ERRORS },
        Op { method: "post", path: "/v1/seals/{id}/custody", summary: "Admin: hand the seal to another custodian, who must change the token PIN before its next stamp; `custody-transferred` event", auth: true,
             body: Some(json!({"type": "object", "required": ["to"], "properties": {"to": {"type": "string"}}})),
             ok: "200", errors: &["seal_not_found", "not_a_custodian", "same_custodian"] },
        Op { method: "post", path: "/v1/stamp-requests", summary: "Client: ask to stamp one digest or a batch; 202 with the request id", auth: true,
             body: Some(json!({"type": "object", "required": ["seal_id", "purpose"], "properties": {
                 "seal_id": {"type": "integer"}, "digest": digest, "digests": {"type": "array", "items": digest},
                 "documents": {"type": "array", "items": {"type": "object", "properties": {"digest": digest, "name": {"type": "string"}}}},
                 "document_name": {"type": "string"}, "purpose": {"type": "string"}}})),
             ok: "202", errors: &["seal_not_found", "seal_not_usable", "no_policy", "client_not_allowed", "quota_exceeded", "outside_office_hours", "invalid_documents"] },
        Op { method: "get", path: "/v1/stamp-requests", summary: "Requests waiting for the caller (`?state=pending`)", auth: true, body: None, ok: "200", errors: &["invalid_query"] },
        Op { method: "get", path: "/v1/stamp-requests/{id}", summary: "A request; `signatures` (base64 DER SES_Signature) once signed", auth: true, body: None, ok: "200", errors: &["request_not_found"] },
        Op { method: "post", path: "/v1/stamp-requests/{id}/approve", summary: "Approver: approve (N of M); signing starts when approved", auth: true,
             body: Some(json!({"type": "object", "properties": {"comment": {"type": "string"}}})),
             ok: "200", errors: &["not_an_approver", "self_approval", "already_voted", "invalid_state", "request_expired", "request_not_found", "seal_not_usable"] },
        Op { method: "post", path: "/v1/stamp-requests/{id}/reject", summary: "Approver: reject (one rejection rejects)", auth: true,
             body: Some(json!({"type": "object", "properties": {"comment": {"type": "string"}}})),
             ok: "200", errors: &["not_an_approver", "self_approval", "already_voted", "invalid_state", "request_expired", "request_not_found"] },
        Op { method: "post", path: "/v1/verify", summary: "Verify a SES_Signature against a digest: the format layer's report", auth: true,
             body: Some(json!({"type": "object", "required": ["ses_signature", "digest"], "properties": {"ses_signature": {"type": "string", "format": "byte"}, "digest": digest}})),
             ok: "200", errors: &["invalid_signature_encoding", "unreadable_signature"] },
        Op { method: "get", path: "/v1/audit", summary: "Auditor: usage-log records (`kind`, `seal_id`, `actor`, `after`, `limit`)", auth: true, body: None, ok: "200", errors: &["invalid_query"] },
        Op { method: "get", path: "/v1/audit/head", summary: "Auditor or admin: the newest usage-log record as `SEQ:HASH`, to keep outside the store and check later with `sealctl audit verify --expect-head`", auth: true, body: None, ok: "200", errors: &[] },
        Op { method: "get", path: "/v1/events", summary: "Server-sent events: request-created/decided/signed/failed, seal-enrolled, seal-state, custody-transferred, pin-age, pin-unblocked, device-inserted/removed; each with an id; send `Last-Event-ID` to replay what was missed (or get a `reset` event)", auth: true, body: None, ok: "200", errors: &["too_many_streams"] },
    ]
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in ops() {
        let mut responses = Map::new();
        responses.insert(
            op.ok.into(),
            json!({"description": "success", "content": {"application/json": {}}}),
        );
        let mut codes: Vec<&str> = COMMON.to_vec();
        if op.auth {
            codes.extend_from_slice(AUTH);
        }
        codes.extend_from_slice(op.errors);
        responses.insert(
            "default".into(),
            json!({
                "description": format!("error; `code` is one of: {}", codes.join(", ")),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }),
        );
        let mut operation = json!({ "summary": op.summary, "responses": responses });
        if op.auth {
            operation["security"] = json!([{ "bearer": [] }]);
        }
        let params: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            operation["parameters"] = Value::Array(params);
        }
        if let Some(schema) = op.body {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        let item = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        item[op.method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "seald localhost API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Electronic seals (电子印章) on hardware keys: stamp requests, approvals, custodian login, verification, usage log. Loopback only; bearer tokens; JSON errors {code, message}.",
        },
        "servers": [{ "url": "http://127.0.0.1:7780" }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": { "Error": { "type": "object", "required": ["code", "message"], "properties": {
                "code": { "type": "string" }, "message": { "type": "string" } } } },
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_documented() {
        let doc = super::document();
        for (method, path) in super::ROUTES {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} missing from the OpenAPI document"
            );
        }
        // And nothing is documented that the router does not serve.
        let documented: std::collections::BTreeSet<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let served: std::collections::BTreeSet<&str> =
            super::ROUTES.iter().map(|(_, path)| *path).collect();
        assert_eq!(documented, served);
    }
}
