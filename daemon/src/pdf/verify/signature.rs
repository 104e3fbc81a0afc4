//! One signature's checks: the ByteRange, then `/Contents` as CMS SignedData or as a
//! GB/T 38540 SES_Signature over the ByteRange bytes.

use crate::cms::Anchors;
use lopdf::{Dictionary, Object};
use time::OffsetDateTime;

use super::fields::{pdf_date, pdf_text, SigField};
use super::load::RevisionEnd;
use super::{ChangesAfter, PdfSignatureReport};
use crate::cert::{rfc3339, signature_algorithm};
use crate::cms::{oid, CmsChecks, DigestAlgorithm};
use crate::crypto::KeyAlgorithm;
use crate::pdf::cms::verify_contents;
use crate::ses::{
    detect, verify_signature, CheckStatus, Document, ObjectKind, SesSignature, VerifyOptions,
};

/// The two signed pieces of the file and the `/Contents` bytes between them.
struct Range<'a> {
    pieces: [&'a [u8]; 2],
    contents: Vec<u8>,
    end: usize,
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Checks that `/ByteRange` is `[0 a b c]` with the gap exactly a hex string `<…>` and the
/// second piece inside the file; decodes the gap.
fn byte_range<'a>(bytes: &'a [u8], br: &[u64]) -> Result<Range<'a>, String> {
    let &[start, a, b, c] = br else {
        return Err(format!("/ByteRange has {} numbers, not 4", br.len()));
    };
    let n = |v: u64| usize::try_from(v).map_err(|_| "/ByteRange number too large".to_string());
    let (a, b, c) = (n(a)?, n(b)?, n(c)?);
    if start != 0 {
        return Err("/ByteRange does not start at byte 0".into());
    }
    let end = b.checked_add(c).ok_or("/ByteRange overflows")?;
    if a + 2 > b || end > bytes.len() {
        return Err(format!(
            "/ByteRange [0 {a} {b} {c}] does not fit a file of {} bytes",
            bytes.len()
        ));
    }
    let gap = &bytes[a..b];
    if gap[0] != b'<' || gap[gap.len() - 1] != b'>' {
        return Err("the /ByteRange gap is not a hex string <…>".into());
    }
    let digits = &gap[1..gap.len() - 1];
    let mut contents = Vec::with_capacity(digits.len() / 2 + 1);
    for pair in digits.chunks(2) {
        let hi = hex_value(pair[0]);
        let lo = pair.get(1).map_or(Some(0), |&d| hex_value(d));
        match (hi, lo) {
            (Some(h), Some(l)) => contents.push(h << 4 | l),
            _ => return Err("the /ByteRange gap holds more than hex digits".into()),
        }
    }
    Ok(Range {
        pieces: [&bytes[..a], &bytes[b..end]],
        contents,
        end,
    })
}

fn name_or_text(d: &Dictionary, key: &[u8]) -> Option<String> {
    match d.get(key).ok()? {
        Object::Name(n) => Some(String::from_utf8_lossy(n).into_owned()),
        Object::String(s, _) => Some(pdf_text(s)),
        _ => None,
    }
}

