//! Verifying a sealed OFD as a whole: every signature listed through `OFD.xml`, its
//! SES_Signature over `Signature.xml`, its `References` over the package, its stamps, and what
//! the valid signatures together cover.
//!
//! Verdict: valid when the package's structure reads, at least one signature (SES_Signature or
//! GB/T 35275 CMS) verifies, every listed signature is valid (its SignedValue verifies or is a
//! kind seald does not check, every reference matches, every stamp names a page), and
//! `Document.xml` (the page list) and every page's content are covered by at least one valid,
//! verified signature.

use crate::revocation::Checker;
use std::collections::BTreeSet;
use std::io::{Read, Seek};

use super::cms::{verify_cms, CmsReport};
use super::package::{parent, resolve, OfdError, Package};
use super::references::{check_references, ReferencesReport};
use super::xml::{self, PageEntry};
use crate::cert::TrustStore;
use crate::ses::{
    detect, verify_signature, Document, ObjectKind, Report, SesSignature, VerifyOptions,
};

/// What was found in a signature's SignedValue.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OfdOutcome {
    /// A SES_Signature, verified.
    Verified {
        /// The verification report.
        report: Box<Report>,
    },
    /// A GB/T 35275 SM2 CMS SignedData, verified.
    Cms {
        /// The verification report.
        report: Box<CmsReport>,
    },
    /// The SignedValue is neither a SES_Signature nor a CMS seald can read: not checked.
    NotSes {
        /// What it is instead.
        found: String,
    },
    /// The SignedValue or Signature.xml is missing or malformed.
    Unreadable {
        /// Why.
        reason: String,
    },
}

/// One page of the document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PageInfo {
    /// 1-based page number, in `Document.xml` order.
    pub number: usize,
    /// The page's object id.
    pub id: String,
    /// Its content member (no leading `/`), if the location is acceptable.
    pub content: Option<String>,
}

/// One `StampAnnot`, with its page resolved.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StampInfo {
    /// `@ID`.
    pub id: String,
    /// `@PageRef` as written (a page object id).
    pub page_ref: String,
    /// The page number it names, if any.
    pub page: Option<usize>,
    /// `Boundary` in mm (`x y w h`), if readable.
    pub boundary_mm: Option<[f64; 4]>,
    /// `Clip` in mm relative to the boundary, if given and readable.
    pub clip_mm: Option<[f64; 4]>,
}

/// One signature of an OFD.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OfdSignature {
    /// `Signatures.xml` `@ID`.
    pub id: String,
    /// `@Type`: `Seal` or `Sign`.
    #[serde(rename = "type")]
    pub sign_type: String,
    /// Path of its Signature.xml inside the package.
    pub signature_xml: String,
    /// Path of its SignedValue inside the package.
    pub signed_value: String,
    /// True when nothing about this signature failed.
    pub valid: bool,
    /// What was found in the SignedValue.
    #[serde(flatten)]
    pub outcome: OfdOutcome,
    /// The references and their checks (absent when Signature.xml could not be read).
    pub references: Option<ReferencesReport>,
    /// Members this signature protects: its checked references, plus its own Signature.xml
    /// (through dataHash) and SignedValue when the SignedValue verified.
    pub protects: Vec<String>,
    /// Package members this signature does not protect.
    pub does_not_protect: Vec<String>,
    /// The stamps it places.
    pub stamps: Vec<StampInfo>,
    /// Everything that made it invalid, in words.
    pub problems: Vec<String>,
}

impl OfdSignature {
    /// True when this signature has no failure.
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// True when the SignedValue is a SES_Signature or a CMS SignedData that verified.
    pub fn is_verified(&self) -> bool {
        match &self.outcome {
            OfdOutcome::Verified { report } => report.valid,
            OfdOutcome::Cms { report } => report.valid,
            _ => false,
        }
    }
}

/// The report on a whole OFD.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OfdReport {
    /// The verdict.
    pub valid: bool,
    /// `DocRoot`, resolved.
    pub doc_root: Option<String>,
    /// `Signatures.xml`, resolved, if the document has one.
    pub signatures_xml: Option<String>,
    /// The pages of `Document.xml`.
    pub pages: Vec<PageInfo>,
    /// Every listed signature.
    pub signatures: Vec<OfdSignature>,
    /// Package members no valid, verified signature covers.
    pub uncovered: Vec<String>,
    /// Document-level reasons for INVALID (signature-level ones are in each signature).
    pub problems: Vec<String>,
    /// Remarks that do not change the verdict (weak digests, signatures not checked, …).
    pub notes: Vec<String>,
}

