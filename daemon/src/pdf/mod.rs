//! PDF documents (ISO 32000): sealing with an incremental update (earlier bytes untouched, so
//! earlier signatures stay valid) and verifying every signature of a sealed PDF.
//!
//! Knows nothing of devices or HTTP; signs through a [`crate::ses::DocumentSigner`]. Parsing
//! and object writing use `lopdf`; this module bounds what it is given first.
//!
//! [`open`] reads untrusted bytes with the caps below (sealer and verifier alike).
//!
//! Modules: `seal` (plan and incremental update with a visible seal), `cms` (the `/Contents`:
//! CMS SignedData, PAdES for P-256 and GB/T 35275 for SM2, or a GB/T 38540 SES_Signature),
//! `verify` (every signature: ByteRange, digest, CMS, certificate, later revisions), `sample`
//! (PDFs generated for tests and benchmarks).

pub mod cms;
pub mod sample;
pub mod seal;
mod verify;

pub use verify::{
    verify_pdf, verify_pdf_with, ChangesAfter, PdfReport, PdfSignatureReport, MAX_REVISIONS,
};

/// Largest PDF seald reads (bytes).
pub const MAX_PDF: usize = 256 << 20;
/// Most objects a PDF may declare (its xref `/Size`, every revision together).
pub const MAX_OBJECTS: u32 = 1_000_000;
/// Most bytes the object streams and xref streams of a PDF may inflate to, all together
/// (`lopdf` inflates them while loading, with no cap of its own).
pub const MAX_STRUCTURE_INFLATED: u64 = 256 << 20;

/// Why bytes are not a PDF seald can read. Always the input's fault.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// No `%PDF-` header.
    #[error("not a PDF (it does not start with %PDF-)")]
    NotPdf,
    /// Encrypted PDFs are refused: seald cannot show or seal what it cannot read.
    #[error("the PDF is encrypted; remove the password protection before sealing or verifying it")]
    Encrypted,
    /// Larger than the caps ([`MAX_PDF`], [`MAX_OBJECTS`]).
    #[error("the PDF is too large: {0}")]
    TooLarge(String),
    /// The structure cannot be read (broken xref, trailer, page tree, …).
    #[error("the PDF structure is unreadable: {0}")]
    Unreadable(String),
}

/// Opens a PDF for sealing or verifying: the checks every reader of untrusted PDFs needs,
/// then `lopdf`.
///
/// In order: a `%PDF-` header ([`PdfError::NotPdf`]); at most [`MAX_PDF`] bytes and a last
/// trailer (or xref stream) declaring at most [`MAX_OBJECTS`] objects in `/Size`, read from the
/// bytes before `lopdf` parses anything ([`PdfError::TooLarge`]); then the whole file is
/// parsed, every revision's xref section through `/Prev`. A missing or garbage `startxref`, an
/// xref section or trailer that does not parse, no catalog or no page: [`PdfError::Unreadable`].
/// An `/Encrypt` entry (even one `lopdf` could open with the empty user password):
/// [`PdfError::Encrypted`].
///
/// `lopdf` 0.42 does not rebuild a broken xref by scanning for objects, but it is lenient:
/// objects whose xref offset is wrong are skipped (they read as missing), the trailer `/Size`
/// is corrected from the entries found, and leading junk before `%PDF-` is allowed (offsets
/// then count from the header, as readers do). Callers that need exact structure (the
/// verifier) check what they use. `lopdf` inflates object streams and xref streams while
/// loading without an output cap of its own, so they are inflated first here, together capped
/// at [`MAX_STRUCTURE_INFLATED`] ([`PdfError::TooLarge`]); page content that seald reads
/// itself is inflated with a cap.
pub fn open(bytes: &[u8]) -> Result<lopdf::Document, PdfError> {
    open_measured(bytes).map(|(doc, _)| doc)
}

