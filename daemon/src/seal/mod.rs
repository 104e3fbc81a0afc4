//! Seal registry and lifecycle rules (DESIGN §6): one active legal-name seal per organisation,
//! names and validity bound to the certificate, every state change with reason, actor and time
//! in the seal's history and the usage log.

pub mod image;
pub mod rules;
mod ses_seal;

use std::sync::Arc;

use serde_json::json;
use sm3::{Digest, Sm3};

use crate::audit::{chain, unix_ms, NewRecord};
use crate::cert::{CertError, Certificate, TrustStore};
use crate::clock::{Clock, Timestamp};
use crate::crypto::PublicKey;
use crate::identity::{Caller, Forbidden, Role};
use crate::store::model::AuditKind;
use crate::store::{Store, StoreError, Tx};

pub use crate::store::model::{
    CertFacts, ImageFormat, Seal, SealEvent, SealId, SealImage, SealKind, SealState,
};
pub use image::ImageError;
pub use rules::{Expiry, EXPIRY_WARNING_DAYS};
pub use ses_seal::SealMaker;

/// Registry errors, each naming the rule that refused.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The caller lacks the role.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The certificate is unreadable, untrusted, expired or not for signing.
    #[error("the seal's certificate is refused: {0}")]
    Certificate(#[from] CertError),
    /// The certificate is not for the key on the device.
    #[error("the certificate's public key is not the key {key_id} on device {device_serial}; enrol with the certificate issued for that key")]
    KeyMismatch {
        /// Token serial.
        device_serial: String,
        /// Key id.
        key_id: String,
    },
    /// The image was refused.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// No seal with this id.
    #[error("no seal with id {0}")]
    NotFound(SealId),
    /// A second active legal-name seal for one organisation.
    #[error("{organisation} already has an active legal-name seal (id {existing}); revoke it first (a change is revoke + new seal)")]
    SecondLegalNameSeal {
        /// The organisation.
        organisation: String,
        /// Its active legal-name seal.
        existing: SealId,
    },
    /// The seal's name does not match the certificate.
    #[error("seal name {name:?} does not match the certificate's {field} {certificate:?}")]
    NameMismatch {
        /// Name given.
        name: String,
        /// What the certificate says.
        certificate: String,
        /// Which certificate field ("O" or "CN").
        field: &'static str,
    },
    /// The owner organisation does not match the certificate.
    #[error("organisation {organisation:?} does not match the certificate's O {certificate:?}")]
    OrganisationMismatch {
        /// Organisation given.
        organisation: String,
        /// Certificate O.
        certificate: String,
    },
    /// An organisational seal needs a certificate naming an organisation.
    #[error("the certificate has no organisation (O); an organisational seal needs one")]
    CertificateWithoutOrganisation,
    /// Empty seal name.
    #[error("the seal name is empty")]
    EmptyName,
    /// Requested validity ends after the certificate.
    #[error("the seal cannot be valid until {requested}: its certificate ends at {not_after} (Unix time); leave the end out to use the certificate's")]
    ValidityPastCertificate {
        /// Requested end.
        requested: Timestamp,
        /// Certificate notAfter.
        not_after: Timestamp,
    },
    /// Requested validity starts before the certificate.
    #[error("the seal cannot be valid from {requested}: its certificate starts at {not_before} (Unix time)")]
    ValidityBeforeCertificate {
        /// Requested start.
        requested: Timestamp,
        /// Certificate notBefore.
        not_before: Timestamp,
    },
    /// Validity ends before it starts.
    #[error("the seal's validity is empty (from {from} to {to})")]
    EmptyValidity {
        /// Start.
        from: Timestamp,
        /// End.
        to: Timestamp,
    },
    /// The certificate has already expired.
    #[error(
        "the certificate expired at {not_after} (Unix time); enrol with a current certificate"
    )]
    CertificateExpired {
        /// Certificate notAfter.
        not_after: Timestamp,
    },
    /// The esID is not printable ASCII of 1-64 characters (it is an IA5String in the SES_Seal).
    #[error("esID {0:?} is invalid: use 1-64 printable ASCII characters")]
    BadEsId(String),
    /// The esID is already used.
    #[error("esID {0:?} is already used by another seal")]
    EsIdTaken(String),
    /// A state change the lifecycle forbids.
    #[error("seal {id} cannot go from {from} to {to}{}", if matches!(from, SealState::Revoked | SealState::Lost) { " (revoked and lost are final)" } else { "" })]
    IllegalTransition {
        /// The seal.
        id: SealId,
        /// Its state.
        from: SealState,
        /// The state asked for.
        to: SealState,
    },
    /// A state change without a reason.
    #[error("a seal state change needs a reason")]
    NoReason,
    /// The seal cannot be used for stamping now.
    #[error("seal {id} cannot be used: it is {state}")]
    NotUsable {
        /// The seal.
        id: SealId,
        /// Its state.
        state: SealState,
    },
    /// The seal is outside its validity.
    #[error("seal {id} is outside its validity ({valid_from}..{valid_to}, Unix time)")]
    OutsideValidity {
        /// The seal.
        id: SealId,
        /// Start.
        valid_from: Timestamp,
        /// End.
        valid_to: Timestamp,
    },
    /// Building or signing the SES_Seal failed.
    #[error("cannot make the seal's SES_Seal: {0}")]
    SesSeal(String),
}

