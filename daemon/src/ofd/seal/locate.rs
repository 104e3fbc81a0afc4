//! Finding one's way in the package before sealing: the document through `OFD.xml`
//! (`DocBody/DocRoot`, never an assumed `Doc_0`), its pages and templates from `Document.xml`,
//! the signature list through `DocBody/Signatures`, and the existing signatures (whether one
//! locks the document, which IDs are taken). Locations may be absolute or relative.
//!
//! What sealing reads or edits in `OFD.xml` (`DocBody`, and in the first one `DocRoot` and
//! `Signatures`) and in the signature list (`MaxSignId`, `Signature`) must be in its file's
//! root namespace (`http://www.ofdspec.org/2016`, another, or none, as the root has it) and
//! appear at most once where one is taken: otherwise readers matching names or picking
//! elements differently would see another document than the one checked and edited. The
//! verifier ([`crate::ofd::xml`]) stays lenient.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek};

use super::SealError;
use crate::ofd::package::{parent, Package, ReadError, MAX_MEMBER, MAX_TOTAL};
use crate::ofd::references::check_references;
use crate::ofd::xml::{self, parse, parse_box};

/// One page of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PageLoc {
    /// The page's object ID (`StampAnnot@PageRef`).
    pub id: String,
    /// Its content member.
    pub content: String,
}

/// The signature list as found.
#[derive(Debug, Clone)]
pub(super) struct SignatureList {
    /// Its member name.
    pub member: String,
    /// Its bytes, when the member exists (an `OFD.xml` may name a list that is not there).
    pub bytes: Option<Vec<u8>>,
}

/// What the package says about the document, as far as sealing needs.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    /// The bytes of `OFD.xml`.
    pub ofd_xml: Vec<u8>,
    /// Its directory (`""` at the package root).
    pub doc_dir: String,
    /// The pages, in document order.
    pub pages: Vec<PageLoc>,
    /// `CommonData/PageArea/PhysicalBox` width and height, if given.
    pub page_area: Option<(f64, f64)>,
    /// `CommonData/TemplatePage` IDs and their content members.
    pub templates: BTreeMap<String, String>,
    /// The signature list named by `OFD.xml`, if it names one.
    pub list: Option<SignatureList>,
    /// The largest number in any existing signature or stamp ID (and `MaxSignId`).
    pub max_id: u64,
    /// Every existing signature and stamp ID, as written.
    pub ids: BTreeSet<String>,
    /// Each existing signature's ID, `CheckMethod` and References.
    pub existing: Vec<(String, Option<String>, Vec<xml::ReferenceEntry>)>,
}

fn structure(what: impl Into<String>) -> SealError {
    SealError::Structure(what.into())
}

fn read<R: Read + Seek>(
    p: &mut Package<R>,
    member: &str,
    what: &str,
) -> Result<Vec<u8>, SealError> {
    p.read(member).map_err(|e| match e {
        ReadError::Missing(_) => structure(format!("{what} /{member} is missing from the package")),
        other => SealError::Read(other),
    })
}

/// The number at the end of an ID (`s006` → 6, `12` → 12).
pub(super) fn id_number(id: &str) -> Option<u64> {
    let digits = id.len() - id.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    id[id.len() - digits..].parse().ok()
}

fn package_error(what: String) -> SealError {
    SealError::Package(crate::ofd::OfdError::Package(what))
}

/// Checks the zip entries before sealing: no absolute name (`/x`, `C:/x`; the reader
/// tolerates a leading `/`, a sealed package must not carry one on), and no member declaring
/// more than the read caps, so that a zip bomb is refused before anything is inflated (reads
/// stay bounded anyway, for archives that lie about their sizes).
pub(super) fn check_entries<R: Read + Seek>(p: &mut Package<R>) -> Result<(), SealError> {
    let zip = p.archive();
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(crate::ofd::OfdError::Zip)?;
        let name = entry.name();
        let drive = name.len() >= 2
            && name.as_bytes()[1] == b':'
            && name.as_bytes()[0].is_ascii_alphabetic();
        if name.starts_with('/') || drive {
            return Err(package_error(format!(
                "member name {name:?} is an absolute path"
            )));
        }
        let size = entry.size();
        if size > MAX_MEMBER {
            return Err(package_error(format!(
                "member {name} would inflate to {size} bytes (at most {MAX_MEMBER}): refused as a possible zip bomb"
            )));
        }
        total = total.saturating_add(size);
    }
    if total > MAX_TOTAL {
        return Err(package_error(format!(
            "the members would inflate to {total} bytes in all (at most {MAX_TOTAL}): refused as a possible zip bomb"
        )));
    }
    Ok(())
}

