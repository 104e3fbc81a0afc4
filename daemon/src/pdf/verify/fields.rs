//! Finding the signature fields of a PDF (AcroForm `/Fields`, recursively) and reading what a
//! signature dictionary says.

use std::collections::{BTreeMap, HashMap, HashSet};

use lopdf::{Dictionary, Document, Object, ObjectId};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Deepest field tree followed.
const MAX_DEPTH: usize = 32;
/// Most fields visited.
const MAX_FIELDS: usize = 100_000;

/// A signed signature field.
#[derive(Debug, Clone)]
pub(super) struct SigField {
    /// The fully qualified field name (`/T` of the field and its parents, joined by `.`).
    pub name: String,
    /// The signature dictionary (`/V`).
    pub sig: Dictionary,
    /// Pages of its widgets (1-based), sorted.
    pub pages: Vec<u32>,
}

fn deref<'a>(doc: &'a Document, obj: &'a Object) -> Option<(Option<ObjectId>, &'a Object)> {
    doc.dereference(obj).ok()
}

fn dict_of<'a>(doc: &'a Document, obj: &'a Object) -> Option<(Option<ObjectId>, &'a Dictionary)> {
    let (id, o) = deref(doc, obj)?;
    match o {
        Object::Dictionary(d) => Some((id, d)),
        Object::Stream(s) => Some((id, &s.dict)),
        _ => None,
    }
}

fn text(obj: &Object) -> Option<String> {
    match obj {
        Object::String(bytes, _) => Some(pdf_text(bytes)),
        Object::Name(n) => Some(String::from_utf8_lossy(n).into_owned()),
        _ => None,
    }
}

/// A PDF text string: UTF-16BE with a BOM, UTF-8 with a BOM, else PDFDocEncoding (read as
/// Latin-1, which agrees for printable ASCII).
pub(super) fn pdf_text(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xfe, 0xff]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xef, 0xbb, 0xbf]) {
        return String::from_utf8_lossy(rest).into_owned();
    }
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Page numbers by page object.
pub(super) fn page_numbers(doc: &Document) -> BTreeMap<ObjectId, u32> {
    doc.get_pages().into_iter().map(|(n, id)| (id, n)).collect()
}

/// The page each annotation is listed on (`/Annots`), first page first: what a viewer shows,
/// whatever an annotation's own `/P` claims.
fn annotation_pages(doc: &Document, pages: &BTreeMap<ObjectId, u32>) -> HashMap<ObjectId, u32> {
    let mut by_page: Vec<(u32, ObjectId)> = pages.iter().map(|(&id, &n)| (n, id)).collect();
    by_page.sort_unstable();
    let mut out = HashMap::new();
    for (n, page) in by_page {
        let Some(list) = doc
            .get_dictionary(page)
            .ok()
            .and_then(|d| d.get(b"Annots").ok())
            .and_then(|a| deref(doc, a))
            .and_then(|(_, a)| a.as_array().ok())
        else {
            continue;
        };
        for a in list {
            if let Ok(id) = a.as_reference() {
                out.entry(id).or_insert(n);
            }
        }
    }
    out
}

struct Walk<'a> {
    doc: &'a Document,
    pages: BTreeMap<ObjectId, u32>,
    annotation_pages: HashMap<ObjectId, u32>,
    seen: HashSet<ObjectId>,
    out: Vec<SigField>,
}