/// What an administrator supplies to enrol a seal.
#[derive(Debug, Clone)]
pub struct NewSeal {
    /// Seal type.
    pub kind: SealKind,
    /// Owner organisation.
    pub organisation: String,
    /// Name shown on the seal.
    pub name: String,
    /// Image bytes (PNG, GIF or JPEG).
    pub image: Vec<u8>,
    /// Printed width, mm.
    pub width_mm: f64,
    /// Printed height, mm.
    pub height_mm: f64,
    /// esID (GB/T 38540).
    pub es_id: String,
    /// Token serial.
    pub device_serial: String,
    /// CKA_ID of the key, hex.
    pub key_id: String,
    /// The public key the device reports for that key: it must be the certificate's.
    pub device_key: PublicKey,
    /// The signing certificate, DER.
    pub certificate: Vec<u8>,
    /// Intermediate CA certificates (DER) between it and a configured root, if any.
    pub intermediates: Vec<Vec<u8>>,
    /// Requested start of validity (default: now, or the certificate's start if later).
    pub valid_from: Option<Timestamp>,
    /// Requested end of validity (default: the certificate's end; later is refused).
    pub valid_to: Option<Timestamp>,
}

/// A seal near or past its end.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExpiryWarning {
    /// The seal.
    pub seal_id: SealId,
    /// Its name.
    pub name: String,
    /// End of validity.
    pub valid_to: Timestamp,
    /// The status.
    pub expiry: Expiry,
}

/// The seal registry service.
#[derive(Debug, Clone)]
pub struct Registry {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    trust: Arc<crate::cert::TrustRoots>,
}

/// The registry's facts of a parsed certificate.
pub fn cert_facts(cert: &Certificate) -> CertFacts {
    let f = cert.facts();
    CertFacts {
        organisation: f.subject_o.clone(),
        common_name: f.subject_cn.clone().unwrap_or_default(),
        serial_hex: f.serial_hex.clone(),
        not_before: f.not_before.unix_timestamp(),
        not_after: f.not_after.unix_timestamp(),
    }
}

/// Refuses a seal that cannot stamp at `now`: not active, or outside its validity.
pub fn check_usable(seal: &Seal, now: Timestamp) -> Result<(), SealError> {
    if seal.state != SealState::Active {
        return Err(SealError::NotUsable {
            id: seal.id,
            state: seal.state,
        });
    }
    if now < seal.valid_from || now >= seal.valid_to {
        return Err(SealError::OutsideValidity {
            id: seal.id,
            valid_from: seal.valid_from,
            valid_to: seal.valid_to,
        });
    }
    Ok(())
}

fn require_no_other_legal_seal(
    tx: &mut dyn Tx,
    kind: SealKind,
    organisation: &str,
    except: Option<SealId>,
) -> Result<(), SealError> {
    if kind != SealKind::LegalName {
        return Ok(());
    }
    // Compared after normalisation: "（北京）" and "(北京)", "ＡＢＣ" and "ABC", extra spaces
    // name one organisation.
    let key = rules::organisation_key(organisation);
    let existing = tx
        .active_legal_name_seals()?
        .into_iter()
        .find(|(id, org)| Some(*id) != except && rules::organisation_key(org) == key);
    match existing {
        Some((existing, _)) => Err(SealError::SecondLegalNameSeal {
            organisation: organisation.to_owned(),
            existing,
        }),
        None => Ok(()),
    }
}

