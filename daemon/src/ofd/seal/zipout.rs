//! Writing the sealed package: every original entry in its original order, copied raw (its
//! compressed bytes, CRC and sizes as they were, nothing inflated or recompressed) unless it is
//! replaced; replaced members (`OFD.xml`, `Signatures.xml`) in their original place; new
//! members at the end (XML deflated, the DER of the seal and the signature stored).

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};

use time::OffsetDateTime;
use zip::write::SimpleFileOptions;

use super::SealError;
use crate::ofd::package::{member_name, Package};

fn zip_err(e: zip::result::ZipError) -> SealError {
    match e {
        zip::result::ZipError::Io(e) => SealError::Io(e),
        other => SealError::Io(std::io::Error::other(other)),
    }
}

/// The zip timestamp of `t` (UTC), or the zip epoch when `t` is out of the format's range.
fn zip_time(t: OffsetDateTime) -> zip::DateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    u16::try_from(t.year())
        .ok()
        .and_then(|y| {
            zip::DateTime::from_date_and_time(
                y,
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
            )
            .ok()
        })
        .unwrap_or_default()
}

/// Writes the package to `out`: `replaced` members (by normalised name) take new bytes in
/// place, `added` ones follow.
pub(super) fn write<R: Read + Seek, W: Write + Seek>(
    package: &mut Package<R>,
    out: W,
    replaced: &BTreeMap<String, Vec<u8>>,
    added: &[(String, Vec<u8>)],
    time: OffsetDateTime,
) -> Result<W, SealError> {
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip_time(time));
    let mut w = zip::ZipWriter::new(out);
    let zip = package.archive();
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(zip_err)?;
        let name = member_name(entry.name()).map_err(|e| SealError::Structure(e.to_string()))?;
        match replaced.get(&name) {
            Some(bytes) => {
                drop(entry);
                w.start_file(name, options).map_err(zip_err)?;
                w.write_all(bytes)?;
            }
            None => w.raw_copy_file(entry).map_err(zip_err)?,
        }
    }
    // DER members hold a compressed picture (PNG, JPEG, OFD): store them, deflate the XML.
    let stored = options.compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in added {
        let binary = name.ends_with(".esl") || name.ends_with(".dat");
        w.start_file(name, if binary { stored } else { options })
            .map_err(zip_err)?;
        w.write_all(bytes)?;
    }
    w.finish().map_err(zip_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_times() {
        let t = time::macros::datetime!(2025-06-01 08:09:10 +08:00);
        let z = zip_time(t);
        assert_eq!((z.year(), z.month(), z.day(), z.hour()), (2025, 6, 1, 0));
        assert_eq!(
            zip_time(time::macros::datetime!(1970-01-01 0:00 UTC)),
            zip::DateTime::default()
        );
    }
}
