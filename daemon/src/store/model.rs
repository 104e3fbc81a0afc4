//! The shapes the store keeps. The rules that govern them live in `seal`, `identity`,
//! `approval` and `audit`, which re-export these types.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// Declares a string-backed enum with `as_str`, `FromStr`, `Display` and kebab-case serde.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and displayed name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        // By hand: utoipa's derive does not see serde renames that come from macro arguments.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl std::str::FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { what: stringify!($name), value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A name that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownValue {
    /// The enum.
    pub what: &'static str,
    /// The text given.
    pub value: String,
}

/// A 32-byte digest (SM3 unless said otherwise), shown and serialised as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest32(pub [u8; 32]);

impl Digest32 {
    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, UnknownValue> {
        let bad = || UnknownValue {
            what: "32-byte hex digest",
            value: s.to_owned(),
        };
        let bytes = hex::decode(s).map_err(|_| bad())?;
        Ok(Self(bytes.try_into().map_err(|_| bad())?))
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Digest32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest32({})", self.to_hex())
    }
}

impl fmt::Display for Digest32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Digest32 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl utoipa::PartialSchema for Digest32 {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some("^[0-9a-fA-F]{64}$"))
            .description(Some("A 32-byte digest (SM3 unless said otherwise), hex"))
            .into()
    }
}

impl utoipa::ToSchema for Digest32 {}

impl<'de> Deserialize<'de> for Digest32 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest32::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------- identities

text_enum! {
    /// What an identity may do (DESIGN §5).
    Role {
        /// A client app: asks for stamps.
        Client = "client",
        /// Approves or rejects stamp requests.
        Approver = "approver",
        /// Holds a seal's token PIN.
        Custodian = "custodian",
        /// Reads and exports the usage log.
        Auditor = "auditor",
        /// Manages seals, policies and identities.
        Admin = "admin",
    }
}

/// Row id of an identity.
pub type IdentityId = i64;

/// A caller known to seald: a client app or a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Row id.
    pub id: IdentityId,
    /// Unique name (login name or app name).
    pub name: String,
    /// Roles held, sorted, without repeats.
    pub roles: Vec<Role>,
    /// A disabled identity cannot authenticate.
    pub disabled: bool,
    /// When it was added.
    pub created_at: Timestamp,
}

impl Identity {
    /// Whether the identity holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

// ---------------------------------------------------------------- seals

text_enum! {
    /// Seal types named by the regulations.
    SealKind {
        /// 法定名称章 (公章): at most one active per organisation.
        LegalName = "legal-name",
        /// 业务专用章 (special-purpose / business).
        Business = "business",
        /// 财务专用章.
        Finance = "finance",
        /// 合同专用章.
        Contract = "contract",
        /// 发票专用章.
        Invoice = "invoice",
        /// 个人名章: the person's name, matched against the certificate CN.
        PersonalName = "personal-name",
        /// Any other organisational seal.
        Other = "other",
    }
}

text_enum! {
    /// Lifecycle state of a seal.
    SealState {
        /// Usable for stamping.
        Active = "active",
        /// Temporarily unusable; may return to active.
        Suspended = "suspended",
        /// Withdrawn for good.
        Revoked = "revoked",
        /// Key or device reported lost; final.
        Lost = "lost",
        /// Past its validity; renewal makes a new seal.
        Expired = "expired",
    }
}

impl SealState {
    /// Whether a seal in this state can stamp, or could again after a resume (active or
    /// suspended); revoked, lost and expired seals never stamp again.
    pub fn is_live(self) -> bool {
        matches!(self, SealState::Active | SealState::Suspended)
    }
}

text_enum! {
    /// Seal image formats, recognised by their magic bytes.
    ImageFormat {
        /// PNG.
        Png = "png",
        /// GIF (87a or 89a).
        Gif = "gif",
        /// JPEG.
        Jpeg = "jpeg",
    }
}

/// The seal's impression image and its physical size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealImage {
    /// Format, as found in the magic bytes.
    pub format: ImageFormat,
    /// The image file's bytes.
    #[serde(with = "hex_bytes")]
    pub data: Vec<u8>,
    /// Printed width in millimetres.
    pub width_mm: f64,
    /// Printed height in millimetres.
    pub height_mm: f64,
}