/// Applies a state change inside `tx`: rules, row, history, usage record.
fn apply_transition(
    tx: &mut dyn Tx,
    id: SealId,
    to: SealState,
    reason: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Seal, SealError> {
    let mut seal = tx.seal(id)?.ok_or(SealError::NotFound(id))?;
    let from = seal.state;
    if !rules::transition_allowed(from, to) {
        return Err(SealError::IllegalTransition { id, from, to });
    }
    let now = now_ms.div_euclid(1000);
    if to == SealState::Active {
        if now >= seal.valid_to {
            return Err(SealError::OutsideValidity {
                id,
                valid_from: seal.valid_from,
                valid_to: seal.valid_to,
            });
        }
        require_no_other_legal_seal(tx, seal.kind, &seal.organisation, Some(id))?;
    }
    tx.set_seal_state(id, to, now)?;
    tx.insert_seal_event(&SealEvent {
        seal_id: id,
        from: Some(from),
        to,
        reason: reason.to_owned(),
        actor: actor.to_owned(),
        at: now,
    })?;
    let rec = NewRecord::new(
        AuditKind::SealState,
        actor,
        Some(id),
        json!({ "from": from, "to": to, "reason": reason, "cert_serial": seal.cert.serial_hex }),
    );
    chain::append(tx, &rec, now_ms)?;
    seal.state = to;
    seal.state_changed_at = now;
    Ok(seal)
}

impl Registry {
    /// The roots seal certificates must chain to, now.
    pub fn trust(&self) -> Arc<TrustStore> {
        self.trust.current()
    }

    /// The roots, as a config reload replaces them (shared with the API's verification).
    pub fn trust_roots(&self) -> &Arc<crate::cert::TrustRoots> {
        &self.trust
    }

    /// The registry kept in `store`; seal certificates must chain to a root in `trust`.
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>, trust: Arc<TrustStore>) -> Self {
        Self {
            store,
            clock,
            trust: Arc::new(crate::cert::TrustRoots::new(trust)),
        }
    }

    /// Enrols a seal after checking every rule, and makes its SES_Seal signed by the
    /// seal-maker key (see [`SealMaker`]). The certificate must chain to a configured root, be
    /// valid now and allow digital signatures.
    pub fn enrol(
        &self,
        by: &Caller,
        new: NewSeal,
        maker: &SealMaker<'_>,
    ) -> Result<Seal, SealError> {
        self.enrol_then(by, new, maker, |_, _| Ok::<_, SealError>(()))
            .map(|(seal, ())| seal)
    }

    /// Like [`Registry::enrol`], and runs `then` on the new seal in the transaction that
    /// inserts it: the seal and whatever `then` writes (its approval policy) are kept together
    /// or not at all. Every check, and the SES_Seal, come before the transaction.
    pub fn enrol_then<T, E, F>(
        &self,
        by: &Caller,
        new: NewSeal,
        maker: &SealMaker<'_>,
        then: F,
    ) -> Result<(Seal, T), E>
    where
        T: Send + 'static,
        E: From<SealError> + From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Tx, &Seal) -> Result<T, E> + Send + 'static,
    {
        let (seal, actor, now_ms) = self.prepare(by, new, maker)?;
        self.store.write(move |tx| {
            let seal = insert_enrolled(tx, seal, actor, now_ms)?;
            let extra = then(tx, &seal)?;
            Ok((seal, extra))
        })
    }

    /// Every enrolment check, then the SES_Seal: the seal to insert, who enrols it and when.
    fn prepare(
        &self,
        by: &Caller,
        new: NewSeal,
        maker: &SealMaker<'_>,
    ) -> Result<(Seal, String, i64), SealError> {
        by.require(Role::Admin)?;
        let now = self.clock.now();
        let leaf = Certificate::from_der(&new.certificate)?;
        let intermediates = new
            .intermediates
            .iter()
            .map(|der| Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()?;
        let cert = cert_facts(&leaf);
        if cert.not_after <= now.unix_timestamp() {
            return Err(SealError::CertificateExpired {
                not_after: cert.not_after,
            });
        }
        self.trust
            .current()
            .verify_signing_chain(&leaf, &intermediates, now)?;
        if leaf.public_key()? != &new.device_key {
            return Err(SealError::KeyMismatch {
                device_serial: new.device_serial,
                key_id: new.key_id,
            });
        }
        let es_ok =
            (1..=64).contains(&new.es_id.len()) && new.es_id.bytes().all(|b| b.is_ascii_graphic());
        if !es_ok {
            return Err(SealError::BadEsId(new.es_id));
        }
        let image = image::check(new.image, new.width_mm, new.height_mm)?;
        rules::check_name(new.kind, &new.organisation, &new.name, &cert)?;
        let (valid_from, valid_to) =
            rules::validity(new.valid_from, new.valid_to, &cert, now.unix_timestamp())?;
        let mut seal = Seal {
            id: 0,
            kind: new.kind,
            organisation: new.organisation.trim().to_owned(),
            name: new.name.trim().to_owned(),
            image,
            es_id: new.es_id,
            device_serial: new.device_serial,
            key_id: new.key_id,
            certificate: new.certificate,
            cert,
            valid_from,
            valid_to,
            state: SealState::Active,
            state_changed_at: now.unix_timestamp(),
            created_at: now.unix_timestamp(),
            ses_seal: None,
        };
        // Fail early, before asking a device to sign; checked again in the transaction.
        self.store
            .read(|tx| require_no_other_legal_seal(tx, seal.kind, &seal.organisation, None))?;
        seal.ses_seal = Some(ses_seal::make(&seal, maker, now)?);
        Ok((seal, by.name(), unix_ms(now)))
    }

    /// The seal with this id.
    pub fn get(&self, id: SealId) -> Result<Seal, SealError> {
        self.store
            .read(|tx| tx.seal(id))?
            .ok_or(SealError::NotFound(id))
    }

    /// All seals.
    pub fn list(&self) -> Result<Vec<Seal>, SealError> {
        Ok(self.store.read(|tx| tx.seals())?)
    }

    /// A seal's state changes, enrolment first.
    pub fn history(&self, id: SealId) -> Result<Vec<SealEvent>, SealError> {
        Ok(self.store.read(|tx| tx.seal_events(id))?)
    }

    /// Changes a seal's state, with a reason. Admins may do any allowed change; custodians may
    /// only report a seal lost (they hold the device).
    pub fn change_state(
        &self,
        by: &Caller,
        id: SealId,
        to: SealState,
        reason: &str,
    ) -> Result<Seal, SealError> {
        if to == SealState::Lost {
            by.require(Role::Custodian)
                .or_else(|_| by.require(Role::Admin))?;
        } else {
            by.require(Role::Admin)?;
        }
        let reason = reason.trim().to_owned();
        if reason.is_empty() {
            return Err(SealError::NoReason);
        }
        let actor = by.name();
        let now_ms = unix_ms(self.clock.now());
        self.store
            .write(move |tx| apply_transition(tx, id, to, &reason, &actor, now_ms))
    }

    /// Marks every active or suspended seal past its end as expired; returns their ids.
    pub fn expire_due(&self) -> Result<Vec<SealId>, SealError> {
        let now_ms = unix_ms(self.clock.now());
        let now = now_ms.div_euclid(1000);
        // A snapshot read finds what is due; the writer is asked only when something is.
        let due = move |seal: &Seal| seal.state.is_live() && now >= seal.valid_to;
        if !self.store.read(|tx| tx.seals())?.iter().any(due) {
            return Ok(Vec::new());
        }
        self.store.write(move |tx| {
            let mut expired = Vec::new();
            for seal in tx.seals()? {
                if due(&seal) {
                    apply_transition(
                        tx,
                        seal.id,
                        SealState::Expired,
                        "validity ended",
                        "seald",
                        now_ms,
                    )?;
                    expired.push(seal.id);
                }
            }
            Ok(expired)
        })
    }

    /// Active and suspended seals that expire within [`EXPIRY_WARNING_DAYS`] or already have.
    pub fn expiry_warnings(&self) -> Result<Vec<ExpiryWarning>, SealError> {
        let now = self.clock.timestamp();
        Ok(self
            .list()?
            .into_iter()
            .filter(|s| s.state.is_live())
            .filter_map(|s| {
                let e = rules::expiry(s.valid_from, s.valid_to, now);
                matches!(e, Expiry::ExpiresSoon { .. } | Expiry::Expired).then(|| ExpiryWarning {
                    seal_id: s.id,
                    name: s.name,
                    valid_to: s.valid_to,
                    expiry: e,
                })
            })
            .collect())
    }
}

