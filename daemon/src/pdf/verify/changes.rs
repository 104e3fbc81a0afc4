//! What an incremental update changes: the objects that differ between two revisions,
//! classified as annotation-level or as changes to what a signer saw.
//!
//! Roles come from how the signed revision reaches an object, never from what the object
//! says it is: pages, page tree nodes, page contents and everything their entries and
//! `/Resources` reach ("shown") are content; then the annotations, form fields and signature
//! dictionaries of the signed revision and what they reach (appearance streams first) may
//! not change either. Only then are added annotations, fields and signatures, the `/Annots`
//! and `/Fields` arrays, AcroForm (but `/XFA`, `/NeedAppearances`), DSS, metadata and
//! document info free. Cross-reference and object streams are skipped only when nothing
//! refers to them. A signed revision certified with DocMDP `/P 1` allows no update.

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

/// What is known about the older revision's objects. Roles follow from how objects are
/// reached (the page tree, a page's `/Contents` and `/Resources`, `/Annots`, the AcroForm
/// field tree), never from what an object says it is.
struct Roles {
    /// Page objects and their numbers.
    pages: BTreeMap<ObjectId, u32>,
    /// Page tree nodes (`/Pages`, with `/Kids`).
    tree: HashSet<ObjectId>,
    /// Content streams (and content arrays) of pages.
    contents: BTreeMap<ObjectId, u32>,
    /// Everything the pages draw with: the closure of their entries but `/Annots`, `/Parent`.
    shown: HashSet<ObjectId>,
    /// Annotations, form fields, signature dictionaries and everything they refer to (their
    /// appearance streams first): the role of each, in words ("the appearance of
    /// annotation 14 0").
    signed_annots: BTreeMap<ObjectId, String>,
    /// Indirect `/Annots` and `/Fields` arrays, AcroForm, DSS, metadata and document info:
    /// objects an annotation-level update may replace.
    free: HashSet<ObjectId>,
    /// Every object referred to (to catch an update that fills in a missing object).
    referenced: HashSet<ObjectId>,
    /// Each page's annotations (an update may add annotations, not remove them).
    annots: BTreeMap<ObjectId, Vec<ObjectId>>,
    /// The AcroForm's top-level fields.
    fields: Vec<ObjectId>,
}

fn refs_in(obj: &Object, out: &mut Vec<ObjectId>, depth: usize) {
    if depth > 32 {
        return;
    }
    match obj {
        Object::Reference(id) => out.push(*id),
        Object::Array(a) => a.iter().for_each(|o| refs_in(o, out, depth + 1)),
        Object::Dictionary(d) => d.iter().for_each(|(_, o)| refs_in(o, out, depth + 1)),
        Object::Stream(s) => s.dict.iter().for_each(|(_, o)| refs_in(o, out, depth + 1)),
        _ => {}
    }
}

/// The objects reachable from `stack` (missing ones included), not expanding through
/// `stop`.
fn closure(doc: &Document, stack: Vec<ObjectId>, stop: &dyn Fn(ObjectId) -> bool) -> Vec<ObjectId> {
    closure_from(doc, stack, stop, &mut HashSet::new())
}

/// [`closure`], skipping (and adding to) `seen`.
fn closure_from(
    doc: &Document,
    mut stack: Vec<ObjectId>,
    stop: &dyn Fn(ObjectId) -> bool,
    seen: &mut HashSet<ObjectId>,
) -> Vec<ObjectId> {
    let mut out = Vec::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        out.push(id);
        if stop(id) {
            continue;
        }
        if let Some(o) = doc.objects.get(&id) {
            refs_in(o, &mut stack, 0);
        }
    }
    out
}

/// The references in an array that is direct or indirect.
fn array_refs(doc: &Document, obj: &Object) -> Vec<ObjectId> {
    let list = match obj {
        Object::Reference(id) => doc.objects.get(id),
        o => Some(o),
    };
    match list {
        Some(Object::Array(a)) => a.iter().filter_map(|o| o.as_reference().ok()).collect(),
        _ => Vec::new(),
    }
}

fn resolved_dict<'a>(doc: &'a Document, obj: &'a Object) -> Option<&'a Dictionary> {
    match obj {
        Object::Reference(id) => doc.objects.get(id).and_then(dict),
        o => dict(o),
    }
}

fn acro_form(doc: &Document) -> Option<&Dictionary> {
    let af = doc.catalog().ok()?.get(b"AcroForm").ok()?;
    resolved_dict(doc, af)
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
    closure(doc, stack, &|_| false).into_iter().collect()
}

