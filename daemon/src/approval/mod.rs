//! Per-seal approval policies and the stamp request state machine.
//!
//! pending → approved → signed, or rejected / expired / failed. The API layer authenticates
//! and passes the caller as a [`Caller`] value into every call; the signing worker (inside
//! seald) calls [`Approvals::begin_signing`], signs on the device, then
//! [`Approvals::mark_signed`] or [`Approvals::mark_failed`].

pub mod limits;
pub mod named;
pub mod rules;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::json;

use crate::audit::{chain, unix_ms, NewRecord, SignatureFacts};
use crate::clock::{Clock, Timestamp};
use crate::identity::{Caller, Forbidden, Role};
use crate::seal::{check_usable, NewSeal, Registry, Seal, SealError, SealMaker};
use crate::store::model::{AuditKind, Digest32, IdentityId, SealId, StampFileRow, StoredSignature};
use crate::store::{Store, StoreError, Tx};

pub use crate::store::model::{
    OfficeHours, PinMode, Policy, RequestId, RequestState, StampDocument, StampFile, StampRequest,
    Vote,
};
pub use limits::RequestLimits;
pub use named::NamedPolicy;

/// Approval errors, each naming the rule that refused.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The caller lacks a role.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The seal cannot be used (state, validity) or does not exist.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Only an authenticated identity can do this (not a local or daemon caller).
    #[error("this needs an authenticated identity")]
    NeedsIdentity,
    /// Another node took the request over after this node's claim ran out: that node signs
    /// it, and this node's signature is thrown away.
    #[error("request {id} is being signed by node {holder} (this node's claim ran out); its signature here is not kept")]
    ClaimedElsewhere {
        /// The request.
        id: RequestId,
        /// The node holding the claim now.
        holder: String,
    },
    /// Only seald's signing worker records signatures and failures.
    #[error("{0} may not record signatures: only seald's signing worker does")]
    DaemonOnly(String),
    /// The seal changed hands and its new custodian has not yet changed the PIN.
    #[error("seal {seal_id} was handed to {custodian}, who must change the token PIN (sealctl pin change) before it can stamp again")]
    PinChangeRequired {
        /// The seal.
        seal_id: SealId,
        /// Its custodian.
        custodian: String,
    },
    /// The security officer re-set the token's user PIN (unblock) and the custodian has not
    /// yet changed it.
    #[error("the user PIN of token {device_serial} was re-set by the security officer (PIN unblock), who knows it; the seal's custodian must change the PIN (sealctl pin-change, or POST /v1/devices/{device_serial}/pin) before seal {seal_id} can stamp again")]
    PinResetBySecurityOfficer {
        /// The seal.
        seal_id: SealId,
        /// The token holding its key.
        device_serial: String,
    },
    /// The seal has no policy.
    #[error(
        "seal {0} has no approval policy; an administrator must set one before it can be used"
    )]
    NoPolicy(SealId),
    /// The policy is malformed.
    #[error("invalid approval policy: {0}")]
    BadPolicy(String),
    /// The client app may not ask for this seal.
    #[error("client {client} may not ask for seal {seal_id}")]
    ClientNotAllowed {
        /// Client name.
        client: String,
        /// The seal.
        seal_id: SealId,
    },
    /// The caller is not an approver of this seal.
    #[error("{who} is not an approver of seal {seal_id}")]
    NotAnApprover {
        /// Caller name.
        who: String,
        /// The seal.
        seal_id: SealId,
    },
    /// The requester tried to approve their own request.
    #[error("{who} made request {id} and may not decide on it")]
    SelfApproval {
        /// Caller name.
        who: String,
        /// The request.
        id: RequestId,
    },
    /// A second vote by the same approver.
    #[error("{who} has already voted on request {id}")]
    AlreadyVoted {
        /// Caller name.
        who: String,
        /// The request.
        id: RequestId,
    },
    /// The daily quota would be exceeded (counted by documents stamped today).
    #[error("seal {seal_id} may stamp {quota} documents a day; {used} are already stamped today and this request adds {requested}")]
    QuotaExceeded {
        /// The seal.
        seal_id: SealId,
        /// Daily quota.
        quota: u32,
        /// Documents already stamped today.
        used: u64,
        /// Documents in this request.
        requested: usize,
    },
    /// Outside the policy's office hours.
    #[error("stamping is allowed only in office hours ({hours}); it is now {local_time}")]
    OutsideOfficeHours {
        /// Local time now.
        local_time: String,
        /// The allowed hours.
        hours: String,
    },
    /// A transition the state machine does not allow.
    #[error("request {id} is {from} and cannot become {to}")]
    IllegalTransition {
        /// The request.
        id: RequestId,
        /// Current state.
        from: RequestState,
        /// State asked for.
        to: RequestState,
    },
    /// The request timed out (it is now marked expired).
    #[error("request {0} has expired; ask again")]
    Expired(RequestId),
    /// No such request (or not visible to the caller).
    #[error("no stamp request {0}")]
    NotFound(RequestId),
    /// Client-supplied text (purpose, comment, document name) is too long or has control or
    /// bidirectional characters.
    #[error("`{field}` {problem}")]
    BadText {
        /// Which text.
        field: String,
        /// What is wrong and what to do.
        problem: String,
    },
    /// Too many requests wait already.
    #[error("{who} already has {open} pending requests (at most {limit}); wait for decisions or let them expire before asking again")]
    TooManyPending {
        /// The client or seal whose limit is reached.
        who: String,
        /// Pending now.
        open: u64,
        /// The limit.
        limit: u64,
    },
    /// The request names no documents, too many, or a bad one.
    #[error("invalid documents: {0}")]
    BadDocuments(String),
    /// A digest that the request did not approve, or an incomplete batch.
    #[error("request {id}: {problem}")]
    DigestMismatch {
        /// The request.
        id: RequestId,
        /// What is wrong.
        problem: String,
    },
}

