//! The storage interface the rules are written against. A backend (SQLite today, PostgreSQL
//! later) implements [`Tx`]; `seal`, `identity`, `approval` and `audit` never see SQL.

use crate::clock::Timestamp;

use super::model::*;
use super::StoreError;

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// One unit of work: everything done through one `Tx` commits or rolls back together.
pub trait Tx {
    // identities
    /// Adds an identity; `token_hash` is the keyed hash of its bearer token.
    fn insert_identity(
        &mut self,
        name: &str,
        roles: &[Role],
        token_hash: &[u8],
        at: Timestamp,
    ) -> StoreResult<IdentityId>;
    /// The identity with this id.
    fn identity(&mut self, id: IdentityId) -> StoreResult<Option<Identity>>;
    /// The identity with this name.
    fn identity_by_name(&mut self, name: &str) -> StoreResult<Option<Identity>>;
    /// The identity whose token hashes to `hash`, with the stored hash.
    fn identity_by_token_hash(&mut self, hash: &[u8]) -> StoreResult<Option<(Identity, Vec<u8>)>>;
    /// All identities, by name.
    fn identities(&mut self) -> StoreResult<Vec<Identity>>;
    /// Enables or disables an identity.
    fn set_identity_disabled(&mut self, id: IdentityId, disabled: bool) -> StoreResult<()>;
    /// Replaces an identity's token hash.
    fn set_token_hash(&mut self, id: IdentityId, hash: &[u8]) -> StoreResult<()>;

    // seals
    /// Adds a seal (its `id` is ignored) and returns the new id.
    fn insert_seal(&mut self, seal: &Seal) -> StoreResult<SealId>;
    /// The seal with this id.
    fn seal(&mut self, id: SealId) -> StoreResult<Option<Seal>>;
    /// All seals, by id.
    fn seals(&mut self) -> StoreResult<Vec<Seal>>;
    /// The active legal-name seals with their organisations (as enrolled), by id.
    fn active_legal_name_seals(&mut self) -> StoreResult<Vec<(SealId, String)>>;
    /// Sets a seal's state.
    fn set_seal_state(&mut self, id: SealId, state: SealState, at: Timestamp) -> StoreResult<()>;
    /// Stores the seal's SES_Seal.
    fn set_ses_seal(&mut self, id: SealId, der: &[u8]) -> StoreResult<()>;
    /// Records a state change.
    fn insert_seal_event(&mut self, event: &SealEvent) -> StoreResult<()>;
    /// A seal's state changes, oldest first.
    fn seal_events(&mut self, id: SealId) -> StoreResult<Vec<SealEvent>>;

    // policies
    /// Creates or replaces a seal's policy.
    fn put_policy(&mut self, policy: &Policy, at: Timestamp) -> StoreResult<()>;
    /// A seal's policy.
    fn policy(&mut self, seal_id: SealId) -> StoreResult<Option<Policy>>;

