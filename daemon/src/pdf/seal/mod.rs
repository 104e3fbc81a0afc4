//! Sealing a PDF: the engine's public interface. Knows nothing of HTTP or devices; it takes a
//! [`DocumentSigner`].
//!
//! Like the OFD engine, two steps: [`plan`] opens the PDF, checks it can be sealed and
//! resolves every placement to page boxes (the same [`Placement`]s and [`SealPlan`] as OFD;
//! `page_ref` is the page's object number, `"12 0"`); [`seal`] appends one incremental update
//! (the original bytes are copied unchanged) with a signature field whose widgets draw the
//! seal picture on each stamp's page, and a `/V` signature dictionary whose `/Contents` holds
//! the signature over the `/ByteRange` (the whole new file but `/Contents`).
//!
//! Modules: `page` (page boxes, `/Rotate`, displayed mm ⇄ user space), `text` (page text
//! for keywords), `place` (placements to boxes, as OFD), `image` (the seal picture decoded),
//! `appearance` (image and form XObjects), `form` (AcroForm, `/Annots`, locks), `update`
//! (the incremental update and its xref section).

use std::collections::BTreeMap;
use std::io::Read;

use lopdf::{dictionary, Dictionary, Object, ObjectId};
use time::OffsetDateTime;

use crate::ofd::seal::{Placement, SealError, SealMode, SealPlan};
use crate::ses::DocumentSigner;

mod appearance;
mod form;
mod image;
mod page;
mod place;
mod text;
mod update;

#[cfg(test)]
mod tests;

/// What goes into `/Contents`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PdfSignatureForm {
    /// CMS SignedData: PAdES baseline (`ETSI.CAdES.detached`) for P-256 seals, GB/T 35275
    /// SM2 SignedData (`adbe.pkcs7.detached`) for SM2 seals (default).
    #[default]
    Cms,
    /// A GB/T 38540 SES_Signature (SM2 seals; dataHash = SM3 over the ByteRange), as some
    /// Chinese readers expect; `/SubFilter /adbe.pkcs7.detached` as they write it.
    Ses,
}

/// Engine options that are not per placement.
#[derive(Debug, Clone, Default)]
pub struct PdfSealOptions {
    /// What `/Contents` holds.
    pub form: PdfSignatureForm,
    /// Certificates of the signer's chain (DER, signer's issuer first) to include in the CMS.
    pub chain: Vec<Vec<u8>>,
    /// `/Reason`, if any (e.g. the request's purpose).
    pub reason: Option<String>,
    /// [`SealMode::Lock`]: the new field gets a `/Lock` dictionary (`/Action /All`, `/P 1`)
    /// and readers (and seald) refuse further signatures; [`SealMode::Continue`] (default).
    pub mode: SealMode,
}

/// The result of [`seal`].
#[derive(Debug, Clone)]
pub struct SealedPdf {
    /// The new signature field's name (`/T`).
    pub field_name: String,
    /// The bytes written into `/Contents` (CMS SignedData or SES_Signature DER), unpadded.
    pub contents: Vec<u8>,
    /// The digest the signature covers (SM3 or SHA-256 over the ByteRange).
    pub byte_range_digest: [u8; 32],
    /// `/ByteRange`.
    pub byte_range: [u64; 4],
}

/// Opens the PDF, checks that it can be sealed in `mode` and resolves `placements` with the
/// seal picture's size `seal_size_mm` (width, height). Signs nothing. Errors are about the
/// input (see [`SealError::is_input_error`]): not a readable PDF ([`SealError::Pdf`]), locked
/// by an earlier signature ([`SealError::Locked`]), impossible placements
/// ([`SealError::Placement`], at most [`crate::ofd::seal::MAX_STAMPS`] stamps).
///
/// Boxes are millimetres from the top-left corner of each page as displayed: its CropBox
/// (within the MediaBox), turned by `/Rotate`. `page_ref` is the page's object number and
/// generation, `"12 0"`.
pub fn plan(
    input: &[u8],
    placements: &[Placement],
    seal_size_mm: (f64, f64),
    mode: SealMode,
) -> Result<SealPlan, SealError> {
    // Both modes need an unlocked document; nothing else differs before signing.
    let _ = mode;
    let doc = crate::pdf::open(input)?;
    form::check_not_locked(&doc)?;
    let pages = page::pages(&doc)?;
    place::resolve(&doc, &pages, placements, seal_size_mm)
}

/// `/M`: `D:YYYYMMDDHHmmSSZ`, UTC.
fn pdf_date(t: OffsetDateTime) -> String {
    format!("D:{}", crate::ofd::seal::signature_date_time(t))
}

