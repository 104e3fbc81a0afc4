//! The interactive form: existing signature fields (their names, a lock), the `/AcroForm`
//! extended with the new field, pages' `/Annots` extended with its widgets.

use std::collections::BTreeSet;

use lopdf::{dictionary, Dictionary, Document, Object, ObjectId};

use super::page::{deref, get, number};
use super::update::Update;
use crate::ofd::seal::SealError;

/// Most fields visited in the form tree.
const MAX_FIELDS: usize = 100_000;

/// Where the `/AcroForm` is, and what it holds.
pub(crate) struct AcroForm {
    /// The catalog.
    catalog_id: ObjectId,
    /// The AcroForm's own object, when it is indirect.
    own_id: Option<ObjectId>,
    /// Its dictionary (a copy), if any.
    dict: Option<Dictionary>,
    /// Every field's partial name (`/T`) at the top level.
    names: BTreeSet<String>,
}

fn name_of(doc: &Document, field: &Dictionary) -> Option<String> {
    match get(doc, field, b"T") {
        Some(Object::String(s, _)) => {
            lopdf::decode_text_string(&Object::String(s.clone(), lopdf::StringFormat::Literal)).ok()
        }
        _ => None,
    }
}

/// Every field dictionary in the form tree, with its name so far (bounded).
fn fields(doc: &Document) -> Vec<(String, &Dictionary)> {
    let mut out = Vec::new();
    let Ok(catalog) = doc.catalog() else {
        return out;
    };
    let Some(Object::Dictionary(acro)) = get(doc, catalog, b"AcroForm") else {
        return out;
    };
    let Some(Object::Array(top)) = get(doc, acro, b"Fields") else {
        return out;
    };
    let mut stack: Vec<(String, &Object, usize)> =
        top.iter().map(|f| (String::new(), f, 0)).collect();
    let mut seen = BTreeSet::new();
    while let Some((prefix, f, depth)) = stack.pop() {
        if out.len() >= MAX_FIELDS || depth > 32 {
            continue;
        }
        if let Object::Reference(id) = f {
            if !seen.insert(*id) {
                continue;
            }
        }
        let Object::Dictionary(d) = deref(doc, f) else {
            continue;
        };
        let name = match name_of(doc, d) {
            Some(n) if prefix.is_empty() => n,
            Some(n) => format!("{prefix}.{n}"),
            None => prefix.clone(),
        };
        if let Some(Object::Array(kids)) = get(doc, d, b"Kids") {
            for k in kids {
                stack.push((name.clone(), k, depth + 1));
            }
        }
        out.push((name, d));
    }
    out
}

/// The field's type, inherited from its ancestors.
fn field_type<'a>(doc: &'a Document, field: &'a Dictionary) -> Option<&'a [u8]> {
    let mut node = field;
    for _ in 0..32 {
        if let Some(Object::Name(n)) = get(doc, node, b"FT") {
            return Some(n);
        }
        node = match get(doc, node, b"Parent") {
            Some(Object::Dictionary(d)) => d,
            _ => return None,
        };
    }
    None
}