fn read_xml<R: Read + Seek>(package: &mut Package<R>, member: &str) -> Result<Vec<u8>, String> {
    package.read(member).map_err(|e| e.to_string())
}

fn check_signed_value(
    value: &[u8],
    signature_xml: &[u8],
    trust: Option<&TrustStore>,
    tsa_trust: Option<&TrustStore>,
    revocation: Option<&Checker>,
) -> OfdOutcome {
    match detect(value) {
        ObjectKind::Cms(oid) => match verify_cms(value, signature_xml, trust, revocation) {
            Ok(report) => OfdOutcome::Cms {
                report: Box::new(report),
            },
            Err(e) => OfdOutcome::NotSes {
                found: format!(
                    "a CMS ContentInfo ({oid}) seald cannot read ({e}): its signature was not checked"
                ),
            },
        },
        ObjectKind::Seal => OfdOutcome::NotSes {
            found: "a bare SESeal, not a SES_Signature: nothing signed to check".into(),
        },
        _ => match SesSignature::parse(value) {
            Ok(sig) => {
                let options = VerifyOptions {
                    document: Document::Bytes(signature_xml),
                    trust,
                    at: None,
                    tsa_trust,
                    revocation,
                };
                OfdOutcome::Verified {
                    report: Box::new(verify_signature(&sig, &options)),
                }
            }
            Err(e) => OfdOutcome::Unreadable {
                reason: format!("SignedValue: {e}"),
            },
        },
    }
}

fn stamp_info(s: &xml::StampEntry, pages: &[PageInfo], problems: &mut Vec<String>) -> StampInfo {
    let page = pages.iter().find(|p| p.id == s.page_ref).map(|p| p.number);
    if page.is_none() {
        problems.push(format!(
            "StampAnnot {:?} names page object {:?}, which is not a page of Document.xml",
            s.id, s.page_ref
        ));
    }
    let boundary_mm = match xml::parse_box(&s.boundary) {
        Ok(b) => Some(b),
        Err(e) => {
            problems.push(format!("StampAnnot {:?} Boundary: {e}", s.id));
            None
        }
    };
    let clip_mm = match s.clip.as_deref().map(xml::parse_box) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            problems.push(format!("StampAnnot {:?} Clip: {e}", s.id));
            None
        }
    };
    StampInfo {
        id: s.id.clone(),
        page_ref: s.page_ref.clone(),
        page,
        boundary_mm,
        clip_mm,
    }
}

struct Context<'a> {
    doc_dir: String,
    pages: Vec<PageInfo>,
    members: Vec<String>,
    trust: Option<&'a TrustStore>,
    tsa_trust: Option<&'a TrustStore>,
    revocation: Option<&'a Checker>,
}

