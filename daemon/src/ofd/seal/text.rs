//! Reading a page's content for placement: its size (`Area/PhysicalBox`), the templates it
//! draws, and where each character of its text is (`TextObject`/`TextCode`), for keyword search.
//!
//! A glyph's origin is `TextCode@X/@Y` plus the running sums of `DeltaX`/`DeltaY` (with the
//! `g N v` shorthand), in the text object's space; `CTM` maps that space into the object's
//! `Boundary`, whose top-left is placed on the page. A glyph's box spans 0.8 × `Size` above the
//! baseline and 0.2 × `Size` below, and is as wide as its advance (the next `DeltaX`; for the
//! last glyph the one before, else `Size`).

use roxmltree::Node;

use crate::ofd::xml::{parse, parse_box};

/// One character on a page, with its box in page millimetres.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Glyph {
    /// The character.
    pub ch: char,
    /// `[x0, y0, x1, y1]`, top-left origin.
    pub bbox: [f64; 4],
}

/// What placement needs from one page content file.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct PageScan {
    /// `Area/PhysicalBox` width and height, if the page gives its own.
    pub size: Option<(f64, f64)>,
    /// `Template@TemplateID`s the page draws.
    pub templates: Vec<String>,
    /// The characters of every `TextCode`, in content order.
    pub glyphs: Vec<Glyph>,
}

fn is(node: &Node<'_, '_>, local: &str) -> bool {
    node.is_element() && node.tag_name().name() == local
}

/// Parses a `DeltaX`/`DeltaY` list: numbers, and `g N v` for N times v.
fn deltas(s: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut it = s.split_whitespace();
    while let Some(tok) = it.next() {
        if tok == "g" {
            let n = it.next().and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
            let v = it.next().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            // Bounded: a hostile count cannot allocate more than the text could use.
            out.extend(std::iter::repeat_n(v, n.min(100_000)));
        } else if let Ok(v) = tok.parse::<f64>() {
            out.push(v);
        }
    }
    out
}

