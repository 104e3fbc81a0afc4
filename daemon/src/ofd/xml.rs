//! Reading the OFD XML files a verifier needs: `OFD.xml`, `Document.xml`, `Signatures.xml` and
//! each `Signature.xml`. Read-only (`roxmltree`, no DTD, bounded node count); elements are
//! matched on local names, so any namespace prefix (`ofd:`, none, another) is read the same.
//! Locations are returned as written; the caller resolves them.

use roxmltree::{Document, Node, ParsingOptions};

/// Most XML nodes parsed from one file.
const MAX_NODES: u32 = 2_000_000;

/// Parses XML bytes (a UTF-8 BOM skipped) with the readers' limits. Node ranges are offsets
/// into the bytes after the BOM.
pub(crate) fn parse(bytes: &[u8]) -> Result<Document<'_>, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, options).map_err(|e| format!("not well-formed XML: {e}"))
}

fn is(node: &Node<'_, '_>, local: &str) -> bool {
    node.is_element() && node.tag_name().name() == local
}

fn child<'a, 'i>(node: Node<'a, 'i>, local: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| is(n, local))
}

fn children<'a, 'i>(node: Node<'a, 'i>, local: &'a str) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(move |n| is(n, local))
}

fn text(node: Node<'_, '_>) -> String {
    node.text().unwrap_or("").trim().to_string()
}

fn root<'a, 'i>(doc: &'a Document<'i>, local: &str) -> Result<Node<'a, 'i>, String> {
    let r = doc.root_element();
    if r.tag_name().name() == local {
        Ok(r)
    } else {
        Err(format!(
            "root element is <{}>, not <{local}>",
            r.tag_name().name()
        ))
    }
}

/// What `OFD.xml` says about the (first) document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfdEntry {
    /// `DocBody/DocRoot`, as written.
    pub doc_root: String,
    /// `DocBody/Signatures`, as written, if any.
    pub signatures: Option<String>,
    /// How many `DocBody` elements there are (only the first is verified).
    pub doc_bodies: usize,
}

/// Reads `OFD.xml`.
pub fn read_ofd_entry(bytes: &[u8]) -> Result<OfdEntry, String> {
    let doc = parse(bytes)?;
    let root = root(&doc, "OFD")?;
    let doc_bodies = children(root, "DocBody").count();
    let body = child(root, "DocBody").ok_or("OFD.xml has no DocBody")?;
    let doc_root = child(body, "DocRoot")
        .map(text)
        .filter(|s| !s.is_empty())
        .ok_or("OFD.xml DocBody has no DocRoot")?;
    let signatures = child(body, "Signatures")
        .map(text)
        .filter(|s| !s.is_empty());
    Ok(OfdEntry {
        doc_root,
        signatures,
        doc_bodies,
    })
}

/// One `Pages/Page` of `Document.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageEntry {
    /// `@ID` (the object id a `StampAnnot@PageRef` names).
    pub id: String,
    /// `@BaseLoc`, as written.
    pub base_loc: String,
}

/// Reads the page list of `Document.xml`, in document order.
pub fn read_pages(bytes: &[u8]) -> Result<Vec<PageEntry>, String> {
    let doc = parse(bytes)?;
    let root = root(&doc, "Document")?;
    let Some(pages) = child(root, "Pages") else {
        return Ok(Vec::new());
    };
    children(pages, "Page")
        .map(|p| {
            let id = p.attribute("ID").unwrap_or("").trim().to_string();
            let base_loc = p.attribute("BaseLoc").unwrap_or("").trim().to_string();
            if id.is_empty() || base_loc.is_empty() {
                Err("a Page in Document.xml lacks ID or BaseLoc".to_string())
            } else {
                Ok(PageEntry { id, base_loc })
            }
        })
        .collect()
}

/// One `Signature` of `Signatures.xml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEntry {
    /// `@ID`.
    pub id: String,
    /// `@Type`: `Seal` (the default) or `Sign`.
    pub kind: String,
    /// `@BaseLoc` of its `Signature.xml`, as written.
    pub base_loc: String,
}

/// Reads the signature list of `Signatures.xml`.
pub fn read_signature_list(bytes: &[u8]) -> Result<Vec<SignatureEntry>, String> {
    let doc = parse(bytes)?;
    let root = root(&doc, "Signatures")?;
    children(root, "Signature")
        .map(|s| {
            let base_loc = s.attribute("BaseLoc").unwrap_or("").trim().to_string();
            if base_loc.is_empty() {
                return Err("a Signature in Signatures.xml has no BaseLoc".to_string());
            }
            Ok(SignatureEntry {
                id: s.attribute("ID").unwrap_or("").trim().to_string(),
                kind: s.attribute("Type").unwrap_or("Seal").trim().to_string(),
                base_loc,
            })
        })
        .collect()
}

/// One `References/Reference`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceEntry {
    /// `@FileRef`, as written.
    pub file_ref: String,
    /// `CheckValue` text (base64), trimmed.
    pub check_value: String,
}

/// One `StampAnnot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampEntry {
    /// `@ID`.
    pub id: String,
    /// `@PageRef`: a page's object id.
    pub page_ref: String,
    /// `@Boundary`, as written (`x y w h`, mm).
    pub boundary: String,
    /// `@Clip`, as written, if any.
    pub clip: Option<String>,
}