/// The page tree's inner nodes, from the catalog's `/Pages`, and their `/Kids` arrays when
/// those are objects of their own.
fn tree_nodes(doc: &Document) -> HashSet<ObjectId> {
    let mut out = HashSet::new();
    let mut stack: Vec<(ObjectId, usize)> = doc
        .catalog()
        .ok()
        .and_then(|c| c.get(b"Pages").ok())
        .and_then(|p| p.as_reference().ok())
        .map(|id| (id, 0))
        .into_iter()
        .collect();
    while let Some((id, depth)) = stack.pop() {
        let Some(kids) = doc
            .objects
            .get(&id)
            .and_then(dict)
            .and_then(|d| d.get(b"Kids").ok())
        else {
            continue;
        };
        if depth > 64 || !out.insert(id) {
            continue;
        }
        if let Object::Reference(array) = kids {
            out.insert(*array);
        }
        stack.extend(array_refs(doc, kids).into_iter().map(|k| (k, depth + 1)));
    }
    out
}

impl Roles {
    fn of(doc: &Document) -> Self {
        let pages = page_numbers(doc);
        let tree = tree_nodes(doc);
        let mut contents = BTreeMap::new();
        let mut free = HashSet::new();
        let mut annots = BTreeMap::new();
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
            if let Ok(a) = d.get(b"Annots") {
                if let Object::Reference(a) = a {
                    free.insert(*a);
                }
                annots.insert(page, array_refs(doc, a));
            }
        }
        let mut referenced = Vec::new();
        for obj in doc.objects.values() {
            refs_in(obj, &mut referenced, 0);
        }
        let catalog_id = doc.trailer.get(b"Root").and_then(Object::as_reference).ok();
        let fields = acro_form(doc)
            .and_then(|af| af.get(b"Fields").ok())
            .map(|f| array_refs(doc, f))
            .unwrap_or_default();
        if let Ok(catalog) = doc.catalog() {
            for key in CATALOG_FREE {
                if let Ok(Object::Reference(id)) = catalog.get(key) {
                    free.insert(*id);
                }
            }
            if let Some(af) = acro_form(doc) {
                for key in [b"Fields".as_slice(), b"DR"] {
                    if let Ok(Object::Reference(id)) = af.get(key) {
                        free.insert(*id);
                    }
                }
            }
        }
        if let Ok(Object::Reference(info)) = doc.trailer.get(b"Info") {
            free.insert(*info);
        }
        let signed_annots = signed_annotations(doc, &pages, &tree, catalog_id, &annots, &fields);
        let shown = shown(doc, &pages);
        // What pages show, the pages and the page tree are never free, even when an annotation
        // or the AcroForm refers to the same object.
        for id in shown
            .iter()
            .chain(pages.keys())
            .chain(&tree)
            .chain(contents.keys())
        {
            free.remove(id);
        }
        Self {
            pages,
            tree,
            contents,
            shown,
            signed_annots,
            free,
            referenced: referenced.into_iter().collect(),
            annots,
            fields,
        }
    }

    /// Whether the pages draw `id` or it is part of the page tree.
    fn displays(&self, id: ObjectId) -> bool {
        self.pages.contains_key(&id)
            || self.tree.contains(&id)
            || self.contents.contains_key(&id)
            || self.shown.contains(&id)
    }
}

