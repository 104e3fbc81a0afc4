//! Simple, valid, unsigned OFD packages for tests and benchmarks: N pages with text lines at
//! known positions.
//!
//! Geometry, so that tests can predict where a keyword is: a [`Line`] at `(x, y)` with font
//! size `s` is one `TextObject` whose `Boundary` is `x y (n·s) s` (n characters); its glyph
//! `i` occupies the square `(x + i·s, y, s, s)` on the page (mm, top-left origin): every
//! character advances by `s`, Latin or CJK. The baseline is at `y + 0.8·s`.
//!
//! ```
//! use seald::ofd::sample::Sample;
//! // Two A4 pages under `Doc_1/` (not `Doc_0`), "合同专用章" on page 2 at (30, 200), 5 mm.
//! let bytes: Vec<u8> = Sample::new(2)
//!     .doc_dir("Doc_1")
//!     .line(2, 30.0, 200.0, 5.0, "合同专用章")
//!     .build();
//! assert!(bytes.starts_with(b"PK"));
//! ```

use std::fmt::Write as _;
use std::io::{Cursor, Write};

/// One line of text on a sample page.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Left edge, mm from the page's left.
    pub x: f64,
    /// Top edge, mm from the page's top.
    pub y: f64,
    /// Font size (and the advance of every character), mm.
    pub size: f64,
    /// The text.
    pub text: String,
}

/// A sample OFD to build: see the module documentation for the geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The document's directory (`Doc_0` by default).
    pub doc_dir: String,
    /// Page width and height in mm (A4 by default), written as the document's `PageArea`.
    pub page_mm: (f64, f64),
    /// Per page (index 0 = page 1), its lines.
    pub pages: Vec<Vec<Line>>,
    /// Page object IDs are `first_page_id + 10·i` (so they differ from page indexes).
    pub first_page_id: u32,
    /// Bytes of an extra binary resource `Res/image.bin` (none by default), to make a package
    /// bigger or hold a non-XML member.
    pub resource: Option<Vec<u8>>,
    /// Compress members (deflate, the default) or store them.
    pub deflate: bool,
}

impl Sample {
    /// `pages` A4 pages under `Doc_0/`, each with one heading line `Page N` at (20, 20), 5 mm.
    pub fn new(pages: u32) -> Self {
        let pages = (1..=pages)
            .map(|n| {
                vec![Line {
                    x: 20.0,
                    y: 20.0,
                    size: 5.0,
                    text: format!("Page {n}"),
                }]
            })
            .collect();
        Self {
            doc_dir: "Doc_0".into(),
            page_mm: (210.0, 297.0),
            pages,
            first_page_id: 3,
            resource: None,
            deflate: true,
        }
    }

    /// An invoice-like document: `pages` pages of 40 lines each (a heading, a buyer and a
    /// seller block with `购买方` / `销售方` labels, item rows, totals `价税合计`), and a 16 KiB
    /// binary resource, like a tax invoice with its QR code and attachments.
    pub fn invoice_like(pages: u32) -> Self {
        let mut s = Self::new(pages);
        for (i, page) in s.pages.iter_mut().enumerate() {
            page.push(Line {
                x: 70.0,
                y: 10.0,
                size: 7.0,
                text: "电子发票（普通发票）".into(),
            });
            page.push(Line {
                x: 20.0,
                y: 32.0,
                size: 4.0,
                text: "购买方 名称：示例科技有限公司".into(),
            });
            page.push(Line {
                x: 110.0,
                y: 32.0,
                size: 4.0,
                text: "销售方 名称：财天下科技有限公司".into(),
            });
            for row in 0..34 {
                page.push(Line {
                    x: 20.0,
                    y: 45.0 + 6.0 * row as f64,
                    size: 3.5,
                    text: format!(
                        "*信息技术服务*软件开发服务 第{}页第{row:02}行 1 10000.00 6% 600.00",
                        i + 1
                    ),
                });
            }
            page.push(Line {
                x: 20.0,
                y: 260.0,
                size: 4.0,
                text: "价税合计（大写）壹万零陆佰圆整 （小写）¥10600.00".into(),
            });
            page.push(Line {
                x: 20.0,
                y: 270.0,
                size: 4.0,
                text: "开票人：张三".into(),
            });
        }
        s.resource = Some((0..16 * 1024).map(|i| (i * 7919 % 251) as u8).collect());
        s
    }

    /// Uses another document directory (e.g. `Doc_1`).
    pub fn doc_dir(mut self, dir: &str) -> Self {
        self.doc_dir = dir.into();
        self
    }

    /// Adds a line on page `page` (1-based; panics when the page does not exist).
    pub fn line(mut self, page: u32, x: f64, y: f64, size: f64, text: &str) -> Self {
        self.pages[page as usize - 1].push(Line {
            x,
            y,
            size,
            text: text.into(),
        });
        self
    }

    /// The object ID of page `page` (1-based), as `Document.xml` gives it.
    pub fn page_id(&self, page: u32) -> String {
        (self.first_page_id + 10 * (page - 1)).to_string()
    }