/// What a client app asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStampRequest {
    /// The seal.
    pub seal_id: SealId,
    /// One document, or a batch under one approval.
    pub documents: Vec<StampDocument>,
    /// Why.
    pub purpose: String,
    /// The browser Origin or app name the API saw.
    pub origin: Option<String>,
}

/// An approver's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Approve.
    Approve,
    /// Reject (one rejection rejects the request).
    Reject,
}

/// What the signing worker needs, checked just before it signs.
#[derive(Debug, Clone)]
pub struct SigningTicket {
    /// The approved request.
    pub request: StampRequest,
    /// The seal (active and inside its validity when checked).
    pub seal: Seal,
    /// When the PIN is needed.
    pub pin_mode: PinMode,
    /// The seal policy's timestamp setting (`None`: the daemon's `[tsa] policy`).
    pub timestamp: Option<crate::tsa::TsaPolicy>,
    /// The requesting client's name.
    pub client: String,
    /// Names of those who approved.
    pub approvers: Vec<String>,
}

/// One signed document reported back by the signing worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDocument {
    /// The document digest that was signed.
    pub digest: Digest32,
    /// The SES_Signature produced (DER); kept with the request, its SM3 in the usage log.
    pub ses_signature: Vec<u8>,
}

/// The approval service.
#[derive(Debug, Clone)]
pub struct Approvals {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    limits: RequestLimits,
    /// This process's name in claims on approved requests (see [`Approvals::claim`]).
    claimant: Arc<str>,
}

/// Refuses to record the outcome of request `id` when another claimant holds it.
fn require_claim(tx: &mut dyn Tx, id: RequestId, claimant: &str) -> Result<(), ApprovalError> {
    match tx.request_claim(id)? {
        Some((holder, _)) if holder != claimant => {
            Err(ApprovalError::ClaimedElsewhere { id, holder })
        }
        _ => Ok(()),
    }
}

/// A claimant name unique to this process: `<host>/<pid>-<random>`.
pub fn default_claimant() -> String {
    claimant_for("seald")
}

/// A claimant name for node `node`, unique to this process.
pub fn claimant_for(node: &str) -> String {
    let mut random = [0u8; 4];
    let _ = getrandom::fill(&mut random);
    format!("{node}/{}-{}", std::process::id(), hex::encode(random))
}

fn user(by: &Caller) -> Result<&crate::identity::Identity, ApprovalError> {
    by.identity().ok_or(ApprovalError::NeedsIdentity)
}

fn require_daemon(by: &Caller) -> Result<(), ApprovalError> {
    match by {
        Caller::User(i) => Err(ApprovalError::DaemonOnly(i.name.clone())),
        _ => Ok(()),
    }
}

fn load_request(tx: &mut dyn Tx, id: RequestId) -> Result<StampRequest, ApprovalError> {
    tx.request(id)?.ok_or(ApprovalError::NotFound(id))
}

fn load_policy(tx: &mut dyn Tx, seal_id: SealId) -> Result<Policy, ApprovalError> {
    tx.policy(seal_id)?.ok_or(ApprovalError::NoPolicy(seal_id))
}

fn load_seal(tx: &mut dyn Tx, seal_id: SealId) -> Result<Seal, ApprovalError> {
    Ok(tx.seal(seal_id)?.ok_or(SealError::NotFound(seal_id))?)
}

/// Moves a request to `to` inside `tx`, with a usage record.
fn transition(
    tx: &mut dyn Tx,
    request: &mut StampRequest,
    to: RequestState,
    actor: &str,
    failure: Option<&str>,
    now_ms: i64,
) -> Result<(), ApprovalError> {
    rules::check_transition(request.id, request.state, to)?;
    let now = now_ms.div_euclid(1000);
    tx.set_request_state(request.id, to, now, failure)?;
    if matches!(to, RequestState::Expired | RequestState::Failed) {
        let rec = NewRecord::new(
            AuditKind::RequestState,
            actor,
            Some(request.seal_id),
            json!({ "request_id": request.id, "from": request.state, "to": to, "failure": failure }),
        );
        chain::append(tx, &rec, now_ms)?;
    }
    request.state = to;
    request.updated_at = now;
    if failure.is_some() {
        request.failure = failure.map(str::to_owned);
    }
    Ok(())
}

