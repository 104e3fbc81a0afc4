//! What an incremental update changes: the objects that differ between two revisions,
//! classified as annotation-level (annotations, form fields, signatures, their appearances,
//! AcroForm, DSS, metadata, document info) or as changes to what a signer saw.

use std::collections::{BTreeMap, HashSet};

use lopdf::{Dictionary, Document, Object, ObjectId};

use super::fields::page_numbers;

/// Catalog entries an update may change without touching what a signer saw.
const CATALOG_FREE: [&[u8]; 5] = [b"AcroForm", b"DSS", b"Metadata", b"Extensions", b"Version"];

/// Annotation subtypes (ISO 32000-2 §12.5.6).
const ANNOT_SUBTYPES: [&[u8]; 27] = [
    b"Text",
    b"Link",
    b"FreeText",
    b"Line",
    b"Square",
    b"Circle",
    b"Polygon",
    b"PolyLine",
    b"Highlight",
    b"Underline",
    b"Squiggly",
    b"StrikeOut",
    b"Caret",
    b"Stamp",
    b"Ink",
    b"Popup",
    b"FileAttachment",
    b"Sound",
    b"Movie",
    b"Screen",
    b"Widget",
    b"PrinterMark",
    b"TrapNet",
    b"Watermark",
    b"3D",
    b"Redact",
    b"RichMedia",
];

fn name<'a>(d: &'a Dictionary, key: &[u8]) -> Option<&'a [u8]> {
    d.get(key).and_then(Object::as_name).ok()
}

fn dict(obj: &Object) -> Option<&Dictionary> {
    match obj {
        Object::Dictionary(d) => Some(d),
        Object::Stream(s) => Some(&s.dict),
        _ => None,
    }
}

fn id_text(id: ObjectId) -> String {
    format!("{} {}", id.0, id.1)
}

/// What is known about the older revision's objects.
struct Roles {
    /// Page objects and their numbers.
    pages: BTreeMap<ObjectId, u32>,
    /// Content streams (and content arrays) of pages.
    contents: BTreeMap<ObjectId, u32>,
    /// Appearance streams of annotations, and indirect `/Annots` and `/Fields` arrays,
    /// AcroForm, DSS and document info: objects an annotation-level update may replace.
    free: HashSet<ObjectId>,
    /// Every object referred to (to catch an update that fills in a missing object).
    referenced: HashSet<ObjectId>,
}

fn refs_in(obj: &Object, out: &mut Vec<ObjectId>, depth: usize) {
    if depth > 32 {
        return;
    }
    match obj {
        Object::Reference(id) => out.push(*id),
        Object::Array(a) => a.iter().for_each(|o| refs_in(o, out, depth + 1)),
        Object::Dictionary(d) => d.iter().for_each(|(_, o)| refs_in(o, out, depth + 1)),
        _ => {}
    }
}

/// Every object reachable from the pages but through `/Parent`, `/Annots` and `/P`:
/// content streams, resources, fonts, images, form XObjects.
fn shown(doc: &Document, pages: &BTreeMap<ObjectId, u32>) -> HashSet<ObjectId> {
    let mut stack = Vec::new();
    for &page in pages.keys() {
        let mut node = doc.get_dictionary(page).ok();
        let mut first = true;
        // The page's own entries, then what it inherits from its ancestors.
        for _ in 0..32 {
            let Some(d) = node else { break };
            for (k, v) in d.iter() {
                let skip = matches!(k.as_slice(), b"Parent" | b"Annots" | b"P" | b"Kids");
                if !skip && (first || k.as_slice() == b"Resources") {
                    refs_in(v, &mut stack, 0);
                }
            }
            first = false;
            node = d
                .get(b"Parent")
                .and_then(Object::as_reference)
                .and_then(|p| doc.get_dictionary(p))
                .ok();
        }
    }
    let mut seen = HashSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        match doc.objects.get(&id) {
            Some(Object::Stream(st)) => st.dict.iter().for_each(|(_, o)| refs_in(o, &mut stack, 1)),
            Some(o) => refs_in(o, &mut stack, 0),
            None => {}
        }
    }
    seen
}