/// The facts seald needs from a seal's X.509 certificate (read by `cert`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertFacts {
    /// Subject O (organisation), if any.
    pub organisation: Option<String>,
    /// Subject CN.
    pub common_name: String,
    /// Serial number, lowercase hex.
    pub serial_hex: String,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
}

/// Row id of a seal.
pub type SealId = i64;

/// A registered seal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seal {
    /// Row id.
    pub id: SealId,
    /// Seal type.
    pub kind: SealKind,
    /// Owner organisation.
    pub organisation: String,
    /// Name shown on the seal.
    pub name: String,
    /// Impression image.
    pub image: SealImage,
    /// Electronic seal identifier (esID, GB/T 38540).
    pub es_id: String,
    /// Serial number of the token holding the key.
    pub device_serial: String,
    /// CKA_ID of the key on the token, hex.
    pub key_id: String,
    /// The signing certificate, DER.
    #[serde(with = "hex_bytes")]
    pub certificate: Vec<u8>,
    /// Facts read from the certificate.
    pub cert: CertFacts,
    /// Start of the seal's validity.
    pub valid_from: Timestamp,
    /// End of the seal's validity (never after the certificate's).
    pub valid_to: Timestamp,
    /// Lifecycle state.
    pub state: SealState,
    /// When the state last changed.
    pub state_changed_at: Timestamp,
    /// When it was enrolled.
    pub created_at: Timestamp,
    /// The SES_Seal (GB/T 38540 v4, DER) made at enrolment, once the format layer builds it.
    #[serde(with = "opt_hex_bytes")]
    pub ses_seal: Option<Vec<u8>>,
}

/// A seal's state change, kept forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SealEvent {
    /// The seal.
    pub seal_id: SealId,
    /// State before (none at enrolment).
    pub from: Option<SealState>,
    /// State after.
    pub to: SealState,
    /// Why.
    pub reason: String,
    /// Who.
    pub actor: String,
    /// When.
    pub at: Timestamp,
}

// ---------------------------------------------------------------- approvals

/// When stamping is allowed, in an explicit fixed UTC offset (China has no DST: +08:00).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OfficeHours {
    /// Offset from UTC in minutes (+480 for Beijing time).
    pub utc_offset_minutes: i32,
    /// Allowed ISO weekdays, 1 = Monday … 7 = Sunday.
    pub weekdays: Vec<u8>,
    /// First allowed minute of the day, local time (e.g. 540 = 09:00).
    pub start_minute: u16,
    /// First minute no longer allowed (e.g. 1080 = 18:00); must be after `start_minute`.
    pub end_minute: u16,
}

/// When the custodian must enter the token PIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum PinMode {
    /// The PIN is entered for each stamp.
    EachStamp,
    /// A login stays good for this many minutes.
    Window {
        /// Length of the activation window.
        minutes: u32,
    },
}

/// A seal's approval policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The seal it governs.
    pub seal_id: SealId,
    /// Client apps that may ask for stamps.
    pub allowed_clients: Vec<IdentityId>,
    /// People who may approve.
    pub approvers: Vec<IdentityId>,
    /// Approvals needed (N of M = `approvers.len()`).
    pub required_approvals: u32,
    /// Documents that may be stamped per local day (in `quota_utc_offset_minutes`).
    pub daily_quota: Option<u32>,
    /// The UTC offset that defines the quota's day, in minutes.
    #[serde(default)]
    pub quota_utc_offset_minutes: i32,
    /// Times when requests may be made and signed.
    pub office_hours: Option<OfficeHours>,
    /// When the PIN is asked for.
    pub pin_mode: PinMode,
    /// How long a request stays open before it expires, in seconds.
    pub request_ttl_secs: i64,
    /// RFC 3161 timestamps for this seal's signatures: `off`, `best-effort` or `required`;
    /// `None` (the default, also for policies stored before it existed) follows
    /// `[tsa] policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<crate::tsa::TsaPolicy>,
}

text_enum! {
    /// State of a stamp request.
    RequestState {
        /// Waiting for approvals.
        Pending = "pending",
        /// Enough approvals; may be signed.
        Approved = "approved",
        /// Signed (final).
        Signed = "signed",
        /// Rejected by an approver (final).
        Rejected = "rejected",
        /// Not decided or signed in time (final).
        Expired = "expired",
        /// Signing failed (final).
        Failed = "failed",
    }
}