fn verify_one<R: Read + Seek>(
    package: &mut Package<R>,
    ctx: &Context<'_>,
    signs_dir: &str,
    entry: &xml::SignatureEntry,
) -> OfdSignature {
    let mut sig = OfdSignature {
        id: entry.id.clone(),
        sign_type: entry.kind.clone(),
        signature_xml: entry.base_loc.clone(),
        signed_value: String::new(),
        valid: false,
        outcome: OfdOutcome::Unreadable {
            reason: String::new(),
        },
        references: None,
        protects: Vec::new(),
        does_not_protect: Vec::new(),
        stamps: Vec::new(),
        problems: Vec::new(),
    };
    let unreadable = |mut sig: OfdSignature, reason: String| {
        sig.problems.push(reason.clone());
        sig.outcome = OfdOutcome::Unreadable { reason };
        sig.does_not_protect = ctx.members.clone();
        sig
    };
    let xml_member = match package.locate(signs_dir, &entry.base_loc) {
        Ok(m) => m,
        Err(e) => return unreadable(sig, format!("Signature BaseLoc: {e}")),
    };
    sig.signature_xml = xml_member.clone();
    let xml_bytes = match read_xml(package, &xml_member) {
        Ok(b) => b,
        Err(e) => return unreadable(sig, e),
    };
    let parsed = match xml::read_signature(&xml_bytes) {
        Ok(p) => p,
        Err(e) => return unreadable(sig, format!("/{xml_member}: {e}")),
    };
    let xml_dir = parent(&xml_member).to_string();
    let sv_member = match parsed.signed_value.as_deref() {
        Some(loc) => package.locate(&xml_dir, loc),
        None => Ok(format!("{xml_dir}/SignedValue.dat")),
    };
    sig.outcome = match &sv_member {
        Err(e) => OfdOutcome::Unreadable {
            reason: format!("SignedValue location: {e}"),
        },
        Ok(m) => {
            sig.signed_value = m.clone();
            match package.read(m) {
                Err(e) => OfdOutcome::Unreadable {
                    reason: e.to_string(),
                },
                Ok(value) => {
                    check_signed_value(&value, &xml_bytes, ctx.trust, ctx.tsa_trust, ctx.revocation)
                }
            }
        }
    };
    match &sig.outcome {
        OfdOutcome::Verified { report } if !report.valid => sig
            .problems
            .push("the SES_Signature over Signature.xml does not verify".into()),
        OfdOutcome::Cms { report } if !report.valid => sig
            .problems
            .push("the CMS signature over Signature.xml does not verify".into()),
        OfdOutcome::Unreadable { reason } => sig.problems.push(reason.clone()),
        _ => {}
    }
    let refs = check_references(
        package,
        &ctx.doc_dir,
        parsed.check_method.as_deref(),
        &parsed.references,
    );
    if refs.method.is_none() {
        sig.problems.push(format!(
            "References CheckMethod {:?} is not SM3, SHA-1 or MD5",
            refs.check_method.as_deref().unwrap_or_default()
        ));
    }
    for f in refs.failed() {
        sig.problems
            .push(format!("reference {}: {}", f.file_ref, f.reason));
    }
    for s in &parsed.stamps {
        let info = stamp_info(s, &ctx.pages, &mut sig.problems);
        sig.stamps.push(info);
    }
    let mut protects: BTreeSet<String> = refs.protected().map(str::to_string).collect();
    if sig.is_verified() {
        protects.insert(xml_member.clone());
        protects.insert(sig.signed_value.clone());
    }
    sig.does_not_protect = ctx
        .members
        .iter()
        .filter(|m| !protects.contains(*m))
        .cloned()
        .collect();
    sig.protects = protects.into_iter().collect();
    sig.references = Some(refs);
    sig.valid = sig.problems.is_empty();
    sig
}

fn read_pages<R: Read + Seek>(
    package: &mut Package<R>,
    doc_root: &str,
    problems: &mut Vec<String>,
) -> Vec<PageInfo> {
    let entries: Vec<PageEntry> = match read_xml(package, doc_root)
        .and_then(|b| xml::read_pages(&b).map_err(|e| format!("/{doc_root}: {e}")))
    {
        Ok(p) => p,
        Err(e) => {
            problems.push(e);
            return Vec::new();
        }
    };
    let dir = parent(doc_root);
    let mut seen = BTreeSet::new();
    entries
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            if !seen.insert(p.id.clone()) {
                problems.push(format!("two pages in Document.xml have the ID {:?}", p.id));
            }
            let content = match package.locate(dir, &p.base_loc) {
                Ok(c) => Some(c),
                Err(e) => {
                    problems.push(format!("page {} BaseLoc: {e}", i + 1));
                    None
                }
            };
            PageInfo {
                number: i + 1,
                id: p.id,
                content,
            }
        })
        .collect()
}

/// Verifies a sealed OFD: see the module documentation for the verdict.
pub fn verify_ofd<R: Read + Seek>(
    reader: R,
    trust: Option<&TrustStore>,
) -> Result<OfdReport, OfdError> {
    verify_ofd_with(reader, trust, None, None)
}

