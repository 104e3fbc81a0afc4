//! The signing worker: stamps one approved request on its seal's device.
//!
//! begin_signing (as seald) → seal usable, device present and logged in → per digest:
//! TBS_Sign with the seal's SES_Seal, timeInfo, dataHash, propertyInfo; e signed on the device
//! through the profile; verified in software (`build_signature`) → `mark_signed` keeps the
//! signatures and their usage records and marks the request `signed`, all in one durable
//! commit; only then can anyone fetch them. If the token's
//! sessions were dropped while it signed (the UKey was pulled, even if put back), the signatures
//! are thrown away and the request fails with the removal: nothing is signed without the login
//! it was approved under. Any failure marks
//! the request failed with a reason and nothing is returned.

use std::time::{Duration, Instant};

use super::batch::sign_documents;
use super::claims::{signable_here, Renewal};
use super::documents::{discard, seal_files, SealContext, SealedFile};
use crate::approval::{rules, ApprovalError, PinMode, RequestId, SigningTicket, StampRequest};
use crate::audit::NewRecord;
use crate::cert::Certificate;
use crate::device::DeviceError;
use crate::identity::Caller;
use crate::pdf::seal::PdfSealOptions;
use crate::revocation::CertStatus;
use crate::runtime::{Event, RequestParties, Runtime};
use crate::ses::{DocumentSigner, Seal as SesSeal};
use crate::tsa::{Stamper, TsaPolicy};

/// Why a request could not be signed (becomes its failure reason).
#[derive(Debug, thiserror::Error)]
pub enum StampError {
    /// The request could not be started or recorded.
    #[error(transparent)]
    Approval(#[from] crate::approval::ApprovalError),
    /// Another process holds the request's claim, or it is no longer approved: nothing to do.
    #[error("request {0} is being signed by another seald process, or is no longer approved")]
    NotClaimed(RequestId),
    /// On a shared store, this node cannot reach the seal's token (not inserted or not logged
    /// in here): a node that can signs it.
    #[error("request {0} is left for a node whose token is logged in")]
    LeftForAnotherNode(RequestId),
    /// The device refused or is missing.
    #[error("{0}")]
    Device(DeviceError),
    /// The seal's token is not inserted (removed before or while the request waited).
    #[error("the seal's token {0} is not inserted (the UKey was removed); insert it, have a custodian log in again (POST /v1/devices/{0}/login), then ask again")]
    TokenAbsent(String),
    /// The device is present but no custodian logged it in.
    #[error("the seal's token {0} is not logged in; a custodian must log in with the PIN (POST /v1/devices/{0}/login), then ask again")]
    NotLoggedIn(String),
    /// Under `pin_mode = each-stamp`, the token's login was not given for this request.
    #[error("seal policy asks for the PIN at each stamp, and the login of token {serial} was not given for request {request}; a custodian must log in for it (POST /v1/devices/{serial}/login with \"for_request\": {request}) before it is approved, then ask again")]
    PinNotForRequest {
        /// The token.
        serial: String,
        /// The request.
        request: RequestId,
    },
    /// The login window of the seal's policy has passed.
    #[error(
        "the login of token {0} is older than the seal's PIN window; a custodian must log in again"
    )]
    LoginWindowPassed(String),
    /// The seal record is unusable for signing.
    #[error("the seal's data cannot be used for signing: {0}")]
    SealData(String),
    /// Building or checking the SES_Signature failed (the device's signature did not verify).
    #[error("the signature could not be made or did not verify: {0}")]
    Build(String),
    /// No trusted timestamp could be had under `[tsa] policy = "required"` (the message names
    /// the TSA and what went wrong); nothing was released.
    #[error("{0}")]
    TimeStamp(String),
    /// A CA says the seal's (or its maker's) certificate is revoked, or its status could not
    /// be had under `[revocation] on_unknown = "refuse"`; nothing was signed.
    #[error("{0}")]
    CertificateStatus(String),
    /// An uploaded OFD document was changed, is gone, or could not be sealed.
    #[error(transparent)]
    Document(#[from] super::documents::DocumentStampError),
}

