//! Writing XML: the new `Signature.xml` (schema order), a new `Signatures.xml`, and minimal
//! splices into the original bytes of `OFD.xml` and an existing `Signatures.xml`. An existing
//! file is never re-serialised: the splice inserts (or replaces the text of `MaxSignId`) and
//! leaves every other byte, the declaration, the namespace prefix and the layout as they were.

use std::fmt::Write as _;

use roxmltree::Node;

use super::{IdStyle, ResolvedStamp};
use crate::ofd::sample::{escape, num};
use crate::ofd::xml::parse;

/// The OFD namespace written into new files.
pub(super) const OFD_NS: &str = "http://www.ofdspec.org/2016";
/// SM2-with-SM3.
pub(super) const SM3_OID: &str = "1.2.156.10197.1.401";

/// A counter of new signature and stamp IDs, seeded above every existing one.
#[derive(Debug)]
pub(super) struct Ids<'a> {
    next: u64,
    style: IdStyle,
    taken: &'a std::collections::BTreeSet<String>,
}

impl<'a> Ids<'a> {
    /// IDs after `max` in `style`, never one of `taken`.
    pub fn new(max: u64, style: IdStyle, taken: &'a std::collections::BTreeSet<String>) -> Self {
        Self {
            next: max.saturating_add(1),
            style,
            taken,
        }
    }

    /// The next free ID.
    pub fn next_id(&mut self) -> String {
        loop {
            let n = self.next;
            self.next = self.next.saturating_add(1);
            let id = match self.style {
                IdStyle::Prefixed => format!("s{n:03}"),
                IdStyle::Number => n.to_string(),
            };
            if !self.taken.contains(&id) {
                return id;
            }
        }
    }
}

/// The BOM length of `bytes` (ranges from [`parse`] start after it).
fn bom(bytes: &[u8]) -> usize {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    }
}

/// The qualified name of an element as written (`ofd:DocBody`).
fn qname<'t>(text: &'t str, node: &Node<'_, '_>) -> &'t str {
    let start = node.range().start + 1;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .unwrap_or(rest.len());
    &rest[..end]
}

/// `ofd:` for `ofd:Signatures`, `""` for an unprefixed name.
fn prefix_of(qname: &str) -> &str {
    qname
        .rsplit_once(':')
        .map(|(p, _)| &qname[..=p.len()])
        .unwrap_or("")
}

fn is(node: &Node<'_, '_>, local: &str) -> bool {
    node.is_element() && node.tag_name().name() == local
}

/// One edit of the original bytes: replace `len` bytes at `at` with `with`.
struct Edit {
    at: usize,
    len: usize,
    with: String,
}

fn apply(bytes: &[u8], mut edits: Vec<Edit>) -> Vec<u8> {
    edits.sort_by_key(|e| std::cmp::Reverse(e.at));
    let mut out = bytes.to_vec();
    for e in edits {
        out.splice(e.at..e.at + e.len, e.with.into_bytes());
    }
    out
}

/// Where new content goes at the end of an element: before its closing tag, or (for an empty
/// `<x/>`) by turning it into `<x>…</x>`.
fn append_into(text: &str, base: usize, node: &Node<'_, '_>, content: String) -> Edit {
    let r = node.range();
    let element = &text[r.clone()];
    if !node.has_children() && element.ends_with("/>") {
        let q = qname(text, node);
        Edit {
            at: base + r.end - 2,
            len: 2,
            with: format!(">{content}</{q}>"),
        }
    } else {
        // The closing tag is the last `</` of the element.
        let close = element.rfind("</").unwrap_or(element.len());
        Edit {
            at: base + r.start + close,
            len: 0,
            with: content,
        }
    }
}

/// `MaxSignId` (as written) and the `Signature` IDs of a `Signatures.xml`.
pub(super) fn list_facts(bytes: &[u8]) -> Result<(Option<String>, Vec<String>), String> {
    let doc = parse(bytes)?;
    let root = doc.root_element();
    if root.tag_name().name() != "Signatures" {
        return Err(format!(
            "root element is <{}>, not <Signatures>",
            root.tag_name().name()
        ));
    }
    let max = root
        .children()
        .find(|n| is(n, "MaxSignId"))
        .map(|n| n.text().unwrap_or("").trim().to_string());
    let ids = root
        .children()
        .filter(|n| is(n, "Signature"))
        .filter_map(|n| n.attribute("ID").map(|s| s.trim().to_string()))
        .collect();
    Ok((max, ids))
}