/// The length of a DER TLV holding `n` bytes.
fn tlv_len(n: usize) -> usize {
    let len_len = match n {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        0x100..=0xFFFF => 3,
        0x1_0000..=0xFF_FFFF => 4,
        _ => 5,
    };
    1 + len_len + n
}

/// An upper bound on the DER length of the SES_Signature [`DocumentSigner::sign`] makes for
/// a 32-byte digest and `property_info` (GB/T 38540: TBS_Sign {version, seal, timeInfo,
/// dataHash, propertyInfo}, cert, signatureAlgorithm, signature ≤ 72 bytes of DER ECDSA).
fn ses_max_len(signer: &DocumentSigner<'_>, property_info: &str) -> usize {
    let tbs = tlv_len(1)
        + signer.seal().der.len()
        + tlv_len(15)
        + tlv_len(33)
        + tlv_len(property_info.len());
    let body = tlv_len(tbs)
        + tlv_len(signer.signer_cert().len())
        + tlv_len(16)
        + tlv_len(73)
        + signer.time_stamp_reserve();
    tlv_len(body) + 16
}

/// Writes `contents` (hex) into the `/Contents` placeholder `<00…>` at `at` that holds
/// `capacity` bytes; refuses (writing nothing) when it does not fit: a truncated signature
/// is never written.
fn write_contents(
    out: &mut [u8],
    at: usize,
    capacity: usize,
    contents: &[u8],
) -> Result<(), SealError> {
    if contents.len() > capacity {
        return Err(SealError::Structure(format!(
            "the signature is {} bytes but its /Contents placeholder holds {capacity}; nothing was written",
            contents.len()
        )));
    }
    let hex = hex::encode_upper(contents);
    out[at + 1..at + 1 + hex.len()].copy_from_slice(hex.as_bytes());
    Ok(())
}