/// [`open`], also giving how many bytes the object and xref streams inflate to (what every
/// further `lopdf` load of the same bytes, or of a prefix, inflates again at most).
pub(crate) fn open_measured(bytes: &[u8]) -> Result<(lopdf::Document, u64), PdfError> {
    if !is_pdf(bytes) {
        return Err(PdfError::NotPdf);
    }
    if bytes.len() > MAX_PDF {
        return Err(PdfError::TooLarge(format!(
            "{} bytes; at most {MAX_PDF} are read",
            bytes.len()
        )));
    }
    if let Some(n) = declared_size(bytes) {
        if n > u64::from(MAX_OBJECTS) {
            return Err(PdfError::TooLarge(format!(
                "the trailer declares {n} objects; at most {MAX_OBJECTS} are read"
            )));
        }
    }
    let inflated = check_structure_streams(bytes)?;
    let doc = lopdf::Document::load_mem(bytes).map_err(|e| {
        PdfError::Unreadable(match e {
            lopdf::Error::Xref(x) => format!("the cross-reference data is broken ({x})"),
            lopdf::Error::Parse(p) => {
                format!("the cross-reference section or trailer does not parse ({p})")
            }
            other => other.to_string(),
        })
    })?;
    if doc.is_encrypted() || doc.was_encrypted() || doc.trailer.has(b"Encrypt") {
        return Err(PdfError::Encrypted);
    }
    if doc.max_id > MAX_OBJECTS {
        return Err(PdfError::TooLarge(format!(
            "object numbers go up to {}; at most {MAX_OBJECTS} are read",
            doc.max_id
        )));
    }
    let catalog = doc
        .catalog()
        .map_err(|e| PdfError::Unreadable(format!("no document catalog (trailer /Root): {e}")))?;
    let pages = catalog
        .get(b"Pages")
        .and_then(|p| doc.dereference(p))
        .and_then(|(_, p)| p.as_dict())
        .map_err(|e| PdfError::Unreadable(format!("the catalog has no page tree (/Pages): {e}")))?;
    if pages.get_type().ok() != Some(b"Pages".as_slice()) && !pages.has_type(b"Page") {
        return Err(PdfError::Unreadable(
            "the catalog's /Pages is not a page tree node".into(),
        ));
    }
    if doc.page_iter().next().is_none() {
        return Err(PdfError::Unreadable(
            "the page tree has no readable page".into(),
        ));
    }
    Ok((doc, inflated))
}

/// Inflates every Flate stream whose dictionary says `/ObjStm` or `/XRef` (looked for in the
/// 1 KiB before its `stream` keyword: a superset of what `lopdf` will inflate) and refuses the
/// file when together they pass [`MAX_STRUCTURE_INFLATED`].
fn check_structure_streams(bytes: &[u8]) -> Result<u64, PdfError> {
    check_structure_streams_within(bytes, MAX_STRUCTURE_INFLATED)
}

/// Most object or xref stream candidates [`check_structure_streams`] inflates (a real PDF with
/// a million objects has a few thousand object streams).
const MAX_STRUCTURE_STREAMS: usize = 20_000;