impl From<DeviceError> for StampError {
    /// A missing token is told as a removal: whoever approved expects the UKey to be in.
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::TokenNotPresent { serial } => StampError::TokenAbsent(serial),
            other => StampError::Device(other),
        }
    }
}

/// Signs request `id` (blocking) once this process has claimed it. On failure, the request is
/// marked failed with the reason. On a shared store, a request whose token this node has not
/// logged in is left for a node that has ([`StampError::LeftForAnotherNode`]).
pub fn run(state: &Runtime, id: RequestId) -> Result<StampRequest, StampError> {
    let approvals = &state.services.approvals;
    let started = Instant::now();
    if state.services.store.is_shared() && !signable_here(state, id)? {
        return Err(StampError::LeftForAnotherNode(id));
    }
    // One worker per request in this process, even if its own claim ran out meanwhile.
    let Some(_signing) = state.signing.start(id) else {
        return Err(StampError::NotClaimed(id));
    };
    if !approvals.claim(id, state.lease)? {
        return Err(StampError::NotClaimed(id));
    }
    let _renewal = Renewal::start(state, id);
    let ticket = match approvals.begin_signing(&Caller::Daemon, id) {
        Ok(ticket) => ticket,
        Err(e) => {
            let reason = e.to_string();
            // An expired request is already final; anything else (seal revoked meanwhile, …)
            // fails the request so the client sees why.
            if let Ok(failed) = approvals.mark_failed(&Caller::Daemon, id, &reason) {
                state.events.publish(Event::RequestFailed {
                    request_id: id,
                    reason,
                    parties: RequestParties::of(&failed),
                });
            }
            return Err(e.into());
        }
    };
    let serial = ticket.seal.device_serial.clone();
    let begun = started.elapsed();
    match sign(state, &ticket) {
        Ok((request, steps)) => {
            state.metrics.signed(
                ticket.seal.id,
                &serial,
                steps.signatures,
                steps.in_device,
                started.elapsed(),
            );
            tracing::debug!(
                request = id,
                documents = request.documents.len(),
                begin_us = begun.as_micros() as u64,
                checks_us = steps.checks.as_micros() as u64,
                sign_verify_us = steps.sign_verify.as_micros() as u64,
                record_us = steps.record.as_micros() as u64,
                "stamp signed"
            );
            if ticket.pin_mode == PinMode::EachStamp {
                end_each_stamp_login(state, &serial);
            }
            state.events.publish(Event::RequestSigned {
                request_id: id,
                parties: RequestParties::of(&request),
            });
            Ok(request)
        }
        Err(e) => {
            state.signing_keys.forget(&serial);
            // The PIN entry given for this request is spent, whatever the outcome.
            if ticket.pin_mode == PinMode::EachStamp && state.login_bound_to(&serial) == Some(id) {
                end_each_stamp_login(state, &serial);
            }
            if let StampError::Approval(a) = &e {
                if matches!(a, ApprovalError::ClaimedElsewhere { .. }) || is_store_unavailable(a) {
                    // Another node took the request over and reports it, or the store could
                    // not say whether the signatures were kept: the request is left as the
                    // store has it (a claim that runs out is taken over and signed again).
                    tracing::warn!(request = id, error = %e, "stamp not recorded here");
                    return Err(e);
                }
            }
            let reason = e.to_string();
            tracing::warn!(request = id, %reason, "stamp failed");
            let recorded = approvals
                .mark_failed(&Caller::Daemon, id, &reason)
                .inspect_err(|mark| {
                    tracing::error!(request = id, error = %mark, "cannot mark the request failed")
                })
                .is_ok();
            if matches!(
                e,
                StampError::TokenAbsent(_)
                    | StampError::Device(
                        DeviceError::DeviceRemoved | DeviceError::TokenNotPresent { .. }
                    )
            ) {
                state.set_login(&serial, None);
                state.events.publish(Event::DeviceRemoved {
                    serial: serial.clone(),
                });
            }
            // Clients hear of a failure only once it is on record.
            if recorded {
                state.events.publish(Event::RequestFailed {
                    request_id: id,
                    reason,
                    parties: RequestParties::of(&ticket.request),
                });
            }
            Err(e)
        }
    }
}

