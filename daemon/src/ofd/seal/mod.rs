//! Sealing an OFD package (GB/T 33190 §18 with a GB/T 38540 seal): the engine's public
//! interface. Knows nothing of HTTP or devices; it takes a [`DocumentSigner`].
//!
//! Two steps, so that approvers see what will be sealed before anything is signed:
//! [`plan`] opens the package, checks it can be sealed (not locked, pages exist, keywords
//! found) and resolves every placement to page boxes; [`seal`] writes the sealed package,
//! copying every unchanged member byte for byte.
//!
//! INTERFACE SKELETON: the bodies are being written (issue 15); the signatures are the
//! contract the API and the worker build against.

use std::io::{Read, Seek, Write};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ses::{DocumentSigner, SesSignature};

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

/// Why a document cannot be sealed as asked. Every variant is the client's input, so the API
/// answers 422 with its text.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Not a zip, or not an acceptable OFD package (unsafe names, duplicates, bomb).
    #[error(transparent)]
    Package(#[from] crate::ofd::OfdError),
    /// A member could not be read.
    #[error(transparent)]
    Read(#[from] crate::ofd::ReadError),
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

/// The result of [`seal`].
#[derive(Debug, Clone)]
pub struct SealedDocument {
    /// The new signature's `Signature.xml` path (no leading `/`).
    pub signature_path: String,
    /// The SES_Signature written to `SignedValue.dat`.
    pub signature: SesSignature,
}

/// Opens the package, checks that it can be sealed in `mode` and resolves `placements` with
/// the seal picture's size `seal_size_mm` (width, height). Signs nothing.
pub fn plan<R: Read + Seek>(
    input: R,
    placements: &[Placement],
    seal_size_mm: (f64, f64),
    mode: SealMode,
) -> Result<SealPlan, SealError> {
    let _ = (input, placements, seal_size_mm, mode);
    todo!("issue 15: OFD sealing engine")
}

/// Seals `input` with the stamps of `plan` (from [`plan`] on the same bytes), writing the new
/// package to `out`: one signature, signed once by `signer` over SM3 (or the key's hash) of
/// the exact bytes of the new `Signature.xml`, at `time`.
pub fn seal<R: Read + Seek, W: Write + Seek>(
    input: R,
    out: W,
    plan: &SealPlan,
    options: &SealOptions,
    signer: &DocumentSigner<'_>,
    time: OffsetDateTime,
) -> Result<SealedDocument, SealError> {
    let _ = (input, out, plan, options, signer, time);
    todo!("issue 15: OFD sealing engine")
}
