//! Page text for keyword placement: the characters a page's content streams show (`Tj`,
//! `TJ`, `'`, `"`, through form XObjects), each with its box on the displayed page.
//!
//! Positions follow the text and graphics state (`Tm`, `Td`, `TD`, `T*`, `TL`, `Tc`, `Tw`,
//! `Tz`, `Ts`, `Tf`, `cm`, `q`/`Q`). Characters come from the font's `/ToUnicode` CMap when it
//! has one, else its encoding (standard encodings and `/Differences`, through `lopdf`); widths
//! from `/Widths` (simple fonts), `/W` and `/DW` (CID fonts; codes of Type0 fonts are read as
//! two bytes, as `Identity-H` and the UCS-2 CMaps write them), the standard Helvetica metrics
//! for a Helvetica or Arial font without widths, else 500/1000 em. A character's box spans its
//! advance horizontally and −0.2 to 0.8 em around the baseline. Work is bounded: at most
//! [`MAX_GLYPHS`] characters and [`MAX_CONTENT`] bytes of decoded content per page, each form
//! once, forms nested [`MAX_DEPTH`] deep.

use std::collections::{BTreeMap, HashSet};

use lopdf::content::Content;
use lopdf::{Dictionary, Document, Encoding, Object, ObjectId};

use super::page::{deref, get, number, PageInfo};
use crate::pdf::sample::helvetica_width;

/// Most characters read from one page.
pub(crate) const MAX_GLYPHS: usize = 200_000;
/// Deepest nesting of form XObjects followed.
pub(crate) const MAX_DEPTH: usize = 8;
/// Most content bytes (after decompression) read from one page, forms included.
pub(crate) const MAX_CONTENT: usize = 64 << 20;

/// The decoded bytes of a content stream, counted against `budget` (what is left of
/// [`MAX_CONTENT`]): `/FlateDecode` is inflated here no further than the budget (a
/// decompression bomb stops there); other filters go through `lopdf`.
fn content_bytes(stream: &lopdf::Stream, budget: &mut usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let filters = stream.filters().unwrap_or_default();
    // A predictor other than 1 (none) needs lopdf's decoder.
    let predictor = stream
        .dict
        .get(b"DecodeParms")
        .ok()
        .and_then(|p| p.as_dict().ok())
        .and_then(|p| p.get(b"Predictor").ok())
        .and_then(|p| p.as_i64().ok())
        .is_some_and(|p| p > 1);
    let data = match filters.as_slice() {
        [] => stream.content.clone(),
        [f] if *f == b"FlateDecode" && !predictor => {
            let mut out = Vec::new();
            let limit = (*budget as u64).saturating_add(1);
            flate2::read::ZlibDecoder::new(stream.content.as_slice())
                .take(limit)
                .read_to_end(&mut out)
                .ok()?;
            out
        }
        // Other filters go through lopdf, which does not cap its output: only streams that
        // cannot inflate past the budget (zlib and LZW expand at most ~1,000-fold).
        _ if stream.content.len().saturating_mul(1100) <= *budget => {
            stream.decompressed_content().ok()?
        }
        _ => return None,
    };
    if data.len() > *budget {
        *budget = 0;
        return None;
    }
    *budget -= data.len();
    Some(data)
}

pub(crate) use crate::ofd::seal::text::Glyph;

type Matrix = [f64; 6];

const IDENTITY: Matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

/// `a` then `b`.
fn mul(a: &Matrix, b: &Matrix) -> Matrix {
    [
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4],
        a[4] * b[1] + a[5] * b[3] + b[5],
    ]
}

fn apply(m: &Matrix, x: f64, y: f64) -> (f64, f64) {
    (m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5])
}

/// What is needed of a font.
struct Font<'a> {
    /// Two-byte codes (Type0).
    two_byte: bool,
    /// Simple fonts: the text of each code.
    table: Option<Vec<String>>,
    /// Type0: the encoding to decode codes with.
    encoding: Option<Encoding<'a>>,
    /// Widths (1/1000 em) by code.
    widths: BTreeMap<u32, f64>,
    /// Width of codes not in `widths`.
    default_width: f64,
    /// Helvetica metrics for codes without widths.
    helvetica: bool,
}