/// Verifies one signature field's signature (everything but what later revisions change).
pub(super) fn check(
    bytes: &[u8],
    ends: &[RevisionEnd],
    field: &SigField,
    anchors: Anchors<'_>,
) -> PdfSignatureReport {
    let sig = &field.sig;
    let sub_filter = name_or_text(sig, b"SubFilter").unwrap_or_default();
    let claimed = match sig.get(b"M") {
        Ok(Object::String(s, _)) => pdf_date(s),
        _ => None,
    };
    let byte_range: Vec<u64> = sig
        .get(b"ByteRange")
        .and_then(Object::as_array)
        .map(|a| {
            a.iter()
                .map(|o| o.as_i64().ok().and_then(|v| u64::try_from(v).ok()))
                .collect::<Option<Vec<u64>>>()
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let mut report = PdfSignatureReport {
        field: field.name.clone(),
        sub_filter: sub_filter.clone(),
        form: "unknown".into(),
        byte_range: byte_range.clone(),
        revision: 0,
        valid: false,
        signer: None,
        signing_time: claimed.map(|t| rfc3339(&t)),
        seal: None,
        pages: field.pages.clone(),
        changes_after: ChangesAfter::None,
        checks: Vec::new(),
    };
    let mut c = CmsChecks::default();
    let range = match byte_range_checks(bytes, ends, sig, &byte_range, &mut c, &mut report) {
        Some(r) => r,
        None => {
            report.checks = c.lines;
            return report;
        }
    };
    match detect(&range.contents) {
        ObjectKind::Cms(content_type) => {
            report.form = match (content_type.as_str(), sub_filter.as_str()) {
                (oid::SIGNED_DATA_GM, _) => "gm-cms",
                (_, "ETSI.CAdES.detached") => "pades",
                _ => "pkcs7",
            }
            .into();
            cms(&range, &sub_filter, claimed, anchors, &mut c, &mut report);
        }
        ObjectKind::Signature => ses(&range, anchors, &mut c, &mut report),
        ObjectKind::Seal | ObjectKind::Unknown => c.check(
            false,
            "/Contents holds neither a CMS SignedData nor a SES_Signature",
        ),
    }
    report.valid = c.ok;
    report.checks = c.lines;
    report
}

/// The ByteRange checks; `None` when the signature cannot be checked further.
fn byte_range_checks<'a>(
    bytes: &'a [u8],
    ends: &[RevisionEnd],
    sig: &Dictionary,
    br: &[u64],
    c: &mut CmsChecks,
    report: &mut PdfSignatureReport,
) -> Option<Range<'a>> {
    let range = match byte_range(bytes, br) {
        Ok(r) => r,
        Err(e) => {
            c.check(false, e);
            return None;
        }
    };
    c.check(
        true,
        "the /ByteRange covers the file from byte 0 but the /Contents hex string",
    );
    match ends
        .iter()
        .position(|e| e.end == range.end || e.eof == range.end)
    {
        Some(i) => {
            report.revision = i + 1;
            c.check(
                true,
                format!("the /ByteRange ends where revision {} ends", i + 1),
            );
        }
        None => c.check(
            false,
            format!(
                "the /ByteRange ends at byte {}, not at the end of a revision",
                range.end
            ),
        ),
    }
    let declared = match sig.get(b"Contents") {
        Ok(Object::String(s, _)) => Some(s.as_slice()),
        _ => None,
    };
    c.check(
        declared == Some(range.contents.as_slice()),
        "the /ByteRange gap is this signature dictionary's /Contents",
    );
    Some(range)
}

fn cms(
    range: &Range<'_>,
    sub_filter: &str,
    claimed: Option<OffsetDateTime>,
    anchors: Anchors<'_>,
    c: &mut CmsChecks,
    report: &mut PdfSignatureReport,
) {
    if !matches!(sub_filter, "ETSI.CAdES.detached" | "adbe.pkcs7.detached") {
        c.check(
            false,
            format!("/SubFilter /{sub_filter} is not a detached CMS signature seald reads"),
        );
    }
    match verify_contents(&range.contents, &range.pieces, anchors, claimed) {
        Err(e) => c.check(false, e),
        Ok(r) => {
            c.ok &= r.valid;
            c.lines.extend(r.checks);
            report.signer = r.signer;
            if let Some(t) = r.signing_time {
                report.signing_time = Some(rfc3339(&t));
            }
        }
    }
}

fn ses(
    range: &Range<'_>,
    anchors: Anchors<'_>,
    c: &mut CmsChecks,
    report: &mut PdfSignatureReport,
) {
    report.form = "ses".into();
    let sig = match SesSignature::parse(&range.contents) {
        Ok(s) => s,
        Err(e) => {
            c.check(false, format!("SES_Signature: {e}"));
            return;
        }
    };
    let alg = signature_algorithm(&sig.signature_algorithm).unwrap_or(KeyAlgorithm::Sm2);
    let digest = match alg {
        KeyAlgorithm::Sm2 => DigestAlgorithm::Sm3,
        KeyAlgorithm::P256 => DigestAlgorithm::Sha256,
    }
    .digest(&range.pieces);
    let r = verify_signature(
        &sig,
        &VerifyOptions {
            document: Document::Digest(&digest),
            trust: anchors.roots,
            at: None,
            tsa_trust: anchors.tsa,
            revocation: anchors.revocation,
        },
    );
    for check in &r.checks {
        let text = format!("{}: {}", check.title, check.detail);
        match check.status {
            CheckStatus::Passed => c.check(true, text),
            CheckStatus::Failed => c.check(!check.required, text),
            CheckStatus::NotApplicable => c.na(text),
        }
    }
    c.ok &= r.valid;
    report.signer = r.signer;
    report.seal = Some(format!("{} {}", r.seal.es_id, r.seal.name));
    if let Some(t) = r.time_info {
        report.signing_time = Some(rfc3339(&t));
    }
}