impl Roles {
    fn of(doc: &Document) -> Self {
        let pages = page_numbers(doc);
        let mut contents = BTreeMap::new();
        let mut free = HashSet::new();
        for (&page, &n) in &pages {
            let Ok(d) = doc.get_dictionary(page) else {
                continue;
            };
            if let Ok(c) = d.get(b"Contents") {
                let mut ids = Vec::new();
                refs_in(c, &mut ids, 0);
                if let Ok(Object::Array(list)) = c.as_reference().and_then(|r| doc.get_object(r)) {
                    list.iter().for_each(|o| refs_in(o, &mut ids, 0));
                }
                contents.extend(ids.into_iter().map(|id| (id, n)));
            }
            if let Ok(Object::Reference(a)) = d.get(b"Annots") {
                free.insert(*a);
            }
        }
        let mut referenced = Vec::new();
        for obj in doc.objects.values() {
            refs_in(obj, &mut referenced, 0);
            if let Object::Stream(s) = obj {
                s.dict
                    .iter()
                    .for_each(|(_, o)| refs_in(o, &mut referenced, 1));
            }
            if dict(obj).is_some_and(is_annotation) {
                if let Some(ap) = dict(obj).and_then(|d| d.get(b"AP").ok()) {
                    let mut ids = Vec::new();
                    refs_in(ap, &mut ids, 0);
                    free.extend(ids);
                }
            }
        }
        if let Ok(catalog) = doc.catalog() {
            for key in CATALOG_FREE {
                if let Ok(Object::Reference(id)) = catalog.get(key) {
                    free.insert(*id);
                }
            }
            if let Ok(af) = catalog.get(b"AcroForm") {
                if let Ok((_, Object::Dictionary(af))) = doc.dereference(af) {
                    for key in [b"Fields".as_slice(), b"DR"] {
                        if let Ok(Object::Reference(id)) = af.get(key) {
                            free.insert(*id);
                        }
                    }
                }
            }
        }
        if let Ok(Object::Reference(info)) = doc.trailer.get(b"Info") {
            free.insert(*info);
        }
        // What pages show is never free, even when an annotation uses it too.
        for id in shown(doc, &pages) {
            free.remove(&id);
        }
        Self {
            pages,
            contents,
            free,
            referenced: referenced.into_iter().collect(),
        }
    }
}

fn is_annotation(d: &Dictionary) -> bool {
    name(d, b"Type") == Some(b"Annot")
        || name(d, b"Subtype").is_some_and(|s| ANNOT_SUBTYPES.contains(&s)) && d.has(b"Rect")
}

/// Annotations, form fields, signature dictionaries, metadata, DSS: objects that do not change
/// what a page shows.
fn is_annotation_level(d: &Dictionary) -> bool {
    let t = name(d, b"Type");
    is_annotation(d)
        || d.has(b"FT")
        || (d.has(b"T") && (d.has(b"Kids") || d.has(b"Parent")))
        || matches!(
            t,
            Some(b"Sig" | b"DocTimeStamp" | b"Metadata" | b"DSS" | b"SigRef")
        )
        || d.has(b"ByteRange")
}

fn is_structural(d: &Dictionary) -> bool {
    matches!(name(d, b"Type"), Some(b"XRef" | b"ObjStm"))
}

/// The keys whose values differ between two dictionaries, but `ignored`.
fn differing_keys(old: &Dictionary, new: &Dictionary, ignored: &[&[u8]]) -> Vec<String> {
    let mut keys: Vec<&Vec<u8>> = old.iter().map(|(k, _)| k).collect();
    keys.extend(new.iter().map(|(k, _)| k).filter(|k| !old.has(k)));
    keys.into_iter()
        .filter(|k| !ignored.contains(&k.as_slice()))
        .filter(|k| old.get(k).ok() != new.get(k).ok())
        .map(|k| format!("/{}", String::from_utf8_lossy(k)))
        .collect()
}

