//! Verifying every signature of a PDF: its `/ByteRange` covers the whole revision it signs but
//! `/Contents`, the digest matches, the CMS (or SES_Signature) verifies, the certificate chain
//! and validity at signing time, that the signature dictionary is an indirect object defined
//! in the bytes it signs and unchanged since (a copy of another signature counts once), and
//! what later incremental updates change (re-reading revisions within a byte budget).
//!
//! Modules: `load` (caps, lopdf, revision boundaries), `fields` (signature fields, PDF dates),
//! `changes` (what an update changes), `signature` (one signature's checks).

mod bodies;
mod changes;
mod fields;
mod load;
mod signature;
#[cfg(test)]
mod tests;

use crate::cms::Anchors;
use std::collections::HashMap;

use crate::cert::{CertFacts, TrustStore};

use super::PdfError;

/// Most revisions (incremental updates + 1) of a PDF verified: each later revision is read
/// again to compare it with the one before.
pub const MAX_REVISIONS: usize = 1000;

/// The check line of content changes after a signature.
const LATER_CHANGES: &str = "FAILED: later revisions change what was signed:";

/// What incremental updates after a signature change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ChangesAfter {
    /// The signature covers the last revision: nothing was added after it.
    None,
    /// Later revisions add or change only annotations, form fields and signatures (e.g.
    /// later seals); the signed content is unchanged.
    AnnotationsOnly {
        /// How many later revisions.
        revisions: usize,
    },
    /// Later revisions change what the signer saw (page content, resources, pages).
    ContentChanged {
        /// How many later revisions.
        revisions: usize,
        /// What changed, in words (e.g. "revision 3: page 1 content stream 7 0 replaced").
        changes: Vec<String>,
    },
}

/// One signature of a PDF.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PdfSignatureReport {
    /// The field name (`/T`, with its parents' names, joined by `.`).
    pub field: String,
    /// `/SubFilter`.
    pub sub_filter: String,
    /// `pades` (ETSI.CAdES.detached), `gm-cms` (GB/T 35275 SignedData), `pkcs7` (another
    /// RFC 5652 SignedData) or `ses` (GB/T 38540 SES_Signature); `unknown` when `/Contents`
    /// holds none of them.
    pub form: String,
    /// `/ByteRange`.
    pub byte_range: Vec<u64>,
    /// Which revision it signs (1 = the original file; 0 = none: the ByteRange does not end
    /// at the end of a revision).
    pub revision: usize,
    /// True when nothing about this signature failed (later content changes included).
    pub valid: bool,
    /// The signer's certificate, if found.
    pub signer: Option<CertFacts>,
    /// The signing time claimed (signing-time attribute, SES timeInfo, else the signature
    /// dictionary's `/M`), RFC 3339.
    pub signing_time: Option<String>,
    /// The seal's esID and name (SES form), if any.
    pub seal: Option<String>,
    /// Pages with this signature's widgets (1-based).
    pub pages: Vec<u32>,
    /// What later revisions change.
    pub changes_after: ChangesAfter,
    /// Each check, `ok:`, `FAILED:` or `n/a:` and what it was.
    pub checks: Vec<String>,
}

/// A PDF's signatures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PdfReport {
    /// True when there is at least one signature, every signature is valid, no revision after
    /// a signature changes content (annotations, form fields and later signatures may be
    /// added) and there are no document-level problems.
    pub valid: bool,
    /// Revisions (incremental updates + 1).
    pub revisions: usize,
    /// Pages.
    pub pages: u32,
    /// Every signature, in the order of the revisions they sign.
    pub signatures: Vec<PdfSignatureReport>,
    /// Document-level problems, in words.
    pub problems: Vec<String>,
}

impl ChangesAfter {
    fn to_text(&self) -> String {
        match self {
            Self::None => "none (it signs the last revision)".into(),
            Self::AnnotationsOnly { revisions } => {
                format!("annotations, form fields or signatures only ({revisions} revision(s))")
            }
            Self::ContentChanged { revisions, changes } => format!(
                "CONTENT CHANGED ({revisions} revision(s)): {}",
                changes.join("; ")
            ),
        }
    }
}

