//! PDFs generated for tests and benchmarks: pages with text at known places, rotated pages,
//! crop boxes, xref streams and object streams.
//!
//! Geometry, so that tests can predict where a keyword is: a [`Line`] at `(x, y)` (mm from
//! the top-left of the page's MediaBox, in the page's own unrotated coordinates) with font size
//! `s` has its baseline at `y + 0.8·s`; each character's box spans `y .. y + s` vertically.
//! Latin-1 text is set in Helvetica (WinAnsiEncoding, with `/Widths`), so a character advances
//! by its Helvetica width × `s` / 1000; other text (CJK) in a Type0 font (`Identity-H`, codes
//! are UTF-16 units, a `/ToUnicode` CMap, not embedded) where every character advances by `s`.
//!
//! ```
//! use seald::pdf::sample::Sample;
//! // Two A4 pages, "合同专用章" on page 2 at (30, 200) mm, 5 mm; page 1 shown rotated.
//! let bytes: Vec<u8> = Sample::new(2)
//!     .line(2, 30.0, 200.0, 5.0, "合同专用章")
//!     .rotate(1, 90)
//!     .build();
//! assert!(bytes.starts_with(b"%PDF-"));
//! ```

use lopdf::{dictionary, Document, Object, Stream, StringFormat};

/// Points per millimetre.
const PT: f64 = 72.0 / 25.4;

/// Helvetica's widths (1/1000 em) of the characters 32..=126.
pub(crate) const HELVETICA_WIDTHS: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

/// The Helvetica width (1/1000 em) of a WinAnsi code (556 outside 32..=126).
pub(crate) fn helvetica_width(code: u8) -> f64 {
    match code {
        32..=126 => f64::from(HELVETICA_WIDTHS[(code - 32) as usize]),
        _ => 556.0,
    }
}

/// One line of text on a sample page.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Left edge, mm from the MediaBox's left.
    pub x: f64,
    /// Top edge, mm from the MediaBox's top.
    pub y: f64,
    /// Font size, mm.
    pub size: f64,
    /// The text.
    pub text: String,
}

/// One sample page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// MediaBox `[llx, lly, urx, ury]` in points.
    pub media_box: [f64; 4],
    /// CropBox in points, if any.
    pub crop_box: Option<[f64; 4]>,
    /// `/Rotate` (degrees), if any.
    pub rotate: Option<i64>,
    /// The text lines.
    pub lines: Vec<Line>,
}

/// A sample PDF to build: see the module documentation for the geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The pages, page 1 first.
    pub pages: Vec<Page>,
    /// Object streams and a cross-reference stream (PDF 1.5) instead of a classic xref table.
    pub xref_streams: bool,
    /// `/Rotate` on the page tree's root (inherited by pages without their own).
    pub inherited_rotate: Option<i64>,
}

impl Sample {
    /// `pages` A4 pages (MediaBox `0 0 595.276 841.89`), each with one line `Page N` at
    /// (20, 20) mm, 5 mm.
    pub fn new(pages: u32) -> Self {
        let pages = (1..=pages)
            .map(|n| Page {
                media_box: [0.0, 0.0, 210.0 * PT, 297.0 * PT],
                crop_box: None,
                rotate: None,
                lines: vec![Line {
                    x: 20.0,
                    y: 20.0,
                    size: 5.0,
                    text: format!("Page {n}"),
                }],
            })
            .collect();
        Self {
            pages,
            xref_streams: false,
            inherited_rotate: None,
        }
    }

    fn page(&mut self, page: u32) -> &mut Page {
        let n = self.pages.len();
        self.pages
            .get_mut((page as usize).wrapping_sub(1))
            .unwrap_or_else(|| panic!("the sample has {n} page(s), not a page {page}"))
    }

    /// Adds a line of text to `page` (1-based) at `(x, y)` mm, font size `size` mm.
    pub fn line(mut self, page: u32, x: f64, y: f64, size: f64, text: &str) -> Self {
        self.page(page).lines.push(Line {
            x,
            y,
            size,
            text: text.into(),
        });
        self
    }

    /// Sets `/Rotate` of `page`.
    pub fn rotate(mut self, page: u32, degrees: i64) -> Self {
        self.page(page).rotate = Some(degrees);
        self
    }

    /// Sets `/Rotate` on the page tree's root, inherited by every page without its own.
    pub fn inherited_rotate(mut self, degrees: i64) -> Self {
        self.inherited_rotate = Some(degrees);
        self
    }

    /// Sets the MediaBox of `page` (points, `[llx, lly, urx, ury]`).
    pub fn media_box(mut self, page: u32, b: [f64; 4]) -> Self {
        self.page(page).media_box = b;
        self
    }

    /// Sets the CropBox of `page` (points, `[llx, lly, urx, ury]`).
    pub fn crop_box(mut self, page: u32, b: [f64; 4]) -> Self {
        self.page(page).crop_box = Some(b);
        self
    }

    /// Writes object streams and a cross-reference stream instead of a classic table.
    pub fn xref_streams(mut self, on: bool) -> Self {
        self.xref_streams = on;
        self
    }