/// Outcome of a write that may have to record an expiry before refusing.
enum Step<T> {
    Done(T),
    ExpiredNow(RequestId),
}

fn finish<T>(step: Result<Step<T>, ApprovalError>) -> Result<T, ApprovalError> {
    match step? {
        Step::Done(v) => Ok(v),
        Step::ExpiredNow(id) => Err(ApprovalError::Expired(id)),
    }
}

/// Whether `request` is open and past its time.
fn is_due(request: &StampRequest, now_ms: i64) -> bool {
    let open = matches!(
        request.state,
        RequestState::Pending | RequestState::Approved
    );
    open && now_ms.div_euclid(1000) >= request.expires_at
}

/// Expires `request` if it is open and past its time; returns whether it did.
fn expire_if_due(
    tx: &mut dyn Tx,
    request: &mut StampRequest,
    now_ms: i64,
) -> Result<bool, ApprovalError> {
    if is_due(request, now_ms) {
        transition(tx, request, RequestState::Expired, "seald", None, now_ms)?;
        return Ok(true);
    }
    Ok(false)
}

/// The signing ticket for an approved, in-time `request`: its seal usable, no PIN change
/// owed by a new custodian, inside office hours.
fn signing_ticket(
    tx: &mut dyn Tx,
    request: StampRequest,
    now: time::OffsetDateTime,
) -> Result<SigningTicket, ApprovalError> {
    rules::check_transition(request.id, request.state, RequestState::Signed)?;
    let seal = seal_that_may_sign(tx, request.seal_id, now.unix_timestamp())?;
    let policy = load_policy(tx, seal.id)?;
    if let Some(hours) = &policy.office_hours {
        rules::check_office_hours(hours, now)?;
    }
    check_quota(tx, &policy, now, request.documents.len())?;
    let (client, approvers) = who_asked_and_approved(tx, &request)?;
    Ok(SigningTicket {
        request,
        seal,
        pin_mode: policy.pin_mode,
        timestamp: policy.timestamp,
        client,
        approvers,
    })
}

/// Refuses `adding` more documents when the seal's daily quota, counted by documents stamped
/// (signed) since the start of the local day, would be exceeded. Pending requests do not
/// count: junk requests cannot use up a seal's quota. Checked when a request is made, before
/// signing, and in the transaction that keeps the signatures.
fn check_quota(
    tx: &mut dyn Tx,
    policy: &Policy,
    now: time::OffsetDateTime,
    adding: usize,
) -> Result<(), ApprovalError> {
    let Some(quota) = policy.daily_quota else {
        return Ok(());
    };
    let since = rules::start_of_local_day(now, policy.quota_utc_offset_minutes)?;
    let used = tx.documents_signed_since(policy.seal_id, since)?;
    if used + adding as u64 > u64::from(quota) {
        return Err(ApprovalError::QuotaExceeded {
            seal_id: policy.seal_id,
            quota,
            used,
            requested: adding,
        });
    }
    Ok(())
}

/// Sets `policy` after checking, in `tx`, that its seal exists and that every identity it
/// names has the role it needs; logged as a `policy` record.
fn put_policy_in(
    tx: &mut dyn Tx,
    actor: String,
    policy: Policy,
    now_ms: i64,
) -> Result<Policy, ApprovalError> {
    load_seal(tx, policy.seal_id)?;
    for (ids, role) in [
        (&policy.allowed_clients, Role::Client),
        (&policy.approvers, Role::Approver),
    ] {
        for &id in ids {
            match tx.identity(id)? {
                Some(i) if i.has_role(role) => {}
                Some(i) => {
                    return Err(ApprovalError::BadPolicy(format!(
                        "{} does not have the {role} role",
                        i.name
                    )))
                }
                None => return Err(ApprovalError::BadPolicy(format!("no identity #{id}"))),
            }
        }
    }
    tx.put_policy(&policy, now_ms.div_euclid(1000))?;
    let rec = NewRecord::new(
        AuditKind::Policy,
        actor,
        Some(policy.seal_id),
        serde_json::to_value(&policy).unwrap_or_default(),
    );
    chain::append(tx, &rec, now_ms)?;
    Ok(policy)
}

/// The seal `seal_id` if it may sign at `now`: usable (active, inside its validity) and no
/// PIN change owed by a new custodian or after the security officer re-set the token's PIN. Checked before signing and again, in the same
/// transaction, when the signatures are recorded.
fn seal_that_may_sign(
    tx: &mut dyn Tx,
    seal_id: SealId,
    now: Timestamp,
) -> Result<Seal, ApprovalError> {
    let seal = load_seal(tx, seal_id)?;
    check_usable(&seal, now)?;
    if let Some(custody) = tx.custody(seal.id)?.filter(|c| c.pin_change_required) {
        return Err(ApprovalError::PinChangeRequired {
            seal_id: seal.id,
            custodian: custody.custodian,
        });
    }
    if tx.device_pin_change(&seal.device_serial)?.is_some() {
        return Err(ApprovalError::PinResetBySecurityOfficer {
            seal_id: seal.id,
            device_serial: seal.device_serial,
        });
    }
    Ok(seal)
}