    // stamp requests
    /// Adds a request (its `id` and votes are ignored) and returns the new id.
    fn insert_request(&mut self, request: &StampRequest) -> StoreResult<RequestId>;
    /// A request with its votes.
    fn request(&mut self, id: RequestId) -> StoreResult<Option<StampRequest>>;
    /// Requests in a state, oldest first.
    fn requests_in_state(&mut self, state: RequestState) -> StoreResult<Vec<StampRequest>>;
    /// Ids of open (pending or approved) requests whose time ran out at `now` (Unix seconds).
    fn requests_due(&mut self, now: Timestamp) -> StoreResult<Vec<RequestId>>;
    /// Sets a request's state (and failure text).
    fn set_request_state(
        &mut self,
        id: RequestId,
        state: RequestState,
        at: Timestamp,
        failure: Option<&str>,
    ) -> StoreResult<()>;
    /// Claims approved request `id` for signing by `owner` until `until_ms`, if nobody holds it
    /// (never claimed, or its holder's lease ran out before `now_ms`); says whether it did.
    fn claim_request(
        &mut self,
        id: RequestId,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> StoreResult<bool>;
    /// Extends `owner`'s claim on `id` to `until_ms`; false if `owner` no longer holds it.
    fn renew_claim(&mut self, id: RequestId, owner: &str, until_ms: i64) -> StoreResult<bool>;
    /// Who holds the claim on request `id`, and until when (Unix ms), if anyone ever claimed it.
    fn request_claim(&mut self, id: RequestId) -> StoreResult<Option<(String, i64)>>;
    /// Approved requests of seal `seal_id` nobody holds at `now_ms` (never claimed, or the
    /// lease ran out), oldest first, at most `limit`.
    fn claimable_requests(
        &mut self,
        seal_id: SealId,
        now_ms: i64,
        limit: usize,
    ) -> StoreResult<Vec<RequestId>>;
    /// Forgets every claim (a single-node store at start: no other node can hold one).
    fn release_claims(&mut self) -> StoreResult<u64>;
    /// Adds a vote; a second vote by the same approver is a constraint error.
    fn insert_vote(&mut self, request: RequestId, vote: &Vote) -> StoreResult<()>;
    /// Documents of the seal's requests signed at or after `since` (what counts against a
    /// daily quota: stamps made, not requests asked).
    fn documents_signed_since(&mut self, seal_id: SealId, since: Timestamp) -> StoreResult<u64>;
    /// How many stamp requests are in each state (states with none left out), for metrics.
    fn request_counts(&mut self) -> StoreResult<Vec<(String, u64)>>;
    /// Pending requests not yet past their time, as `(of requester, of seal)`.
    fn pending_counts(
        &mut self,
        seal_id: SealId,
        requester: IdentityId,
        now: Timestamp,
    ) -> StoreResult<(u64, u64)>;

    /// Keeps the SES_Signatures of a request being marked signed, in document order.
    fn insert_signatures(
        &mut self,
        request: RequestId,
        signatures: &[StoredSignature],
    ) -> StoreResult<()>;
    /// The SES_Signatures of a signed request, in document order (empty if none were kept).
    fn signatures(&mut self, request: RequestId) -> StoreResult<Vec<StoredSignature>>;

    // OFD documents of requests made by upload
    /// Keeps the OFD files of a new request, in document order.
    fn insert_files(&mut self, request: RequestId, files: &[StampFileRow]) -> StoreResult<()>;
    /// The OFD files of a request with where they are kept, in document order.
    fn files(&mut self, request: RequestId) -> StoreResult<Vec<StampFileRow>>;
    /// Records where file `n` (from 1) of a request being marked signed was sealed.
    fn set_file_sealed(&mut self, request: RequestId, n: u32, sealed: &str) -> StoreResult<()>;
    /// Forgets file `n`'s upload (after the file was removed).
    fn clear_file_upload(&mut self, request: RequestId, n: u32) -> StoreResult<()>;
    /// `(request, n, upload)` of the uploads still kept for requests that are final (signed,
    /// rejected, expired, failed): they are no longer needed.
    fn final_uploads(&mut self) -> StoreResult<Vec<(RequestId, u32, String)>>;
    /// Every upload and sealed file the store names (for backups), relative paths.
    fn document_paths(&mut self) -> StoreResult<Vec<String>>;

    // custody
    /// A seal's current custodian, if one was ever assigned.
    fn custody(&mut self, seal_id: SealId) -> StoreResult<Option<Custody>>;
    /// Sets a seal's custodian (replacing the previous one).
    fn put_custody(&mut self, custody: &Custody) -> StoreResult<()>;
    /// Every custody record, each with the serial of the device holding its seal's key.
    fn custody_all(&mut self) -> StoreResult<Vec<(Custody, String)>>;
    /// Clears the PIN-change flag of the seals whose key is on the device with this serial and
    /// whose custodian is `custodian` (only a seal's own custodian lifts its flag); returns how
    /// many were cleared.
    fn clear_custodian_pin_change(
        &mut self,
        device_serial: &str,
        custodian: &str,
    ) -> StoreResult<u64>;
    /// Removes the device's own marker (see [`Tx::require_device_pin_change`]).
    fn clear_device_pin_change(&mut self, device_serial: &str) -> StoreResult<()>;
    /// Marks the device with this serial as needing a PIN change by its custodian (`reason`,
    /// e.g. "unblock"): every seal whose key is on it, with or without a custody record,
    /// refuses to stamp until [`Tx::clear_device_pin_change`].
    fn require_device_pin_change(
        &mut self,
        device_serial: &str,
        reason: &str,
        at: Timestamp,
    ) -> StoreResult<()>;
    /// Why and since when (Unix seconds) the device needs a PIN change, if it does.
    fn device_pin_change(
        &mut self,
        device_serial: &str,
    ) -> StoreResult<Option<(String, Timestamp)>>;

    // usage log
    /// The last record's sequence number and hash.
    fn audit_last(&mut self) -> StoreResult<Option<(i64, Vec<u8>)>>;
    /// Appends a record whose hash the caller computed.
    fn insert_audit(&mut self, row: &AuditRow) -> StoreResult<()>;
    /// Up to `limit` records with `seq > after_seq`, in order.
    fn audit_rows(&mut self, after_seq: i64, limit: usize) -> StoreResult<Vec<AuditRow>>;
    /// Up to `limit` records of `kind` with `seq > after_seq`, in order (through an index).
    fn audit_rows_of_kind(
        &mut self,
        kind: &str,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<AuditRow>>;
    /// When (Unix ms) the newest record of `kind` whose detail has `device_serial` = `serial`
    /// was written, if any (through an index: only records of that kind are read).
    fn audit_last_for_device(&mut self, kind: &str, serial: &str) -> StoreResult<Option<i64>>;
    /// Up to `limit` records with `from_ms <= at_ms < to_ms` and `seq > after_seq`, in order.
    fn audit_rows_between(
        &mut self,
        from_ms: i64,
        to_ms: i64,
        after_seq: i64,
        limit: usize,
    ) -> StoreResult<Vec<AuditRow>>;
    /// The record with this sequence number.
    fn audit_row(&mut self, seq: i64) -> StoreResult<Option<AuditRow>>;
    /// The last record before the first record with `at_ms >= before_ms` (the newest record a
    /// prune at `before_ms` may delete).
    fn audit_last_before(&mut self, before_ms: i64) -> StoreResult<Option<AuditRow>>;
    /// The anchor left by the last prune.
    fn audit_anchor(&mut self) -> StoreResult<Option<AuditAnchor>>;
    /// Sets the anchor.
    fn set_audit_anchor(&mut self, anchor: &AuditAnchor) -> StoreResult<()>;
    /// Deletes records with `seq <= through`; returns how many.
    fn delete_audit_through(&mut self, through: i64) -> StoreResult<u64>;

    // operational log (outside the chain)
    /// Appends an operational record (its `id` is ignored); returns its id.
    fn insert_ops(&mut self, row: &OpsRow) -> StoreResult<i64>;
    /// Up to `limit` operational records with `id > after_id` (of `kind`, if given), in order.
    fn ops_rows(
        &mut self,
        kind: Option<&str>,
        after_id: i64,
        limit: usize,
    ) -> StoreResult<Vec<OpsRow>>;
    /// Deletes operational records with `at_ms < before_ms`; returns how many.
    fn delete_ops_before(&mut self, before_ms: i64) -> StoreResult<u64>;
}