/// Whether `e` is the store being unreachable (nothing is known of the write's outcome).
fn is_store_unavailable(e: &ApprovalError) -> bool {
    matches!(e, ApprovalError::Store(s) if s.is_unavailable())
}

/// Logs the token out after an each-stamp request: its PIN entry was for that request only.
fn end_each_stamp_login(state: &Runtime, serial: &str) {
    if let Ok(owner) = state.devices.token(serial) {
        let _ = owner.logout();
    }
    state.set_login(serial, None);
}

/// How long each step of [`sign`] took (logged at debug level, for latency work).
struct StepTimes {
    /// Device present and logged in, key found, SES_Seal parsed.
    checks: Duration,
    /// Signing every document on the device and verifying each signature in software
    /// (pipelined: see [`sign_documents`]).
    sign_verify: Duration,
    /// `mark_signed`: the durable commit of the signatures and their usage records.
    record: Duration,
    /// Of `sign_verify`, the time spent in the token's sign calls.
    in_device: Duration,
    /// Signatures made.
    signatures: usize,
}

fn sign(state: &Runtime, ticket: &SigningTicket) -> Result<(StampRequest, StepTimes), StampError> {
    let t0 = Instant::now();
    let seal = &ticket.seal;
    let id = ticket.request.id;
    let owner = state.devices.token(&seal.device_serial)?;
    // Sessions dropped after this point (the UKey pulled and maybe put back) bump the generation;
    // a signature that straddles that must not be used: the login it ran under is gone.
    let generation = owner.generation();
    if !owner.logged_in()? {
        return Err(StampError::NotLoggedIn(seal.device_serial.clone()));
    }
    if ticket.pin_mode == PinMode::EachStamp
        && state.login_bound_to(&seal.device_serial) != Some(id)
    {
        return Err(StampError::PinNotForRequest {
            serial: seal.device_serial.clone(),
            request: id,
        });
    }
    if let PinMode::Window { .. } = ticket.pin_mode {
        let now = state.clock.timestamp();
        if rules::pin_needed(&ticket.pin_mode, state.last_login(&seal.device_serial), now) {
            let _ = owner.logout();
            state.set_login(&seal.device_serial, None);
            return Err(StampError::LoginWindowPassed(seal.device_serial.clone()));
        }
    }
    let key_id = hex::decode(&seal.key_id)
        .map_err(|_| StampError::SealData(format!("key id {:?} is not hex", seal.key_id)))?;
    let key = state.signing_keys.get(&owner, &key_id)?;
    let ses_seal_der = seal
        .ses_seal
        .as_deref()
        .ok_or_else(|| StampError::SealData("the seal has no SES_Seal".into()))?;
    let ses_seal = SesSeal::parse(ses_seal_der).map_err(|e| StampError::SealData(e.to_string()))?;
    let statuses = check_certificates(state, ticket, &ses_seal)?;
    let time_info = state.clock.now();
    let t1 = Instant::now();
    // A token over every signature value, under the seal's timestamp policy (or `[tsa]`'s).
    let policy = ticket
        .timestamp
        .or(state.tsa.as_ref().map(|t| t.policy))
        .unwrap_or_default();
    let client = state.tsa.as_ref().and_then(|t| t.client.as_deref());
    let stamper = match (policy, client) {
        (TsaPolicy::Off, _) => None,
        (policy, Some(client)) => Some(Stamper::new(client, policy)),
        (TsaPolicy::Required, None) => return Err(StampError::TimeStamp(
            "the seal's policy requires a trusted timestamp, but no time-stamping authority is configured ([tsa] url and trusted_certs); nothing was signed".into(),
        )),
        (TsaPolicy::BestEffort, None) => {
            tracing::warn!(
                request = id,
                "the seal's policy asks for a timestamp (best-effort), but no [tsa] url is configured: signing without one"
            );
            None
        }
    };
    let timed = crate::metrics::TimedSigner::new(key.as_ref());
    let mut signer =
        DocumentSigner::new(&ses_seal, &seal.certificate, &timed).map_err(build_error)?;
    if let Some(stamper) = &stamper {
        signer = signer.with_time_stamper(stamper);
    }
    let made = make_signatures(state, ticket, &signer, time_info, &owner);
    let (signed, sealed) = match made {
        Ok(made) => made,
        Err(e) => {
            if let Some(stamper) = &stamper {
                record_failed_timestamps(state, ticket, stamper);
            }
            return Err(e);
        }
    };
    if owner.generation() != generation {
        discard(&state.documents, &sealed);
        return Err(StampError::Device(DeviceError::DeviceRemoved));
    }
    let mut records: Vec<NewRecord> = statuses
        .iter()
        .map(|s| NewRecord::revocation(seal.id, id, s, false))
        .collect();
    records.extend(
        stamper
            .as_ref()
            .map(|s| timestamp_records(ticket, s, &signed))
            .unwrap_or_default(),
    );
    let t2 = Instant::now();
    let signatures = signed.len();
    let request = state
        .services
        .approvals
        .mark_signed_with_records(&Caller::Daemon, id, signed, sealed.clone(), records)
        .inspect_err(|e| {
            // Unreachable store: the commit may have landed (its answer was lost), and then
            // these files are the sealed documents on record; keep them.
            if !is_store_unavailable(e) {
                discard(&state.documents, &sealed)
            }
        })?;
    let steps = StepTimes {
        checks: t1 - t0,
        sign_verify: t2 - t1,
        record: t2.elapsed(),
        in_device: timed.spent(),
        signatures,
    };
    Ok((request, steps))
}