impl Font<'_> {
    fn width(&self, code: u32) -> f64 {
        if let Some(w) = self.widths.get(&code) {
            return *w;
        }
        if self.helvetica && code < 256 {
            return helvetica_width(code as u8);
        }
        self.default_width
    }

    fn text(&self, code: u32) -> String {
        if let Some(t) = &self.table {
            return t.get(code as usize).cloned().unwrap_or_default();
        }
        match &self.encoding {
            Some(e) => {
                let bytes = if self.two_byte {
                    vec![(code >> 8) as u8, code as u8]
                } else {
                    vec![code as u8]
                };
                e.bytes_to_string(&bytes).unwrap_or_default()
            }
            None => String::new(),
        }
    }
}

fn load_font<'a>(doc: &'a Document, dict: &'a Dictionary) -> Font<'a> {
    let subtype = get(doc, dict, b"Subtype")
        .and_then(|o| o.as_name().ok())
        .unwrap_or(b"");
    let base = get(doc, dict, b"BaseFont")
        .and_then(|o| o.as_name().ok())
        .unwrap_or(b"");
    let base = String::from_utf8_lossy(base).to_ascii_lowercase();
    if subtype == b"Type0" {
        let mut widths = BTreeMap::new();
        let mut default_width = 1000.0;
        let descendant = match get(doc, dict, b"DescendantFonts") {
            Some(Object::Array(a)) => a.first().map(|o| deref(doc, o)),
            _ => None,
        };
        if let Some(Object::Dictionary(d)) = descendant {
            if let Some(dw) = get(doc, d, b"DW").and_then(number) {
                default_width = dw;
            }
            if let Some(Object::Array(w)) = get(doc, d, b"W") {
                let mut i = 0;
                while i + 1 < w.len() && widths.len() < 65_536 {
                    let first = number(deref(doc, &w[i])).unwrap_or(0.0) as u32;
                    match deref(doc, &w[i + 1]) {
                        Object::Array(list) => {
                            for (k, v) in list.iter().enumerate().take(65_536) {
                                if let Some(v) = number(deref(doc, v)) {
                                    widths.insert(first.saturating_add(k as u32), v);
                                }
                            }
                            i += 2;
                        }
                        o => {
                            let last = number(o).unwrap_or(0.0) as u32;
                            let v = w
                                .get(i + 2)
                                .and_then(|v| number(deref(doc, v)))
                                .unwrap_or(default_width);
                            for c in first..=last.min(first.saturating_add(65_535)) {
                                widths.insert(c, v);
                            }
                            i += 3;
                        }
                    }
                }
            }
        }
        return Font {
            two_byte: true,
            table: None,
            encoding: dict.get_font_encoding(doc).ok(),
            widths,
            default_width,
            helvetica: false,
        };
    }
    // Simple font: a table of the 256 codes, from /ToUnicode when there is one.
    let mut probe = dict.clone();
    if probe.has(b"ToUnicode") {
        probe.remove(b"Encoding");
    }
    let table = probe.get_font_encoding(doc).ok().map(|e| {
        (0..=255u8)
            .map(|c| e.bytes_to_string(&[c]).unwrap_or_default())
            .collect()
    });
    let mut widths = BTreeMap::new();
    let first = get(doc, dict, b"FirstChar")
        .and_then(number)
        .unwrap_or(0.0)
        .max(0.0) as u32;
    if let Some(Object::Array(w)) = get(doc, dict, b"Widths") {
        for (k, v) in w.iter().enumerate().take(256) {
            if let Some(v) = number(deref(doc, v)) {
                widths.insert(first.saturating_add(k as u32), v);
            }
        }
    }
    let missing = match get(doc, dict, b"FontDescriptor") {
        Some(Object::Dictionary(fd)) => get(doc, fd, b"MissingWidth").and_then(number),
        _ => None,
    };
    let helvetica = widths.is_empty() && (base.contains("helvetica") || base.contains("arial"));
    let default_width = missing
        .filter(|w| *w > 0.0)
        .unwrap_or(if base.contains("courier") {
            600.0
        } else {
            500.0
        });
    Font {
        two_byte: false,
        table,
        encoding: None,
        widths,
        default_width,
        helvetica,
    }
}

#[derive(Clone)]
struct GState {
    ctm: Matrix,
    font: Option<(ObjectId, Vec<u8>)>,
    size: f64,
    char_spacing: f64,
    word_spacing: f64,
    hscale: f64,
    leading: f64,
    rise: f64,
}

struct Scanner<'a> {
    doc: &'a Document,
    page: &'a PageInfo,
    fonts: BTreeMap<(ObjectId, Vec<u8>), Font<'a>>,
    glyphs: Vec<Glyph>,
    forms: HashSet<ObjectId>,
    budget: usize,
}