impl PdfReport {
    /// A readable multi-line summary: the verdict, one line per signature with its failed
    /// checks and what later revisions change, then document-level problems.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = format!(
            "{}: {} signature(s), {} revision(s), {} page(s)\n",
            if self.valid { "VALID" } else { "INVALID" },
            self.signatures.len(),
            self.revisions,
            self.pages
        );
        for (i, s) in self.signatures.iter().enumerate() {
            let signer = s.signer.as_ref().map_or("unknown signer".to_string(), |f| {
                format!(
                    "{} (O={})",
                    f.display_name(),
                    f.subject_o.as_deref().unwrap_or("-")
                )
            });
            let pages: Vec<String> = s.pages.iter().map(u32::to_string).collect();
            let _ = writeln!(
                out,
                "  [{}] {} {}: {} form, revision {}, page(s) {}; {}{}{}",
                i + 1,
                s.field,
                if s.valid { "VALID" } else { "INVALID" },
                s.form,
                s.revision,
                if pages.is_empty() {
                    "-".into()
                } else {
                    pages.join(",")
                },
                signer,
                s.signing_time
                    .as_deref()
                    .map_or(String::new(), |t| format!(", signed {t}")),
                s.seal
                    .as_deref()
                    .map_or(String::new(), |t| format!(", seal {t}")),
            );
            let failed = s.checks.iter().filter(|c| c.starts_with("FAILED"));
            // The later-revisions line is said below, once.
            for c in failed.filter(|c| !c.starts_with(LATER_CHANGES)) {
                let _ = writeln!(out, "      {c}");
            }
            let _ = writeln!(out, "      changes after: {}", s.changes_after.to_text());
        }
        for p in &self.problems {
            let _ = writeln!(out, "  problem: {p}");
        }
        out
    }
}

/// Verifies every signature of the PDF `bytes`; certificates chain to `trust` when given.
pub fn verify_pdf(bytes: &[u8], trust: Option<&TrustStore>) -> Result<PdfReport, PdfError> {
    verify_pdf_with(bytes, Anchors::roots(trust))
}

/// [`verify_pdf`] with TSA trust roots (a signature's trusted timestamp judges its
/// certificate) and a certificate status checker.
pub fn verify_pdf_with(bytes: &[u8], anchors: Anchors<'_>) -> Result<PdfReport, PdfError> {
    verify_within(bytes, anchors, reparse_budget(bytes.len()))
}

/// [`verify_pdf`], re-reading at most `budget` bytes to compare revisions.
fn verify_within(bytes: &[u8], anchors: Anchors<'_>, budget: usize) -> Result<PdfReport, PdfError> {
    let (doc, inflated) = crate::pdf::open_measured(bytes)?;
    let ends = load::revision_ends(bytes);
    if ends.len() > MAX_REVISIONS {
        return Err(PdfError::TooLarge(format!(
            "{} revisions, more than {MAX_REVISIONS}",
            ends.len()
        )));
    }
    let mut problems = Vec::new();
    match ends.last() {
        None => problems.push("no `startxref … %%EOF` ends a revision".to_string()),
        Some(last) => {
            let extra = bytes[last.end..]
                .iter()
                .filter(|b| !b.is_ascii_whitespace() && **b != 0)
                .count();
            if extra > 0 {
                problems.push(format!(
                    "{} byte(s) after the last %%EOF belong to no revision",
                    bytes.len() - last.end
                ));
            }
        }
    }
    let revisions = ends.len().max(1);
    let found = fields::signature_fields(&doc);
    let mut signatures: Vec<(PdfSignatureReport, &lopdf::Dictionary)> = found
        .iter()
        .map(|f| (signature::check(bytes, &ends, f, anchors), &f.sig))
        .collect();
    signatures.sort_by_key(|(s, _)| (s.revision, s.byte_range.get(1).copied()));
    if signatures.is_empty() {
        problems.push("no signed signature field".into());
    }
    let first = signatures
        .iter()
        .map(|(s, _)| s.revision)
        .filter(|&r| r > 0)
        .min();
    let changes = match first {
        Some(first) => {
            // Each revision from the first signed one on is read once: within a budget, each
            // read counting its bytes and what its object streams may inflate to.
            let inflated = usize::try_from(inflated).unwrap_or(usize::MAX);
            let cost: usize = ends[first - 1..]
                .iter()
                .map(|e| e.end.saturating_add(inflated))
                .fold(0, usize::saturating_add);
            if cost > budget {
                problems.push(format!(
                    "too many revisions to compare: the {} revision(s) after revision {first} \
                     would mean re-reading {cost} bytes (at most {budget})",
                    ends.len() - first,
                ));
                None
            } else {
                Some(revision_changes(bytes, &ends, first, &doc, &mut signatures))
            }
        }
        None => Some(Vec::new()),
    };
    copies(&mut signatures);
    let mut signatures: Vec<PdfSignatureReport> = signatures.into_iter().map(|(s, _)| s).collect();
    for s in &mut signatures {
        if s.revision == 0 {
            continue;
        }
        let count = ends.len().saturating_sub(s.revision);
        let Some(changes) = &changes else {
            if count > 0 {
                let text = "not compared (too many revisions to compare)".to_string();
                s.checks.push(format!("{LATER_CHANGES} {text}"));
                s.valid = false;
                s.changes_after = ChangesAfter::ContentChanged {
                    revisions: count,
                    changes: vec![text],
                };
            }
            continue;
        };
        let later: Vec<&(usize, Vec<String>)> =
            changes.iter().filter(|(r, _)| *r > s.revision).collect();
        let list: Vec<String> = later
            .iter()
            .flat_map(|(r, list)| list.iter().map(move |c| format!("revision {r}: {c}")))
            .collect();
        s.changes_after = if count == 0 {
            ChangesAfter::None
        } else if list.is_empty() {
            s.checks.push(format!(
                "ok: the {count} later revision(s) change annotations, form fields or signatures only"
            ));
            ChangesAfter::AnnotationsOnly { revisions: count }
        } else {
            s.checks
                .push(format!("{LATER_CHANGES} {}", list.join("; ")));
            s.valid = false;
            ChangesAfter::ContentChanged {
                revisions: count,
                changes: list,
            }
        };
    }
    let valid = problems.is_empty() && signatures.iter().all(|s| s.valid);
    Ok(PdfReport {
        valid,
        revisions,
        pages: u32::try_from(doc.get_pages().len()).unwrap_or(u32::MAX),
        signatures,
        problems,
    })
}