/// Asks the CAs (under `[revocation]`) whether the seal's certificate and its maker's are
/// revoked. A revoked one, or an unknown one under `on_unknown = "refuse"`, fails the request
/// with a usage record saying why; otherwise the statuses come back for the usage log.
fn check_certificates(
    state: &Runtime,
    ticket: &SigningTicket,
    ses_seal: &SesSeal,
) -> Result<Vec<CertStatus>, StampError> {
    let Some(checker) = &state.revocation else {
        return Ok(Vec::new());
    };
    let trust = state.services.registry.trust();
    let now = state.clock.now();
    let mut statuses = Vec::new();
    for (which, der) in [
        ("seal", &ticket.seal.certificate),
        ("maker", &ses_seal.maker_cert),
    ] {
        let cert = Certificate::from_der(der)
            .map_err(|e| StampError::SealData(format!("the {which} certificate: {e}")))?;
        let (status, refusal) =
            checker.check_for_signing(which, &cert, trust.issuer_of(&cert), now);
        if let Some(why) = refusal {
            let record = NewRecord::revocation(ticket.seal.id, ticket.request.id, &status, true);
            if let Err(e) = state.services.audit.append(record) {
                tracing::error!(request = ticket.request.id, error = %e, "cannot record a refused certificate status");
            }
            return Err(StampError::CertificateStatus(why));
        }
        statuses.push(status);
    }
    Ok(statuses)
}

