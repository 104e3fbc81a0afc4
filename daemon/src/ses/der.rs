//! A small, lenient DER reader that keeps every element's original bytes, and a DER writer.
//!
//! Real seal files bend DER (explicit BOOLEAN FALSE, non-minimal lengths), so the reader accepts
//! what can be read unambiguously and reports anything else as a [`DerError`] naming the offset and
//! the element; it never panics and never reads past its input.

use std::fmt;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Universal tags used by the seal formats.
pub mod tag {
    /// BOOLEAN
    pub const BOOLEAN: u8 = 0x01;
    /// INTEGER
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING
    pub const OCTET_STRING: u8 = 0x04;
    /// NULL
    pub const NULL: u8 = 0x05;
    /// OBJECT IDENTIFIER
    pub const OID: u8 = 0x06;
    /// UTF8String
    pub const UTF8_STRING: u8 = 0x0c;
    /// PrintableString
    pub const PRINTABLE_STRING: u8 = 0x13;
    /// IA5String
    pub const IA5_STRING: u8 = 0x16;
    /// UTCTime
    pub const UTC_TIME: u8 = 0x17;
    /// GeneralizedTime
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// BMPString
    pub const BMP_STRING: u8 = 0x1e;
    /// SEQUENCE (constructed)
    pub const SEQUENCE: u8 = 0x30;
    /// SET (constructed)
    pub const SET: u8 = 0x31;
    /// Context-specific constructed `[0]`
    pub const CONTEXT_0: u8 = 0xa0;
}

/// What was wrong with an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The input ended inside the element.
    Truncated,
    /// A different tag was found.
    WrongTag {
        /// Expected tag byte.
        expected: u8,
        /// Found tag byte.
        found: u8,
    },
    /// An expected element is missing.
    Missing,
    /// Elements follow where the structure should end.
    Trailing,
    /// A length that cannot be right (indefinite, over 4 bytes, past the end).
    BadLength,
    /// A value that does not decode as its type says.
    BadValue(&'static str),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Truncated => write!(f, "the data ends too early"),
            Problem::WrongTag { expected, found } => {
                write!(f, "expected tag 0x{expected:02x}, found 0x{found:02x}")
            }
            Problem::Missing => write!(f, "the element is missing"),
            Problem::Trailing => write!(f, "unexpected data after the last element"),
            Problem::BadLength => write!(f, "impossible length"),
            Problem::BadValue(why) => write!(f, "{why}"),
        }
    }
}

/// A DER reading error: where, in which element, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}, {element}: {problem}")]
pub struct DerError {
    /// Offset in the outermost input.
    pub offset: usize,
    /// The element being read (ASN.1 field name).
    pub element: &'static str,
    /// What was wrong.
    pub problem: Problem,
}

/// One element: its tag, value, and whole original encoding.
#[derive(Clone, Copy, Debug)]
pub struct Tlv<'a> {
    /// Tag byte (single-byte tags only).
    pub tag: u8,
    /// Tag, length and value as found in the input.
    pub raw: &'a [u8],
    /// The value bytes.
    pub value: &'a [u8],
    /// Offset of `raw` in the outermost input.
    pub offset: usize,
    /// Offset of `value` in the outermost input.
    pub value_offset: usize,
    /// Field name, for errors.
    pub element: &'static str,
}

/// Reads one element at the start of `input` (at absolute `offset`); returns it and the rest.
pub fn read_tlv<'a>(
    input: &'a [u8],
    offset: usize,
    element: &'static str,
) -> Result<(Tlv<'a>, &'a [u8]), DerError> {
    let err = |at: usize, problem| DerError {
        offset: at,
        element,
        problem,
    };
    let (&tag, after_tag) = input.split_first().ok_or(err(offset, Problem::Missing))?;
    if tag & 0x1f == 0x1f {
        return Err(err(
            offset,
            Problem::BadValue("multi-byte tags are not used here"),
        ));
    }
    let (&first, mut rest) = after_tag
        .split_first()
        .ok_or(err(offset + 1, Problem::Truncated))?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(err(offset + 1, Problem::BadLength));
        }
        if rest.len() < n {
            return Err(err(offset + 1, Problem::Truncated));
        }
        let (len_bytes, r) = rest.split_at(n);
        rest = r;
        len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let header = input.len() - rest.len();
    if rest.len() < len {
        return Err(err(offset, Problem::Truncated));
    }
    let (value, rest) = rest.split_at(len);
    let total = header + len;
    Ok((
        Tlv {
            tag,
            raw: &input[..total],
            value,
            offset,
            value_offset: offset + header,
            element,
        },
        rest,
    ))
}