/// The elements of `parent` with the local name `local`, refused when one is in another
/// namespace than `ns` (the namespace of its file's root element) or there are more than
/// `most`: readers that match names differently, or take the last rather than the first, would
/// then see another document than the one seald checks and edits.
fn only_children<'a, 'i>(
    parent: roxmltree::Node<'a, 'i>,
    local: &str,
    ns: Option<&str>,
    most: usize,
    within: &str,
) -> Result<Vec<roxmltree::Node<'a, 'i>>, String> {
    let found: Vec<_> = parent
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == local)
        .collect();
    for n in &found {
        let own = n.tag_name().namespace();
        if own != ns {
            let name = |ns: Option<&str>| {
                ns.map_or("no namespace".to_string(), |u| format!("namespace {u:?}"))
            };
            return Err(format!(
                "{within} has a {local} element in {} while the file's root is in {}: readers could take it or not, so seald refuses to seal it",
                name(own),
                name(ns)
            ));
        }
    }
    if found.len() > most {
        return Err(format!(
            "{within} has {} {local} elements: readers could take different ones, so seald refuses to seal it",
            found.len()
        ));
    }
    Ok(found)
}

/// Refuses an `OFD.xml` that readers could read differently in what sealing uses: a
/// `DocBody` (any of them) outside the root's namespace, or in the first `DocBody` (the one
/// sealed) a `DocRoot` or `Signatures` outside it or repeated.
fn check_ofd_xml(bytes: &[u8]) -> Result<(), String> {
    let doc = parse(bytes)?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace();
    let bodies = only_children(root, "DocBody", ns, usize::MAX, "OFD.xml")?;
    if let Some(body) = bodies.first() {
        only_children(*body, "DocRoot", ns, 1, "OFD.xml DocBody")?;
        only_children(*body, "Signatures", ns, 1, "OFD.xml DocBody")?;
    }
    Ok(())
}

/// Refuses a signature list that readers could read differently: a `MaxSignId` repeated (only
/// one would be updated) or, like any `Signature`, outside the root's namespace.
fn check_list(bytes: &[u8]) -> Result<(), String> {
    let doc = parse(bytes)?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace();
    only_children(root, "MaxSignId", ns, 1, "the signature list")?;
    only_children(root, "Signature", ns, usize::MAX, "the signature list")?;
    Ok(())
}

/// `Document.xml`'s page area (width, height) and template pages (ID, BaseLoc).
type CommonData = (Option<(f64, f64)>, Vec<(String, String)>);

/// Reads `Document.xml`'s `CommonData`.
fn common_data(bytes: &[u8]) -> Result<CommonData, String> {
    let doc = parse(bytes)?;
    let mut area = None;
    let mut templates = Vec::new();
    let root = doc.root_element();
    let el =
        |n: &roxmltree::Node<'_, '_>, name: &str| n.is_element() && n.tag_name().name() == name;
    if let Some(common) = root.children().find(|n| el(n, "CommonData")) {
        for c in common.children() {
            if el(&c, "PageArea") {
                area = c
                    .children()
                    .find(|n| el(n, "PhysicalBox"))
                    .and_then(|b| parse_box(b.text().unwrap_or("")).ok())
                    .filter(|b| b[2] > 0.0 && b[3] > 0.0)
                    .map(|b| (b[2], b[3]));
            } else if el(&c, "TemplatePage") {
                if let (Some(id), Some(loc)) = (c.attribute("ID"), c.attribute("BaseLoc")) {
                    templates.push((id.trim().to_string(), loc.trim().to_string()));
                }
            }
        }
    }
    Ok((area, templates))
}