impl Walk<'_> {
    /// The page a widget is shown on: the page whose `/Annots` lists it, else its `/P`.
    fn widget_page(&self, id: Option<ObjectId>, widget: &Dictionary) -> Option<u32> {
        if let Some(n) = id.and_then(|id| self.annotation_pages.get(&id)) {
            return Some(*n);
        }
        match widget.get(b"P") {
            Ok(Object::Reference(p)) => self.pages.get(p).copied(),
            _ => None,
        }
    }

    fn field(
        &mut self,
        obj: &Object,
        parent_name: &str,
        inherited_ft: Option<&[u8]>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH || self.seen.len() > MAX_FIELDS {
            return;
        }
        let Some((id, dict)) = dict_of(self.doc, obj) else {
            return;
        };
        if let Some(id) = id {
            if !self.seen.insert(id) {
                return;
            }
        }
        let name = match dict.get(b"T").ok().and_then(text) {
            Some(t) if parent_name.is_empty() => t,
            Some(t) => format!("{parent_name}.{t}"),
            None => parent_name.to_string(),
        };
        let ft = dict
            .get(b"FT")
            .ok()
            .and_then(|o| o.as_name().ok())
            .or(inherited_ft);
        let kids: Vec<Object> = dict
            .get(b"Kids")
            .ok()
            .and_then(|k| deref(self.doc, k))
            .and_then(|(_, k)| k.as_array().ok().cloned())
            .unwrap_or_default();
        // Kids that are fields (they have /T) make this a non-terminal field; kids without
        // /T are its widgets.
        let (field_kids, widget_kids): (Vec<_>, Vec<_>) = kids
            .iter()
            .partition(|k| dict_of(self.doc, k).is_some_and(|(_, d)| d.has(b"T") || d.has(b"FT")));
        for k in field_kids {
            self.field(k, &name, ft, depth + 1);
        }
        if ft != Some(b"Sig".as_slice()) {
            return;
        }
        let Some((_, sig)) = dict.get(b"V").ok().and_then(|v| dict_of(self.doc, v)) else {
            return;
        };
        let mut pages: Vec<u32> = Vec::new();
        if dict.get(b"Subtype").and_then(Object::as_name).ok() == Some(b"Widget") {
            pages.extend(self.widget_page(id, dict));
        }
        for w in widget_kids {
            if let Some((wid, wd)) = dict_of(self.doc, w) {
                pages.extend(self.widget_page(wid, wd));
            }
        }
        pages.sort_unstable();
        pages.dedup();
        self.out.push(SigField {
            name,
            sig: sig.clone(),
            pages,
        });
    }
}

/// Every signed signature field of `doc`, in `/Fields` order.
pub(super) fn signature_fields(doc: &Document) -> Vec<SigField> {
    let pages = page_numbers(doc);
    let mut walk = Walk {
        doc,
        annotation_pages: annotation_pages(doc, &pages),
        pages,
        seen: HashSet::new(),
        out: Vec::new(),
    };
    let fields = doc
        .catalog()
        .ok()
        .and_then(|c| c.get(b"AcroForm").ok())
        .and_then(|a| dict_of(doc, a))
        .and_then(|(_, a)| a.get(b"Fields").ok())
        .and_then(|f| deref(doc, f))
        .and_then(|(_, f)| f.as_array().ok().cloned())
        .unwrap_or_default();
    for f in &fields {
        walk.field(f, "", None, 0);
    }
    walk.out
}

/// A PDF date `D:YYYYMMDDHHmmSSOHH'mm'` (every part after the year optional).
pub(super) fn pdf_date(bytes: &[u8]) -> Option<OffsetDateTime> {
    let s = pdf_text(bytes);
    let s = s.trim();
    let s = s.strip_prefix("D:").unwrap_or(s);
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    let rest = &s[digits.len()..];
    let part = |from: usize, len: usize, default: u32| -> Option<u32> {
        match digits.get(from..from + len) {
            Some(p) => p.parse().ok(),
            None if digits.len() <= from => Some(default),
            None => None,
        }
    };
    let year = i32::try_from(part(0, 4, 0)?).ok()?;
    if digits.len() < 4 {
        return None;
    }
    let date = Date::from_calendar_date(
        year,
        Month::try_from(u8::try_from(part(4, 2, 1)?).ok()?).ok()?,
        u8::try_from(part(6, 2, 1)?).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(
        u8::try_from(part(8, 2, 0)?).ok()?,
        u8::try_from(part(10, 2, 0)?).ok()?,
        u8::try_from(part(12, 2, 0)?.min(59)).ok()?,
    )
    .ok()?;
    let offset = match rest.chars().next() {
        None | Some('Z') => UtcOffset::UTC,
        Some(sign @ ('+' | '-')) => {
            let nums: Vec<i8> = rest[1..]
                .split(|c: char| !c.is_ascii_digit())
                .filter(|p| !p.is_empty())
                .take(2)
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let h = *nums.first().unwrap_or(&0);
            let m = *nums.get(1).unwrap_or(&0);
            let k = if sign == '-' { -1 } else { 1 };
            UtcOffset::from_hms(k * h, k * m, 0).ok()?
        }
        Some(_) => return None,
    };
    // `checked_to_offset`: a date near year 9999 with a negative offset is past year 9999 in
    // UTC, which `time` cannot represent.
    PrimitiveDateTime::new(date, time)
        .assume_offset(offset)
        .checked_to_offset(UtcOffset::UTC)
}

#[cfg(test)]
mod date_tests {
    #[test]
    fn a_date_past_year_9999_in_utc_is_no_date() {
        assert!(super::pdf_date(b"D:99991231235959-12'00'").is_none());
        assert!(super::pdf_date(b"D:99991231235959+12'00'").is_some());
    }
}