/// Most bytes re-read to compare revisions: 4 × the file, at least 512 MiB.
fn reparse_budget(len: usize) -> usize {
    len.saturating_mul(4).max(512 << 20)
}

/// For each revision after `first` (1-based), what it changes beyond annotations; checks on
/// the way each signature's dictionary against the revision it signs.
fn revision_changes(
    bytes: &[u8],
    ends: &[load::RevisionEnd],
    first: usize,
    last: &lopdf::Document,
    signatures: &mut [(PdfSignatureReport, &lopdf::Dictionary)],
) -> Vec<(usize, Vec<String>)> {
    let load = |r: usize| lopdf::Document::load_mem(&bytes[..ends[r - 1].end]);
    // The last revision's dictionaries by `/Contents`, to find each signature's.
    let mut by_contents: HashMap<&[u8], Vec<lopdf::ObjectId>> = HashMap::new();
    for (&id, o) in &last.objects {
        if let lopdf::Object::Dictionary(d) = o {
            if let Ok(lopdf::Object::String(c, _)) = d.get(b"Contents") {
                by_contents.entry(c.as_slice()).or_default().push(id);
            }
        }
    }
    let mut out = Vec::new();
    let mut prev: Option<lopdf::Document> = None;
    for r in first..=ends.len() {
        let next = load(r).ok();
        for (s, sig) in signatures.iter_mut().filter(|(s, _)| s.revision == r) {
            let a = s.byte_range.get(1).copied().unwrap_or(0);
            let a = usize::try_from(a).unwrap_or(usize::MAX);
            let candidates = match sig.get(b"Contents") {
                Ok(lopdf::Object::String(c, _)) => by_contents.get(c.as_slice()),
                _ => None,
            };
            let candidates = candidates.map_or(&[][..], Vec::as_slice);
            match signed_dictionary(bytes, a, next.as_ref(), last, candidates, sig) {
                Ok(id) => s.checks.push(format!(
                    "ok: the signature dictionary ({} {}) is defined in the signed bytes and \
                     unchanged since",
                    id.0, id.1
                )),
                Err(e) => {
                    s.checks.push(format!("FAILED: {e}"));
                    s.valid = false;
                }
            }
        }
        if r > first {
            let mut list = match (&prev, &next) {
                (Some(a), Some(b)) => changes::content_changes(a, b),
                (None, _) => vec!["the revision before it cannot be read".into()],
                (_, None) => vec!["it cannot be read".into()],
            };
            if let Some(doc) = &next {
                let (start, eof) = (ends[r - 2].end, ends[r - 1].eof);
                let startxref = load::after_startxref(&bytes[eof.saturating_sub(5 + 64)..eof - 5]);
                list.extend(bodies::unlisted(bytes, start, eof, startxref, doc));
            }
            out.push((r, list));
        }
        prev = next;
    }
    out
}

