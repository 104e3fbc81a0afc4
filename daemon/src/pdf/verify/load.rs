//! Finding a PDF's revisions (each ends at a `%%EOF` after `startxref`).

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
