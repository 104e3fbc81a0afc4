//! Sealing an OFD package (GB/T 33190 §18 with a GB/T 38540 seal): the engine's public
//! interface. Knows nothing of HTTP or devices; it takes a [`DocumentSigner`].
//!
//! Two steps, so that approvers see what will be sealed before anything is signed:
//! [`plan`] opens the package, checks it can be sealed (not locked, earlier signatures still
//! match, pages exist, keywords found) and resolves every placement to page boxes; [`seal`] writes the sealed package,
//! copying every unchanged member byte for byte.
//!
//! What is written (GB/T 33190 §18): `Signs/Sign_N/` (N not taken) with `Seal.esl` (the
//! seal), `Signature.xml` (schema order; References with the base64 SM3 of every member that
//! exists before it, `Seal.esl` included, `Signatures.xml` only in [`SealMode::Lock`]) and
//! `SignedValue.dat` (the SES_Signature whose dataHash is the digest of the exact bytes of
//! `Signature.xml`, propertyInfo its absolute path); `Signatures.xml` created or extended;
//! `OFD.xml` gains `DocBody/Signatures` on the first signature only. Both are edited by
//! splicing their original bytes; every other member is copied raw.
//!
//! Modules: `locate` (the document through `OFD.xml`, existing signatures, the lock),
//! `text` (page text for keywords), `place` (placements to boxes), `xmlout` (XML written and
//! spliced), `zipout` (the package written).

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};

use base64::Engine;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::crypto::{data_digest, sm3};
use crate::ofd::package::{parent, Package};
use crate::ses::{DocumentSigner, SesSignature};

mod locate;
pub(crate) mod place;
pub(crate) mod text;
mod xmlout;
mod zipout;

#[cfg(test)]
mod tests;

/// Most stamps (`StampAnnot`s) in one document's signature, every placement together: a
/// keyword with `all` or a riding seal over many pages past it is refused, as is a plan that
/// carries more (every stamp is kept in the plan, the signature and the usage log).
pub const MAX_STAMPS: usize = 256;

/// Where a seal goes. Lengths in millimetres, top-left origin; pages are 1-based indexes in
/// document order (the engine maps them to the pages' object IDs for `StampAnnot@PageRef`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Placement {
    /// At a page and position; the size defaults to the seal picture's width and height.
    At {
        /// Page (1-based).
        page: u32,
        /// Left edge of the seal, mm from the page's left.
        x: f64,
        /// Top edge of the seal, mm from the page's top.
        y: f64,
        /// Width in mm (default: the seal's).
        #[serde(default)]
        width: Option<f64>,
        /// Height in mm (default: the seal's).
        #[serde(default)]
        height: Option<f64>,
    },
    /// Centred on a keyword found in the page text.
    Keyword {
        /// The text to find (may span several `TextCode`s).
        text: String,
        /// Every hit instead of the first.
        #[serde(default)]
        all: bool,
        /// Pages to search (default: all).
        #[serde(default)]
        pages: Option<Vec<u32>>,
    },
    /// A riding seal (骑缝章) over one edge of several pages: one slice per page, all under
    /// one signature.
    Riding {
        /// Which edge.
        edge: Edge,
        /// First page (default 1).
        #[serde(default)]
        from: Option<u32>,
        /// Last page (default: the last).
        #[serde(default)]
        to: Option<u32>,
        /// Distance of the seal from the start of the edge in mm (default: centred).
        #[serde(default)]
        offset: Option<f64>,
    },
}

/// A page edge for a riding seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Edge {
    /// Right edge.
    Right,
    /// Left edge.
    Left,
    /// Top edge.
    Top,
    /// Bottom edge.
    Bottom,
}

/// Whether later signatures may be added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SealMode {
    /// `Signatures.xml` is not protected: later seals can be added (default).
    #[default]
    Continue,
    /// `Signatures.xml` is protected: the document accepts no further signature.
    Lock,
}

/// How new `Signature`/`StampAnnot` IDs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdStyle {
    /// `s001`, the standard's recommended `sNNN` form (default).
    #[default]
    Prefixed,
    /// Bare numbers `1`, `2`, as some readers expect.
    Number,
}

/// Engine options that are not per placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealOptions {
    /// Continue or lock.
    pub mode: SealMode,
    /// ID style.
    pub id_style: IdStyle,
    /// `Provider@ProviderName`.
    pub provider: String,
    /// `Provider@Version`.
    pub provider_version: String,
}

