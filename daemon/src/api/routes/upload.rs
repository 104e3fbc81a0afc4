//! `POST /v1/stamp-requests` as `multipart/form-data`: OFD and PDF documents to seal.
//!
//! One part named `request` (JSON: seal, purpose, placements and mode, for all documents or per
//! document) and one part named `file` per document, in order. Each file is streamed to the
//! store's documents directory (0600) and hashed on the way (never held whole in memory); the
//! whole upload is capped by `[api] max_document_bytes`. Every file is then checked and its
//! format recognised by its content (OFD or PDF, never by its name) and its placements
//! resolved by that format's sealing engine ([`crate::stamp::documents::plan_document`]): a document that
//! cannot be sealed as asked is refused with 422 and its reason, and nothing is kept. Only then
//! is the request recorded, each document's digest being the SM3 of its upload, so approvers
//! approve exactly those bytes.

use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use serde::Deserialize;

use crate::api::error::ApiError;
use crate::api::state::SharedState;
use crate::approval::limits::{check_text, MAX_NAME_CHARS};
use crate::approval::NewStampRequest;
use crate::identity::Caller;
use crate::ofd::seal::{Placement, SealMode};
use crate::stamp::documents::{detect_format, plan_document};
use crate::store::documents::{Section, Upload, Uploaded, UploadedPart};
use crate::store::model::{Digest32, SealId, StampDocument, StampFile, StampFileRow, StampRequest};

/// Bytes gathered in memory before they are written to the upload file.
const WRITE_CHUNK: usize = 1024 * 1024;

/// Most placements in one document's signature.
pub const MAX_PLACEMENTS: usize = 64;

/// The `request` part of an upload.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadBody {
    /// The seal to stamp with.
    pub seal_id: SealId,
    /// Why.
    pub purpose: String,
    /// Placements for every document that does not give its own.
    #[serde(default)]
    pub placements: Vec<Placement>,
    /// Mode for every document that does not give its own (default `continue`).
    #[serde(default)]
    pub mode: SealMode,
    /// Per document, in the order of the `file` parts (optional; if given, one per file).
    #[serde(default)]
    pub documents: Vec<UploadDocument>,
}

/// What one uploaded document asks for, beside the defaults of [`UploadBody`].
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadDocument {
    /// Name shown to approvers (default: the file part's file name).
    #[serde(default)]
    pub name: Option<String>,
    /// This document's placements.
    #[serde(default)]
    pub placements: Option<Vec<Placement>>,
    /// This document's mode.
    #[serde(default)]
    pub mode: Option<SealMode>,
}

/// The multipart form as OpenAPI shows it.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The JSON of [`UploadBody`] (`Content-Type: application/json`).
    pub request: UploadBody,
    /// One OFD or PDF file per document, in order (`Content-Type: application/ofd`,
    /// `application/pdf` or `application/octet-stream`; recognised by content; the part's file
    /// name is the document's default name).
    #[schema(value_type = Vec<String>, format = Binary)]
    pub file: Vec<Vec<u8>>,
}

/// The upload of a request being made; removed when dropped unless kept.
struct Files {
    /// The upload file, once finished.
    uploaded: Option<Uploaded>,
    /// Each document: where it is in the file, and its name from the form.
    done: Vec<(UploadedPart, String)>,
}

impl Files {
    fn keep(mut self) {
        self.uploaded = None;
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        if let Some(up) = &self.uploaded {
            let _ = std::fs::remove_file(&up.path);
        }
    }
}

fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

fn multipart_error(e: MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the upload of documents is larger than {limit} bytes (`[api] max_document_bytes`); send fewer or smaller documents per request"),
        )
    } else {
        malformed_multipart(e.body_text())
    }
}

fn malformed_multipart(why: String) -> ApiError {
    ApiError::bad_request(
        "malformed_multipart",
        format!("the multipart/form-data body cannot be read: {why}"),
    )
}

/// The document name a file part gives: its file name without any directory part.
fn part_name(field: &Field<'_>, n: usize) -> String {
    field
        .file_name()
        .map(|f| f.rsplit(['/', '\\']).next().unwrap_or_default().to_owned())
        .filter(|f| !f.trim().is_empty() && f != "." && f != "..")
        .unwrap_or_else(|| format!("document {n}"))
}

async fn blocking_io<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::internal("a worker thread failed; see seald's log"))?
        .map_err(|e| ApiError::internal(format!("cannot store the upload: {e}")))
}