/// A new `Signatures.xml` holding one signature.
pub(super) fn new_list(max_id: &str, sig_id: &str, base_loc: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:Signatures xmlns:ofd=\"{OFD_NS}\"><ofd:MaxSignId>{}</ofd:MaxSignId><ofd:Signature ID=\"{}\" Type=\"Seal\" BaseLoc=\"{}\"/></ofd:Signatures>",
        escape(max_id),
        escape(sig_id),
        escape(base_loc)
    )
    .into_bytes()
}

/// An existing `Signatures.xml` with `MaxSignId` set to `max_id` (its text replaced in place,
/// or the element inserted first when absent) and a `Signature` appended.
pub(super) fn extend_list(
    bytes: &[u8],
    max_id: &str,
    sig_id: &str,
    base_loc: &str,
) -> Result<Vec<u8>, String> {
    let base = bom(bytes);
    let doc = parse(bytes)?;
    let text = doc.input_text();
    let root = doc.root_element();
    if root.tag_name().name() != "Signatures" {
        return Err(format!(
            "root element is <{}>, not <Signatures>",
            root.tag_name().name()
        ));
    }
    let p = prefix_of(qname(text, &root)).to_string();
    let signature = format!(
        "<{p}Signature ID=\"{}\" Type=\"Seal\" BaseLoc=\"{}\"/>",
        escape(sig_id),
        escape(base_loc)
    );
    let max_el = format!("<{p}MaxSignId>{}</{p}MaxSignId>", escape(max_id));
    let mut edits = Vec::new();
    match root.children().find(|n| is(n, "MaxSignId")) {
        Some(m) => {
            let r = m.range();
            let el = &text[r.clone()];
            match (el.find('>'), el.rfind("</")) {
                (Some(open_end), Some(close)) if open_end < close => edits.push(Edit {
                    at: base + r.start + open_end + 1,
                    len: close - open_end - 1,
                    with: escape(max_id),
                }),
                _ => edits.push(Edit {
                    at: base + r.start,
                    len: r.len(),
                    with: max_el,
                }),
            }
            edits.push(append_into(text, base, &root, signature));
        }
        None => match root.first_child() {
            Some(first) => {
                edits.push(Edit {
                    at: base + first.range().start,
                    len: 0,
                    with: max_el,
                });
                edits.push(append_into(text, base, &root, signature));
            }
            None => edits.push(append_into(
                text,
                base,
                &root,
                format!("{max_el}{signature}"),
            )),
        },
    }
    Ok(apply(bytes, edits))
}

/// `OFD.xml` with `<Signatures>loc</Signatures>` added at the end of the first `DocBody`
/// (its place in the schema), in the `DocBody`'s prefix.
pub(super) fn add_signatures_to_ofd(bytes: &[u8], loc: &str) -> Result<Vec<u8>, String> {
    let base = bom(bytes);
    let doc = parse(bytes)?;
    let text = doc.input_text();
    let body = doc
        .root_element()
        .children()
        .find(|n| is(n, "DocBody"))
        .ok_or("OFD.xml has no DocBody")?;
    let p = prefix_of(qname(text, &body)).to_string();
    let el = format!("<{p}Signatures>{}</{p}Signatures>", escape(loc));
    Ok(apply(bytes, vec![append_into(text, base, &body, el)]))
}

/// What goes into a new `Signature.xml`.
#[derive(Debug)]
pub(super) struct SignatureParts<'a> {
    /// `Provider@ProviderName`.
    pub provider: &'a str,
    /// `Provider@Version`.
    pub version: &'a str,
    /// `SignatureMethod` (an OID).
    pub method: &'a str,
    /// `SignatureDateTime`.
    pub date_time: &'a str,
    /// `(FileRef, base64 SM3)` per reference.
    pub references: &'a [(String, String)],
    /// `(ID, stamp)` per `StampAnnot`.
    pub stamps: &'a [(String, &'a ResolvedStamp)],
    /// `Seal/BaseLoc`.
    pub seal_loc: &'a str,
    /// `SignedValue`.
    pub signed_value_loc: &'a str,
}

fn boxed(b: &[f64; 4]) -> String {
    format!("{} {} {} {}", num(b[0]), num(b[1]), num(b[2]), num(b[3]))
}