    /// The PDF.
    pub fn build(&self) -> Vec<u8> {
        let mut doc = Document::with_version(if self.xref_streams { "1.5" } else { "1.7" });
        let pages_id = doc.new_object_id();
        let widths: Vec<Object> = HELVETICA_WIDTHS
            .iter()
            .map(|w| Object::Integer(i64::from(*w)))
            .collect();
        let helvetica = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type1",
            "BaseFont" => "Helvetica",
            "Encoding" => "WinAnsiEncoding",
            "FirstChar" => 32,
            "LastChar" => 126,
            "Widths" => widths,
        });
        let to_unicode = doc.add_object(Stream::new(
            dictionary! {},
            b"/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n\
1 beginbfrange\n<0000> <FFFF> <0000>\nendbfrange\n\
endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
                .to_vec(),
        ));
        let cid_font = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "CIDFontType0",
            "BaseFont" => "STSong-Light",
            "CIDSystemInfo" => dictionary! {
                "Registry" => Object::string_literal("Adobe"),
                "Ordering" => Object::string_literal("Identity"),
                "Supplement" => 0,
            },
            "DW" => 1000,
        });
        let cjk = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type0",
            "BaseFont" => "STSong-Light",
            "Encoding" => "Identity-H",
            "DescendantFonts" => vec![cid_font.into()],
            "ToUnicode" => to_unicode,
        });
        let resources = doc.add_object(dictionary! {
            "Font" => dictionary! { "F1" => helvetica, "F2" => cjk },
        });
        let mut kids = Vec::new();
        for page in &self.pages {
            let content = doc.add_object(Stream::new(dictionary! {}, page_content(page)));
            let mut dict = dictionary! {
                "Type" => "Page",
                "Parent" => pages_id,
                "MediaBox" => boxed(page.media_box),
                "Resources" => resources,
                "Contents" => content,
            };
            if let Some(c) = page.crop_box {
                dict.set("CropBox", boxed(c));
            }
            if let Some(r) = page.rotate {
                dict.set("Rotate", r);
            }
            kids.push(Object::Reference(doc.add_object(dict)));
        }
        let mut pages = dictionary! {
            "Type" => "Pages",
            "Count" => kids.len() as i64,
            "Kids" => kids,
        };
        if let Some(r) = self.inherited_rotate {
            pages.set("Rotate", r);
        }
        doc.objects.insert(pages_id, Object::Dictionary(pages));
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        let info = doc.add_object(dictionary! {
            "Producer" => Object::string_literal("seald pdf::sample"),
        });
        doc.trailer.set("Root", catalog);
        doc.trailer.set("Info", info);
        let id = Object::String(b"seald-sample-id!".to_vec(), StringFormat::Hexadecimal);
        doc.trailer.set("ID", vec![id.clone(), id]);
        let mut out = Vec::new();
        doc.reference_table.cross_reference_type = if self.xref_streams {
            lopdf::xref::XrefType::CrossReferenceStream
        } else {
            lopdf::xref::XrefType::CrossReferenceTable
        };
        if self.xref_streams {
            doc.save_modern(&mut out)
        } else {
            doc.save_to(&mut out)
        }
        .expect("writing to a Vec cannot fail");
        out
    }
}

fn boxed(b: [f64; 4]) -> Vec<Object> {
    b.iter().map(|v| Object::Real(*v as f32)).collect()
}

fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

fn page_content(page: &Page) -> Vec<u8> {
    let [llx, _, _, ury] = page.media_box;
    let mut out = Vec::new();
    for line in &page.lines {
        let latin = line.text.chars().all(|c| (c as u32) < 256);
        let size = line.size * PT;
        let x = llx + line.x * PT;
        let y = ury - (line.y + 0.8 * line.size) * PT;
        let mut s = format!(
            "BT /{} {} Tf 1 0 0 1 {} {} Tm ",
            if latin { "F1" } else { "F2" },
            num(size),
            num(x),
            num(y)
        )
        .into_bytes();
        if latin {
            s.push(b'(');
            for c in line.text.chars() {
                let b = c as u32 as u8;
                if matches!(b, b'(' | b')' | b'\\') {
                    s.push(b'\\');
                }
                s.push(b);
            }
            s.push(b')');
        } else {
            s.push(b'<');
            for u in line.text.encode_utf16() {
                s.extend(format!("{u:04X}").bytes());
            }
            s.push(b'>');
        }
        s.extend(b" Tj ET\n");
        out.extend(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_xref_forms_load() {
        for streams in [false, true] {
            let bytes = Sample::new(3)
                .line(2, 30.0, 40.0, 5.0, "Hello (world)")
                .line(3, 30.0, 40.0, 5.0, "合同专用章")
                .rotate(2, 90)
                .xref_streams(streams)
                .build();
            let doc = lopdf::Document::load_mem(&bytes).unwrap();
            assert_eq!(doc.get_pages().len(), 3);
            let text = doc.extract_text(&[3]).unwrap();
            assert!(text.contains("合同专用章"), "{text:?}");
            let has = |s: &[u8]| bytes.windows(s.len()).any(|w| w == s);
            assert_eq!(has(b"/Type/XRef"), streams);
            assert_eq!(has(b"/Type/ObjStm"), streams);
            assert_eq!(has(b"\nxref\n"), !streams);
        }
    }
}