/// [`verify_ofd`] with trusted TSA certificates for the signatures' timestamps (a trusted
/// timestamp's genTime is when validity is judged) and a certificate status checker.
pub fn verify_ofd_with<R: Read + Seek>(
    reader: R,
    trust: Option<&TrustStore>,
    tsa_trust: Option<&TrustStore>,
    revocation: Option<&Checker>,
) -> Result<OfdReport, OfdError> {
    let mut package = Package::open(reader)?;
    let mut report = OfdReport {
        valid: false,
        doc_root: None,
        signatures_xml: None,
        pages: Vec::new(),
        signatures: Vec::new(),
        uncovered: Vec::new(),
        problems: Vec::new(),
        notes: Vec::new(),
    };
    let members: Vec<String> = package.members().map(str::to_string).collect();
    let entry = match read_xml(&mut package, "OFD.xml")
        .and_then(|b| xml::read_ofd_entry(&b).map_err(|e| format!("/OFD.xml: {e}")))
    {
        Ok(e) => e,
        Err(e) => {
            report.problems.push(e);
            report.uncovered = members;
            return Ok(report);
        }
    };
    if entry.doc_bodies > 1 {
        report.notes.push(format!(
            "OFD.xml lists {} documents; only the first was verified",
            entry.doc_bodies
        ));
    }
    let doc_root = match resolve("", &entry.doc_root) {
        Ok(d) => d,
        Err(e) => {
            report.problems.push(format!("DocRoot: {e}"));
            report.uncovered = members;
            return Ok(report);
        }
    };
    report.doc_root = Some(doc_root.clone());
    report.pages = read_pages(&mut package, &doc_root, &mut report.problems);
    let ctx = Context {
        doc_dir: parent(&doc_root).to_string(),
        pages: report.pages.clone(),
        members: members.clone(),
        trust,
        tsa_trust,
        revocation,
    };
    match entry.signatures.as_deref().map(|s| resolve("", s)) {
        None => report
            .problems
            .push("the document has no Signatures list: nothing is sealed".into()),
        Some(Err(e)) => report.problems.push(format!("Signatures: {e}")),
        Some(Ok(list)) => {
            report.signatures_xml = Some(list.clone());
            match read_xml(&mut package, &list)
                .and_then(|b| xml::read_signature_list(&b).map_err(|e| format!("/{list}: {e}")))
            {
                Err(e) => report.problems.push(e),
                Ok(entries) => {
                    let dir = parent(&list).to_string();
                    for e in &entries {
                        let sig = verify_one(&mut package, &ctx, &dir, e);
                        report.signatures.push(sig);
                    }
                }
            }
        }
    }
    finish(&mut report, &members);
    Ok(report)
}

/// Works out coverage and the verdict from the signatures already checked.
pub(super) fn finish(report: &mut OfdReport, members: &[String]) {
    let mut covered = BTreeSet::new();
    for s in &report.signatures {
        if s.valid && s.is_verified() {
            covered.extend(s.protects.iter().cloned());
        }
        if let Some(r) = &s.references {
            if r.weak {
                report.notes.push(format!(
                    "signature {:?} uses the weak digest {:?} for its references",
                    s.id,
                    r.check_method.as_deref().unwrap_or("MD5 (default)")
                ));
            }
        }
        if let OfdOutcome::NotSes { found } = &s.outcome {
            report.notes.push(format!(
                "signature {:?} ({}) is {found}; it covers nothing in this report",
                s.id, s.sign_type
            ));
        }
    }
    report.uncovered = members
        .iter()
        .filter(|m| !covered.contains(*m))
        .cloned()
        .collect();
    if let Some(root) = &report.doc_root {
        if !covered.contains(root) {
            report.problems.push(format!(
                "the page list /{root} is not covered by any valid signature (pages could be added, removed or reordered)"
            ));
        }
    }
    let listed: BTreeSet<&str> = report
        .signatures
        .iter()
        .map(|s| s.signature_xml.as_str())
        .collect();
    for m in members {
        if m.ends_with("/Signature.xml") && !listed.contains(m.as_str()) {
            report.notes.push(format!(
                "/{m} looks like a signature but is not listed in the Signatures list: not verified"
            ));
        }
    }
    for p in &report.pages {
        if let Some(c) = &p.content {
            if !covered.contains(c) {
                report.problems.push(format!(
                    "page {} (/{c}) is not covered by any valid signature",
                    p.number
                ));
            }
        }
    }
    if !report.signatures.iter().any(OfdSignature::is_verified) {
        report
            .problems
            .push("no signature in the document verifies".into());
    }
    report.valid =
        report.problems.is_empty() && report.signatures.iter().all(OfdSignature::is_valid);
}