/// Streams one file part to the end of `upload` (bytes gathered up to [`WRITE_CHUNK`], then
/// written on the blocking pool); returns the upload and where the document is in it.
async fn store_file(
    mut upload: Upload,
    mut field: Field<'_>,
    limit: usize,
) -> Result<(Upload, UploadedPart), ApiError> {
    let mut pending = Vec::with_capacity(64 * 1024);
    loop {
        let chunk = field.chunk().await.map_err(|e| multipart_error(e, limit))?;
        let end = chunk.is_none();
        if let Some(chunk) = chunk {
            pending.extend_from_slice(&chunk);
        }
        if pending.len() >= WRITE_CHUNK || (end && !pending.is_empty()) {
            let bytes = std::mem::take(&mut pending);
            upload = blocking_io(move || upload.write(&bytes).map(|()| upload)).await?;
        }
        if end {
            break;
        }
    }
    let part = upload.end_part();
    Ok((upload, part))
}

/// Reads the form: the `request` JSON and every file, streamed to disk.
async fn read_form(state: &SharedState, request: Request) -> Result<(UploadBody, Files), ApiError> {
    let limit = state.policy.max_document_bytes;
    let max_documents = state.services.approvals.limits().max_documents;
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(|e| malformed_multipart(e.body_text()))?;
    let mut body: Option<UploadBody> = None;
    let mut upload: Option<Upload> = None;
    let mut done: Vec<(UploadedPart, String)> = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        match field.name() {
            Some("request") if body.is_none() => {
                // Read chunk by chunk up to the JSON limit, never the whole upload limit.
                let mut field = field;
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(e, limit))? {
                    if bytes.len() + chunk.len() > state.policy.max_body_bytes {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "body_too_large",
                            format!(
                                "the `request` part is larger than {} bytes",
                                state.policy.max_body_bytes
                            ),
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                body = Some(crate::api::json::parse_json(&bytes, "the `request` part")?);
            }
            Some("request") => {
                return Err(unprocessable(
                    "invalid_request",
                    "the form has two `request` parts; send one",
                ))
            }
            Some("file") => {
                let n = done.len() + 1;
                if n > max_documents {
                    return Err(unprocessable(
                        "invalid_documents",
                        format!("more than {max_documents} documents in one request (`[limits] max_documents_per_request`)"),
                    ));
                }
                let name = part_name(&field, n);
                let current = match upload.take() {
                    Some(current) => current,
                    None => {
                        let docs = state.documents.clone();
                        blocking_io(move || docs.new_upload()).await?
                    }
                };
                let (current, part) = store_file(current, field, limit).await?;
                upload = Some(current);
                done.push((part, name));
            }
            other => {
                return Err(unprocessable(
                    "invalid_request",
                    format!(
                        "unexpected form part {:?}: send one `request` part (JSON) and one `file` part per OFD or PDF document",
                        other.unwrap_or("")
                    ),
                ))
            }
        }
    }
    let body = body.ok_or_else(|| {
        unprocessable(
            "invalid_request",
            "the form has no `request` part: send the seal, purpose and placements as JSON in a part named `request`",
        )
    })?;
    let Some(upload) = upload else {
        return Err(unprocessable(
            "invalid_documents",
            "the form has no `file` part: send each OFD or PDF document in a part named `file`",
        ));
    };
    let uploaded = blocking_io(move || upload.finish()).await?;
    Ok((
        body,
        Files {
            uploaded: Some(uploaded),
            done,
        },
    ))
}