/// Seals `input` with the stamps of `plan` (from [`plan`] on the same bytes): returns the
/// whole new file (the original bytes, then one incremental update) and what was signed.
/// `signer` signs once, at `time`.
///
/// The update holds: the seal picture (an image XObject, `/SMask` for transparency; a vector
/// seal when the picture cannot be decoded), one appearance form XObject and widget per stamp
/// (on its page's `/Annots`), one signature field `SealN` (N not taken; field and widget
/// merged for one stamp, `/Kids` widgets for several), the `/AcroForm` created or extended
/// (`/SigFlags 3`), and the `/V` signature dictionary. The `/ByteRange` covers the whole
/// output but `/Contents`; its digest (SM3 for SM2 keys, SHA-256 for P-256) is signed as a
/// CMS SignedData ([`crate::pdf::cms::signed_data`]) or, for [`PdfSignatureForm::Ses`], as
/// the dataHash of a GB/T 38540 SES_Signature whose propertyInfo is the field name.
///
/// Checks again that the document is not locked and that the plan's pages are its pages.
pub fn seal(
    input: &[u8],
    plan: &SealPlan,
    options: &PdfSealOptions,
    signer: &DocumentSigner<'_>,
    time: OffsetDateTime,
) -> Result<(Vec<u8>, SealedPdf), SealError> {
    let doc = crate::pdf::open(input)?;
    form::check_not_locked(&doc)?;
    let pages = page::pages(&doc)?;
    place::check_plan(&pages, plan)?;
    let acro = form::AcroForm::read(&doc)?;
    let field_name = acro.unique_name();

    let mut up = update::Update::new(input, &doc);

    // The picture, once for every stamp.
    let picture = &signer.seal().info.picture;
    let image_id = match image::decode(&picture.kind, &picture.data) {
        Some(p) => {
            let (mut img, mask) = appearance::image_objects(&p);
            let id = up.new_id();
            if let Some(mask) = mask {
                let mask_id = up.new_id();
                up.object(mask_id, &Object::Stream(mask));
                img.dict.set("SMask", mask_id);
            }
            up.object(id, &Object::Stream(img));
            Some(id)
        }
        None => None,
    };

    // The signature dictionary, with placeholders.
    let contents_len = match options.form {
        PdfSignatureForm::Cms => crate::pdf::cms::max_signed_data_len(signer, &options.chain),
        PdfSignatureForm::Ses => ses_max_len(signer, &field_name),
    };
    let sub_filter = match options.form {
        PdfSignatureForm::Cms => crate::pdf::cms::sub_filter(signer.algorithm()),
        PdfSignatureForm::Ses => "adbe.pkcs7.detached",
    };
    let mut extra = Dictionary::new();
    extra.set("M", Object::string_literal(pdf_date(time)));
    extra.set(
        "Name",
        lopdf::text_string(&signer.seal().info.property.name),
    );
    if let Some(reason) = &options.reason {
        extra.set("Reason", lopdf::text_string(reason));
    }
    let mut extra_bytes = Vec::new();
    update::write_object(&mut extra_bytes, &Object::Dictionary(extra));
    let extra_text = &extra_bytes[2..extra_bytes.len() - 2];
    const BR_PLACEHOLDER: &[u8] = b"[0 0000000000 0000000000 0000000000]";
    let mut sig = Vec::new();
    sig.extend(
        format!("<</Type/Sig/Filter/Adobe.PPKLite/SubFilter/{sub_filter}/ByteRange").as_bytes(),
    );
    let br_at = sig.len();
    sig.extend(BR_PLACEHOLDER);
    sig.extend(b"/Contents");
    let contents_at = sig.len();
    sig.push(b'<');
    sig.extend(std::iter::repeat_n(b'0', contents_len * 2));
    sig.push(b'>');
    sig.extend(extra_text);
    sig.extend(b">>");
    let sig_id = up.new_id();
    let sig_start = up.raw(sig_id, &sig);
    let br_at = sig_start + br_at;
    let contents_at = sig_start + contents_at;
    let contents_end = contents_at + contents_len * 2 + 2;

    // The field and its widgets.
    let field_id = up.new_id();
    let mut field = dictionary! {
        "FT" => "Sig",
        "T" => Object::string_literal(field_name.clone()),
        "V" => sig_id,
    };
    if options.mode == SealMode::Lock {
        field.set(
            "Lock",
            dictionary! { "Type" => "SigFieldLock", "Action" => "All", "P" => 1 },
        );
    }
    let mut annots: BTreeMap<ObjectId, Vec<ObjectId>> = BTreeMap::new();
    let single = plan.stamps.len() == 1;
    let mut kids = Vec::new();
    for stamp in &plan.stamps {
        let info = &pages[stamp.page as usize - 1];
        let (form_xobject, rect) = appearance::stamp(info, stamp, image_id);
        let ap_id = up.new_id();
        up.object(ap_id, &Object::Stream(form_xobject));
        let mut widget = dictionary! {
            "Type" => "Annot",
            "Subtype" => "Widget",
            "F" => 4,
            "P" => info.id,
            "Rect" => rect.iter().map(|v| Object::Real(*v as f32)).collect::<Vec<_>>(),
            "AP" => dictionary! { "N" => ap_id },
        };
        let widget_id = if single {
            for (k, v) in field.iter() {
                widget.set(k.clone(), v.clone());
            }
            field_id
        } else {
            widget.set("Parent", field_id);
            let id = up.new_id();
            up.object(id, &Object::Dictionary(widget.clone()));
            kids.push(Object::Reference(id));
            id
        };
        if single {
            up.object(field_id, &Object::Dictionary(widget));
        }
        annots.entry(info.id).or_default().push(widget_id);
    }
    if !single {
        field.set("Kids", kids);
        up.object(field_id, &Object::Dictionary(field));
    }

    // Pages' /Annots, the AcroForm (and the catalog when it must change).
    for (page_id, widgets) in &annots {
        form::add_annots(&doc, &mut up, *page_id, widgets)?;
    }
    acro.add_field(&doc, &mut up, field_id)?;

    let mut out = up.finish();

    // The ByteRange, then the digest over it, then the signature.
    let byte_range = [
        0u64,
        contents_at as u64,
        contents_end as u64,
        (out.len() - contents_end) as u64,
    ];
    let br_text = format!("[0 {} {} {}", byte_range[1], byte_range[2], byte_range[3]);
    if br_text.len() + 1 > BR_PLACEHOLDER.len() {
        return Err(SealError::Structure(
            "the output is too large for the /ByteRange placeholder".into(),
        ));
    }
    let mut patched = br_text.into_bytes();
    patched.resize(BR_PLACEHOLDER.len() - 1, b' ');
    patched.push(b']');
    out[br_at..br_at + BR_PLACEHOLDER.len()].copy_from_slice(&patched);

    let digest = crate::crypto::data_digest_reader(
        signer.algorithm(),
        (&out[..contents_at]).chain(&out[contents_end..]),
    )?;
    let contents = match options.form {
        PdfSignatureForm::Cms => {
            crate::pdf::cms::signed_data(signer, &options.chain, &digest, time)?
        }
        PdfSignatureForm::Ses => signer.sign(time, &digest, &field_name, None)?.der,
    };
    write_contents(&mut out, contents_at, contents_len, &contents)?;

    Ok((
        out,
        SealedPdf {
            field_name,
            contents,
            byte_range_digest: digest,
            byte_range,
        },
    ))
}