fn fmt_box(b: &Option<[f64; 4]>) -> String {
    match b {
        Some([x, y, w, h]) => format!("x {x} y {y} w {w} h {h} mm"),
        None => "unreadable".into(),
    }
}

impl OfdReport {
    /// Every file name that made the document invalid (failed references, their members).
    pub fn failed_files(&self) -> Vec<String> {
        let mut out = BTreeSet::new();
        for s in &self.signatures {
            if let Some(r) = &s.references {
                for f in r.failed() {
                    out.insert(f.file_ref.clone());
                }
            }
        }
        out.into_iter().collect()
    }

    /// The readable report.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut t = String::new();
        let verified = self.signatures.iter().filter(|s| s.is_verified()).count();
        let _ = writeln!(
            t,
            "OFD with {} signature(s), {} verified by seald: {}",
            self.signatures.len(),
            verified,
            if self.valid { "VALID" } else { "INVALID" }
        );
        for p in &self.problems {
            let _ = writeln!(t, "  INVALID: {p}");
        }
        for n in &self.notes {
            let _ = writeln!(t, "  note: {n}");
        }
        let _ = writeln!(t, "  pages: {}", self.pages.len());
        if self.uncovered.is_empty() {
            let _ = writeln!(t, "  every package member is covered by a valid signature");
        } else {
            let _ = writeln!(
                t,
                "  not covered by any valid signature: {}",
                self.uncovered
                    .iter()
                    .map(|m| format!("/{m}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for s in &self.signatures {
            let _ = writeln!(
                t,
                "\nsignature {:?} ({}) /{} (SignedValue /{}): {}",
                s.id,
                s.sign_type,
                s.signature_xml,
                s.signed_value,
                if s.valid { "VALID" } else { "INVALID" }
            );
            for p in &s.problems {
                let _ = writeln!(t, "  INVALID: {p}");
            }
            if let Some(r) = &s.references {
                let failed: Vec<&str> = r.failed().map(|f| f.file_ref.as_str()).collect();
                let _ = writeln!(
                    t,
                    "  references ({}{}): {} checked, {} failed{}",
                    r.check_method.as_deref().unwrap_or("no CheckMethod"),
                    if r.weak { ", WEAK" } else { "" },
                    r.checked,
                    failed.len(),
                    if failed.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", failed.join(", "))
                    }
                );
            }
            let _ = writeln!(
                t,
                "  protects: {}",
                if s.protects.is_empty() {
                    "nothing".to_string()
                } else {
                    s.protects
                        .iter()
                        .map(|m| format!("/{m}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            if !s.does_not_protect.is_empty() {
                let _ = writeln!(
                    t,
                    "  does not protect: {}",
                    s.does_not_protect
                        .iter()
                        .map(|m| format!("/{m}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            for st in &s.stamps {
                let page = st
                    .page
                    .map(|n| format!("page {n}"))
                    .unwrap_or_else(|| format!("NO PAGE (PageRef {:?})", st.page_ref));
                let clip = st
                    .clip_mm
                    .map(|c| format!(", clip {}", fmt_box(&Some(c))))
                    .unwrap_or_default();
                let _ = writeln!(
                    t,
                    "  stamp {:?}: {page}, {}{clip}",
                    st.id,
                    fmt_box(&st.boundary_mm)
                );
            }
            match &s.outcome {
                OfdOutcome::Verified { report } => {
                    for line in report.to_text().lines() {
                        let _ = writeln!(t, "  {line}");
                    }
                }
                OfdOutcome::Cms { report } => {
                    let _ = writeln!(
                        t,
                        "  GB/T 35275 CMS signature ({}): {}",
                        report.form,
                        if report.valid { "VALID" } else { "INVALID" }
                    );
                    if let Some(s) = &report.signer {
                        let _ = writeln!(
                            t,
                            "    signer   {} (O={}, serial {})",
                            s.display_name(),
                            s.subject_o.as_deref().unwrap_or("-"),
                            s.serial_hex
                        );
                    }
                    for c in &report.checks {
                        let _ = writeln!(t, "    {c}");
                    }
                }
                OfdOutcome::NotSes { found } => {
                    let _ = writeln!(t, "  signed value not checked: {found}");
                }
                OfdOutcome::Unreadable { reason } => {
                    let _ = writeln!(t, "  signed value unreadable: {reason}");
                }
            }
        }
        t
    }
}