/// The names of the request's client and of those who approved it.
fn who_asked_and_approved(
    tx: &mut dyn Tx,
    request: &StampRequest,
) -> Result<(String, Vec<String>), ApprovalError> {
    let client = identity_name(tx, request.requester)?;
    let mut approvers = Vec::new();
    for v in request.votes.iter().filter(|v| v.approve) {
        approvers.push(identity_name(tx, v.approver)?);
    }
    Ok((client, approvers))
}

fn check_documents(docs: &[StampDocument], max: usize) -> Result<(), ApprovalError> {
    if docs.is_empty() {
        return Err(ApprovalError::BadDocuments(
            "no document digest given".into(),
        ));
    }
    if docs.len() > max {
        return Err(ApprovalError::BadDocuments(format!(
            "{} documents; at most {max} per request",
            docs.len()
        )));
    }
    let mut seen = BTreeSet::new();
    for d in docs {
        if d.name.trim().is_empty() {
            return Err(ApprovalError::BadDocuments(format!(
                "document {} needs a name",
                d.digest
            )));
        }
        limits::check_text("document name", &d.name, limits::MAX_NAME_CHARS)?;
        if !seen.insert(d.digest) {
            return Err(ApprovalError::BadDocuments(format!(
                "digest {} appears twice",
                d.digest
            )));
        }
    }
    Ok(())
}

fn identity_name(tx: &mut dyn Tx, id: IdentityId) -> Result<String, ApprovalError> {
    Ok(tx
        .identity(id)?
        .map(|i| i.name)
        .unwrap_or_else(|| format!("#{id}")))
}

