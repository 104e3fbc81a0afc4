//! Finding a PDF's revisions (each ends at a `%%EOF` after `startxref <offset>`, the offset
//! of a cross-reference section).

/// Where one revision ends: `%%EOF` after `startxref <offset>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RevisionEnd {
    /// Just after `%%EOF`.
    pub eof: usize,
    /// After the end-of-line that follows `%%EOF`, if any (else `eof`).
    pub end: usize,
}

/// PDF white space (ISO 32000 §7.2.3).
pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' | b'\0')
}

/// The offset of `startxref <offset>` when `before` (the bytes before a `%%EOF`) ends with
/// it and white space.
pub(super) fn after_startxref(before: &[u8]) -> Option<usize> {
    let mut i = before.len();
    while i > 0 && is_space(before[i - 1]) {
        i -= 1;
    }
    let digits_end = i;
    while i > 0 && before[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i == digits_end {
        return None;
    }
    let digits_start = i;
    while i > 0 && is_space(before[i - 1]) {
        i -= 1;
    }
    if i < digits_start && before[..i].ends_with(b"startxref") {
        std::str::from_utf8(&before[digits_start..digits_end])
            .ok()?
            .parse()
            .ok()
    } else {
        None
    }
}

/// Skips ASCII digits from `i`; `None` when there are none.
fn digits(bytes: &[u8], i: usize) -> Option<usize> {
    let n = bytes
        .get(i..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    (n > 0).then_some(i + n)
}

fn spaces(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|&b| is_space(b)) {
        i += 1;
    }
    i
}

/// Whether a cross-reference section starts at `offset`: the `xref` keyword, or
/// `N G obj` of an XRef stream.
fn xref_at(bytes: &[u8], offset: usize) -> bool {
    let Some(rest) = bytes.get(offset..) else {
        return false;
    };
    if rest.starts_with(b"xref") {
        return true;
    }
    let header = || {
        let i = digits(bytes, offset)?;
        let j = spaces(bytes, i);
        let i = digits(bytes, j).filter(|_| j > i)?;
        let j = spaces(bytes, i);
        (j > i && bytes.get(j..)?.starts_with(b"obj")).then_some(j + 3)
    };
    let Some(body) = header() else {
        return false;
    };
    // The stream's dictionary says `/Type /XRef`, before `stream`.
    let dict = &bytes[body..bytes.len().min(body + 4096)];
    let dict = &dict[..find(dict, b"stream").unwrap_or(dict.len())];
    let mut from = 0;
    while let Some(at) = find(&dict[from..], b"/XRef").map(|p| p + from) {
        from = at + 5;
        if !dict.get(from).is_some_and(u8::is_ascii_alphanumeric) {
            return true;
        }
    }
    false
}

/// Most `startxref … %%EOF` candidates looked at (each costs a look at the section it
/// points to): a file with more is read as far as that, and what follows belongs to no
/// revision (the verdict is then INVALID).
const MAX_CANDIDATES: usize = 4 * super::MAX_REVISIONS;

/// Every revision's end, in file order: the original file and each incremental update end
/// with `startxref <offset> %%EOF`.
pub(super) fn revision_ends(bytes: &[u8]) -> Vec<RevisionEnd> {
    let mut ends = Vec::new();
    let mut from = 0;
    let mut candidates = 0;
    while let Some(pos) = find(&bytes[from..], b"%%EOF").map(|p| p + from) {
        from = pos + 5;
        // `startxref` must point at a cross-reference section before it: `%%EOF` in a
        // stream ends nothing.
        let Some(offset) = after_startxref(&bytes[pos.saturating_sub(64)..pos]) else {
            continue;
        };
        candidates += 1;
        if candidates > MAX_CANDIDATES {
            break;
        }
        if offset >= pos || !xref_at(bytes, offset) {
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