/// A signed document's SES_Signature, as kept with its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSignature {
    /// The document digest that was signed.
    pub digest: Digest32,
    /// The document's name.
    pub name: String,
    /// The SES_Signature, DER.
    pub ses_signature: Vec<u8>,
}

/// One document bound to a request: its SM3 digest and a display name. Never its contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StampDocument {
    /// SM3 of the document.
    pub digest: Digest32,
    /// Name for people (file name, title).
    pub name: String,
}

/// An approver's vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Vote {
    /// Who voted.
    pub approver: IdentityId,
    /// Approve (true) or reject.
    pub approve: bool,
    /// Free text.
    pub comment: String,
    /// When.
    pub at: Timestamp,
}

text_enum! {
    /// What kind of document an upload is, recognised by its content (never by its name).
    DocumentFormat {
        /// An OFD package (GB/T 33190), a zip.
        Ofd = "ofd",
        /// A PDF (ISO 32000).
        Pdf = "pdf",
    }
}

impl DocumentFormat {
    /// The format of `head` (the document's first bytes, at least 1 KiB when it has them),
    /// if it is one seald seals.
    pub fn detect(head: &[u8]) -> Option<Self> {
        if head.starts_with(b"PK\x03\x04") {
            Some(Self::Ofd)
        } else if crate::pdf::is_pdf(head) {
            Some(Self::Pdf)
        } else {
            None
        }
    }

    /// The media type of a sealed document of this format.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Ofd => "application/ofd",
            Self::Pdf => "application/pdf",
        }
    }
}

/// Row id of a stamp request.
pub type RequestId = i64;

/// An OFD or PDF document uploaded with a stamp request: what approvers see about it. Its SM3 is the
/// request document's digest (they approve exactly that file); the files themselves are kept
/// under the store's documents directory (see [`StampFileRow`]), never in the request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StampFile {
    /// Position in the request, from 1 (`GET /v1/stamp-requests/{id}/documents/{n}`).
    pub n: u32,
    /// The document's name (the uploaded file's name unless the request gave one).
    pub name: String,
    /// OFD or PDF, as recognised from the upload's content.
    #[serde(default = "default_format")]
    pub format: DocumentFormat,
    /// Size of the uploaded file in bytes.
    pub size: u64,
    /// SM3 of the uploaded file (hex): the file approvers approve.
    pub sm3: Digest32,
    /// Continue (later seals may be added) or lock.
    pub mode: crate::ofd::seal::SealMode,
    /// The placements as asked.
    pub placements: Vec<crate::ofd::seal::Placement>,
    /// The placements resolved to pages and boxes (mm), and the page count.
    pub plan: crate::ofd::seal::SealPlan,
    /// Whether the sealed file is kept (the request is signed).
    pub sealed: bool,
}

fn default_format() -> DocumentFormat {
    DocumentFormat::Ofd
}

/// A [`StampFile`] with where its files are, relative to the store's documents directory.
#[derive(Debug, Clone, PartialEq)]
pub struct StampFileRow {
    /// What approvers see.
    pub file: StampFile,
    /// The upload holding this document (one file per request, removed once the request is
    /// final).
    pub upload: Option<String>,
    /// Where this document starts in the upload (it is `file.size` bytes long).
    pub offset: u64,
    /// The sealed file (once signed).
    pub sealed: Option<String>,
}

/// A stamp request and its votes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StampRequest {
    /// Row id.
    pub id: RequestId,
    /// The seal asked for.
    pub seal_id: SealId,
    /// The client identity that asked.
    pub requester: IdentityId,
    /// One digest, or a batch under one approval.
    pub documents: Vec<StampDocument>,
    /// Why.
    pub purpose: String,
    /// The client's origin (browser Origin or app name), as the API saw it.
    pub origin: Option<String>,
    /// Current state.
    pub state: RequestState,
    /// When asked.
    pub created_at: Timestamp,
    /// When it expires if not finished.
    pub expires_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Why signing failed, if it did.
    pub failure: Option<String>,
    /// Votes so far, oldest first.
    pub votes: Vec<Vote>,
    /// OFD documents uploaded with the request (in `documents` order), with their placements
    /// resolved: present only for a request made by upload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<StampFile>,
}

// ---------------------------------------------------------------- usage log