/// Inserts a checked seal with its history and usage record (inside an enrolment's
/// transaction); the legal-name rule is checked again here.
fn insert_enrolled(
    tx: &mut dyn Tx,
    mut seal: Seal,
    actor: String,
    now_ms: i64,
) -> Result<Seal, SealError> {
    require_no_other_legal_seal(tx, seal.kind, &seal.organisation, None)?;
    let es_id = seal.es_id.clone();
    let id = tx.insert_seal(&seal).map_err(|e| {
        if e.is_unique_violation("es_id") {
            SealError::EsIdTaken(es_id)
        } else {
            SealError::Store(e)
        }
    })?;
    seal.id = id;
    tx.insert_seal_event(&SealEvent {
        seal_id: id,
        from: None,
        to: SealState::Active,
        reason: "enrolled".into(),
        actor: actor.clone(),
        at: seal.created_at,
    })?;
    let image_sm3 = hex::encode(Sm3::digest(&seal.image.data));
    let rec = NewRecord::new(
        AuditKind::SealEnrolled,
        actor,
        Some(id),
        json!({
            "kind": seal.kind,
            "organisation": seal.organisation,
            "name": seal.name,
            "es_id": seal.es_id,
            "device_serial": seal.device_serial,
            "key_id": seal.key_id,
            "cert_serial": seal.cert.serial_hex,
            "valid_from": seal.valid_from,
            "valid_to": seal.valid_to,
            "image_sm3": image_sm3,
            "ses_seal": seal.ses_seal.is_some(),
        }),
    );
    chain::append(tx, &rec, now_ms)?;
    Ok(seal)
}

#[cfg(test)]
pub(crate) mod tests;