fn nums(ops: &[Object]) -> Vec<f64> {
    ops.iter().map(|o| number(o).unwrap_or(0.0)).collect()
}

impl<'a> Scanner<'a> {
    /// Runs one content stream with `resources` (the dictionary's object ID for the font
    /// cache, `(0, 0)` for inline ones).
    fn run(
        &mut self,
        content: &[u8],
        resources: Option<&'a Dictionary>,
        res_key: ObjectId,
        mut gs: GState,
        depth: usize,
    ) {
        let Ok(content) = Content::decode(content) else {
            return;
        };
        let mut stack: Vec<GState> = Vec::new();
        let mut tm = IDENTITY;
        let mut tlm = IDENTITY;
        for op in &content.operations {
            if self.glyphs.len() >= MAX_GLYPHS {
                return;
            }
            let o = &op.operands;
            match op.operator.as_str() {
                "q" if stack.len() < 1024 => stack.push(gs.clone()),
                "Q" => {
                    if let Some(s) = stack.pop() {
                        gs = s;
                    }
                }
                "cm" => {
                    let n = nums(o);
                    if n.len() == 6 {
                        gs.ctm = mul(&[n[0], n[1], n[2], n[3], n[4], n[5]], &gs.ctm);
                    }
                }
                "BT" => {
                    tm = IDENTITY;
                    tlm = IDENTITY;
                }
                "Tf" => {
                    if let (Some(Object::Name(name)), Some(size)) =
                        (o.first(), o.get(1).and_then(number))
                    {
                        gs.font = Some((res_key, name.clone()));
                        gs.size = size;
                        self.ensure_font(resources, res_key, name);
                    }
                }
                "Tc" => gs.char_spacing = o.first().and_then(number).unwrap_or(0.0),
                "Tw" => gs.word_spacing = o.first().and_then(number).unwrap_or(0.0),
                "Tz" => gs.hscale = o.first().and_then(number).unwrap_or(100.0) / 100.0,
                "TL" => gs.leading = o.first().and_then(number).unwrap_or(0.0),
                "Ts" => gs.rise = o.first().and_then(number).unwrap_or(0.0),
                "Td" | "TD" => {
                    let n = nums(o);
                    if n.len() == 2 {
                        if op.operator == "TD" {
                            gs.leading = -n[1];
                        }
                        tlm = mul(&[1.0, 0.0, 0.0, 1.0, n[0], n[1]], &tlm);
                        tm = tlm;
                    }
                }
                "Tm" => {
                    let n = nums(o);
                    if n.len() == 6 {
                        tlm = [n[0], n[1], n[2], n[3], n[4], n[5]];
                        tm = tlm;
                    }
                }
                "T*" => {
                    tlm = mul(&[1.0, 0.0, 0.0, 1.0, 0.0, -gs.leading], &tlm);
                    tm = tlm;
                }
                "Tj" => {
                    if let Some(Object::String(s, _)) = o.first() {
                        self.show(s, &gs, &mut tm);
                    }
                }
                "'" | "\"" => {
                    if op.operator == "\"" {
                        let n = nums(o);
                        if n.len() >= 2 {
                            gs.word_spacing = n[0];
                            gs.char_spacing = n[1];
                        }
                    }
                    tlm = mul(&[1.0, 0.0, 0.0, 1.0, 0.0, -gs.leading], &tlm);
                    tm = tlm;
                    if let Some(Object::String(s, _)) = o.last() {
                        self.show(s, &gs, &mut tm);
                    }
                }
                "TJ" => {
                    if let Some(Object::Array(items)) = o.first() {
                        for item in items {
                            match item {
                                Object::String(s, _) => self.show(s, &gs, &mut tm),
                                other => {
                                    if let Some(n) = number(other) {
                                        let tx = -n / 1000.0 * gs.size * gs.hscale;
                                        tm = mul(&[1.0, 0.0, 0.0, 1.0, tx, 0.0], &tm);
                                    }
                                }
                            }
                        }
                    }
                }
                "Do" => {
                    if let Some(Object::Name(name)) = o.first() {
                        self.form(resources, res_key, name, &gs, depth);
                    }
                }
                _ => {}
            }
        }
    }

    fn ensure_font(&mut self, resources: Option<&'a Dictionary>, res_key: ObjectId, name: &[u8]) {
        let key = (res_key, name.to_vec());
        if self.fonts.contains_key(&key) {
            return;
        }
        let doc = self.doc;
        let font = resources
            .and_then(|r| get(doc, r, b"Font"))
            .and_then(|f| f.as_dict().ok())
            .and_then(|f| get(doc, f, name))
            .and_then(|f| f.as_dict().ok());
        if let Some(dict) = font {
            self.fonts.insert(key, load_font(doc, dict));
        }
    }

