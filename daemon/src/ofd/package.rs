//! The OFD package (a zip archive): strict member names, bounded reads, path resolution.
//!
//! Member names are normalised once when the archive is opened (a leading `/` dropped); a name
//! with `..`, `\`, NUL or an empty component, or two members with the same name, make the
//! package unreadable: different readers would pick different bytes. Reads are bounded per
//! member and in total, so a zip bomb stops at the cap instead of filling memory.

use std::collections::BTreeMap;
use std::io::{Read, Seek};

/// Largest member read from a package.
pub const MAX_MEMBER: u64 = 64 * 1024 * 1024;
/// Largest total of uncompressed bytes read from one package.
pub const MAX_TOTAL: u64 = 256 * 1024 * 1024;
/// Most members a package may have.
pub const MAX_MEMBERS: usize = 20_000;

/// Why a package could not be opened at all.
#[derive(Debug, thiserror::Error)]
pub enum OfdError {
    /// Not a zip archive, or a broken one.
    #[error("not a readable OFD (zip) file: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// The archive is a zip but not an acceptable OFD package.
    #[error("not an acceptable OFD package: {0}")]
    Package(String),
}

/// Why one member could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// No member by that name.
    #[error("{0} is missing from the package")]
    Missing(String),
    /// The member, or the package in total, is larger than the caps.
    #[error("{0} is too large ({1})")]
    TooLarge(String, String),
    /// The member is damaged, encrypted or otherwise unreadable.
    #[error("{0} cannot be read: {1}")]
    Broken(String, String),
}

/// An opened OFD package.
pub struct Package<R> {
    zip: zip::ZipArchive<R>,
    members: BTreeMap<String, usize>,
    read_total: u64,
}

impl<R> std::fmt::Debug for Package<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Package")
            .field("members", &self.members.len())
            .field("read_total", &self.read_total)
            .finish()
    }
}

/// Checks a zip member name and returns it without a leading `/`.
pub(crate) fn member_name(raw: &str) -> Result<String, String> {
    let name = raw.strip_prefix('/').unwrap_or(raw);
    if name.is_empty() || name.contains('\\') || name.contains('\0') {
        return Err(format!("unsafe member name {raw:?}"));
    }
    let body = name.strip_suffix('/').unwrap_or(name);
    if body
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!("unsafe member name {raw:?}"));
    }
    Ok(name.to_string())
}

impl<R: Read + Seek> Package<R> {
    /// Opens a package, checking every member name.
    pub fn open(mut reader: R) -> Result<Self, OfdError> {
        // The zip crate keeps one entry per name, silently: count the central directory's
        // records ourselves, so that two entries of one name are refused, not merged.
        let records = central_directory_records(&mut reader)
            .map_err(|e| OfdError::Zip(zip::result::ZipError::Io(e)))?;
        let mut zip = zip::ZipArchive::new(reader)?;
        if records.is_some_and(|n| n > zip.len() as u64) {
            return Err(OfdError::Package(
                "two members have the same name (different readers would pick different ones)"
                    .into(),
            ));
        }
        if zip.len() > MAX_MEMBERS {
            return Err(OfdError::Package(format!(
                "{} members (at most {MAX_MEMBERS})",
                zip.len()
            )));
        }
        let mut members = BTreeMap::new();
        for i in 0..zip.len() {
            let entry = zip.by_index_raw(i)?;
            let name = member_name(entry.name()).map_err(OfdError::Package)?;
            if name.ends_with('/') {
                continue;
            }
            if members.insert(name.clone(), i).is_some() {
                return Err(OfdError::Package(format!("two members are named {name}")));
            }
        }
        Ok(Self {
            zip,
            members,
            read_total: 0,
        })
    }