/// Reads exactly one element filling `input`.
pub fn read_single<'a>(
    input: &'a [u8],
    tag: u8,
    element: &'static str,
) -> Result<Tlv<'a>, DerError> {
    let (tlv, rest) = read_tlv(input, 0, element)?;
    tlv.expect_tag(tag)?;
    if !rest.is_empty() {
        return Err(DerError {
            offset: tlv.raw.len(),
            element,
            problem: Problem::Trailing,
        });
    }
    Ok(tlv)
}

/// The children of a constructed element, read in order.
#[derive(Debug, Clone)]
pub struct Children<'a> {
    rest: &'a [u8],
    offset: usize,
    parent: &'static str,
}

impl<'a> Tlv<'a> {
    fn err(&self, problem: Problem) -> DerError {
        DerError {
            offset: self.offset,
            element: self.element,
            problem,
        }
    }

    /// Fails unless the tag is `tag`.
    pub fn expect_tag(&self, tag: u8) -> Result<(), DerError> {
        if self.tag == tag {
            Ok(())
        } else {
            Err(self.err(Problem::WrongTag {
                expected: tag,
                found: self.tag,
            }))
        }
    }

    /// Iterates the children of a constructed element.
    pub fn children(&self) -> Children<'a> {
        Children {
            rest: self.value,
            offset: self.value_offset,
            parent: self.element,
        }
    }

    /// A non-negative INTEGER that fits in an `i64`.
    pub fn int(&self) -> Result<i64, DerError> {
        self.expect_tag(tag::INTEGER)?;
        let v = self.value;
        if v.is_empty() {
            return Err(self.err(Problem::BadValue("empty INTEGER")));
        }
        let digits = if v.len() > 1 && v[0] == 0 { &v[1..] } else { v };
        if v[0] & 0x80 != 0 || digits.len() > 8 || (digits.len() == 8 && digits[0] & 0x80 != 0) {
            return Err(self.err(Problem::BadValue("INTEGER out of range")));
        }
        Ok(digits
            .iter()
            .fold(0i64, |acc, &b| (acc << 8) | i64::from(b)))
    }

    /// A character string of any common string type, as UTF-8.
    pub fn string(&self) -> Result<String, DerError> {
        match self.tag {
            tag::UTF8_STRING | tag::IA5_STRING | tag::PRINTABLE_STRING | 0x14 | 0x1a => {
                String::from_utf8(self.value.to_vec())
                    .map_err(|_| self.err(Problem::BadValue("string is not valid UTF-8")))
            }
            tag::BMP_STRING => {
                if self.value.len() % 2 != 0 {
                    return Err(self.err(Problem::BadValue("odd-length BMPString")));
                }
                let units: Vec<u16> = self
                    .value
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16(&units)
                    .map_err(|_| self.err(Problem::BadValue("BMPString is not valid UTF-16")))
            }
            found => Err(self.err(Problem::WrongTag {
                expected: tag::IA5_STRING,
                found,
            })),
        }
    }

    /// OCTET STRING contents.
    pub fn octets(&self) -> Result<&'a [u8], DerError> {
        self.expect_tag(tag::OCTET_STRING)?;
        Ok(self.value)
    }

    /// BIT STRING contents without the unused-bits byte (which must be 0).
    pub fn bits(&self) -> Result<&'a [u8], DerError> {
        self.expect_tag(tag::BIT_STRING)?;
        match self.value.split_first() {
            Some((0, bits)) => Ok(bits),
            Some(_) => Err(self.err(Problem::BadValue("BIT STRING with unused bits"))),
            None => Err(self.err(Problem::BadValue("empty BIT STRING"))),
        }
    }

    /// BOOLEAN; any non-zero byte is true (some writers use 0x01).
    pub fn boolean(&self) -> Result<bool, DerError> {
        self.expect_tag(tag::BOOLEAN)?;
        match self.value {
            [b] => Ok(*b != 0),
            _ => Err(self.err(Problem::BadValue("BOOLEAN is not one byte"))),
        }
    }

    /// OBJECT IDENTIFIER in dotted form.
    pub fn oid(&self) -> Result<String, DerError> {
        self.expect_tag(tag::OID)?;
        oid_to_string(self.value)
            .ok_or_else(|| self.err(Problem::BadValue("malformed OBJECT IDENTIFIER")))
    }

    /// GeneralizedTime or UTCTime.
    pub fn time(&self) -> Result<OffsetDateTime, DerError> {
        let text = std::str::from_utf8(self.value)
            .map_err(|_| self.err(Problem::BadValue("time is not ASCII")))?;
        let parsed = match self.tag {
            tag::GENERALIZED_TIME => parse_time(text, false),
            tag::UTC_TIME => parse_time(text, true),
            found => {
                return Err(self.err(Problem::WrongTag {
                    expected: tag::GENERALIZED_TIME,
                    found,
                }))
            }
        };
        parsed.ok_or_else(|| self.err(Problem::BadValue("unreadable date and time")))
    }
}