/// Signs the request's digests, or seals its uploaded files; the signatures (and sealed
/// files) come back, nothing recorded yet.
fn make_signatures(
    state: &Runtime,
    ticket: &SigningTicket,
    signer: &DocumentSigner<'_>,
    time_info: time::OffsetDateTime,
    owner: &crate::device::TokenOwner,
) -> Result<(Vec<crate::approval::SignedDocument>, Vec<SealedFile>), StampError> {
    let seal = &ticket.seal;
    let id = ticket.request.id;
    Ok(if ticket.request.files.is_empty() {
        let signed = sign_documents(
            signer,
            id,
            &ticket.request.documents,
            time_info,
            owner.free_sessions(),
        )
        .map_err(build_error)?;
        (signed, Vec::new())
    } else {
        let rows = state
            .services
            .store
            .read(|tx| tx.files(id))
            .map_err(crate::approval::ApprovalError::from)?;
        let pdf = PdfSealOptions {
            form: state.pdf_form,
            chain: Certificate::from_der(&seal.certificate)
                .map(|leaf| state.services.registry.trust().issuers_of(&leaf))
                .unwrap_or_default(),
            reason: Some(ticket.request.purpose.clone()),
            ..PdfSealOptions::default()
        };
        let context = SealContext {
            signer,
            time: time_info,
            pdf: &pdf,
        };
        seal_files(&state.documents, &context, id, &rows, owner.free_sessions()).map_err(|e| {
            match e.build_error() {
                Some(crate::ses::BuildError::TimeStamp(m)) => StampError::TimeStamp(m.clone()),
                other => match other.and_then(device_cause) {
                    Some(device) => StampError::Device(device),
                    None => StampError::Document(e),
                },
            }
        })?
    })
}

/// The `timestamp` usage records of a signed request: one per token obtained (TSA, serial,
/// genTime) or per failure under `best-effort`, kept in the commit that keeps the signatures.
fn timestamp_records(
    ticket: &SigningTicket,
    stamper: &Stamper<'_>,
    signed: &[crate::approval::SignedDocument],
) -> Vec<NewRecord> {
    // Which document each signature value belongs to.
    let by_value: std::collections::HashMap<[u8; 32], crate::store::model::Digest32> = signed
        .iter()
        .filter_map(|s| {
            // A SES_Signature's signature value, or a PDF CMS SignerInfo's.
            let value = match crate::ses::SesSignature::parse(&s.ses_signature) {
                Ok(parsed) => crate::crypto::sm3(&parsed.signature),
                Err(_) => crate::crypto::sm3(
                    crate::cms::SignedData::parse(&s.ses_signature, true)
                        .ok()?
                        .signer
                        .signature,
                ),
            };
            Some((value, s.digest))
        })
        .collect();
    stamper
        .outcomes()
        .iter()
        .map(|o| {
            NewRecord::timestamp(
                ticket.seal.id,
                ticket.request.id,
                by_value.get(&o.signature_value_sm3).copied(),
                stamper.client().url(),
                stamper.policy(),
                o,
            )
        })
        .collect()
}

/// Writes the failures of a request that failed (e.g. under `required`) to the usage log.
fn record_failed_timestamps(state: &Runtime, ticket: &SigningTicket, stamper: &Stamper<'_>) {
    for o in stamper.outcomes().iter().filter(|o| o.result.is_err()) {
        let record = NewRecord::timestamp(
            ticket.seal.id,
            ticket.request.id,
            None,
            stamper.client().url(),
            stamper.policy(),
            o,
        );
        if let Err(e) = state.services.audit.append(record) {
            tracing::error!(request = ticket.request.id, error = %e, "cannot record a timestamp failure");
        }
    }
}

/// A build error as the request's failure: the device's own when it came from the device.
fn build_error(e: crate::ses::BuildError) -> StampError {
    if let crate::ses::BuildError::TimeStamp(m) = e {
        return StampError::TimeStamp(m);
    }
    match device_cause(&e) {
        Some(device) => StampError::Device(device),
        None => StampError::Build(e.to_string()),
    }
}

/// Whether a build error came from the device (so its message says what to do).
fn device_cause(e: &crate::ses::BuildError) -> Option<DeviceError> {
    let text = e.to_string();
    if text.contains("removed") {
        Some(DeviceError::DeviceRemoved)
    } else if text.contains("not logged in") {
        Some(DeviceError::UserNotLoggedIn)
    } else {
        None
    }
}