impl Layout {
    /// Reads `OFD.xml`, `Document.xml`, the signature list and every listed `Signature.xml`;
    /// refuses a document an existing signature locks (its References cover the list).
    pub fn read<R: Read + Seek>(p: &mut Package<R>) -> Result<Self, SealError> {
        if !p.contains("OFD.xml") {
            return Err(structure(
                "the package has no /OFD.xml: it is not an OFD document",
            ));
        }
        let ofd_xml = read(p, "OFD.xml", "the entry file")?;
        check_ofd_xml(&ofd_xml).map_err(|e| structure(format!("/OFD.xml: {e}")))?;
        let entry =
            xml::read_ofd_entry(&ofd_xml).map_err(|e| structure(format!("/OFD.xml: {e}")))?;
        let doc_root = p
            .locate("", &entry.doc_root)
            .map_err(|e| structure(format!("OFD.xml DocRoot: {e}")))?;
        let doc_dir = parent(&doc_root).to_string();
        let document = read(p, &doc_root, "the document root (DocRoot)")?;
        let entries =
            xml::read_pages(&document).map_err(|e| structure(format!("/{doc_root}: {e}")))?;
        if entries.is_empty() {
            return Err(structure(format!("/{doc_root} lists no pages")));
        }
        let mut seen = BTreeSet::new();
        let mut pages = Vec::with_capacity(entries.len());
        for (i, e) in entries.into_iter().enumerate() {
            if !seen.insert(e.id.clone()) {
                return Err(structure(format!(
                    "two pages of /{doc_root} have the ID {:?}",
                    e.id
                )));
            }
            let content = p
                .locate(&doc_dir, &e.base_loc)
                .map_err(|err| structure(format!("page {} BaseLoc: {err}", i + 1)))?;
            pages.push(PageLoc { id: e.id, content });
        }
        let (page_area, tpls) =
            common_data(&document).map_err(|e| structure(format!("/{doc_root}: {e}")))?;
        let mut templates = BTreeMap::new();
        for (id, loc) in tpls {
            if let Ok(m) = p.locate(&doc_dir, &loc) {
                templates.insert(id, m);
            }
        }
        let mut layout = Layout {
            ofd_xml,
            doc_dir,
            pages,
            page_area,
            templates,
            list: None,
            max_id: 0,
            ids: BTreeSet::new(),
            existing: Vec::new(),
        };
        if let Some(loc) = &entry.signatures {
            let member = p
                .locate("", loc)
                .map_err(|e| structure(format!("OFD.xml Signatures: {e}")))?;
            let bytes = if p.contains(&member) {
                Some(read(p, &member, "the signature list")?)
            } else {
                None
            };
            layout.list = Some(SignatureList { member, bytes });
            layout.read_signatures(p)?;
        }
        Ok(layout)
    }

    /// Reads the existing signatures: taken IDs, and whether one locks the document.
    fn read_signatures<R: Read + Seek>(&mut self, p: &mut Package<R>) -> Result<(), SealError> {
        let Some(SignatureList {
            member: list,
            bytes: Some(bytes),
        }) = self.list.clone()
        else {
            return Ok(());
        };
        check_list(&bytes).map_err(|e| structure(format!("/{list}: {e}")))?;
        let (max_sign_id, _) =
            super::xmlout::list_facts(&bytes).map_err(|e| structure(format!("/{list}: {e}")))?;
        if let Some(n) = max_sign_id.as_deref().and_then(id_number) {
            self.max_id = self.max_id.max(n);
        }
        let entries =
            xml::read_signature_list(&bytes).map_err(|e| structure(format!("/{list}: {e}")))?;
        let list_dir = parent(&list).to_string();
        for e in entries {
            self.note_id(&e.id);
            let member = p
                .locate(&list_dir, &e.base_loc)
                .map_err(|err| structure(format!("signature {:?} BaseLoc: {err}", e.id)))?;
            let sig_bytes = p.read(&member).map_err(|err| {
                structure(format!(
                    "signature {:?}: {err}; seald cannot tell whether it allows further seals",
                    e.id
                ))
            })?;
            let sig = xml::read_signature(&sig_bytes).map_err(|err| {
                structure(format!(
                    "signature {:?} (/{member}): {err}; seald cannot tell whether it allows further seals",
                    e.id
                ))
            })?;
            for s in &sig.stamps {
                self.note_id(&s.id);
            }
            let locks = sig
                .references
                .iter()
                .any(|r| p.locate(&self.doc_dir, &r.file_ref).as_deref() == Ok(list.as_str()));
            if locks {
                return Err(SealError::Locked(e.id));
            }
            self.existing.push((e.id, sig.check_method, sig.references));
        }
        Ok(())
    }

    /// Refuses a document whose existing signatures no longer match it (a member they protect
    /// was changed or removed): sealed now, it would verify as INVALID as a whole. Reads the
    /// members those signatures reference; a signature whose digest seald does not know is
    /// not checked.
    pub fn check_existing_references<R: Read + Seek>(
        &self,
        p: &mut Package<R>,
    ) -> Result<(), SealError> {
        for (id, method, refs) in &self.existing {
            let report = check_references(p, &self.doc_dir, method.as_deref(), refs);
            if report.method.is_none() {
                continue;
            }
            let failed: Vec<String> = report.failed().map(|f| f.reason.clone()).collect();
            if !failed.is_empty() {
                return Err(structure(format!(
                    "the existing signature {id:?} no longer matches the document ({}): a seal added now would be part of a document that verifies as INVALID",
                    failed.join("; ")
                )));
            }
        }
        Ok(())
    }

    fn note_id(&mut self, id: &str) {
        if let Some(n) = id_number(id) {
            self.max_id = self.max_id.max(n);
        }
        if !id.is_empty() {
            self.ids.insert(id.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers() {
        assert_eq!(id_number("s006"), Some(6));
        assert_eq!(id_number("12"), Some(12));
        assert_eq!(id_number("s4"), Some(4));
        assert_eq!(id_number("abc"), None);
        assert_eq!(id_number(""), None);
    }
}