/// The signature dictionary `sig` (as the last revision has it) must be an indirect object
/// whose `N G obj` lies in the first signed piece (before byte `a`), the same in the revision
/// it signs (`signed`) and in the last one.
fn signed_dictionary(
    bytes: &[u8],
    a: usize,
    signed: Option<&lopdf::Document>,
    last: &lopdf::Document,
    candidates: &[lopdf::ObjectId],
    sig: &lopdf::Dictionary,
) -> Result<lopdf::ObjectId, String> {
    use lopdf::xref::XrefEntry;
    let Some(signed) = signed else {
        return Err("the revision it signs cannot be read".into());
    };
    let is_sig = |o: &lopdf::Object| matches!(o, lopdf::Object::Dictionary(d) if d == sig);
    let ids: Vec<lopdf::ObjectId> = candidates
        .iter()
        .copied()
        .filter(|id| last.objects.get(id).is_some_and(is_sig))
        .collect();
    if ids.is_empty() {
        return Err("the signature dictionary is not an indirect object".into());
    }
    // Where `id` is defined: `N G obj` at its offset, or inside an object stream whose own
    // `N G obj` is there.
    let defined_at = |id: lopdf::ObjectId| {
        let (num, generation) = match signed.reference_table.get(id.0)? {
            XrefEntry::Normal { generation, .. } if *generation == id.1 => (id.0, id.1),
            XrefEntry::Compressed { container, .. } => (*container, 0),
            _ => return None,
        };
        let XrefEntry::Normal { offset, .. } = signed.reference_table.get(num)? else {
            return None;
        };
        let at = usize::try_from(*offset).ok()?;
        let header = format!("{num} {generation} obj");
        bytes
            .get(at..)?
            .starts_with(header.as_bytes())
            .then_some(at)
    };
    let (mut unchanged, mut changed) = (false, false);
    for &id in &ids {
        match signed.objects.get(&id) {
            Some(o) if is_sig(o) => unchanged = true,
            Some(_) => {
                changed = true;
                continue;
            }
            None => continue,
        }
        if defined_at(id).is_some_and(|at| at < a) {
            return Ok(id);
        }
    }
    Err(if unchanged {
        "the signature dictionary is not defined in the bytes it signs".into()
    } else if !changed {
        "the signature dictionary was added after the revision it signs".into()
    } else {
        "the signature dictionary was changed after signing (it differs from the revision \
         it signs)"
            .into()
    })
}

/// A signature whose `/Contents` another one (earlier, or one whose dictionary checks
/// passed) already has is a copy: invalid, and said so.
fn copies(signatures: &mut [(PdfSignatureReport, &lopdf::Dictionary)]) {
    let contents = |d: &lopdf::Dictionary| match d.get(b"Contents") {
        Ok(lopdf::Object::String(s, _)) => Some(s.clone()),
        _ => None,
    };
    let defined = |s: &PdfSignatureReport| {
        s.checks
            .iter()
            .any(|c| c.starts_with("ok: the signature dictionary ("))
    };
    let mut groups: std::collections::HashMap<Vec<u8>, Vec<usize>> =
        std::collections::HashMap::new();
    for (i, (_, d)) in signatures.iter().enumerate() {
        if let Some(c) = contents(d) {
            groups.entry(c).or_default().push(i);
        }
    }
    let mut groups: Vec<Vec<usize>> = groups.into_values().filter(|g| g.len() > 1).collect();
    groups.sort();
    for same in groups {
        let original = same
            .iter()
            .copied()
            .find(|&j| defined(&signatures[j].0))
            .unwrap_or(same[0]);
        let field = signatures[original].0.field.clone();
        for i in same.into_iter().filter(|&i| i != original) {
            let s = &mut signatures[i].0;
            s.checks
                .push(format!("FAILED: it copies the signature of field {field}"));
            s.valid = false;
        }
    }
}