/// Counts what is written to it.
struct Counter(u64);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn check_structure_streams_within(bytes: &[u8], limit: u64) -> Result<u64, PdfError> {
    use std::io::Read;
    let mut left = limit;
    let mut candidates = 0;
    let mut at = 0;
    while let Some(pos) = bytes[at..].windows(6).position(|w| w == b"stream") {
        let keyword = at + pos;
        // The dictionary is looked for only after the previous keyword: every byte is looked
        // at a bounded number of times, however many `stream` words a file holds.
        let since_last = at;
        at = keyword + 6;
        let before = bytes[..keyword].trim_ascii_end();
        if !before.ends_with(b">>") {
            continue; // `endstream`, or the word inside data: not a stream's start
        }
        let head = &bytes[keyword.saturating_sub(1024).max(since_last)..keyword];
        let dict = match head.windows(2).rposition(|w| w == b"<<") {
            Some(open) => &head[open..],
            None => continue,
        };
        let structural = |what: &[u8]| dict.windows(what.len()).any(|w| w == what);
        if !structural(b"/ObjStm") && !structural(b"/XRef") {
            continue;
        }
        candidates += 1;
        if candidates > MAX_STRUCTURE_STREAMS {
            return Err(PdfError::TooLarge(format!(
                "more than {MAX_STRUCTURE_STREAMS} object or cross-reference streams"
            )));
        }
        let mut data = at;
        if bytes.get(data) == Some(&b'\r') {
            data += 1;
        }
        if bytes.get(data) == Some(&b'\n') {
            data += 1;
        }
        let mut decoder = flate2::read::ZlibDecoder::new(&bytes[data..]).take(left + 1);
        // What inflated before an error counts too (lopdf keeps a partial stream).
        let mut counter = Counter(0);
        let _ = std::io::copy(&mut decoder, &mut counter);
        let inflated = counter.0;
        if inflated > left {
            return Err(PdfError::TooLarge(format!(
                "its object and cross-reference streams inflate to more than {limit} bytes"
            )));
        }
        left -= inflated;
    }
    Ok(limit - left)
}

/// The `/Size` of the last cross-reference section (trailer or xref stream dictionary), read
/// from the bytes near `startxref` without parsing the file; `None` when it cannot be found
/// (`lopdf` then reports what is wrong).
fn declared_size(bytes: &[u8]) -> Option<u64> {
    let base = bytes.windows(5).position(|w| w == b"%PDF-")?;
    let tail_start = bytes.len().saturating_sub(1024);
    let tail = &bytes[tail_start..];
    let at = tail.windows(9).rposition(|w| w == b"startxref")?;
    let digits: Vec<u8> = tail[at + 9..]
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take_while(u8::is_ascii_digit)
        .collect();
    let offset: usize = std::str::from_utf8(&digits).ok()?.parse().ok()?;
    let start = base.checked_add(offset)?;
    // The first `/Size` after the offset: the trailer's after a table, the xref stream's own.
    let section = bytes.get(start..)?;
    let key = section.windows(5).position(|w| w == b"/Size")?;
    let digits: Vec<u8> = section[key + 5..]
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take_while(u8::is_ascii_digit)
        .take(20)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// True when `bytes` start like a PDF (`%PDF-`, allowing up to 1 KiB of leading junk as
/// readers do).
pub fn is_pdf(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    head.windows(5).any(|w| w == b"%PDF-")
}

#[cfg(test)]
mod structure_tests {
    use std::io::Write;

    /// `bytes` of zeros deflated, as the data of an object stream.
    fn obj_stm(inflated: usize) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&vec![0u8; inflated]).unwrap();
        let data = z.finish().unwrap();
        let mut pdf =
            b"%PDF-1.7\n5 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode >>\nstream\n"
                .to_vec();
        pdf.extend_from_slice(&data);
        pdf.extend_from_slice(b"\nendstream\nendobj\n");
        pdf
    }

    #[test]
    fn object_streams_that_inflate_past_the_cap_are_refused_before_parsing() {
        let pdf = obj_stm(64 << 10);
        assert!(super::check_structure_streams_within(&pdf, 64 << 10).is_ok());
        // Without `>>` before it, `stream` starts nothing.
        let mut loose = pdf.clone();
        let at = loose.windows(9).position(|w| w == b">>\nstream").unwrap();
        loose[at] = b' ';
        loose[at + 1] = b' ';
        assert!(super::check_structure_streams_within(&loose, 1).is_ok());
        let err = super::check_structure_streams_within(&pdf, (64 << 10) - 1).unwrap_err();
        assert!(
            matches!(err, super::PdfError::TooLarge(ref m) if m.contains("inflate")),
            "{err}"
        );
        // The cap is for all of them together.
        let mut two = pdf.clone();
        two.extend_from_slice(&obj_stm(64 << 10)[9..]);
        assert!(super::check_structure_streams_within(&two, 100 << 10).is_err());
    }
}
