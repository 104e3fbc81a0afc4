//! Opening a PDF (after the size, header and encryption checks) and finding its revisions.

use lopdf::Document;

use crate::pdf::{is_pdf, PdfError, MAX_OBJECTS, MAX_PDF};

/// Opens `bytes` with lopdf after the caps: size, `%PDF-` header, no encryption, object count.
// TODO: use the engine's public loader once `pdf::open` lands (same checks).
pub(super) fn open(bytes: &[u8]) -> Result<Document, PdfError> {
    if bytes.len() > MAX_PDF {
        return Err(PdfError::TooLarge(format!(
            "{} bytes, more than {MAX_PDF}",
            bytes.len()
        )));
    }
    if !is_pdf(bytes) {
        return Err(PdfError::NotPdf);
    }
    let doc = match Document::load_mem(bytes) {
        Ok(doc) => doc,
        Err(_) if trailer_mentions_encrypt(bytes) => return Err(PdfError::Encrypted),
        Err(e) => return Err(PdfError::Unreadable(e.to_string())),
    };
    if doc.trailer.has(b"Encrypt") || doc.encryption_state.is_some() {
        return Err(PdfError::Encrypted);
    }
    let size = doc
        .trailer
        .get(b"Size")
        .and_then(lopdf::Object::as_i64)
        .unwrap_or(0);
    if size > i64::from(MAX_OBJECTS) || doc.max_id > MAX_OBJECTS {
        return Err(PdfError::TooLarge(format!(
            "{} objects, more than {MAX_OBJECTS}",
            size.max(i64::from(doc.max_id))
        )));
    }
    Ok(doc)
}

/// Whether the last trailer (or xref stream dictionary) names an `/Encrypt` dictionary.
fn trailer_mentions_encrypt(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64 << 10)..];
    tail.windows(8).any(|w| w == b"/Encrypt")
}

/// Where one revision ends: `%%EOF` after `startxref <offset>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RevisionEnd {
    /// Just after `%%EOF`.
    pub eof: usize,
    /// After the end-of-line that follows `%%EOF`, if any (else `eof`).
    pub end: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\0')
}

/// Whether `before` (the bytes before a `%%EOF`) ends with `startxref <digits>` and white
/// space.
fn after_startxref(before: &[u8]) -> bool {
    let mut i = before.len();
    while i > 0 && is_space(before[i - 1]) {
        i -= 1;
    }
    let digits_end = i;
    while i > 0 && before[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i == digits_end {
        return false;
    }
    let digits_start = i;
    while i > 0 && is_space(before[i - 1]) {
        i -= 1;
    }
    i < digits_start && before[..i].ends_with(b"startxref")
}

/// Every revision's end, in file order: the original file and each incremental update end
/// with `startxref <offset> %%EOF`.
pub(super) fn revision_ends(bytes: &[u8]) -> Vec<RevisionEnd> {
    let mut ends = Vec::new();
    let mut from = 0;
    while let Some(pos) = find(&bytes[from..], b"%%EOF").map(|p| p + from) {
        from = pos + 5;
        if !after_startxref(&bytes[pos.saturating_sub(64)..pos]) {
            continue;
        }
        let eof = pos + 5;
        let end = match bytes.get(eof..eof + 2) {
            Some(b"\r\n") => eof + 2,
            _ if matches!(bytes.get(eof), Some(b'\r' | b'\n')) => eof + 1,
            _ => eof,
        };
        ends.push(RevisionEnd { eof, end });
    }
    ends
}

/// The first position of `needle` in `haystack`.
pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