impl Approvals {
    /// The approval engine over `store`.
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            limits: RequestLimits::default(),
            claimant: Arc::from(default_claimant()),
        }
    }

    /// The same service claiming approved requests as `claimant` (unique per process: a node
    /// name with the process's own suffix).
    pub fn with_claimant(mut self, claimant: &str) -> Self {
        self.claimant = Arc::from(claimant);
        self
    }

    /// This process's name in claims.
    pub fn claimant(&self) -> &str {
        &self.claimant
    }

    /// Claims approved request `id` for this process for `lease` (the signing worker does,
    /// before it signs); false when another process holds it or it is no longer approved.
    pub fn claim(&self, id: RequestId, lease: std::time::Duration) -> Result<bool, ApprovalError> {
        let claimant = self.claimant.clone();
        let now_ms = unix_ms(self.clock.now());
        let until_ms = now_ms + lease.as_millis() as i64;
        Ok(self
            .store
            .write(move |tx| tx.claim_request(id, &claimant, now_ms, until_ms))?)
    }

    /// Extends this process's claim on `id` by `lease` from now; false if it lost it.
    pub fn renew_claim(
        &self,
        id: RequestId,
        lease: std::time::Duration,
    ) -> Result<bool, ApprovalError> {
        let claimant = self.claimant.clone();
        let until_ms = unix_ms(self.clock.now()) + lease.as_millis() as i64;
        Ok(self
            .store
            .write(move |tx| tx.renew_claim(id, &claimant, until_ms))?)
    }

    /// Approved requests of the seals `seals` nobody holds now (never claimed, or the claim
    /// ran out), oldest first, at most `limit` per seal.
    pub fn claimable(
        &self,
        seals: &[SealId],
        limit: usize,
    ) -> Result<Vec<RequestId>, ApprovalError> {
        let now_ms = unix_ms(self.clock.now());
        Ok(self.store.read(|tx| {
            let mut ids = Vec::new();
            for &seal in seals {
                ids.extend(tx.claimable_requests(seal, now_ms, limit)?);
            }
            Ok::<_, StoreError>(ids)
        })?)
    }

    /// Forgets every claim: at the start of a daemon on a store no other node uses.
    pub fn release_claims(&self) -> Result<u64, ApprovalError> {
        Ok(self.store.write(|tx| tx.release_claims())?)
    }

    /// The same service with the `[limits]` of the config.
    pub fn with_limits(mut self, limits: RequestLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The `[limits]` in force.
    pub fn limits(&self) -> RequestLimits {
        self.limits
    }

    /// Sets a seal's policy (admins). Clients and approvers must exist with those roles.
    pub fn set_policy(&self, by: &Caller, policy: Policy) -> Result<Policy, ApprovalError> {
        by.require(Role::Admin)?;
        rules::check_policy_shape(&policy)?;
        let actor = by.name();
        let now_ms = unix_ms(self.clock.now());
        self.store
            .write(move |tx| put_policy_in(tx, actor, policy, now_ms))
    }

    /// Enrols a seal (see [`Registry::enrol`]) with its policy, in one transaction: if the
    /// policy cannot be set (an identity lost its role meanwhile, the store failed), no seal
    /// is enrolled either. The policy's `seal_id` is ignored.
    pub fn enrol(
        &self,
        registry: &Registry,
        by: &Caller,
        new: NewSeal,
        maker: &SealMaker<'_>,
        policy: Policy,
    ) -> Result<(Seal, Policy), ApprovalError> {
        by.require(Role::Admin)?;
        rules::check_policy_shape(&policy)?;
        let actor = by.name();
        let clock = self.clock.clone();
        registry.enrol_then(by, new, maker, move |tx, seal| {
            let policy = Policy {
                seal_id: seal.id,
                ..policy
            };
            put_policy_in(tx, actor, policy, unix_ms(clock.now()))
        })
    }

    /// A seal's policy.
    pub fn policy(&self, seal_id: SealId) -> Result<Option<Policy>, ApprovalError> {
        Ok(self.store.read(|tx| tx.policy(seal_id))?)
    }

    /// A client app asks to stamp one document or a batch.
    pub fn create_request(
        &self,
        by: &Caller,
        new: NewStampRequest,
    ) -> Result<StampRequest, ApprovalError> {
        self.create_request_with_files(by, new, Vec::new())
    }

    /// A client app asks to stamp uploaded OFD documents: `files` (one per document, in
    /// order, each with the SM3 of its upload as the document's digest, its placements already
    /// resolved) are kept with the request, in the transaction that records it.
    pub fn create_request_with_files(
        &self,
        by: &Caller,
        new: NewStampRequest,
        files: Vec<StampFileRow>,
    ) -> Result<StampRequest, ApprovalError> {
        by.require(Role::Client)?;
        let client = user(by)?.clone();
        check_documents(&new.documents, self.limits.max_documents)?;
        if !files.is_empty() {
            let matches = files.len() == new.documents.len()
                && files
                    .iter()
                    .zip(&new.documents)
                    .enumerate()
                    .all(|(i, (f, d))| {
                        f.file.n as usize == i + 1
                            && f.file.sm3 == d.digest
                            && f.file.name == d.name
                    });
            if !matches {
                return Err(ApprovalError::BadDocuments(
                    "the uploaded files do not match the request's documents".into(),
                ));
            }
        }
        limits::check_text("purpose", &new.purpose, limits::MAX_PURPOSE_CHARS)?;
        let now = self.clock.now();
        let caps = self.limits;
        self.store.write(move |tx| {
            let now_s = now.unix_timestamp();
            let seal = load_seal(tx, new.seal_id)?;
            check_usable(&seal, now_s)?;
            let policy = load_policy(tx, seal.id)?;
            if !policy.allowed_clients.contains(&client.id) {
                return Err(ApprovalError::ClientNotAllowed {
                    client: client.name,
                    seal_id: seal.id,
                });
            }
            if let Some(hours) = &policy.office_hours {
                rules::check_office_hours(hours, now)?;
            }
            check_quota(tx, &policy, now, new.documents.len())?;
            let (mine, of_seal) = tx.pending_counts(seal.id, client.id, now_s)?;
            if mine >= caps.max_pending_per_client {
                return Err(ApprovalError::TooManyPending {
                    who: format!("client {}", client.name),
                    open: mine,
                    limit: caps.max_pending_per_client,
                });
            }
            if of_seal >= caps.max_pending_per_seal {
                return Err(ApprovalError::TooManyPending {
                    who: format!("seal {}", seal.id),
                    open: of_seal,
                    limit: caps.max_pending_per_seal,
                });
            }
            let mut request = StampRequest {
                id: 0,
                seal_id: seal.id,
                requester: client.id,
                documents: new.documents,
                purpose: new.purpose,
                origin: new.origin,
                state: RequestState::Pending,
                created_at: now_s,
                expires_at: now_s.saturating_add(policy.request_ttl_secs),
                updated_at: now_s,
                failure: None,
                votes: Vec::new(),
                files: files.iter().map(|f| f.file.clone()).collect(),
            };
            request.id = tx.insert_request(&request)?;
            tx.insert_files(request.id, &files)?;
            let mut detail = json!({
                "request_id": request.id,
                "documents": request.documents,
                "purpose": request.purpose,
                "origin": request.origin,
                "cert_serial": seal.cert.serial_hex,
            });
            if !request.files.is_empty() {
                // What approvers are shown: size, pages, mode and every stamp's page and box.
                detail["files"] = json!(request
                    .files
                    .iter()
                    .map(|f| json!({
                        "n": f.n,
                        "size": f.size,
                        "sm3": f.sm3,
                        "pages": f.plan.pages,
                        "mode": f.mode,
                        "stamps": f.plan.stamps,
                    }))
                    .collect::<Vec<_>>());
            }
            let rec = NewRecord::new(AuditKind::StampRequest, &client.name, Some(seal.id), detail);
            chain::append(tx, &rec, unix_ms(now))?;
            Ok(request)
        })
    }

    /// An approver approves or rejects. N approvals approve; one rejection rejects.
    pub fn decide(
        &self,
        by: &Caller,
        id: RequestId,
        decision: Decision,
        comment: &str,
    ) -> Result<StampRequest, ApprovalError> {
        by.require(Role::Approver)?;
        let approver = user(by)?.clone();
        limits::check_text("comment", comment, limits::MAX_COMMENT_CHARS)?;
        let caller = by.clone();
        let comment = comment.to_owned();
        let now_ms = unix_ms(self.clock.now());
        finish(self.store.write(move |tx| {
            let mut request = load_request(tx, id)?;
            // A request the caller may not see is answered as `GET` answers it: not found,
            // before anything about its seal or state is told (or changed).
            let policy = tx.policy(request.seal_id)?;
            if !visible(&caller, &request, policy.as_ref()) {
                return Err(ApprovalError::NotFound(id));
            }
            let policy = policy.ok_or(ApprovalError::NoPolicy(request.seal_id))?;
            if expire_if_due(tx, &mut request, now_ms)? {
                return Ok(Step::ExpiredNow(id));
            }
            let target = match decision {
                Decision::Approve => RequestState::Approved,
                Decision::Reject => RequestState::Rejected,
            };
            rules::check_transition(id, request.state, target)?;
            if !policy.approvers.contains(&approver.id) {
                return Err(ApprovalError::NotAnApprover {
                    who: approver.name,
                    seal_id: request.seal_id,
                });
            }
            if request.requester == approver.id {
                return Err(ApprovalError::SelfApproval {
                    who: approver.name,
                    id,
                });
            }
            if request.votes.iter().any(|v| v.approver == approver.id) {
                return Err(ApprovalError::AlreadyVoted {
                    who: approver.name,
                    id,
                });
            }
            let vote = Vote {
                approver: approver.id,
                approve: decision == Decision::Approve,
                comment,
                at: now_ms.div_euclid(1000),
            };
            tx.insert_vote(id, &vote)?;
            request.votes.push(vote.clone());
            let approvals = request.votes.iter().filter(|v| v.approve).count();
            let reached = match decision {
                Decision::Reject => Some(RequestState::Rejected),
                Decision::Approve if approvals >= policy.required_approvals as usize => {
                    Some(RequestState::Approved)
                }
                Decision::Approve => None,
            };
            if let Some(to) = reached {
                transition(tx, &mut request, to, &approver.name, None, now_ms)?;
            }
            let rec = NewRecord::new(
                AuditKind::Decision,
                &approver.name,
                Some(request.seal_id),
                json!({
                    "request_id": id,
                    "decision": decision,
                    "comment": vote.comment,
                    "approvals": approvals,
                    "required": policy.required_approvals,
                    "state": request.state,
                }),
            );
            chain::append(tx, &rec, now_ms)?;
            Ok(Step::Done(request))
        }))
    }

    /// Checks an approved request just before signing: not expired, seal usable, office hours.
    /// Expires the request if its time has passed.
    ///
    /// The check runs on a read snapshot, so it does not queue behind other writes; only a
    /// request past its time takes the writer, to expire it. What changes after the check (a
    /// revocation, a custody transfer, the seal's end) is checked again by `mark_signed`, in
    /// the transaction that would keep the signatures, and it then refuses them.
    pub fn begin_signing(
        &self,
        by: &Caller,
        id: RequestId,
    ) -> Result<SigningTicket, ApprovalError> {
        require_daemon(by)?;
        let now = self.clock.now();
        let now_ms = unix_ms(now);
        let in_time = self.store.read(|tx| {
            let request = load_request(tx, id)?;
            if is_due(&request, now_ms) {
                return Ok(None);
            }
            signing_ticket(tx, request, now).map(Some)
        })?;
        if let Some(ticket) = in_time {
            return Ok(ticket);
        }
        finish(self.store.write(move |tx| {
            let mut request = load_request(tx, id)?;
            if expire_if_due(tx, &mut request, now_ms)? {
                return Ok(Step::ExpiredNow(id));
            }
            signing_ticket(tx, request, now).map(Step::Done)
        }))
    }

    /// Records the signatures of an approved request (every document of the batch) and marks
    /// it signed, in one transaction, if its seal may still sign: each signature becomes a usage record, the SES_Signatures
    /// are kept with the request, and all of it is durable (one fsync) before this returns.
    pub fn mark_signed(
        &self,
        by: &Caller,
        id: RequestId,
        signed: Vec<SignedDocument>,
    ) -> Result<StampRequest, ApprovalError> {
        self.mark_signed_with_files(by, id, signed, Vec::new())
    }

    /// [`Approvals::mark_signed`] for a request made by upload: `sealed` names, for every one
    /// of its files, `(n, path)` of the sealed file (already durable on disk), recorded in the
    /// same transaction. A request with files is refused unless every file is named.
    pub fn mark_signed_with_files(
        &self,
        by: &Caller,
        id: RequestId,
        signed: Vec<SignedDocument>,
        sealed: Vec<(u32, String)>,
    ) -> Result<StampRequest, ApprovalError> {
        self.mark_signed_with_records(by, id, signed, sealed, Vec::new())
    }

    /// [`Approvals::mark_signed_with_files`] that also appends `extra` usage records (e.g. the
    /// `timestamp` records of the signatures) in the same transaction: all kept, or none.
    pub fn mark_signed_with_records(
        &self,
        by: &Caller,
        id: RequestId,
        signed: Vec<SignedDocument>,
        sealed: Vec<(u32, String)>,
        extra: Vec<NewRecord>,
    ) -> Result<StampRequest, ApprovalError> {
        require_daemon(by)?;
        let actor = by.name();
        let now = self.clock.now();
        let now_ms = unix_ms(now);
        let claimant = self.claimant.clone();
        self.store.write(move |tx| {
            let mut request = load_request(tx, id)?;
            rules::check_transition(id, request.state, RequestState::Signed)?;
            // Another node took the request over when this one's claim ran out.
            require_claim(tx, id, &claimant)?;
            // The seal may have been revoked, suspended or handed over (even directly in the
            // store) or have ended while the device signed: then nothing is kept.
            let seal = seal_that_may_sign(tx, request.seal_id, now.unix_timestamp())?;
            // Another request of the seal may have been signed since this one began.
            let policy = load_policy(tx, seal.id)?;
            check_quota(tx, &policy, now, request.documents.len())?;
            let wanted: BTreeSet<Digest32> = request.documents.iter().map(|d| d.digest).collect();
            let mut seen = BTreeSet::new();
            for s in &signed {
                if !wanted.contains(&s.digest) {
                    return Err(ApprovalError::DigestMismatch {
                        id,
                        problem: format!("digest {} was not approved", s.digest),
                    });
                }
                if !seen.insert(s.digest) {
                    return Err(ApprovalError::DigestMismatch {
                        id,
                        problem: format!("digest {} reported twice", s.digest),
                    });
                }
            }
            if seen.len() != wanted.len() {
                return Err(ApprovalError::DigestMismatch {
                    id,
                    problem: format!(
                        "{} of {} documents reported signed; report every document or mark the request failed",
                        seen.len(),
                        wanted.len()
                    ),
                });
            }
            let (client, approvers) = who_asked_and_approved(tx, &request)?;
            let mut by_digest: HashMap<Digest32, Vec<u8>> = signed
                .into_iter()
                .map(|s| (s.digest, s.ses_signature))
                .collect();
            let mut kept = Vec::with_capacity(request.documents.len());
            for doc in &request.documents {
                let ses_signature = by_digest.remove(&doc.digest).unwrap_or_default();
                let facts = SignatureFacts {
                    seal_id: seal.id,
                    cert_serial: seal.cert.serial_hex.clone(),
                    document_digest: doc.digest,
                    document_name: doc.name.clone(),
                    request_id: id,
                    client: client.clone(),
                    origin: request.origin.clone(),
                    approvers: approvers.clone(),
                    signature_digest: Some(Digest32(crate::crypto::sm3(&ses_signature))),
                };
                chain::append(tx, &NewRecord::signature(&actor, &facts), now_ms)?;
                kept.push(StoredSignature {
                    digest: doc.digest,
                    name: doc.name.clone(),
                    ses_signature,
                });
            }
            tx.insert_signatures(id, &kept)?;
            for record in &extra {
                chain::append(tx, record, now_ms)?;
            }
            let wanted_files: BTreeSet<u32> = request.files.iter().map(|f| f.n).collect();
            let named: BTreeSet<u32> = sealed.iter().map(|(n, _)| *n).collect();
            if wanted_files != named || named.len() != sealed.len() {
                return Err(ApprovalError::DigestMismatch {
                    id,
                    problem: format!(
                        "{} of {} documents reported sealed; every uploaded document must be sealed",
                        named.intersection(&wanted_files).count(),
                        wanted_files.len()
                    ),
                });
            }
            for (n, path) in &sealed {
                tx.set_file_sealed(id, *n, path)?;
            }
            for f in &mut request.files {
                f.sealed = true;
            }
            transition(tx, &mut request, RequestState::Signed, &actor, None, now_ms)?;
            Ok(request)
        })
    }

    /// The SES_Signatures kept for request `id`, in document order (empty unless signed).
    pub fn signatures(&self, id: RequestId) -> Result<Vec<StoredSignature>, ApprovalError> {
        Ok(self.store.read(|tx| tx.signatures(id))?)
    }

    /// Marks an approved request failed (device removed, PIN refused, signature invalid).
    pub fn mark_failed(
        &self,
        by: &Caller,
        id: RequestId,
        reason: &str,
    ) -> Result<StampRequest, ApprovalError> {
        require_daemon(by)?;
        let actor = by.name();
        let reason = reason.to_owned();
        let now_ms = unix_ms(self.clock.now());
        let claimant = self.claimant.clone();
        self.store.write(move |tx| {
            let mut request = load_request(tx, id)?;
            require_claim(tx, id, &claimant)?;
            transition(
                tx,
                &mut request,
                RequestState::Failed,
                &actor,
                Some(&reason),
                now_ms,
            )?;
            Ok(request)
        })
    }

    /// Fails every open (pending or approved, not yet signed) request of `seal_id` with
    /// `reason`, after the seal stopped being usable; returns them as failed.
    pub fn fail_open_for_seal(
        &self,
        by: &Caller,
        seal_id: SealId,
        reason: &str,
    ) -> Result<Vec<StampRequest>, ApprovalError> {
        require_daemon(by)?;
        let actor = by.name();
        let reason = reason.to_owned();
        let now_ms = unix_ms(self.clock.now());
        self.store.write(move |tx| {
            let mut failed = Vec::new();
            for state in [RequestState::Pending, RequestState::Approved] {
                for mut r in tx.requests_in_state(state)? {
                    if r.seal_id == seal_id {
                        transition(
                            tx,
                            &mut r,
                            RequestState::Failed,
                            &actor,
                            Some(&reason),
                            now_ms,
                        )?;
                        failed.push(r);
                    }
                }
            }
            Ok(failed)
        })
    }

    /// Marks every open request past its time expired; returns their ids.
    pub fn expire_stale(&self) -> Result<Vec<RequestId>, ApprovalError> {
        let now_ms = unix_ms(self.clock.now());
        // A snapshot read finds what is due; the writer is asked only when something is.
        let due = self
            .store
            .read(|tx| tx.requests_due(now_ms.div_euclid(1000)))?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        self.store.write(move |tx| {
            let mut expired = Vec::new();
            for id in due {
                let mut r = load_request(tx, id)?;
                if expire_if_due(tx, &mut r, now_ms)? {
                    expired.push(r.id);
                }
            }
            Ok(expired)
        })
    }

    /// A request, if the caller may see it: admins and auditors see all, clients their own,
    /// approvers those of their seals.
    pub fn get(&self, by: &Caller, id: RequestId) -> Result<StampRequest, ApprovalError> {
        let found = self.store.read(|tx| -> Result<_, ApprovalError> {
            let Some(r) = tx.request(id)? else {
                return Ok(None);
            };
            let policy = tx.policy(r.seal_id)?;
            Ok(visible(by, &r, policy.as_ref()).then_some(r))
        })?;
        found.ok_or(ApprovalError::NotFound(id))
    }

    /// The seals whose policy names identity `approver` among their approvers.
    pub fn seals_approved_by(
        &self,
        approver: IdentityId,
    ) -> Result<BTreeSet<SealId>, ApprovalError> {
        Ok(self.store.read(|tx| -> Result<_, StoreError> {
            let mut seals = BTreeSet::new();
            for seal in tx.seals()? {
                if tx
                    .policy(seal.id)?
                    .is_some_and(|p| p.approvers.contains(&approver))
                {
                    seals.insert(seal.id);
                }
            }
            Ok(seals)
        })?)
    }

    /// Pending requests the caller may see; for an approver, those still waiting for their vote.
    pub fn list_pending(&self, by: &Caller) -> Result<Vec<StampRequest>, ApprovalError> {
        let now = self.clock.timestamp();
        self.store.read(|tx| {
            let mut policies: HashMap<SealId, Option<Policy>> = HashMap::new();
            let mut out = Vec::new();
            for r in tx.requests_in_state(RequestState::Pending)? {
                if r.expires_at <= now {
                    continue;
                }
                let policy = match policies.entry(r.seal_id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => e.insert(tx.policy(r.seal_id)?),
                };
                let policy = policy.as_ref();
                if visible(by, &r, policy) && !already_handled_by(by, &r) {
                    out.push(r);
                }
            }
            Ok(out)
        })
    }
}

/// Whether `by` may see request `r`.
fn visible(by: &Caller, r: &StampRequest, policy: Option<&Policy>) -> bool {
    let Some(me) = by.identity() else {
        return true; // local operator, daemon
    };
    me.has_role(Role::Admin)
        || me.has_role(Role::Auditor)
        || (me.has_role(Role::Client) && r.requester == me.id)
        || (me.has_role(Role::Approver) && policy.is_some_and(|p| p.approvers.contains(&me.id)))
}

/// For a pure approver: they made it, or already voted on it.
fn already_handled_by(by: &Caller, r: &StampRequest) -> bool {
    let Some(me) = by.identity() else {
        return false;
    };
    if me.has_role(Role::Admin) || me.has_role(Role::Auditor) || me.has_role(Role::Client) {
        return false;
    }
    r.requester == me.id || r.votes.iter().any(|v| v.approver == me.id)
}

/// Whether a stamp at `now` needs the PIN under `policy`, given the token's last login.
pub fn pin_needed(policy: &Policy, last_login: Option<Timestamp>, now: Timestamp) -> bool {
    rules::pin_needed(&policy.pin_mode, last_login, now)
}

#[cfg(test)]
mod tests;
