//! Bounds on what clients may ask: text they supply (purpose, comments, document names), how
//! many documents one request names, and how many requests may wait at once.

use super::ApprovalError;

/// Most characters of a request's `purpose` or an approver's `comment`.
pub const MAX_PURPOSE_CHARS: usize = 1_000;
/// Most characters of a comment on a decision.
pub const MAX_COMMENT_CHARS: usize = 1_000;
/// Most characters of a document name.
pub const MAX_NAME_CHARS: usize = 255;

/// Per-request and open-request bounds (`[limits]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Most documents in one request.
    pub max_documents: usize,
    /// Most pending requests of one client.
    pub max_pending_per_client: u64,
    /// Most pending requests for one seal.
    pub max_pending_per_seal: u64,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            max_documents: 1_000,
            max_pending_per_client: 100,
            max_pending_per_seal: 1_000,
        }
    }
}

/// Unicode bidirectional embedding, override and isolate controls: they can make text display
/// in another order than it is stored (an approver could read a different name or purpose).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Checks client-supplied text `field`: at most `max_chars` characters, no control characters
/// (C0, DEL, C1, including newlines and tabs) and no bidirectional controls.
pub fn check_text(field: &str, value: &str, max_chars: usize) -> Result<(), ApprovalError> {
    let bad = |problem: String| ApprovalError::BadText {
        field: field.to_owned(),
        problem,
    };
    let mut count = 0;
    for (i, c) in value.chars().enumerate() {
        if c.is_control() {
            return Err(bad(format!(
                "contains the control character U+{:04X} at character {}; send plain text on one line",
                c as u32,
                i + 1
            )));
        }
        if is_bidi_control(c) {
            return Err(bad(format!(
                "contains the bidirectional control U+{:04X} at character {}, which can make text display differently from what it is; remove it",
                c as u32,
                i + 1
            )));
        }
        count += 1;
    }
    if count > max_chars {
        return Err(bad(format!(
            "is {count} characters long; at most {max_chars} are allowed"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(r: Result<(), ApprovalError>) -> String {
        match r {
            Err(e @ ApprovalError::BadText { .. }) => e.to_string(),
            other => panic!("expected BadText, got {other:?}"),
        }
    }

    #[test]
    fn text_within_bounds_passes() {
        check_text("purpose", "", 10).unwrap();
        check_text("purpose", "合同盖章 (contract) – ok", 100).unwrap();
        // Exactly the limit, counted in characters, not bytes.
        check_text("purpose", &"印".repeat(1_000), MAX_PURPOSE_CHARS).unwrap();
        // Marks that do not reorder text are allowed.
        check_text("comment", "a\u{200E}b\u{200F}", 10).unwrap();
    }

    #[test]
    fn long_text_is_refused_with_its_length_and_the_limit() {
        let m = problem(check_text("purpose", &"x".repeat(1_001), MAX_PURPOSE_CHARS));
        assert!(m.contains("`purpose`"), "{m}");
        assert!(m.contains("1001 characters"), "{m}");
        assert!(m.contains("at most 1000"), "{m}");
        let m = problem(check_text(
            "document name",
            &"n".repeat(256),
            MAX_NAME_CHARS,
        ));
        assert!(m.contains("at most 255"), "{m}");
    }

    #[test]
    fn control_and_bidi_characters_are_refused() {
        for c in [
            '\0', '\n', '\t', '\r', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}',
        ] {
            let m = problem(check_text("comment", &format!("ok{c}"), 100));
            assert!(m.contains("control character"), "{c:?}: {m}");
            assert!(m.contains("character 3"), "{c:?}: {m}");
        }
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}',
        ] {
            let m = problem(check_text(
                "document name",
                &format!("invoice{c}fdp.exe"),
                100,
            ));
            assert!(m.contains("bidirectional"), "{c:?}: {m}");
            assert!(m.contains(&format!("U+{:04X}", c as u32)), "{m}");
        }
    }
}