    /// The member names (files only, no leading `/`), sorted.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// Whether a member of that (normalised) name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    /// Resolves a relative location from `base_dir`, or from the package root when only that
    /// names a member (vendors write both); absolute locations as [`resolve`] does.
    pub fn locate(&self, base_dir: &str, loc: &str) -> Result<String, String> {
        let first = resolve(base_dir, loc)?;
        if loc.trim().starts_with('/') || self.contains(&first) {
            return Ok(first);
        }
        match resolve("", loc) {
            Ok(second) if self.contains(&second) => Ok(second),
            _ => Ok(first),
        }
    }

    /// The zip archive itself, for copying entries raw (names were checked at [`Package::open`]).
    pub(crate) fn archive(&mut self) -> &mut zip::ZipArchive<R> {
        &mut self.zip
    }

    /// Reads a member's uncompressed bytes (its CRC is checked by the zip reader).
    pub fn read(&mut self, name: &str) -> Result<Vec<u8>, ReadError> {
        let index = *self
            .members
            .get(name)
            .ok_or_else(|| ReadError::Missing(format!("/{name}")))?;
        let left = MAX_TOTAL.saturating_sub(self.read_total);
        let cap = MAX_MEMBER.min(left);
        let entry = self
            .zip
            .by_index(index)
            .map_err(|e| ReadError::Broken(format!("/{name}"), e.to_string()))?;
        // Sized from the declared size (bounded by the cap), grown if the archive lies.
        let mut buf = Vec::with_capacity(entry.size().min(cap) as usize + 1);
        let read = entry.take(cap + 1).read_to_end(&mut buf);
        self.read_total = self.read_total.saturating_add(buf.len() as u64);
        read.map_err(|e| ReadError::Broken(format!("/{name}"), e.to_string()))?;
        if buf.len() as u64 > cap {
            let why = if cap < MAX_MEMBER {
                format!("the package's {MAX_TOTAL}-byte read budget is spent")
            } else {
                format!("larger than {MAX_MEMBER} bytes")
            };
            return Err(ReadError::TooLarge(format!("/{name}"), why));
        }
        Ok(buf)
    }
}

/// The number of central directory records the end of the archive announces (zip64 too), or
/// `None` when no end record is found (the zip reader then reports the archive broken).
fn central_directory_records<R: Read + Seek>(r: &mut R) -> std::io::Result<Option<u64>> {
    use std::io::SeekFrom;
    let len = r.seek(SeekFrom::End(0))?;
    let tail_len = len.min(22 + 65_535);
    r.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    r.read_exact(&mut tail)?;
    r.seek(SeekFrom::Start(0))?;
    // The last end record whose comment length reaches exactly the end of the file (a
    // comment may itself hold the signature bytes).
    let Some(eocd) = (0..tail.len().saturating_sub(21)).rev().find(|&i| {
        tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06]
            && i + 22 + usize::from(u16::from_le_bytes([tail[i + 20], tail[i + 21]])) == tail.len()
    }) else {
        return Ok(None);
    };
    let total = u16::from_le_bytes([tail[eocd + 10], tail[eocd + 11]]);
    if total != 0xFFFF {
        return Ok(Some(u64::from(total)));
    }
    // Zip64: the locator sits just before the end record and gives the zip64 end record.
    let Some(loc) = eocd.checked_sub(20) else {
        return Ok(None);
    };
    if tail[loc..loc + 4] != [0x50, 0x4b, 0x06, 0x07] {
        return Ok(None);
    }
    let at = u64::from_le_bytes(tail[loc + 8..loc + 16].try_into().expect("8 bytes"));
    let mut rec = [0u8; 40];
    // The zip64 end record may sit after data prepended to the archive: trust it only when
    // its signature is where the locator says.
    if at + 40 > len {
        return Ok(None);
    }
    r.seek(SeekFrom::Start(at))?;
    r.read_exact(&mut rec)?;
    r.seek(SeekFrom::Start(0))?;
    if rec[..4] != [0x50, 0x4b, 0x06, 0x06] {
        return Ok(None);
    }
    Ok(Some(u64::from_le_bytes(
        rec[32..40].try_into().expect("8 bytes"),
    )))
}