    /// The package's members, in the order they are zipped.
    pub fn members(&self) -> Vec<(String, Vec<u8>)> {
        let d = &self.doc_dir;
        let (w, h) = self.page_mm;
        let mut out = Vec::new();
        out.push((
            "OFD.xml".to_string(),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:OFD xmlns:ofd=\"http://www.ofdspec.org/2016\" DocType=\"OFD\" Version=\"1.0\"><ofd:DocBody><ofd:DocInfo><ofd:DocID>0123456789abcdef0123456789abcdef</ofd:DocID><ofd:Creator>seald sample</ofd:Creator></ofd:DocInfo><ofd:DocRoot>{d}/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"
            )
            .into_bytes(),
        ));
        let mut pages = String::new();
        for (i, _) in self.pages.iter().enumerate() {
            let _ = write!(
                pages,
                "<ofd:Page ID=\"{}\" BaseLoc=\"Pages/Page_{i}/Content.xml\"/>",
                self.page_id(i as u32 + 1)
            );
        }
        let max_id = self.first_page_id + 10 * self.pages.len() as u32 + 10;
        out.push((
            format!("{d}/Document.xml"),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:Document xmlns:ofd=\"http://www.ofdspec.org/2016\"><ofd:CommonData><ofd:MaxUnitID>{max_id}</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 {} {}</ofd:PhysicalBox></ofd:PageArea><ofd:PublicRes>PublicRes.xml</ofd:PublicRes></ofd:CommonData><ofd:Pages>{pages}</ofd:Pages></ofd:Document>",
                num(w),
                num(h)
            )
            .into_bytes(),
        ));
        out.push((
            format!("{d}/PublicRes.xml"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:Res xmlns:ofd=\"http://www.ofdspec.org/2016\" BaseLoc=\"Res\"><ofd:Fonts><ofd:Font ID=\"1\" FontName=\"宋体\" FamilyName=\"宋体\"/></ofd:Fonts></ofd:Res>"
                .as_bytes()
                .to_vec(),
        ));
        for (i, lines) in self.pages.iter().enumerate() {
            let base = self.first_page_id + 10 * i as u32;
            let mut objects = String::new();
            for (j, l) in lines.iter().enumerate() {
                let n = l.text.chars().count();
                let delta = if n > 1 {
                    format!(" DeltaX=\"g {} {}\"", n - 1, num(l.size))
                } else {
                    String::new()
                };
                let _ = write!(
                    objects,
                    "<ofd:TextObject ID=\"{}\" Boundary=\"{} {} {} {}\" Font=\"1\" Size=\"{}\"><ofd:FillColor Value=\"0 0 0\"/><ofd:TextCode X=\"0\" Y=\"{}\"{delta}>{}</ofd:TextCode></ofd:TextObject>",
                    base * 1000 + j as u32 + 2,
                    num(l.x),
                    num(l.y),
                    num(l.size * n as f64),
                    num(l.size),
                    num(l.size),
                    num(l.size * 0.8),
                    escape(&l.text)
                );
            }
            out.push((
                format!("{d}/Pages/Page_{i}/Content.xml"),
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:Page xmlns:ofd=\"http://www.ofdspec.org/2016\"><ofd:Content><ofd:Layer ID=\"{}\">{objects}</ofd:Layer></ofd:Content></ofd:Page>",
                    base * 1000 + 1
                )
                .into_bytes(),
            ));
        }
        if let Some(r) = &self.resource {
            out.push((format!("{d}/Res/image.bin"), r.clone()));
        }
        out
    }

    /// The package (a zip archive).
    pub fn build(&self) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let method = if self.deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(zip::DateTime::default());
        for (name, bytes) in self.members() {
            // Writing to memory cannot fail.
            w.start_file(name, options).expect("zip to memory");
            w.write_all(&bytes).expect("zip to memory");
        }
        w.finish().expect("zip to memory").into_inner()
    }
}

/// A number as OFD writes it: no exponent, at most 3 decimals, no trailing zeros.
pub(crate) fn num(v: f64) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    let r = if r == 0.0 { 0.0 } else { r }; // no "-0"
    let s = format!("{r:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Escapes text for XML content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_escapes() {
        assert_eq!(num(202.0), "202");
        assert_eq!(num(0.1 + 0.2), "0.3");
        assert_eq!(num(-0.0001), "0");
        assert_eq!(num(12.3456), "12.346");
        assert_eq!(escape("a<&>\"'"), "a&lt;&amp;&gt;&quot;&apos;");
    }

    #[test]
    fn a_sample_reads_as_an_ofd() {
        let s = Sample::new(3)
            .doc_dir("Doc_1")
            .line(2, 30.0, 200.0, 5.0, "a&b");
        let mut p = super::super::Package::open(Cursor::new(s.build())).unwrap();
        let entry = super::super::xml::read_ofd_entry(&p.read("OFD.xml").unwrap()).unwrap();
        assert_eq!(entry.doc_root, "Doc_1/Document.xml");
        let pages = super::super::xml::read_pages(&p.read("Doc_1/Document.xml").unwrap()).unwrap();
        assert_eq!(pages.len(), 3);
        assert_eq!(pages[1].id, s.page_id(2));
        let page2 = String::from_utf8(p.read("Doc_1/Pages/Page_1/Content.xml").unwrap()).unwrap();
        assert!(page2.contains("Boundary=\"30 200 15 5\""), "{page2}");
        assert!(page2.contains(">a&amp;b<"), "{page2}");
    }
}