    fn form(
        &mut self,
        resources: Option<&'a Dictionary>,
        res_key: ObjectId,
        name: &[u8],
        gs: &GState,
        depth: usize,
    ) {
        if depth >= MAX_DEPTH {
            return;
        }
        let doc = self.doc;
        let Some(Object::Reference(id)) = resources
            .and_then(|r| get(doc, r, b"XObject"))
            .and_then(|x| x.as_dict().ok())
            .and_then(|x| x.get(name).ok())
        else {
            return;
        };
        // Each form once per page: bounded work whatever the nesting.
        if !self.forms.insert(*id) {
            return;
        }
        let Ok(Object::Stream(stream)) = doc.get_object(*id) else {
            return;
        };
        if get(doc, &stream.dict, b"Subtype").and_then(|s| s.as_name().ok()) != Some(b"Form") {
            return;
        }
        let Some(content) = content_bytes(stream, &mut self.budget) else {
            return;
        };
        let mut inner = gs.clone();
        if let Some(Object::Array(m)) = get(doc, &stream.dict, b"Matrix") {
            let n: Vec<f64> = m.iter().filter_map(number).collect();
            if n.len() == 6 {
                inner.ctm = mul(&[n[0], n[1], n[2], n[3], n[4], n[5]], &inner.ctm);
            }
        }
        let (res, key) = match stream.dict.get(b"Resources") {
            Ok(Object::Reference(rid)) => (doc.get_dictionary(*rid).ok(), *rid),
            Ok(Object::Dictionary(d)) => (Some(d), *id),
            _ => (resources, res_key),
        };
        self.run(&content, res, key, inner, depth + 1);
    }

    fn show(&mut self, s: &[u8], gs: &GState, tm: &mut Matrix) {
        let Some(key) = &gs.font else {
            return;
        };
        let Some(font) = self.fonts.get(key) else {
            return;
        };
        let step = if font.two_byte { 2 } else { 1 };
        let mut i = 0;
        while i < s.len() {
            if self.glyphs.len() >= MAX_GLYPHS {
                return;
            }
            let code = if step == 2 {
                (u32::from(s[i]) << 8) | u32::from(*s.get(i + 1).unwrap_or(&0))
            } else {
                u32::from(s[i])
            };
            i += step;
            let w0 = font.width(code) / 1000.0;
            let text = font.text(code);
            let trm = mul(
                &mul(&[gs.size * gs.hscale, 0.0, 0.0, gs.size, 0.0, gs.rise], tm),
                &gs.ctm,
            );
            let corners = [(0.0, -0.2), (w0, -0.2), (0.0, 0.8), (w0, 0.8)];
            let mut bbox = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
            for (x, y) in corners {
                let (ux, uy) = apply(&trm, x, y);
                let (dx, dy) = self.page.to_displayed(ux, uy);
                bbox = [
                    bbox[0].min(dx),
                    bbox[1].min(dy),
                    bbox[2].max(dx),
                    bbox[3].max(dy),
                ];
            }
            let n = text.chars().count().max(1) as f64;
            for (k, ch) in text.chars().enumerate() {
                // Ligatures: split the box among the characters.
                let (x0, x1) = if n > 1.0 {
                    let w = (bbox[2] - bbox[0]) / n;
                    (bbox[0] + w * k as f64, bbox[0] + w * (k + 1) as f64)
                } else {
                    (bbox[0], bbox[2])
                };
                self.glyphs.push(Glyph {
                    ch,
                    bbox: [x0, bbox[1], x1, bbox[3]],
                });
            }
            let spacing = gs.char_spacing
                + if step == 1 && code == 32 {
                    gs.word_spacing
                } else {
                    0.0
                };
            let tx = (w0 * gs.size + spacing) * gs.hscale;
            *tm = mul(&[1.0, 0.0, 0.0, 1.0, tx, 0.0], tm);
        }
    }
}

