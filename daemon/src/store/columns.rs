//! What both backends' SQL shares: the column lists rows are read in, how roles and JSON are
//! written, and the query naming every stored document.

use super::model::Role;
use super::{StoreError, StoreResult};

/// Every stored upload and sealed file a store names (also read from backup files).
pub(crate) const DOCUMENT_PATHS: &str = "SELECT upload_path FROM stamp_files WHERE upload_path \
     IS NOT NULL UNION SELECT sealed_path FROM stamp_files WHERE sealed_path IS NOT NULL";

/// An identity row's columns.
pub(crate) const IDENTITY_COLS: &str = "id, name, roles, disabled, created_at";

/// A seal row's columns.
pub(crate) const SEAL_COLS: &str = "id, kind, organisation, name, image_format, image, width_mm, \
    height_mm, es_id, device_serial, key_id, certificate, cert_org, cert_cn, cert_serial, \
    cert_not_before, cert_not_after, valid_from, valid_to, state, state_changed_at, created_at, \
    ses_seal";

/// A stamp request row's columns.
pub(crate) const REQUEST_COLS: &str = "id, seal_id, requester, documents, purpose, origin, state, \
    created_at, expires_at, updated_at, failure";

/// A usage-log row's columns.
pub(crate) const AUDIT_COLS: &str = "seq, at_ms, kind, actor, seal_id, detail, prev_hash, hash";

/// `value` as stored JSON text.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Roles as stored: comma-separated names.
pub(crate) fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