impl<'a> Children<'a> {
    /// True when no children are left.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Tag of the next child, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// The next child, whatever its tag.
    pub fn next_any(&mut self, element: &'static str) -> Result<Tlv<'a>, DerError> {
        let (tlv, rest) = read_tlv(self.rest, self.offset, element)?;
        self.offset += tlv.raw.len();
        self.rest = rest;
        Ok(tlv)
    }

    /// The next child, which must have `tag`.
    pub fn next(&mut self, tag: u8, element: &'static str) -> Result<Tlv<'a>, DerError> {
        let tlv = self.next_any(element)?;
        tlv.expect_tag(tag)?;
        Ok(tlv)
    }

    /// The next child if it has `tag`.
    pub fn optional(
        &mut self,
        tag: u8,
        element: &'static str,
    ) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.next(tag, element).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails if children remain.
    pub fn finish(self) -> Result<(), DerError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError {
                offset: self.offset,
                element: self.parent,
                problem: Problem::Trailing,
            })
        }
    }
}

fn oid_to_string(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || bytes[bytes.len() - 1] & 0x80 != 0 {
        return None;
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in bytes {
        acc = acc.checked_mul(128)?.checked_add(u64::from(b & 0x7f))?;
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
        }
    }
    let first = arcs.first()?;
    let (a, b) = match *first {
        f if f < 40 => (0, f),
        f if f < 80 => (1, f - 40),
        f => (2, f - 80),
    };
    let mut s = format!("{a}.{b}");
    for arc in &arcs[1..] {
        s.push('.');
        s.push_str(&arc.to_string());
    }
    Some(s)
}

/// Parses `YYYYMMDDHHMM[SS][.fff][Z|±hhmm]` (or the two-digit-year UTCTime form).
/// A time with no zone is read as UTC.
fn parse_time(text: &str, two_digit_year: bool) -> Option<OffsetDateTime> {
    let b = text.as_bytes();
    if !b.iter().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    let num = |s: &[u8]| -> Option<u32> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    let (year, rest) = if two_digit_year {
        let yy = num(b.get(..2)?)?;
        (if yy >= 50 { 1900 + yy } else { 2000 + yy }, b.get(2..)?)
    } else {
        (num(b.get(..4)?)?, b.get(4..)?)
    };
    let month = num(rest.get(..2)?)?;
    let day = num(rest.get(2..4)?)?;
    let hour = num(rest.get(4..6)?)?;
    let minute = num(rest.get(6..8)?)?;
    let mut rest = rest.get(8..)?;
    let mut second = 0;
    if rest.first().is_some_and(u8::is_ascii_digit) {
        second = num(rest.get(..2)?)?;
        rest = rest.get(2..)?;
    }
    if rest.first() == Some(&b'.') || rest.first() == Some(&b',') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        rest = &rest[1 + digits..];
    }
    let offset = match rest {
        [] | [b'Z'] => UtcOffset::UTC,
        [sign @ (b'+' | b'-'), hh1, hh2, mm1, mm2] => {
            let h = num(&[*hh1, *hh2])? as i8;
            let m = num(&[*mm1, *mm2])? as i8;
            let (h, m) = if *sign == b'-' { (-h, -m) } else { (h, m) };
            UtcOffset::from_hms(h, m, 0).ok()?
        }
        _ => return None,
    };
    let date = Date::from_calendar_date(
        i32::try_from(year).ok()?,
        Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second.min(59)).ok()?,
    )
    .ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .to_offset(UtcOffset::UTC),
    )
}