/// Refuses a document locked by an earlier signature: a signed signature field whose
/// `/Lock` has `/Action /All` (or `/P 1`), or a certification signature (`/Perms /DocMDP`)
/// whose DocMDP transform allows no change (`/P 1`).
pub(crate) fn check_not_locked(doc: &Document) -> Result<(), SealError> {
    for (name, field) in fields(doc) {
        if field_type(doc, field) != Some(b"Sig") || get(doc, field, b"V").is_none() {
            continue;
        }
        if let Some(Object::Dictionary(lock)) = get(doc, field, b"Lock") {
            let all = get(doc, lock, b"Action").and_then(|a| a.as_name().ok()) == Some(b"All");
            let p1 = get(doc, lock, b"P").and_then(number) == Some(1.0);
            if all || p1 {
                return Err(SealError::Locked(format!(
                    "{name} (its field lock protects every field)"
                )));
            }
        }
    }
    let Ok(catalog) = doc.catalog() else {
        return Ok(());
    };
    if let Some(Object::Dictionary(perms)) = get(doc, catalog, b"Perms") {
        if let Some(Object::Dictionary(sig)) = get(doc, perms, b"DocMDP") {
            if let Some(Object::Array(refs)) = get(doc, sig, b"Reference") {
                for r in refs {
                    let Object::Dictionary(r) = deref(doc, r) else {
                        continue;
                    };
                    if get(doc, r, b"TransformMethod").and_then(|m| m.as_name().ok())
                        != Some(b"DocMDP")
                    {
                        continue;
                    }
                    let p = match get(doc, r, b"TransformParams") {
                        Some(Object::Dictionary(tp)) => get(doc, tp, b"P").and_then(number),
                        _ => None,
                    };
                    if p.unwrap_or(2.0) == 1.0 {
                        let who = match get(doc, sig, b"Name") {
                            Some(n @ Object::String(..)) => {
                                lopdf::decode_text_string(n).unwrap_or_default()
                            }
                            _ => "the certification signature".into(),
                        };
                        return Err(SealError::Locked(format!(
                            "{who} (a certification signature that allows no change)"
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

impl AcroForm {
    /// Reads the catalog's `/AcroForm` (if any) and the field names taken.
    pub(crate) fn read(doc: &Document) -> Result<Self, SealError> {
        let catalog_id = doc
            .trailer
            .get(b"Root")
            .and_then(Object::as_reference)
            .map_err(|e| SealError::Structure(format!("the trailer has no /Root: {e}")))?;
        let catalog = doc
            .get_dictionary(catalog_id)
            .map_err(|e| SealError::Structure(format!("the catalog is unreadable: {e}")))?;
        let (own_id, dict) = match catalog.get(b"AcroForm") {
            Ok(Object::Reference(id)) => match doc.get_dictionary(*id) {
                Ok(d) => (Some(*id), Some(d.clone())),
                Err(_) => (None, None),
            },
            Ok(Object::Dictionary(d)) => (None, Some(d.clone())),
            _ => (None, None),
        };
        let names = fields(doc).into_iter().map(|(n, _)| n).collect();
        Ok(Self {
            catalog_id,
            own_id,
            dict,
            names,
        })
    }

    /// `Seal1`, `Seal2`, … : the first name no field has.
    pub(crate) fn unique_name(&self) -> String {
        (1..)
            .map(|n| format!("Seal{n}"))
            .find(|n| !self.names.contains(n))
            .expect("a free name exists")
    }

    /// Writes the AcroForm with `field` added to `/Fields` and `/SigFlags 3`: a new version
    /// of its object, or of the catalog when it is direct or new.
    pub(crate) fn add_field(
        &self,
        doc: &Document,
        up: &mut Update<'_>,
        field: ObjectId,
    ) -> Result<(), SealError> {
        let mut dict = self.dict.clone().unwrap_or_default();
        let mut list = match dict.get(b"Fields").map(|f| deref(doc, f)) {
            Ok(Object::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        list.push(Object::Reference(field));
        dict.set("Fields", list);
        let flags = dict
            .get(b"SigFlags")
            .ok()
            .map(|f| deref(doc, f))
            .and_then(|f| f.as_i64().ok())
            .unwrap_or(0);
        dict.set("SigFlags", flags | 3);
        match self.own_id {
            Some(id) => up.object(id, &Object::Dictionary(dict)),
            None => {
                let id = up.new_id();
                up.object(id, &Object::Dictionary(dict));
                let mut catalog = doc
                    .get_dictionary(self.catalog_id)
                    .map_err(|e| SealError::Structure(format!("the catalog is unreadable: {e}")))?
                    .clone();
                catalog.set("AcroForm", id);
                up.object(self.catalog_id, &Object::Dictionary(catalog));
            }
        }
        Ok(())
    }
}

/// Adds `widgets` to the `/Annots` of `page`: a new version of the page, or of its
/// `/Annots` array object when that is indirect.
pub(crate) fn add_annots(
    doc: &Document,
    up: &mut Update<'_>,
    page: ObjectId,
    widgets: &[ObjectId],
) -> Result<(), SealError> {
    let dict = doc.get_dictionary(page).map_err(|e| {
        SealError::Structure(format!("page {} {} R is unreadable: {e}", page.0, page.1))
    })?;
    let new: Vec<Object> = widgets.iter().map(|w| Object::Reference(*w)).collect();
    match dict.get(b"Annots") {
        Ok(Object::Reference(id)) => {
            if let Ok(Object::Array(a)) = doc.get_object(*id) {
                let mut a = a.clone();
                a.extend(new);
                up.object(*id, &Object::Array(a));
                return Ok(());
            }
            let mut d = dict.clone();
            d.set("Annots", new);
            up.object(page, &Object::Dictionary(d));
        }
        Ok(Object::Array(a)) => {
            let mut a = a.clone();
            a.extend(new);
            let mut d = dict.clone();
            d.set("Annots", a);
            up.object(page, &Object::Dictionary(d));
        }
        _ => {
            let mut d = dict.clone();
            d.set("Annots", new);
            up.object(page, &Object::Dictionary(d));
        }
    }
    let _ = dictionary! {};
    Ok(())
}
