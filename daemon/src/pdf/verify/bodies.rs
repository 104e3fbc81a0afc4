//! Object bodies an incremental update holds but its cross-reference section does not list.
//!
//! `lopdf`, like any reader that trusts the xref, ignores such a body; a viewer that rebuilds
//! the xref by scanning the file (as Acrobat and MuPDF do when an offset is wrong) reads the
//! last body of each object instead. A later update can so show a page content nobody signed
//! while the xref, and every comparison made through it, says nothing changed.

use lopdf::xref::XrefEntry;
use lopdf::Document;

use super::load::is_space;

fn is_delimiter(b: u8) -> bool {
    is_space(b) || b"()<>[]{}/%".contains(&b)
}

/// The digits ending just before `end` (after skipping white space): (start, value).
fn number_before(bytes: &[u8], end: usize) -> Option<(usize, u64)> {
    let mut i = end;
    let mut spaced = false;
    while i > 0 && is_space(bytes[i - 1]) {
        i -= 1;
        spaced = true;
    }
    if !spaced {
        return None;
    }
    let digits_end = i;
    while i > 0 && bytes[i - 1].is_ascii_digit() && digits_end - i < 10 {
        i -= 1;
    }
    if i == digits_end {
        return None;
    }
    let value = std::str::from_utf8(&bytes[i..digits_end])
        .ok()?
        .parse()
        .ok()?;
    Some((i, value))
}

/// Every `N G obj` header in `bytes[start..end]` outside stream data: (offset, N, G).
fn headers(bytes: &[u8], start: usize, end: usize) -> Vec<(usize, u32, u16)> {
    let mut out = Vec::new();
    let mut i = start;
    while i + 3 <= end {
        // Stream data is skipped: `>> stream` … `endstream`.
        if bytes[i..].starts_with(b"stream")
            && bytes[..i].trim_ascii_end().ends_with(b">>")
            && !bytes[..i].ends_with(b"end")
        {
            match bytes[i..end].windows(9).position(|w| w == b"endstream") {
                Some(p) => {
                    i += p + 9;
                    continue;
                }
                None => break,
            }
        }
        if bytes[i..].starts_with(b"obj")
            && bytes.get(i + 3).is_none_or(|b| is_delimiter(*b))
            && !bytes[..i].ends_with(b"end")
        {
            if let Some((g_at, g)) = number_before(bytes, i) {
                if let Some((n_at, n)) = number_before(bytes, g_at) {
                    let boundary = n_at == 0 || is_delimiter(bytes[n_at - 1]);
                    if let (true, Ok(n), Ok(g)) = (boundary, u32::try_from(n), u16::try_from(g)) {
                        out.push((n_at, n, g));
                    }
                }
            }
        }
        i += 1;
    }
    out
}

/// The bodies in `bytes[start..end]` (one revision's update) that `revision` (the file up to
/// `end`, as read) does not list at their offset, in words. `startxref` is the update's own
/// xref offset: an xref stream's body there need not list itself.
pub(super) fn unlisted(
    bytes: &[u8],
    start: usize,
    end: usize,
    startxref: Option<usize>,
    revision: &Document,
) -> Vec<String> {
    let base = bytes.windows(5).position(|w| w == b"%PDF-").unwrap_or(0);
    headers(bytes, start, end)
        .into_iter()
        .filter(|&(at, n, g)| {
            if startxref.is_some_and(|x| x + base == at || x == at) {
                return false;
            }
            !matches!(
                revision.reference_table.get(n),
                Some(XrefEntry::Normal { offset, generation })
                    if *generation == g
                        && (*offset as usize == at || *offset as usize + base == at)
            )
        })
        .map(|(at, n, g)| {
            format!(
                "object {n} {g} at byte {at} is not in its revision's cross-reference section \
                 (a viewer that rebuilds the cross-reference table would show it)"
            )
        })
        .collect()
}