/// What a `Signature.xml` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureXml {
    /// `SignedInfo/References@CheckMethod`, if given.
    pub check_method: Option<String>,
    /// The references, in file order.
    pub references: Vec<ReferenceEntry>,
    /// The stamp annotations.
    pub stamps: Vec<StampEntry>,
    /// `SignedValue` location, as written.
    pub signed_value: Option<String>,
    /// `SignedInfo/Seal/BaseLoc`, as written.
    pub seal: Option<String>,
}

/// Reads a `Signature.xml`. More than one `SignedInfo` or `References` is refused: a verifier
/// and a viewer could read different ones.
pub fn read_signature(bytes: &[u8]) -> Result<SignatureXml, String> {
    let doc = parse(bytes)?;
    let root = root(&doc, "Signature")?;
    if children(root, "SignedInfo").count() != 1 {
        return Err("Signature.xml must have exactly one SignedInfo".into());
    }
    let info = child(root, "SignedInfo").ok_or("Signature.xml has no SignedInfo")?;
    if children(info, "References").count() > 1 {
        return Err("Signature.xml has more than one References".into());
    }
    let (check_method, references) = match child(info, "References") {
        None => (None, Vec::new()),
        Some(refs) => {
            let list = children(refs, "Reference")
                .map(|r| {
                    let file_ref = r.attribute("FileRef").unwrap_or("").trim().to_string();
                    let check_value = child(r, "CheckValue").map(text).unwrap_or_default();
                    ReferenceEntry {
                        file_ref,
                        check_value,
                    }
                })
                .collect();
            (
                refs.attribute("CheckMethod").map(|m| m.trim().to_string()),
                list,
            )
        }
    };
    let stamps = children(info, "StampAnnot")
        .map(|s| StampEntry {
            id: s.attribute("ID").unwrap_or("").trim().to_string(),
            page_ref: s.attribute("PageRef").unwrap_or("").trim().to_string(),
            boundary: s.attribute("Boundary").unwrap_or("").trim().to_string(),
            clip: s.attribute("Clip").map(|c| c.trim().to_string()),
        })
        .collect();
    let signed_value = child(root, "SignedValue")
        .map(text)
        .filter(|s| !s.is_empty());
    let seal = child(info, "Seal")
        .and_then(|s| child(s, "BaseLoc"))
        .map(text)
        .filter(|s| !s.is_empty());
    Ok(SignatureXml {
        check_method,
        references,
        stamps,
        signed_value,
        seal,
    })
}

/// Parses an `ST_Box` (`x y w h`, finite numbers, w and h not negative).
pub fn parse_box(s: &str) -> Result<[f64; 4], String> {
    let nums: Vec<f64> = s
        .split_whitespace()
        .map(|n| n.parse::<f64>().map_err(|_| format!("{s:?} is not a box")))
        .collect::<Result<_, _>>()?;
    match nums.as_slice() {
        [x, y, w, h] if nums.iter().all(|n| n.is_finite()) && *w >= 0.0 && *h >= 0.0 => {
            Ok([*x, *y, *w, *h])
        }
        _ => Err(format!("{s:?} is not a box \"x y w h\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_any_prefix_and_order() {
        let xml = br#"<?xml version="1.0"?><x:Signature xmlns:x="urn:a"><x:SignedValue> /a/SignedValue.dat </x:SignedValue><x:SignedInfo><x:StampAnnot ID="2" PageRef="1" Boundary="1 2 3 4" Clip="0 0 1 1"/><x:References CheckMethod="SM3"><x:Reference FileRef="/OFD.xml"><x:CheckValue> abc= </x:CheckValue></x:Reference></x:References></x:SignedInfo></x:Signature>"#;
        let s = read_signature(xml).unwrap();
        assert_eq!(s.check_method.as_deref(), Some("SM3"));
        assert_eq!(s.references[0].file_ref, "/OFD.xml");
        assert_eq!(s.references[0].check_value, "abc=");
        assert_eq!(s.stamps[0].clip.as_deref(), Some("0 0 1 1"));
        assert_eq!(s.signed_value.as_deref(), Some("/a/SignedValue.dat"));
    }

    #[test]
    fn refuses_dtd_and_doubles() {
        let dtd = br#"<!DOCTYPE x [<!ENTITY a "aaaa">]><Signature><SignedInfo/></Signature>"#;
        assert!(read_signature(dtd).is_err());
        let two = br#"<Signature><SignedInfo><References/><References/></SignedInfo></Signature>"#;
        assert!(read_signature(two).is_err());
        assert!(read_signature(b"\xff\xfe").is_err());
        assert!(read_ofd_entry(b"<OFD><DocBody/></OFD>").is_err());
    }

    #[test]
    fn boxes() {
        assert_eq!(parse_box("90.0 8 30 20").unwrap(), [90.0, 8.0, 30.0, 20.0]);
        assert!(parse_box("1 2 3").is_err());
        assert!(parse_box("1 2 3 NaN").is_err());
        assert!(parse_box("1 2 -3 4").is_err());
    }
}