/// Parses a time written as text (v1 `timeInfo` BIT STRINGs carry GeneralizedTime or UTCTime text).
pub fn parse_time_text(text: &str) -> Option<OffsetDateTime> {
    let t = text.trim_end_matches('\0').trim();
    parse_time(t, false).or_else(|| parse_time(t, true))
}

/// DER writers. Every function returns one complete TLV.
pub mod write {
    use time::OffsetDateTime;

    use super::tag;

    /// Any TLV with a definite minimal length.
    pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(value.len() + 6);
        out.push(tag);
        let len = value.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes
                .iter()
                .position(|&b| b != 0)
                .unwrap_or(bytes.len() - 1);
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(value);
        out
    }

    /// SEQUENCE of already encoded parts.
    pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
        constructed(tag::SEQUENCE, parts)
    }

    /// A constructed TLV (SEQUENCE, SET, `[n]`) of already encoded parts.
    pub fn constructed(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
        tlv(tag, &parts.concat())
    }

    /// INTEGER from a non-negative value.
    pub fn int(value: u64) -> Vec<u8> {
        uint_bytes(&value.to_be_bytes())
    }

    /// INTEGER from unsigned big-endian bytes.
    pub fn uint_bytes(value: &[u8]) -> Vec<u8> {
        let first = value
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(value.len().saturating_sub(1));
        let digits = value.get(first..).filter(|d| !d.is_empty()).unwrap_or(&[0]);
        let mut body = Vec::with_capacity(digits.len() + 1);
        if digits[0] & 0x80 != 0 {
            body.push(0);
        }
        body.extend_from_slice(digits);
        tlv(tag::INTEGER, &body)
    }

    /// IA5String.
    pub fn ia5(s: &str) -> Vec<u8> {
        tlv(tag::IA5_STRING, s.as_bytes())
    }

    /// UTF8String.
    pub fn utf8(s: &str) -> Vec<u8> {
        tlv(tag::UTF8_STRING, s.as_bytes())
    }

    /// PrintableString.
    pub fn printable(s: &str) -> Vec<u8> {
        tlv(tag::PRINTABLE_STRING, s.as_bytes())
    }

    /// OCTET STRING.
    pub fn octets(v: &[u8]) -> Vec<u8> {
        tlv(tag::OCTET_STRING, v)
    }

    /// BIT STRING with no unused bits.
    pub fn bits(v: &[u8]) -> Vec<u8> {
        let mut body = Vec::with_capacity(v.len() + 1);
        body.push(0);
        body.extend_from_slice(v);
        tlv(tag::BIT_STRING, &body)
    }

    /// BOOLEAN (DER: 0xFF for true).
    pub fn boolean(v: bool) -> Vec<u8> {
        tlv(tag::BOOLEAN, &[if v { 0xff } else { 0 }])
    }

    /// OBJECT IDENTIFIER from dotted text; `None` if it is not a valid OID.
    pub fn oid(dotted: &str) -> Option<Vec<u8>> {
        let arcs: Vec<u64> = dotted
            .split('.')
            .map(|a| a.parse().ok())
            .collect::<Option<_>>()?;
        if arcs.len() < 2 || arcs[0] > 2 || (arcs[0] < 2 && arcs[1] >= 40) {
            return None;
        }
        let mut body = Vec::new();
        let first = arcs[0].checked_mul(40)?.checked_add(arcs[1])?;
        for arc in std::iter::once(first).chain(arcs[2..].iter().copied()) {
            let mut groups = vec![(arc & 0x7f) as u8];
            let mut rest = arc >> 7;
            while rest > 0 {
                groups.push((rest & 0x7f) as u8 | 0x80);
                rest >>= 7;
            }
            groups.reverse();
            body.extend_from_slice(&groups);
        }
        Some(tlv(tag::OID, &body))
    }

    /// A CMS/X.509 `Time`: UTCTime `YYMMDDHHMMSSZ` for the years 1950 to 2049, GeneralizedTime
    /// otherwise (RFC 5280 §4.1.2.5, RFC 5652 §11.3).
    pub fn time(t: OffsetDateTime) -> Vec<u8> {
        let t = t.to_offset(time::UtcOffset::UTC);
        if !(1950..2050).contains(&t.year()) {
            return generalized_time(t);
        }
        let text = format!(
            "{:02}{:02}{:02}{:02}{:02}{:02}Z",
            t.year() % 100,
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        tlv(tag::UTC_TIME, text.as_bytes())
    }

    /// GeneralizedTime `YYYYMMDDHHMMSSZ` (UTC, whole seconds).
    pub fn generalized_time(t: OffsetDateTime) -> Vec<u8> {
        let t = t.to_offset(time::UtcOffset::UTC);
        let text = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        tlv(tag::GENERALIZED_TIME, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn round_trips_scalars() {
        for v in [
            0u64,
            1,
            0x7f,
            0x80,
            0xff,
            0x1234,
            u32::MAX as u64,
            i64::MAX as u64,
        ] {
            let enc = write::int(v);
            let tlv = read_single(&enc, tag::INTEGER, "n").unwrap();
            assert_eq!(tlv.int().unwrap(), v as i64);
        }
        for oid in [
            "1.2.156.10197.1.501",
            "1.2.840.10045.2.1",
            "2.5.29.15",
            "2.999.3",
        ] {
            let enc = write::oid(oid).unwrap();
            assert_eq!(
                read_single(&enc, tag::OID, "o").unwrap().oid().unwrap(),
                oid
            );
        }
        assert_eq!(
            write::oid("1.2.156.10197.1.301").unwrap(),
            [0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D]
        );
        let t = datetime!(2024-02-29 23:59:58 UTC);
        let enc = write::generalized_time(t);
        assert_eq!(&enc[2..], b"20240229235958Z");
        assert_eq!(
            read_single(&enc, tag::GENERALIZED_TIME, "t")
                .unwrap()
                .time()
                .unwrap(),
            t
        );
        let long = vec![7u8; 70000];
        let enc = write::octets(&long);
        assert_eq!(
            read_single(&enc, tag::OCTET_STRING, "x")
                .unwrap()
                .octets()
                .unwrap(),
            &long[..]
        );
    }

    #[test]
    fn reads_lenient_times() {
        assert_eq!(
            parse_time_text("200422021807Z"),
            Some(datetime!(2020-04-22 02:18:07 UTC))
        );
        assert_eq!(
            parse_time_text("20200817111329Z"),
            Some(datetime!(2020-08-17 11:13:29 UTC))
        );
        assert_eq!(
            parse_time_text("20200817111329.123+0800"),
            Some(datetime!(2020-08-17 03:13:29 UTC))
        );
        assert_eq!(
            parse_time_text("20200817111329"),
            Some(datetime!(2020-08-17 11:13:29 UTC))
        );
        assert_eq!(parse_time_text("20201317111329Z"), None);
        assert_eq!(parse_time_text("2020"), None);
        assert_eq!(parse_time_text(""), None);
    }

    #[test]
    fn rejects_bad_lengths_without_panicking() {
        assert_eq!(
            read_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1], 0, "x")
                .unwrap_err()
                .problem,
            Problem::BadLength
        );
        assert_eq!(
            read_tlv(&[0x30, 0x80], 0, "x").unwrap_err().problem,
            Problem::BadLength
        );
        assert_eq!(
            read_tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff], 0, "x")
                .unwrap_err()
                .problem,
            Problem::Truncated
        );
        assert_eq!(
            read_tlv(&[0x30, 0x05, 1], 0, "x").unwrap_err().problem,
            Problem::Truncated
        );
        assert_eq!(
            read_tlv(&[0x30], 0, "x").unwrap_err().problem,
            Problem::Truncated
        );
        assert_eq!(read_tlv(&[], 0, "x").unwrap_err().problem, Problem::Missing);
        assert!(read_single(&[0x02, 0x01, 0x05, 0x00], tag::INTEGER, "x").is_err());
        let neg = [0x02, 0x01, 0x80];
        assert!(read_single(&neg, tag::INTEGER, "x").unwrap().int().is_err());
        assert!(read_single(&[0x06, 0x01, 0x81], tag::OID, "x")
            .unwrap()
            .oid()
            .is_err());
    }
}