/// The characters shown on `page`, in content order.
pub(crate) fn scan(doc: &Document, page: &PageInfo) -> Vec<Glyph> {
    let mut scanner = Scanner {
        doc,
        page,
        fonts: BTreeMap::new(),
        glyphs: Vec::new(),
        forms: HashSet::new(),
        budget: MAX_CONTENT,
    };
    let Ok(page_dict) = doc.get_dictionary(page.id) else {
        return Vec::new();
    };
    let (resources, key) = match super::page::inherited(doc, page_dict, b"Resources") {
        Some(Object::Dictionary(d)) => {
            let key = match page_dict.get(b"Resources") {
                Ok(Object::Reference(id)) => *id,
                _ => (page.id.0, u16::MAX),
            };
            (Some(d), key)
        }
        _ => (None, (0, 0)),
    };
    let mut content = Vec::new();
    for id in doc.get_page_contents(page.id) {
        if let Ok(Object::Stream(s)) = doc.get_object(id) {
            if let Some(bytes) = content_bytes(s, &mut scanner.budget) {
                content.extend(bytes);
                content.push(b'\n');
            }
        }
    }
    let gs = GState {
        ctm: IDENTITY,
        font: None,
        size: 0.0,
        char_spacing: 0.0,
        word_spacing: 0.0,
        hscale: 1.0,
        leading: 0.0,
        rise: 0.0,
    };
    scanner.run(&content, resources, key, gs, 0);
    scanner.glyphs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ofd::seal::text::find;
    use lopdf::{dictionary, Stream};

    /// A one-page PDF (MediaBox 0 0 600 800) whose page draws a form XObject (translated by
    /// `cm` and its `/Matrix`) that shows text with its own font resources, using `TJ` kerning,
    /// `Tz` and `T*`.
    fn with_form() -> (Document, PageInfo) {
        let mut doc = Document::with_version("1.7");
        let font = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
            "Encoding" => "WinAnsiEncoding",
        });
        let form = doc.add_object(Stream::new(
            dictionary! {
                "Type" => "XObject", "Subtype" => "Form", "BBox" => vec![0.into(), 0.into(), 500.into(), 500.into()],
                "Matrix" => vec![1.into(), 0.into(), 0.into(), 1.into(), 0.into(), 50.into()],
                "Resources" => dictionary! { "Font" => dictionary! { "F9" => font } },
            },
            b"BT /F9 10 Tf 14 TL 0 0 Td (first line) Tj T* [(A) 1000 (B)] TJ 200 Tz (CD) Tj ET".to_vec(),
        ));
        let content = doc.add_object(Stream::new(
            dictionary! {},
            b"q 1 0 0 1 100 100 cm /Fm1 Do Q".to_vec(),
        ));
        let pages = doc.new_object_id();
        let page = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages, "Contents" => content,
            "MediaBox" => vec![0.into(), 0.into(), 600.into(), 800.into()],
            "Resources" => dictionary! { "XObject" => dictionary! { "Fm1" => form } },
        });
        doc.objects.insert(
            pages,
            Object::Dictionary(
                dictionary! { "Type" => "Pages", "Kids" => vec![page.into()], "Count" => 1 },
            ),
        );
        let info = PageInfo {
            id: page,
            vbox: [0.0, 0.0, 600.0, 800.0],
            rotate: 0,
        };
        (doc, info)
    }

    #[test]
    fn text_in_forms_with_kerning_and_scaling() {
        let (doc, page) = with_form();
        let glyphs = scan(&doc, &page);
        let text: String = glyphs.iter().map(|g| g.ch).collect();
        assert_eq!(text, "first lineABCD");
        let mm = |pt: f64| pt * 25.4 / 72.0;
        // "first line": baseline at y = 150 pt from the bottom, x from 100 pt.
        let f = &glyphs[0];
        assert!((f.bbox[0] - mm(100.0)).abs() < 1e-9);
        assert!(
            (f.bbox[3] - mm(800.0 - 150.0 + 2.0)).abs() < 1e-9,
            "{:?}",
            f.bbox
        );
        // Line two (T*: 14 pt down): A at x 100, B after A's width (6.67 pt) and 10 pt of TJ.
        let a = &glyphs[10];
        let b = &glyphs[11];
        assert!(
            (a.bbox[3] - mm(800.0 - 136.0 + 2.0)).abs() < 1e-9,
            "{:?}",
            a.bbox
        );
        assert!(
            (b.bbox[0] - mm(100.0 + 6.67 - 10.0)).abs() < 1e-9,
            "{:?}",
            b.bbox
        );
        // Tz 200: C is twice as wide as at 100 %.
        let c = &glyphs[12];
        assert!(
            (c.bbox[2] - c.bbox[0] - mm(2.0 * 7.22)).abs() < 1e-9,
            "{:?}",
            c.bbox
        );
        let hits = find(&glyphs, "line A");
        assert_eq!(hits.len(), 1);
    }
}
