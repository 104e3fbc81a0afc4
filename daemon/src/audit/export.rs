//! Export of a time range as JSON lines or CSV.

use std::io::Write;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::store::model::AuditRow;

/// Output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    /// RFC 4180 CSV with a header line.
    Csv,
}

/// One exported record.
#[derive(Debug, Serialize)]
pub struct ExportedRecord {
    /// Sequence number.
    pub seq: i64,
    /// Time, RFC 3339 UTC.
    pub at: String,
    /// Record kind.
    pub kind: String,
    /// Who.
    pub actor: String,
    /// The seal concerned.
    pub seal_id: Option<i64>,
    /// Details (JSON; the stored text if it is not valid JSON).
    pub detail: serde_json::Value,
    /// Previous record's hash, hex.
    pub prev_hash: String,
    /// This record's hash, hex.
    pub hash: String,
}

impl From<&AuditRow> for ExportedRecord {
    fn from(row: &AuditRow) -> Self {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(row.at_ms) * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| row.at_ms.to_string());
        Self {
            seq: row.seq,
            at,
            kind: row.kind.clone(),
            actor: row.actor.clone(),
            seal_id: row.seal_id,
            detail: serde_json::from_str(&row.detail)
                .unwrap_or_else(|_| serde_json::Value::String(row.detail.clone())),
            prev_hash: hex::encode(&row.prev_hash),
            hash: hex::encode(&row.hash),
        }
    }
}

/// Header line of the CSV export.
pub const CSV_HEADER: &str = "seq,at,kind,actor,seal_id,detail,prev_hash,hash";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Writes one record in `format`.
pub fn write_record(
    out: &mut dyn Write,
    format: ExportFormat,
    row: &AuditRow,
) -> std::io::Result<()> {
    let rec = ExportedRecord::from(row);
    match format {
        ExportFormat::Jsonl => {
            serde_json::to_writer(&mut *out, &rec)?;
            out.write_all(b"\n")
        }
        ExportFormat::Csv => writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            rec.seq,
            rec.at,
            csv_field(&rec.kind),
            csv_field(&rec.actor),
            rec.seal_id.map(|s| s.to_string()).unwrap_or_default(),
            csv_field(&row.detail),
            rec.prev_hash,
            rec.hash
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_commas_and_quotes() {
        assert_eq!(csv_field("a"), "a");
        assert_eq!(csv_field(r#"{"a":1,"b":2}"#), r#""{""a"":1,""b"":2}""#);
    }
}