/// The annotations, form fields and signature dictionaries of the signed revision and every
/// object they refer to (not through `/P`, `/Parent`, pages or the catalog), with their roles.
fn signed_annotations(
    doc: &Document,
    pages: &BTreeMap<ObjectId, u32>,
    tree: &HashSet<ObjectId>,
    catalog: Option<ObjectId>,
    annots: &BTreeMap<ObjectId, Vec<ObjectId>>,
    fields: &[ObjectId],
) -> BTreeMap<ObjectId, String> {
    let stop = |id: ObjectId| pages.contains_key(&id) || tree.contains(&id) || Some(id) == catalog;
    let mut out: BTreeMap<ObjectId, String> = BTreeMap::new();
    // Seeds: annotations on pages, fields (with their kids), and any object that is an
    // annotation or a signature dictionary by itself.
    let mut seeds: Vec<ObjectId> = annots.values().flatten().copied().collect();
    let mut stack: Vec<(ObjectId, usize)> = fields.iter().map(|&f| (f, 0)).collect();
    let mut seen = HashSet::new();
    while let Some((f, depth)) = stack.pop() {
        if depth > 32 || !seen.insert(f) {
            continue;
        }
        seeds.push(f);
        if let Some(kids) = doc
            .objects
            .get(&f)
            .and_then(dict)
            .and_then(|d| d.get(b"Kids").ok())
        {
            stack.extend(array_refs(doc, kids).into_iter().map(|k| (k, depth + 1)));
        }
    }
    for (&id, obj) in &doc.objects {
        if dict(obj).is_some_and(|d| is_annotation(d) || d.has(b"ByteRange")) {
            seeds.push(id);
        }
    }
    let seed_set: HashSet<ObjectId> = seeds.iter().copied().collect();
    seeds.sort_unstable();
    seeds.dedup();
    let mut visited: HashSet<ObjectId> = seed_set.clone();
    for &seed in &seeds {
        if stop(seed) {
            continue;
        }
        let Some(d) = doc.objects.get(&seed).and_then(dict) else {
            out.entry(seed)
                .or_insert_with(|| format!("annotation {}", id_text(seed)));
            continue;
        };
        let what = if d.has(b"ByteRange") {
            "signature dictionary"
        } else if is_annotation(d) {
            "annotation"
        } else {
            "form field"
        };
        out.insert(seed, format!("{what} {}", id_text(seed)));
        for (k, v) in d.iter() {
            let role = match k.as_slice() {
                b"P" | b"Parent" | b"Kids" | b"Popup" | b"IRT" => continue,
                b"AP" => format!("the appearance of {what} {}", id_text(seed)),
                b"V" => format!("the value of {what} {}", id_text(seed)),
                _ => format!("part of {what} {}", id_text(seed)),
            };
            let mut start = Vec::new();
            refs_in(v, &mut start, 0);
            // Each object is visited once, from the first annotation that reaches it.
            for id in closure_from(doc, start, &stop, &mut visited) {
                if !stop(id) && !seed_set.contains(&id) {
                    out.entry(id).or_insert_with(|| role.clone());
                }
            }
        }
    }
    out
}

fn is_annotation(d: &Dictionary) -> bool {
    name(d, b"Type") == Some(b"Annot")
        || name(d, b"Subtype").is_some_and(|s| ANNOT_SUBTYPES.contains(&s)) && d.has(b"Rect")
}

/// Annotations, form fields, signature dictionaries, metadata, DSS: objects that do not change
/// what a page shows. Only for objects no page, annotation or field of the signed revision
/// reaches (what an object says it is decides nothing else).
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

/// What an object the pages draw is, in words.
fn kind(old: &Object) -> &'static str {
    let o = dict(old);
    match (
        o.and_then(|d| name(d, b"Type")),
        o.and_then(|d| name(d, b"Subtype")),
    ) {
        (Some(b"Font"), _) | (_, Some(b"Type1" | b"TrueType" | b"Type0" | b"Type3")) => "font",
        (Some(b"FontDescriptor"), _) => "font descriptor",
        (_, Some(b"Image")) => "image",
        (_, Some(b"Form")) => "form XObject",
        (Some(b"ExtGState"), _) => "graphics state",
        _ if matches!(old, Object::Stream(_)) => "stream",
        _ => "object",
    }
}

/// What one changed object is, in words, when the change matters. Roles the pages give
/// come first, then the signed annotations', and only then what the object says it is.
fn describe(id: ObjectId, old: &Object, new: &Object, roles: &Roles) -> Option<String> {
    let o = dict(old);
    let n = dict(new);
    if let Some(&page) = roles.pages.get(&id) {
        let keys = match (o, n) {
            (Some(o), Some(n)) => differing_keys(o, n, &[b"Annots"]),
            _ => vec!["the page object".into()],
        };
        return (!keys.is_empty())
            .then(|| format!("page {page} ({} 0): {} changed", id.0, keys.join(", ")));
    }
    if roles.tree.contains(&id) {
        let keys = match (o, n) {
            (Some(o), Some(n)) => differing_keys(o, n, &[]),
            _ => vec!["the node".into()],
        };
        return Some(format!(
            "page tree node {}: {} changed",
            id_text(id),
            keys.join(", ")
        ));
    }
    if let Some(&page) = roles.contents.get(&id) {
        return Some(format!(
            "page {page} content stream {} replaced",
            id_text(id)
        ));
    }
    if roles.shown.contains(&id) {
        return Some(format!("{} {} changed", kind(old), id_text(id)));
    }
    if let Some(role) = roles.signed_annots.get(&id) {
        if let (Object::Dictionary(o), Object::Dictionary(n)) = (old, new) {
            if signs_an_empty_field(o, n) {
                return None;
            }
        }
        let keys = match (o, n) {
            (Some(o), Some(n)) if !matches!(old, Object::Stream(_)) => {
                format!(" ({})", differing_keys(o, n, &[]).join(", "))
            }
            _ => String::new(),
        };
        return Some(format!("{role} changed{keys}"));
    }
    if roles.free.contains(&id) {
        return None;
    }
    // Cross-reference and object streams that nothing refers to are bookkeeping.
    if !roles.referenced.contains(&id)
        && (o.is_some_and(is_structural) || n.is_some_and(is_structural))
    {
        return None;
    }
    if o.is_some_and(is_annotation_level) && n.is_none_or(is_annotation_level) {
        return None;
    }
    let what = match o.and_then(|d| name(d, b"Type")) {
        Some(b"Pages") => "page tree node",
        _ => kind(old),
    };
    Some(format!("{what} {} changed", id_text(id)))
}