text_enum! {
    /// What a usage-log record is about.
    AuditKind {
        /// A stamp request was made.
        StampRequest = "stamp-request",
        /// An approver approved or rejected.
        Decision = "decision",
        /// A request expired or failed.
        RequestState = "request-state",
        /// A custodian logged a token in.
        PinLogin = "pin-login",
        /// A PIN was refused by the token.
        PinFailure = "pin-failure",
        /// A PIN was changed or unblocked.
        PinChange = "pin-change",
        /// A document digest was signed.
        Signature = "signature",
        /// A signature was verified.
        Verification = "verification",
        /// A device was inserted, removed or failed.
        Device = "device",
        /// A seal was enrolled.
        SealEnrolled = "seal-enrolled",
        /// A seal changed state.
        SealState = "seal-state",
        /// A seal's policy was set.
        Policy = "policy",
        /// An identity was added, disabled or given a new token.
        Identity = "identity",
        /// The configuration was reloaded.
        ConfigReload = "config-reload",
        /// Old records were pruned (the record carries the anchor).
        Prune = "prune",
        /// A seal was handed to another custodian.
        Custody = "custody",
        /// A key pair was generated, a CSR made, or a certificate imported on a token.
        Key = "key",
        /// The API refused an authenticated request (status, code, clipped path; never
        /// secrets). Operational: kept outside the chain (see [`AuditKind::is_operational`]).
        Refusal = "refusal",
        /// Counts of the anonymous and rate-limited refusals of one window, with a few clipped
        /// sample paths. Operational.
        RefusalSummary = "refusal-summary",
        /// An RFC 3161 timestamp was obtained for a signature (TSA, serial, genTime), or could
        /// not be (the TSA, the reason and the policy).
        Timestamp = "timestamp",
        /// A certificate's status was asked of its CA (OCSP, CRL) before stamping: good,
        /// revoked (the request refused) or unknown (refused or allowed by policy).
        Revocation = "revocation",
        /// Test and tooling records.
        Note = "note",
        /// A backup was restored over a store whose usage log it does not contain (`--force`).
        Restore = "restore",
    }
}

impl AuditKind {
    /// Operational records (refusals, their summaries, verifications) say how the API was
    /// used, not how a seal was: they are kept in the operational log, outside the hash chain,
    /// and pruned after `[audit] operational_retention_days`. Every other kind is evidence
    /// (uses of a seal, decisions, PIN and custody events, lifecycle) and goes into the chain,
    /// undeletable for 3 years.
    pub fn is_operational(self) -> bool {
        matches!(
            self,
            AuditKind::Refusal | AuditKind::RefusalSummary | AuditKind::Verification
        )
    }
}

/// One operational record (outside the hash chain; see [`AuditKind::is_operational`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsRow {
    /// Its number, increasing (gaps after a prune).
    pub id: i64,
    /// Time in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Record kind.
    pub kind: String,
    /// Who caused it.
    pub actor: String,
    /// The seal concerned, if any.
    pub seal_id: Option<SealId>,
    /// Details as compact JSON text.
    pub detail: String,
}

/// Who holds a seal now (`sealctl custody transfer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Custody {
    /// The seal.
    pub seal_id: SealId,
    /// The custodian's identity name.
    pub custodian: String,
    /// Who handed it over.
    pub assigned_by: String,
    /// When.
    pub assigned_at: Timestamp,
    /// The PIN must be changed before the custodian's first stamp.
    pub pin_change_required: bool,
}

/// One usage-log record as stored. Text fields are kept exactly as hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// Time in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Record kind (see `audit::AuditKind`).
    pub kind: String,
    /// Who caused it.
    pub actor: String,
    /// The seal concerned, if any.
    pub seal_id: Option<SealId>,
    /// Details as compact JSON text.
    pub detail: String,
    /// Hash of the previous record (zeros for the first).
    pub prev_hash: Vec<u8>,
    /// SM3(prev_hash ‖ canonical bytes of this record).
    pub hash: Vec<u8>,
}

/// The last pruned record: the chain continues from its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditAnchor {
    /// Sequence number of the last pruned record.
    pub seq: i64,
    /// Its hash.
    pub hash: Vec<u8>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

mod opt_hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_some(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| hex::decode(s).map_err(serde::de::Error::custom))
            .transpose()
    }
}