/// What each document asks for, checked: name, placements, mode.
fn resolve_documents(
    body: &UploadBody,
    files: &Files,
) -> Result<Vec<(String, Vec<Placement>, SealMode)>, ApiError> {
    if !body.documents.is_empty() && body.documents.len() != files.done.len() {
        return Err(unprocessable(
            "invalid_documents",
            format!(
                "`documents` describes {} documents but the form has {} `file` parts; give one entry per file, in order, or leave `documents` out",
                body.documents.len(),
                files.done.len()
            ),
        ));
    }
    let empty = UploadDocument::default();
    let mut out = Vec::with_capacity(files.done.len());
    for (i, (_, part_name)) in files.done.iter().enumerate() {
        let n = i + 1;
        let doc = body.documents.get(i).unwrap_or(&empty);
        let name = doc.name.clone().unwrap_or_else(|| part_name.clone());
        check_text("document name", &name, MAX_NAME_CHARS)
            .map_err(|e| unprocessable("invalid_text", format!("document {n}: {e}")))?;
        let placements = doc
            .placements
            .clone()
            .unwrap_or_else(|| body.placements.clone());
        if placements.is_empty() {
            return Err(unprocessable(
                "invalid_placement",
                format!("document {n} ({name}) has no placement: give `placements` (for all documents, or in its `documents` entry), e.g. [{{\"kind\":\"at\",\"page\":1,\"x\":120,\"y\":200}}]"),
            ));
        }
        if placements.len() > MAX_PLACEMENTS {
            return Err(unprocessable(
                "invalid_placement",
                format!(
                    "document {n} ({name}) has {} placements; at most {MAX_PLACEMENTS}",
                    placements.len()
                ),
            ));
        }
        for p in &placements {
            if let Placement::Keyword { text, .. } = p {
                if text.trim().is_empty() {
                    return Err(unprocessable(
                        "invalid_placement",
                        format!(
                            "document {n} ({name}): a keyword placement needs the text to find"
                        ),
                    ));
                }
                check_text("keyword", text, MAX_NAME_CHARS)
                    .map_err(|e| unprocessable("invalid_text", format!("document {n}: {e}")))?;
            }
        }
        out.push((name, placements, doc.mode.unwrap_or(body.mode)));
    }
    Ok(out)
}

/// Reads the upload, plans every document and records the request; the request and its
/// files.
pub async fn create(
    state: &SharedState,
    caller: Caller,
    origin: Option<String>,
    request: Request,
) -> Result<StampRequest, ApiError> {
    let (body, files) = read_form(state, request).await?;
    let asked = resolve_documents(&body, &files)?;
    check_text(
        "purpose",
        &body.purpose,
        crate::approval::limits::MAX_PURPOSE_CHARS,
    )
    .map_err(ApiError::from)?;
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let seal = st.services.registry.get(body.seal_id)?;
        // The default stamp size is the seal picture's, as its SES_Seal says (what the sealed
        // file will carry); the registry's enrolled size if the SES_Seal cannot be read.
        let size = seal
            .ses_seal
            .as_deref()
            .and_then(|der| crate::ses::Seal::parse(der).ok())
            .map(|ses| crate::ofd::seal::seal_size_mm(&ses))
            .filter(|(w, h)| *w > 0.0 && *h > 0.0)
            .unwrap_or((seal.image.width_mm, seal.image.height_mm));
        let uploaded = files
            .uploaded
            .clone()
            .ok_or_else(|| ApiError::internal("the upload is gone"))?;
        let mut rows = Vec::with_capacity(files.done.len());
        for (i, ((part, _), (name, placements, mode))) in files.done.iter().zip(asked).enumerate() {
            let n = i as u32 + 1;
            let read_back = |e: std::io::Error| {
                ApiError::internal(format!("cannot read the upload back: {e}"))
            };
            let mut input =
                Section::open(&uploaded.path, part.offset, part.size).map_err(read_back)?;
            let format = detect_format(&mut input)
                .map_err(read_back)?
                .ok_or_else(|| {
                    unprocessable(
                        "unsupported_document",
                        format!("document {n} ({name}) is neither an OFD package (a zip) nor a PDF; seald seals OFD and PDF documents"),
                    )
                })?;
            let planned = plan_document(format, input, &placements, size, mode).map_err(|e| {
                if e.is_input_error() {
                    unprocessable(
                        "invalid_document",
                        format!("document {n} ({name}) cannot be sealed as asked: {e}"),
                    )
                } else {
                    ApiError::internal(format!("document {n} ({name}) could not be read back: {e}"))
                }
            })?;
            rows.push(StampFileRow {
                file: StampFile {
                    n,
                    name,
                    format,
                    size: part.size,
                    sm3: Digest32(part.sm3),
                    mode,
                    placements,
                    plan: planned,
                    sealed: false,
                },
                upload: Some(uploaded.relative.clone()),
                offset: part.offset,
                sealed: None,
            });
        }
        let documents = rows
            .iter()
            .map(|r| StampDocument {
                digest: r.file.sm3,
                name: r.file.name.clone(),
            })
            .collect();
        let request = st.services.approvals.create_request_with_files(
            &caller,
            NewStampRequest {
                seal_id: body.seal_id,
                documents,
                purpose: body.purpose,
                origin,
            },
            rows,
        )?;
        files.keep();
        Ok::<_, ApiError>(request)
    })
    .await
    .map_err(|_| ApiError::internal("a worker thread failed; see seald's log"))?
}