/// The directory part of a normalised member name (`""` for the package root).
pub fn parent(name: &str) -> &str {
    name.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

/// Resolves an OFD location (`ST_Loc`): absolute (`/Doc_0/…`) from the package root, relative
/// from `base_dir`. `.` is dropped and `..` steps up inside the package; a location that would
/// leave the package root, or that holds `\` or NUL, is refused.
pub fn resolve(base_dir: &str, loc: &str) -> Result<String, String> {
    let loc = loc.trim();
    if loc.is_empty() {
        return Err("empty location".into());
    }
    if loc.contains('\\') || loc.contains('\0') || loc.contains("://") {
        return Err(format!("location {loc:?} is not a package path"));
    }
    let mut parts: Vec<&str> = Vec::new();
    let rest = match loc.strip_prefix('/') {
        Some(abs) => abs,
        None => {
            parts.extend(base_dir.split('/').filter(|c| !c.is_empty()));
            loc
        }
    };
    for c in rest.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("location {loc:?} escapes the package"));
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(format!("location {loc:?} names no file"));
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_absolute_relative_and_refuses_escapes() {
        assert_eq!(
            resolve("Doc_0", "/Doc_0/Pages/Page_0/Content.xml").unwrap(),
            "Doc_0/Pages/Page_0/Content.xml"
        );
        assert_eq!(
            resolve("Doc_0/Signs", "Sign_0/Signature.xml").unwrap(),
            "Doc_0/Signs/Sign_0/Signature.xml"
        );
        assert_eq!(
            resolve("Doc_0/Pages", "./../Res/a.png").unwrap(),
            "Doc_0/Res/a.png"
        );
        assert_eq!(resolve("", " OFD.xml ").unwrap(), "OFD.xml");
        assert!(resolve("Doc_0", "../../etc/passwd").is_err());
        assert!(resolve("", "/../x").is_err());
        assert!(resolve("Doc_0", "a\\b").is_err());
        assert!(resolve("Doc_0", "").is_err());
        assert!(resolve("Doc_0", "/").is_err());
    }

    #[test]
    fn two_entries_of_one_name_are_refused() {
        use std::io::{Cursor, Write};
        let zip = |names: &[&str], comment: &str| {
            let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
            for n in names {
                w.start_file(*n, zip::write::SimpleFileOptions::default())
                    .unwrap();
                w.write_all(n.as_bytes()).unwrap();
            }
            w.set_comment(comment);
            w.finish().unwrap().into_inner()
        };
        // The zip crate keeps one of two same-named entries without a word: renamed after
        // writing, `a.xmm` becomes a second `a.xml`.
        let mut two = zip(&["a.xml", "a.xmm"], "");
        for i in 0..two.len() - 5 {
            if &two[i..i + 5] == b"a.xmm" {
                two[i..i + 5].copy_from_slice(b"a.xml");
            }
        }
        assert_eq!(zip::ZipArchive::new(Cursor::new(&two)).unwrap().len(), 1);
        let e = Package::open(Cursor::new(two)).unwrap_err();
        assert!(
            e.to_string().contains("two members have the same name"),
            "{e}"
        );
        // A comment holding the end record's signature does not confuse the count.
        let ok = zip(&["a.xml", "b.xml"], "PK\x05\x06 in a comment");
        assert_eq!(Package::open(Cursor::new(ok)).unwrap().members().count(), 2);
    }

    #[test]
    fn member_names_are_strict() {
        assert_eq!(member_name("/OFD.xml").unwrap(), "OFD.xml");
        assert_eq!(member_name("Doc_0/").unwrap(), "Doc_0/");
        for bad in ["../x", "a/../b", "a//b", "a\\b", "", "/", "./a"] {
            assert!(member_name(bad).is_err(), "{bad}");
        }
    }
}