/// A `Signature.xml` in schema order.
pub(super) fn signature_xml(s: &SignatureParts<'_>) -> Vec<u8> {
    let mut x = String::with_capacity(512 + 120 * s.references.len() + 100 * s.stamps.len());
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:Signature xmlns:ofd=\"{OFD_NS}\"><ofd:SignedInfo><ofd:Provider ProviderName=\"{}\" Version=\"{}\"/><ofd:SignatureMethod>{}</ofd:SignatureMethod><ofd:SignatureDateTime>{}</ofd:SignatureDateTime><ofd:References CheckMethod=\"{SM3_OID}\">",
        escape(s.provider),
        escape(s.version),
        escape(s.method),
        escape(s.date_time)
    );
    for (file_ref, check) in s.references {
        let _ = write!(
            x,
            "<ofd:Reference FileRef=\"{}\"><ofd:CheckValue>{check}</ofd:CheckValue></ofd:Reference>",
            escape(file_ref)
        );
    }
    x.push_str("</ofd:References>");
    for (id, st) in s.stamps {
        let _ = write!(
            x,
            "<ofd:StampAnnot ID=\"{}\" PageRef=\"{}\" Boundary=\"{}\"",
            escape(id),
            escape(&st.page_ref),
            boxed(&st.boundary)
        );
        if let Some(c) = &st.clip {
            let _ = write!(x, " Clip=\"{}\"", boxed(c));
        }
        x.push_str("/>");
    }
    let _ = write!(
        x,
        "<ofd:Seal><ofd:BaseLoc>{}</ofd:BaseLoc></ofd:Seal></ofd:SignedInfo><ofd:SignedValue>{}</ofd:SignedValue></ofd:Signature>",
        escape(s.seal_loc),
        escape(s.signed_value_loc)
    );
    x.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_skip_taken_ones() {
        let taken = ["s003".to_string()].into_iter().collect();
        let mut ids = Ids::new(2, IdStyle::Prefixed, &taken);
        assert_eq!(ids.next_id(), "s004");
        assert_eq!(ids.next_id(), "s005");
        let mut ids = Ids::new(0, IdStyle::Number, &taken);
        assert_eq!(ids.next_id(), "1");
        let mut ids = Ids::new(999, IdStyle::Prefixed, &taken);
        assert_eq!(ids.next_id(), "s1000");
    }

    #[test]
    fn lists_are_extended_by_splicing() {
        // gomain style: MaxSignId first, relative BaseLoc.
        let a = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:Signatures xmlns:ofd=\"http://www.ofdspec.org/2016\"><ofd:MaxSignId>2</ofd:MaxSignId><ofd:Signature ID=\"1\" BaseLoc=\"Sign_0/Signature.xml\"/></ofd:Signatures>\n";
        let out = extend_list(a, "5", "3", "/Doc_0/Signs/Sign_1/Signature.xml").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ofd:Signatures xmlns:ofd=\"http://www.ofdspec.org/2016\"><ofd:MaxSignId>5</ofd:MaxSignId><ofd:Signature ID=\"1\" BaseLoc=\"Sign_0/Signature.xml\"/><ofd:Signature ID=\"3\" Type=\"Seal\" BaseLoc=\"/Doc_0/Signs/Sign_1/Signature.xml\"/></ofd:Signatures>\n"
        );
        // ofdrw style (MaxSignId last), a BOM, another prefix.
        let b = "\u{feff}<x:Signatures xmlns:x=\"u\">\n  <x:Signature ID=\"s001\" BaseLoc=\"a\"/>\n  <x:MaxSignId> s006 </x:MaxSignId>\n</x:Signatures>";
        let out = extend_list(b.as_bytes(), "s009", "s007", "b&c").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\u{feff}<x:Signatures xmlns:x=\"u\">\n  <x:Signature ID=\"s001\" BaseLoc=\"a\"/>\n  <x:MaxSignId>s009</x:MaxSignId>\n<x:Signature ID=\"s007\" Type=\"Seal\" BaseLoc=\"b&amp;c\"/></x:Signatures>"
        );
        // No MaxSignId: inserted first. Empty and self-closing lists.
        let c = b"<Signatures xmlns=\"u\"><Signature ID=\"7\" BaseLoc=\"a\"/></Signatures>";
        let out = extend_list(c, "9", "8", "b").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<Signatures xmlns=\"u\"><MaxSignId>9</MaxSignId><Signature ID=\"7\" BaseLoc=\"a\"/><Signature ID=\"8\" Type=\"Seal\" BaseLoc=\"b\"/></Signatures>"
        );
        let d = b"<o:Signatures xmlns:o=\"u\"/>";
        let out = extend_list(d, "1", "1", "b").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<o:Signatures xmlns:o=\"u\"><o:MaxSignId>1</o:MaxSignId><o:Signature ID=\"1\" Type=\"Seal\" BaseLoc=\"b\"/></o:Signatures>"
        );
        let e = b"<o:Signatures xmlns:o=\"u\"><o:MaxSignId/></o:Signatures>";
        let out = extend_list(e, "2", "2", "b").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<o:Signatures xmlns:o=\"u\"><o:MaxSignId>2</o:MaxSignId><o:Signature ID=\"2\" Type=\"Seal\" BaseLoc=\"b\"/></o:Signatures>"
        );
        assert!(extend_list(b"<Other/>", "1", "1", "b").is_err());
        assert!(extend_list(b"<Signatures>", "1", "1", "b").is_err());
    }

    #[test]
    fn ofd_xml_gains_signatures_at_the_end_of_doc_body() {
        let a = "\u{feff}<?xml version=\"1.0\"?>\n<ofd:OFD xmlns:ofd=\"u\">\n\t<ofd:DocBody>\n\t\t<ofd:DocRoot>Doc_1/Document.xml</ofd:DocRoot>\n\t</ofd:DocBody >\n\t<ofd:DocBody><ofd:DocRoot>x</ofd:DocRoot></ofd:DocBody>\n</ofd:OFD>";
        let out = add_signatures_to_ofd(a.as_bytes(), "/Doc_1/Signs/Signatures.xml").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            a.replacen(
                "\n\t</ofd:DocBody >",
                "\n\t<ofd:Signatures>/Doc_1/Signs/Signatures.xml</ofd:Signatures></ofd:DocBody >",
                1
            )
        );
        assert!(add_signatures_to_ofd(b"<OFD/>", "a").is_err());
    }

    #[test]
    fn signature_xml_is_in_schema_order() {
        let stamp = ResolvedStamp {
            page: 1,
            page_ref: "10".into(),
            boundary: [1.5, 2.0, 40.0, 40.0],
            clip: Some([0.0, 0.0, 8.0, 40.0]),
        };
        let x = signature_xml(&SignatureParts {
            provider: "seald",
            version: "1",
            method: "1.2.156.10197.1.501",
            date_time: "20250601080000Z",
            references: &[("/OFD.xml".into(), "AAA=".into())],
            stamps: &[("s002".into(), &stamp)],
            seal_loc: "/Doc_0/Signs/Sign_0/Seal.esl",
            signed_value_loc: "/Doc_0/Signs/Sign_0/SignedValue.dat",
        });
        let x = String::from_utf8(x).unwrap();
        let order = [
            "<ofd:SignedInfo>",
            "<ofd:Provider ",
            "<ofd:SignatureMethod>",
            "<ofd:SignatureDateTime>",
            "<ofd:References CheckMethod=\"1.2.156.10197.1.401\">",
            "<ofd:Reference FileRef=\"/OFD.xml\"><ofd:CheckValue>AAA=</ofd:CheckValue>",
            "<ofd:StampAnnot ID=\"s002\" PageRef=\"10\" Boundary=\"1.5 2 40 40\" Clip=\"0 0 8 40\"/>",
            "<ofd:Seal><ofd:BaseLoc>/Doc_0/Signs/Sign_0/Seal.esl</ofd:BaseLoc></ofd:Seal>",
            "</ofd:SignedInfo><ofd:SignedValue>/Doc_0/Signs/Sign_0/SignedValue.dat</ofd:SignedValue>",
        ];
        let mut at = 0;
        for o in order {
            let i = x[at..]
                .find(o)
                .unwrap_or_else(|| panic!("{o} out of order in {x}"));
            at += i + o.len();
        }
        let parsed = crate::ofd::xml::read_signature(x.as_bytes()).unwrap();
        assert_eq!(parsed.stamps[0].clip.as_deref(), Some("0 0 8 40"));
        assert_eq!(parsed.references.len(), 1);
    }
}