fn num_attr(node: &Node<'_, '_>, name: &str) -> Option<f64> {
    node.attribute(name)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

/// `a b c d e f` of a `CTM`, if well formed.
fn ctm(s: &str) -> Option<[f64; 6]> {
    let v: Vec<f64> = s
        .split_whitespace()
        .map(|n| n.parse::<f64>())
        .collect::<Result<_, _>>()
        .ok()?;
    let m: [f64; 6] = v.try_into().ok()?;
    m.iter().all(|n| n.is_finite()).then_some(m)
}

fn text_object(obj: Node<'_, '_>, out: &mut Vec<Glyph>) {
    let Some(boundary) = obj.attribute("Boundary").and_then(|b| parse_box(b).ok()) else {
        return;
    };
    let size = num_attr(&obj, "Size").filter(|s| *s > 0.0).unwrap_or(3.5);
    let m = obj
        .attribute("CTM")
        .and_then(ctm)
        .unwrap_or([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    let map = |x: f64, y: f64| {
        (
            boundary[0] + m[0] * x + m[2] * y + m[4],
            boundary[1] + m[1] * x + m[3] * y + m[5],
        )
    };
    // Where the next glyph goes when a TextCode gives no X or Y.
    let (mut cx, mut cy) = (0.0, 0.0);
    for code in obj.children().filter(|n| is(n, "TextCode")) {
        let text: Vec<char> = code.text().unwrap_or("").chars().collect();
        let mut x = num_attr(&code, "X").unwrap_or(cx);
        let mut y = num_attr(&code, "Y").unwrap_or(cy);
        let dx = code.attribute("DeltaX").map(deltas).unwrap_or_default();
        let dy = code.attribute("DeltaY").map(deltas).unwrap_or_default();
        for (i, ch) in text.iter().enumerate() {
            let advance = dx
                .get(i)
                .or_else(|| i.checked_sub(1).and_then(|p| dx.get(p)))
                .copied()
                .filter(|a| *a > 0.0)
                .unwrap_or(size);
            let corners = [
                map(x, y - 0.8 * size),
                map(x + advance, y - 0.8 * size),
                map(x, y + 0.2 * size),
                map(x + advance, y + 0.2 * size),
            ];
            let bbox = corners.iter().fold(
                [f64::MAX, f64::MAX, f64::MIN, f64::MIN],
                |[a, b, c, d], (px, py)| [a.min(*px), b.min(*py), c.max(*px), d.max(*py)],
            );
            out.push(Glyph { ch: *ch, bbox });
            x += dx.get(i).copied().unwrap_or(advance);
            y += dy.get(i).copied().unwrap_or(0.0);
        }
        (cx, cy) = (x, y);
    }
}

/// Reads a page (or template) content file.
pub(super) fn scan(bytes: &[u8]) -> Result<PageScan, String> {
    let doc = parse(bytes)?;
    let root = doc.root_element();
    let mut scan = PageScan::default();
    for child in root.children().filter(|n| n.is_element()) {
        match child.tag_name().name() {
            "Area" => {
                scan.size = child
                    .children()
                    .find(|n| is(n, "PhysicalBox"))
                    .and_then(|b| parse_box(b.text().unwrap_or("")).ok())
                    .filter(|b| b[2] > 0.0 && b[3] > 0.0)
                    .map(|b| (b[2], b[3]));
            }
            "Template" => {
                if let Some(id) = child.attribute("TemplateID") {
                    scan.templates.push(id.trim().to_string());
                }
            }
            _ => {}
        }
    }
    for obj in root.descendants().filter(|n| is(n, "TextObject")) {
        text_object(obj, &mut scan.glyphs);
    }
    Ok(scan)
}

/// The page's own size (`Area/PhysicalBox`) without reading its content: `None` when the file
/// never mentions a `PhysicalBox`; otherwise only the part before the `Content` element (where
/// the schema puts `Area`) is parsed, closed by the root's end tag, and the whole file when that
/// part does not parse or gives no size.
pub(super) fn page_size(bytes: &[u8]) -> Result<Option<(f64, f64)>, String> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
    if !text.contains("PhysicalBox") {
        return Ok(None);
    }
    let root_name = text
        .match_indices('<')
        .map(|(i, _)| &text[i + 1..])
        .find(|t| !t.starts_with('?') && !t.starts_with('!'))
        .map(|t| {
            let end = t
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(t.len());
            &t[..end]
        });
    let content = text.match_indices("Content").find_map(|(i, _)| {
        let before =
            text[..i].trim_end_matches(|c: char| c.is_alphanumeric() || c == '_' || c == '-');
        let start = text[..i].rfind('<')?;
        let after = text[i + "Content".len()..].chars().next()?;
        let qualified = &text[start + 1..i];
        let tag_like = before.ends_with(':') || before.ends_with('<');
        (tag_like
            && !qualified.contains(|c: char| c.is_whitespace() || c == '>' || c == '/')
            && (after.is_whitespace() || after == '>' || after == '/'))
            .then_some(start)
    });
    if let (Some(root), Some(cut)) = (root_name, content) {
        let head = format!("{}</{root}>", &text[..cut]);
        if let Ok(PageScan {
            size: Some(size), ..
        }) = scan(head.as_bytes())
        {
            return Ok(Some(size));
        }
    }
    Ok(scan(bytes)?.size)
}

/// Every occurrence of `keyword` in `glyphs` (whitespace ignored on both sides), in content
/// order and not overlapping, as boxes `[x, y, w, h]` (OFD and PDF pages alike).
pub(crate) fn find(glyphs: &[Glyph], keyword: &str) -> Vec<[f64; 4]> {
    let want: Vec<char> = keyword.chars().filter(|c| !c.is_whitespace()).collect();
    let have: Vec<&Glyph> = glyphs.iter().filter(|g| !g.ch.is_whitespace()).collect();
    let mut hits = Vec::new();
    if want.is_empty() {
        return hits;
    }
    let mut i = 0;
    while i + want.len() <= have.len() {
        if have[i..i + want.len()]
            .iter()
            .zip(&want)
            .all(|(g, c)| g.ch == *c)
        {
            let [x0, y0, x1, y1] = have[i..i + want.len()].iter().fold(
                [f64::MAX, f64::MAX, f64::MIN, f64::MIN],
                |[a, b, c, d], g| {
                    [
                        a.min(g.bbox[0]),
                        b.min(g.bbox[1]),
                        c.max(g.bbox[2]),
                        d.max(g.bbox[3]),
                    ]
                },
            );
            hits.push([x0, y0, x1 - x0, y1 - y0]);
            i += want.len();
        } else {
            i += 1;
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f64; 4], b: [f64; 4]) -> bool {
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[test]
    fn deltas_expand_g() {
        assert_eq!(deltas("g 3 1.5 2 g 2 0"), [1.5, 1.5, 1.5, 2.0, 0.0, 0.0]);
        assert_eq!(deltas("  1  x 2 "), [1.0, 2.0]);
        assert_eq!(deltas("g 1000000000 1").len(), 100_000);
    }

    #[test]
    fn glyph_boxes_follow_deltas_boundary_and_ctm() {
        let xml = r#"<?xml version="1.0"?><ofd:Page xmlns:ofd="http://www.ofdspec.org/2016"><ofd:Area><ofd:PhysicalBox>0 0 100 50</ofd:PhysicalBox></ofd:Area><ofd:Template TemplateID="7"/><ofd:Content><ofd:Layer ID="1">
          <ofd:TextObject ID="2" Boundary="10 20 50 10" Size="4"><ofd:TextCode X="1" Y="5" DeltaX="g 2 4">印章甲</ofd:TextCode><ofd:TextCode>乙</ofd:TextCode></ofd:TextObject>
          <ofd:PageBlock><ofd:TextObject ID="3" Boundary="0 0 10 10" Size="1" CTM="2 0 0 2 1 1"><ofd:TextCode X="0" Y="1">A</ofd:TextCode></ofd:TextObject></ofd:PageBlock>
        </ofd:Layer></ofd:Content></ofd:Page>"#;
        let s = scan(xml.as_bytes()).unwrap();
        assert_eq!(s.size, Some((100.0, 50.0)));
        assert_eq!(s.templates, ["7"]);
        let chars: String = s.glyphs.iter().map(|g| g.ch).collect();
        assert_eq!(chars, "印章甲乙A");
        // 印 at x 10+1, baseline 20+5, size 4: [11, 21.8, 15, 25.8].
        assert!(close(s.glyphs[0].bbox, [11.0, 21.8, 15.0, 25.8]));
        // 乙 continues after 甲 (x 1+8+4 = 13 in object space).
        assert!(close(s.glyphs[3].bbox, [23.0, 21.8, 27.0, 25.8]));
        // A: CTM doubles and shifts by 1: x 0 → 1, baseline 1 → 3; box y from 1-0.8 to 1+0.2.
        assert!(close(s.glyphs[4].bbox, [1.0, 1.4, 3.0, 3.4]));
        let hits = find(&s.glyphs, "章 甲乙");
        assert_eq!(hits.len(), 1);
        assert!(close(hits[0], [15.0, 21.8, 12.0, 4.0]));
        assert!(find(&s.glyphs, "乙甲").is_empty());
        assert!(find(&s.glyphs, " ").is_empty());
    }

    #[test]
    fn page_sizes_without_the_content() {
        let page = |area: &str| {
            format!("\u{feff}<?xml version=\"1.0\"?><ofd:Page xmlns:ofd=\"u\">{area}<ofd:Content><ofd:Layer ID=\"1\"><ofd:TextObject ID=\"2\" Boundary=\"0 0 9 9\" Size=\"3\"><ofd:TextCode X=\"0\" Y=\"3\">PhysicalBox</ofd:TextCode></ofd:TextObject></ofd:Layer></ofd:Content></ofd:Page>")
        };
        let own = page("<ofd:Template TemplateID=\"1\"/><ofd:Area><ofd:PhysicalBox>0 0 210 140</ofd:PhysicalBox></ofd:Area>");
        assert_eq!(page_size(own.as_bytes()).unwrap(), Some((210.0, 140.0)));
        assert_eq!(page_size(page("").as_bytes()).unwrap(), None);
        assert_eq!(page_size(b"<Page><Content/></Page>").unwrap(), None);
        let bare = "<Page><Area><PhysicalBox>0 0 100 50</PhysicalBox></Area><Content/></Page>";
        assert_eq!(page_size(bare.as_bytes()).unwrap(), Some((100.0, 50.0)));
        // Area after Content (out of schema order): found by the full parse.
        let late = "<Page><Content/><Area><PhysicalBox>0 0 100 50</PhysicalBox></Area></Page>";
        assert_eq!(page_size(late.as_bytes()).unwrap(), Some((100.0, 50.0)));
        assert!(page_size(b"<Page><PhysicalBox>").is_err());
    }

    #[test]
    fn hits_do_not_overlap() {
        let g = |ch, x: f64| Glyph {
            ch,
            bbox: [x, 0.0, x + 1.0, 1.0],
        };
        let glyphs = [
            g('a', 0.0),
            g('a', 1.0),
            g('a', 2.0),
            g('a', 3.0),
            g('a', 4.0),
        ];
        assert_eq!(find(&glyphs, "aa").len(), 2);
    }
}
