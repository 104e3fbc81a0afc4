//! How core errors become API errors: a stable code and the core's sentence.

use axum::http::StatusCode;

use crate::approval::ApprovalError;
use crate::audit::AuditError;
use crate::device::DeviceError;
use crate::seal::SealError;

use super::error::ApiError;

fn unprocessable(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

impl From<SealError> for ApiError {
    fn from(e: SealError) -> Self {
        let message = e.to_string();
        match e {
            SealError::Forbidden(_) => ApiError::forbidden("forbidden", message),
            SealError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "seal_not_found", message)
            }
            SealError::NotUsable { .. } | SealError::OutsideValidity { .. } => {
                ApiError::conflict("seal_not_usable", message)
            }
            SealError::Store(e) => store_error(&e, message),
            SealError::KeyMismatch { .. } => unprocessable("key_mismatch", message),
            SealError::Certificate(_) | SealError::CertificateWithoutOrganisation => {
                unprocessable("certificate_refused", message)
            }
            SealError::CertificateExpired { .. } => unprocessable("certificate_expired", message),
            SealError::Image(_) => unprocessable("bad_image", message),
            SealError::BadEsId(_) => unprocessable("bad_es_id", message),
            SealError::EmptyName
            | SealError::NameMismatch { .. }
            | SealError::OrganisationMismatch { .. } => unprocessable("name_mismatch", message),
            SealError::ValidityPastCertificate { .. }
            | SealError::ValidityBeforeCertificate { .. }
            | SealError::EmptyValidity { .. } => unprocessable("bad_validity", message),
            SealError::EsIdTaken(_) => ApiError::conflict("es_id_taken", message),
            SealError::SecondLegalNameSeal { .. } => {
                ApiError::conflict("second_legal_name_seal", message)
            }
            SealError::SesSeal(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "seal_maker_failed", message)
            }
            _ => ApiError::conflict("seal_refused", message),
        }
    }
}

impl From<ApprovalError> for ApiError {
    fn from(e: ApprovalError) -> Self {
        let message = e.to_string();
        match e {
            ApprovalError::Seal(seal) => seal.into(),
            ApprovalError::Forbidden(_) | ApprovalError::NeedsIdentity => {
                ApiError::forbidden("forbidden", message)
            }
            ApprovalError::NoPolicy(_) => ApiError::conflict("no_policy", message),
            ApprovalError::ClientNotAllowed { .. } => {
                ApiError::forbidden("client_not_allowed", message)
            }
            ApprovalError::NotAnApprover { .. } => ApiError::forbidden("not_an_approver", message),
            ApprovalError::SelfApproval { .. } => ApiError::forbidden("self_approval", message),
            ApprovalError::AlreadyVoted { .. } => ApiError::conflict("already_voted", message),
            ApprovalError::QuotaExceeded { .. } => ApiError::conflict("quota_exceeded", message),
            ApprovalError::OutsideOfficeHours { .. } => {
                ApiError::conflict("outside_office_hours", message)
            }
            ApprovalError::IllegalTransition { .. } => ApiError::conflict("invalid_state", message),
            ApprovalError::Expired(_) => ApiError::conflict("request_expired", message),
            ApprovalError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "request_not_found", message)
            }
            ApprovalError::BadDocuments(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_documents",
                message,
            ),
            ApprovalError::BadPolicy(_) => ApiError::conflict("bad_policy", message),
            ApprovalError::BadText { .. } => unprocessable("invalid_text", message),
            ApprovalError::TooManyPending { .. } => ApiError::conflict("too_many_pending", message),
            ApprovalError::PinChangeRequired { .. }
            | ApprovalError::PinResetBySecurityOfficer { .. } => {
                ApiError::conflict("pin_change_required", message)
            }
            ApprovalError::Store(e) => store_error(&e, message),
            _ => ApiError::internal(message),
        }
    }
}

/// 503 `store_unavailable` while the database cannot be reached (retry later), else 500.
pub(crate) fn store_error(e: &crate::store::StoreError, message: String) -> ApiError {
    if e.is_unavailable() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            message,
        )
    } else {
        ApiError::internal(message)
    }
}

impl From<crate::custody::CustodyError> for ApiError {
    fn from(e: crate::custody::CustodyError) -> Self {
        use crate::custody::CustodyError;
        match e {
            CustodyError::Device(d) => d.into(),
            CustodyError::Policy(v) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "pin_policy",
                v.to_string(),
            ),
            CustodyError::UnknownSeal(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "seal_not_found", e.to_string())
            }
            CustodyError::NotACustodian(..) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_a_custodian",
                e.to_string(),
            ),
            CustodyError::SameCustodian { .. } => {
                ApiError::conflict("same_custodian", e.to_string())
            }
            CustodyError::NotYourToken { .. } => {
                ApiError::forbidden("not_your_token", e.to_string())
            }
            CustodyError::NotYourSeal { .. } => ApiError::forbidden("not_your_seal", e.to_string()),
            CustodyError::Store(ref s) => store_error(s, e.to_string()),
        }
    }
}

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        match &e {
            AuditError::Store(s) => store_error(s, e.to_string()),
            _ => ApiError::internal(e.to_string()),
        }
    }
}

impl From<DeviceError> for ApiError {
    fn from(e: DeviceError) -> Self {
        let message = e.to_string();
        let (status, code) = match e {
            DeviceError::PinIncorrect { .. } => (StatusCode::FORBIDDEN, "pin_incorrect"),
            DeviceError::PinLocked => (StatusCode::LOCKED, "pin_locked"),
            DeviceError::SoPinIncorrect { .. } => (StatusCode::FORBIDDEN, "so_pin_incorrect"),
            DeviceError::SoPinLocked => (StatusCode::LOCKED, "so_pin_locked"),
            DeviceError::SoFinalTryNotConfirmed => (StatusCode::CONFLICT, "so_pin_final_try"),
            DeviceError::FinalTryNotConfirmed => (StatusCode::CONFLICT, "pin_final_try"),
            DeviceError::PinLenRange { .. } | DeviceError::PinInvalid => {
                (StatusCode::UNPROCESSABLE_ENTITY, "pin_invalid")
            }
            DeviceError::PinExpired => (StatusCode::CONFLICT, "pin_expired"),
            DeviceError::UserPinNotInitialized => (StatusCode::CONFLICT, "pin_not_initialized"),
            DeviceError::UserNotLoggedIn => (StatusCode::CONFLICT, "device_not_logged_in"),
            DeviceError::AlreadyLoggedIn => (StatusCode::CONFLICT, "already_logged_in"),
            DeviceError::DeviceRemoved | DeviceError::TokenNotPresent { .. } => {
                (StatusCode::NOT_FOUND, "device_not_present")
            }
            DeviceError::Unsupported(_) => (StatusCode::NOT_IMPLEMENTED, "device_unsupported"),
            DeviceError::LibraryDown { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "device_library_down")
            }
            _ => (StatusCode::BAD_GATEWAY, "device_error"),
        };
        ApiError::new(status, code, message)
    }
}

/// Runs blocking core work off the async threads.
pub async fn blocking<T, E>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(ApiError::internal(
            "a worker thread failed; see seald's log",
        )),
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        store_error(&e, e.to_string())
    }
}