impl Default for SealOptions {
    fn default() -> Self {
        Self {
            mode: SealMode::Continue,
            id_style: IdStyle::Prefixed,
            provider: "seald".into(),
            provider_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// One `StampAnnot` to write: a placement resolved to a page box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResolvedStamp {
    /// Page (1-based index).
    pub page: u32,
    /// The page's object ID in `Document.xml` (`StampAnnot@PageRef`).
    pub page_ref: String,
    /// `Boundary`: x, y, width, height in mm.
    pub boundary: [f64; 4],
    /// `Clip` relative to the boundary (riding seals), if any.
    pub clip: Option<[f64; 4]>,
}

/// What approvers see about one document before it is sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SealPlan {
    /// Pages in the document.
    pub pages: u32,
    /// Every stamp the signature will carry, in order.
    pub stamps: Vec<ResolvedStamp>,
}

/// Why a document cannot be sealed as asked. Every variant but [`SealError::Sign`] and
/// [`SealError::Io`] is about the client's input (the API answers 422 with its text); see
/// [`SealError::is_input_error`].
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Not a zip, or not an acceptable OFD package (unsafe names, duplicates, bomb).
    #[error(transparent)]
    Package(#[from] crate::ofd::OfdError),
    /// A member could not be read.
    #[error(transparent)]
    Read(#[from] crate::ofd::ReadError),
    /// Not a PDF seald can read (encrypted, broken xref, too large).
    #[error(transparent)]
    Pdf(#[from] crate::pdf::PdfError),
    /// The OFD structure is unusable (no `DocRoot`, broken XML, …).
    #[error("the OFD structure is unusable: {0}")]
    Structure(String),
    /// The document is locked by an earlier signature that protects `Signatures.xml`.
    #[error("the document is locked: signature {0} protects the signature list, so no further seal can be added")]
    Locked(String),
    /// A placement names a page the document does not have, or an impossible box.
    #[error("placement {index}: {reason}")]
    Placement {
        /// Index of the placement (0-based).
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The signer failed.
    #[error("signing failed: {0}")]
    Sign(#[from] crate::ses::BuildError),
    /// Writing the output failed.
    #[error("writing the sealed document failed: {0}")]
    Io(#[from] std::io::Error),
}

impl SealError {
    /// True when the input is at fault (package, structure, lock, placement): a client error.
    /// False for the signer's failure and for failing to write the output: internal errors.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, Self::Sign(_) | Self::Io(_))
    }
}

/// The seal picture's width and height in mm (`SES_SealInfo.picture`), the default stamp size
/// to give [`plan`] (`seal_size_mm`).
pub fn seal_size_mm(seal: &crate::ses::Seal) -> (f64, f64) {
    let p = &seal.info.picture;
    (p.width as f64, p.height as f64)
}

/// The result of [`seal`].
#[derive(Debug, Clone)]
pub struct SealedDocument {
    /// The new signature's `Signature.xml` path (no leading `/`).
    pub signature_path: String,
    /// The SES_Signature written to `SignedValue.dat`.
    pub signature: SesSignature,
    /// The new signature's `ID` in `Signatures.xml`.
    pub signature_id: String,
    /// The `StampAnnot` IDs, in the order of the plan's stamps.
    pub stamp_ids: Vec<String>,
}

/// Opens the package, checks that it can be sealed in `mode` and resolves `placements` with
/// the seal picture's size `seal_size_mm` (width, height). Signs nothing.
///
/// Also refuses a document whose existing signatures no longer match it (a protected member
/// changed or removed), which reads the members they reference, and placements that would
/// make more than [`MAX_STAMPS`] stamps (a keyword's `pages` are searched once each). Every error is about the
/// input (see [`SealError`]); the package is read with the caps of [`Package`], and members
/// declaring more are refused before anything is inflated.
pub fn plan<R: Read + Seek>(
    input: R,
    placements: &[Placement],
    seal_size_mm: (f64, f64),
    mode: SealMode,
) -> Result<SealPlan, SealError> {
    // Both modes need an unlocked document; nothing else differs before signing.
    let _ = mode;
    let mut package = Package::open(input)?;
    locate::check_entries(&mut package)?;
    let layout = locate::Layout::read(&mut package)?;
    layout.check_existing_references(&mut package)?;
    place::resolve(&mut package, &layout, placements, seal_size_mm)
}

/// `SignatureDateTime` as the vendors' schema-order files write it: `YYYYMMDDhhmmssZ`, UTC
/// (a PDF `/M` is the same after `D:`).
pub(crate) fn signature_date_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Where a new signature list goes: `Signs/Signatures.xml` beside the document root, or
/// `Signatures_K.xml` there when that name is taken by a member the entry file does not list.
fn new_list_member<R: Read + Seek>(package: &Package<R>, doc_dir: &str) -> String {
    let signs = join(doc_dir, "Signs");
    let mut name = join(&signs, "Signatures.xml");
    let mut k = 1;
    while package.contains(&name) {
        name = join(&signs, &format!("Signatures_{k}.xml"));
        k += 1;
    }
    name
}

/// The first `Sign_N` directory under `signs_dir` after every existing one (files or
/// directory entries).
fn next_sign_dir<R: Read + Seek>(package: &mut Package<R>, signs_dir: &str) -> String {
    let prefix = join(signs_dir, "Sign_");
    let next = package
        .archive()
        .file_names()
        .filter_map(|raw| {
            let name = raw.strip_prefix('/').unwrap_or(raw);
            let rest = name.strip_prefix(&prefix)?;
            let digits = rest.split('/').next()?;
            digits.parse::<u64>().ok()
        })
        .max()
        .map_or(0, |n| n.saturating_add(1));
    format!("{prefix}{next}")
}

/// Seals `input` with the stamps of `plan` (from [`plan`] on the same bytes), writing the new
/// package to `out`: one signature, signed once by `signer` over SM3 (or the key's hash) of
/// the exact bytes of the new `Signature.xml`, at `time`.
///
/// Checks again everything [`plan`] checked that does not depend on placements (the document
/// must not be locked, the plan's pages must be this document's, at most [`MAX_STAMPS`]
/// stamps); every member is read
/// (bounded) to compute its reference. `out` holds a partial package when an error is returned.
pub fn seal<R: Read + Seek, W: Write + Seek>(
    input: R,
    out: W,
    plan: &SealPlan,
    options: &SealOptions,
    signer: &DocumentSigner<'_>,
    time: OffsetDateTime,
) -> Result<SealedDocument, SealError> {
    let mut package = Package::open(input)?;
    locate::check_entries(&mut package)?;
    let layout = locate::Layout::read(&mut package)?;
    place::check_plan(&layout, plan)?;

    let mut ids = xmlout::Ids::new(layout.max_id, options.id_style, &layout.ids);
    let signature_id = ids.next_id();
    let stamps: Vec<(String, &ResolvedStamp)> =
        plan.stamps.iter().map(|s| (ids.next_id(), s)).collect();
    let max_id = stamps
        .last()
        .map_or_else(|| signature_id.clone(), |(id, _)| id.clone());

    // Where the list is, and where the new signature goes.
    let (list_member, old_list, listed) = match &layout.list {
        Some(l) => (l.member.clone(), l.bytes.clone(), true),
        None => (new_list_member(&package, &layout.doc_dir), None, false),
    };
    let sign_dir = next_sign_dir(&mut package, parent(&list_member));
    let xml_member = format!("{sign_dir}/Signature.xml");
    let seal_member = format!("{sign_dir}/Seal.esl");
    let value_member = format!("{sign_dir}/SignedValue.dat");
    let structure = |what: &str, e: String| SealError::Structure(format!("{what}: {e}"));
    let list = match &old_list {
        Some(b) => xmlout::extend_list(b, &max_id, &signature_id, &format!("/{xml_member}"))
            .map_err(|e| structure(&format!("/{list_member}"), e))?,
        None => xmlout::new_list(&max_id, &signature_id, &format!("/{xml_member}")),
    };
    let mut replaced = BTreeMap::new();
    if !listed {
        let ofd = xmlout::add_signatures_to_ofd(&layout.ofd_xml, &format!("/{list_member}"))
            .map_err(|e| structure("/OFD.xml", e))?;
        replaced.insert("OFD.xml".to_string(), ofd);
    }
    let list_is_new = old_list.is_none();
    if !list_is_new {
        replaced.insert(list_member.clone(), list.clone());
    }

    // References: every member as it will be, before this signature's own files.
    let seal_der = &signer.seal().der;
    let mut names: Vec<String> = package.members().map(str::to_string).collect();
    if list_is_new {
        names.push(list_member.clone());
    }
    names.push(seal_member.clone());
    names.sort();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut references = Vec::with_capacity(names.len());
    for name in names {
        if name == list_member && options.mode == SealMode::Continue {
            continue;
        }
        let digest = if name == seal_member {
            sm3(seal_der)
        } else if name == list_member {
            sm3(&list)
        } else if let Some(b) = replaced.get(&name) {
            sm3(b)
        } else {
            sm3(&package.read(&name)?)
        };
        references.push((format!("/{name}"), b64.encode(digest)));
    }

    let algorithm = signer.algorithm();
    let xml = xmlout::signature_xml(&xmlout::SignatureParts {
        provider: &options.provider,
        version: &options.provider_version,
        method: crate::cert::signature_oid(algorithm),
        date_time: &signature_date_time(time),
        references: &references,
        stamps: &stamps,
        seal_loc: &format!("/{seal_member}"),
        signed_value_loc: &format!("/{value_member}"),
    });
    let hash = data_digest(algorithm, &xml);
    let signature = signer.sign(time, &hash, &format!("/{xml_member}"), None)?;

    let mut added = Vec::with_capacity(4);
    if list_is_new {
        added.push((list_member, list));
    }
    added.push((seal_member, seal_der.clone()));
    added.push((xml_member.clone(), xml));
    added.push((value_member, signature.der.clone()));
    zipout::write(&mut package, out, &replaced, &added, time)?;
    Ok(SealedDocument {
        signature_path: xml_member,
        signature,
        signature_id,
        stamp_ids: stamps.into_iter().map(|(id, _)| id).collect(),
    })
}