fn same(old: &Object, new: &Object) -> bool {
    match (old, new) {
        (Object::Stream(a), Object::Stream(b)) => a.dict == b.dict && a.content == b.content,
        (a, b) => a == b,
    }
}

/// What one changed object is, in words, when the change matters.
fn describe(id: ObjectId, old: &Object, new: &Object, roles: &Roles) -> Option<String> {
    let o = dict(old);
    let n = dict(new);
    if o.is_some_and(is_structural) || n.is_some_and(is_structural) {
        return None;
    }
    if roles.free.contains(&id) {
        return None;
    }
    if o.is_some_and(is_annotation_level) && n.is_none_or(is_annotation_level) {
        return None;
    }
    if let Some(&page) = roles.pages.get(&id) {
        let keys = match (o, n) {
            (Some(o), Some(n)) => differing_keys(o, n, &[b"Annots"]),
            _ => vec!["the page object".into()],
        };
        return (!keys.is_empty())
            .then(|| format!("page {page} ({} 0): {} changed", id.0, keys.join(", ")));
    }
    if let Some(&page) = roles.contents.get(&id) {
        return Some(format!(
            "page {page} content stream {} replaced",
            id_text(id)
        ));
    }
    let what = match (
        o.and_then(|d| name(d, b"Type")),
        o.and_then(|d| name(d, b"Subtype")),
    ) {
        (Some(b"Pages"), _) => "page tree node",
        (Some(b"Font"), _) | (_, Some(b"Type1" | b"TrueType" | b"Type0" | b"Type3")) => "font",
        (Some(b"FontDescriptor"), _) => "font descriptor",
        (_, Some(b"Image")) => "image",
        (_, Some(b"Form")) => "form XObject",
        (Some(b"ExtGState"), _) => "graphics state",
        _ if matches!(old, Object::Stream(_)) => "stream",
        _ => "object",
    };
    Some(format!("{what} {} changed", id_text(id)))
}

/// What the update from `old` to `new` changes beyond annotations, in words (empty: nothing).
pub(super) fn content_changes(old: &Document, new: &Document) -> Vec<String> {
    let roles = Roles::of(old);
    let mut out = Vec::new();
    let old_root = old.trailer.get(b"Root").and_then(Object::as_reference).ok();
    let new_root = new.trailer.get(b"Root").and_then(Object::as_reference).ok();
    match (old.catalog(), new.catalog()) {
        (Ok(a), Ok(b)) => {
            let keys = differing_keys(a, b, &CATALOG_FREE);
            if !keys.is_empty() {
                out.push(format!("document catalog: {} changed", keys.join(", ")));
            }
        }
        _ => out.push("the document catalog cannot be read".into()),
    }
    for (&id, new_obj) in &new.objects {
        if Some(id) == old_root || Some(id) == new_root {
            continue;
        }
        // Objects new in this update are reachable only through changed ones, judged here.
        let Some(old_obj) = old.objects.get(&id) else {
            if roles.referenced.contains(&id) && !dict(new_obj).is_some_and(is_annotation_level) {
                out.push(format!(
                    "object {} added where the earlier revision referred to a missing one",
                    id_text(id)
                ));
            }
            continue;
        };
        if same(old_obj, new_obj) {
            continue;
        }
        out.extend(describe(id, old_obj, new_obj, &roles));
    }
    for (&id, old_obj) in &old.objects {
        if new.objects.contains_key(&id) || Some(id) == old_root {
            continue;
        }
        if let Some(text) = describe(id, old_obj, &Object::Null, &roles) {
            out.push(format!("{text} (removed)"));
        }
    }
    out
}