/// An unsigned signature field (`/FT /Sig`, no `/V`) that a later signer signed: it gains
/// `/V` and may change its appearance (`/AP`, `/AS`), nothing else. ISO 32000 allows this
/// after a signature (DocMDP `P` 2 and 3 list "signing"), and multi-party documents are made so.
/// The new `/V` must be a reference (to the signature dictionary the verifier then checks as
/// a signature of its own).
fn signs_an_empty_field(old: &Dictionary, new: &Dictionary) -> bool {
    name(old, b"FT") == Some(b"Sig".as_slice())
        && !old.has(b"V")
        && matches!(new.get(b"V"), Ok(Object::Reference(_)))
        && differing_keys(old, new, &[b"V", b"AP", b"AS"]).is_empty()
}

/// `/P` of the DocMDP transform of the catalog's `/Perms /DocMDP` signature (2 if absent).
fn doc_mdp(doc: &Document) -> Option<i64> {
    let perms = resolved_dict(doc, doc.catalog().ok()?.get(b"Perms").ok()?)?;
    let sig = resolved_dict(doc, perms.get(b"DocMDP").ok()?)?;
    let refs = match sig.get(b"Reference").ok()? {
        Object::Reference(id) => doc.objects.get(id)?,
        o => o,
    };
    let Object::Array(refs) = refs else {
        return Some(2);
    };
    for r in refs {
        let Some(r) = resolved_dict(doc, r) else {
            continue;
        };
        if name(r, b"TransformMethod") != Some(b"DocMDP") {
            continue;
        }
        let p = r
            .get(b"TransformParams")
            .ok()
            .and_then(|t| resolved_dict(doc, t))
            .and_then(|t| t.get(b"P").ok())
            .and_then(|p| p.as_i64().ok());
        return Some(p.unwrap_or(2));
    }
    Some(2)
}

/// What the update from `old` to `new` changes beyond annotations, in words (empty: nothing).
pub(super) fn content_changes(old: &Document, new: &Document) -> Vec<String> {
    let roles = Roles::of(old);
    let mut out = Vec::new();
    if doc_mdp(old) == Some(1) {
        out.push("the document was certified allowing no changes (DocMDP /P 1)".into());
    }
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
    // The form may gain fields, not XFA or appearances a reader regenerates.
    let empty = Dictionary::new();
    let (old_af, new_af) = (
        acro_form(old).unwrap_or(&empty),
        acro_form(new).unwrap_or(&empty),
    );
    for key in [b"XFA".as_slice(), b"NeedAppearances"] {
        if old_af.get(key).ok() != new_af.get(key).ok() {
            out.push(format!(
                "/AcroForm /{} changed",
                String::from_utf8_lossy(key)
            ));
        }
    }
    // Annotations and fields may be added, not removed.
    let new_fields = new_af
        .get(b"Fields")
        .map(|f| array_refs(new, f))
        .unwrap_or_default();
    for f in &roles.fields {
        if !new_fields.contains(f) {
            out.push(format!(
                "form field {} removed from /AcroForm /Fields",
                id_text(*f)
            ));
        }
    }
    for (page, list) in &roles.annots {
        let now = new
            .objects
            .get(page)
            .and_then(dict)
            .and_then(|d| d.get(b"Annots").ok())
            .map(|a| array_refs(new, a))
            .unwrap_or_default();
        for a in list.iter().filter(|a| !now.contains(a)) {
            out.push(format!(
                "annotation {} removed from page {}",
                id_text(*a),
                roles.pages.get(page).copied().unwrap_or(0)
            ));
        }
    }
    for (&id, new_obj) in &new.objects {
        if Some(id) == old_root || Some(id) == new_root {
            continue;
        }
        // Objects new in this update are reachable only through changed ones, judged here,
        // unless the earlier revision referred to them already.
        let Some(old_obj) = old.objects.get(&id) else {
            let shown = roles.displays(id) || roles.signed_annots.contains_key(&id);
            if roles.referenced.contains(&id)
                && (shown || !dict(new_obj).is_some_and(is_annotation_level))
            {
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
