//! Writing one incremental update (ISO 32000-1 §7.5.6) after the original bytes: new and
//! changed objects, then a cross-reference section of the same kind as the file's last one
//! (a table, or a cross-reference stream when the last section is a stream; a hybrid file's
//! last section is a table, and so is its update), and a trailer that keeps the original's
//! entries (`/Root`, `/Info`, `/ID`, …) with `/Prev` pointing at the last `startxref`.
//!
//! Written here rather than by `lopdf`'s `IncrementalDocument` so that the positions of the
//! signature's `/ByteRange` and `/Contents` placeholders are known exactly (and `lopdf` does
//! not export its object writer: [`write_object`] serializes `lopdf` objects here).

use lopdf::xref::XrefType;
use lopdf::{Dictionary, Document, Object, ObjectId, StringFormat};

use super::appearance::deflate;

/// The update being written.
pub(crate) struct Update<'a> {
    original: &'a [u8],
    /// Where offsets count from (the `%PDF-` header).
    base: usize,
    prev: usize,
    table: bool,
    trailer: Dictionary,
    next_id: u32,
    /// The new bytes (after the original), with each object's offset in them.
    out: Vec<u8>,
    offsets: Vec<(u32, u16, usize)>,
}

impl<'a> Update<'a> {
    /// An update of `original` (parsed as `doc`).
    pub(crate) fn new(original: &'a [u8], doc: &Document) -> Self {
        let base = original.windows(5).position(|w| w == b"%PDF-").unwrap_or(0);
        let declared = doc
            .trailer
            .get(b"Size")
            .ok()
            .and_then(|s| s.as_i64().ok())
            .filter(|s| *s > 0 && *s <= i64::from(crate::pdf::MAX_OBJECTS))
            .unwrap_or(0) as u32;
        let next_id = (doc.max_id + 1).max(declared).max(1);
        let mut trailer = Dictionary::new();
        for (k, v) in doc.trailer.iter() {
            let drop: &[&[u8]] = &[
                b"Prev",
                b"XRefStm",
                b"Size",
                b"Type",
                b"W",
                b"Index",
                b"Length",
                b"Filter",
                b"DecodeParms",
                b"Encrypt",
            ];
            if !drop.contains(&k.as_slice()) {
                trailer.set(k.clone(), v.clone());
            }
        }
        let mut out = Vec::new();
        if !matches!(original.last(), Some(b'\n' | b'\r')) {
            out.push(b'\n');
        }
        Self {
            original,
            base,
            prev: doc.xref_start,
            table: matches!(
                doc.reference_table.cross_reference_type,
                XrefType::CrossReferenceTable
            ),
            trailer,
            next_id,
            out,
            offsets: Vec::new(),
        }
    }

    /// A new object number.
    pub(crate) fn new_id(&mut self) -> ObjectId {
        let id = self.next_id;
        self.next_id += 1;
        (id, 0)
    }

    fn begin(&mut self, id: ObjectId) {
        let at = self.original.len() + self.out.len() - self.base;
        self.offsets.push((id.0, id.1, at));
        self.out
            .extend(format!("{} {} obj\n", id.0, id.1).as_bytes());
    }

    /// Writes `object` as `id` (a new object or a new version of an existing one).
    pub(crate) fn object(&mut self, id: ObjectId, object: &Object) {
        self.begin(id);
        write_object(&mut self.out, object);
        self.out.extend(b"\nendobj\n");
    }

    /// Writes `raw` (an object's body, already serialized) as `id`; returns where `raw`
    /// starts in the whole output.
    pub(crate) fn raw(&mut self, id: ObjectId, raw: &[u8]) -> usize {
        self.begin(id);
        let start = self.original.len() + self.out.len();
        self.out.extend(raw);
        self.out.extend(b"\nendobj\n");
        start
    }

    /// Finishes the update: the cross-reference section, trailer and `startxref`. Returns
    /// the whole output.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let size = if self.table {
            self.next_id
        } else {
            self.next_id + 1
        };
        self.trailer.set("Size", i64::from(size));
        self.trailer.set("Prev", self.prev as i64);
        if self.table {
            let xref_at = self.original.len() + self.out.len() - self.base;
            let mut entries = self.offsets.clone();
            entries.sort();
            let mut text = String::from("xref\n");
            let mut i = 0;
            while i < entries.len() {
                let mut j = i + 1;
                while j < entries.len() && entries[j].0 == entries[j - 1].0 + 1 {
                    j += 1;
                }
                text.push_str(&format!("{} {}\n", entries[i].0, j - i));
                for (_, generation, off) in &entries[i..j] {
                    text.push_str(&format!("{off:010} {generation:05} n \n"));
                }
                i = j;
            }
            self.out.extend(text.as_bytes());
            self.out.extend(b"trailer\n");
            write_object(&mut self.out, &Object::Dictionary(self.trailer.clone()));
            self.out
                .extend(format!("\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
        } else {
            let id = self.new_id();
            let xref_at = self.original.len() + self.out.len() - self.base;
            let mut entries = self.offsets.clone();
            entries.push((id.0, id.1, xref_at));
            entries.sort();
            let mut index = Vec::new();
            let mut data = Vec::new();
            let mut i = 0;
            while i < entries.len() {
                let mut j = i + 1;
                while j < entries.len() && entries[j].0 == entries[j - 1].0 + 1 {
                    j += 1;
                }
                index.push(Object::Integer(i64::from(entries[i].0)));
                index.push(Object::Integer((j - i) as i64));
                for (_, generation, off) in &entries[i..j] {
                    data.push(1u8);
                    data.extend((*off as u32).to_be_bytes());
                    data.extend(generation.to_be_bytes());
                }
                i = j;
            }
            let mut dict = self.trailer.clone();
            dict.set("Type", "XRef");
            dict.set("W", vec![1.into(), 4.into(), 2.into()]);
            dict.set("Index", index);
            dict.set("Filter", "FlateDecode");
            let data = deflate(&data);
            dict.set("Length", data.len() as i64);
            self.begin(id);
            write_object(&mut self.out, &Object::Dictionary(dict));
            self.out.extend(b"stream\n");
            self.out.extend(&data);
            self.out.extend(b"\nendstream\nendobj\n");
            self.out
                .extend(format!("startxref\n{xref_at}\n%%EOF\n").as_bytes());
        }
        let mut whole = Vec::with_capacity(self.original.len() + self.out.len());
        whole.extend_from_slice(self.original);
        whole.extend(self.out);
        whole
    }
}

fn needs_space(o: &Object) -> bool {
    matches!(
        o,
        Object::Null
            | Object::Boolean(_)
            | Object::Integer(_)
            | Object::Real(_)
            | Object::Reference(_)
    )
}

/// Serializes `o` (ISO 32000-1 §7.3): names escaped with `#xx`, literal strings with `\`
/// escapes, reals without exponents, streams as their dictionary and raw bytes.
pub(crate) fn write_object(out: &mut Vec<u8>, o: &Object) {
    match o {
        Object::Null => out.extend(b"null"),
        Object::Boolean(b) => out.extend(if *b { &b"true"[..] } else { &b"false"[..] }),
        Object::Integer(i) => out.extend(i.to_string().as_bytes()),
        Object::Real(r) => out.extend(super::appearance::num(f64::from(*r)).as_bytes()),
        Object::Name(n) => {
            out.push(b'/');
            for &b in n {
                if b"()<>[]{}/%#".contains(&b) || !(33..=126).contains(&b) {
                    out.extend(format!("#{b:02X}").as_bytes());
                } else {
                    out.push(b);
                }
            }
        }
        Object::String(s, StringFormat::Literal) => {
            out.push(b'(');
            for &b in s {
                match b {
                    b'(' | b')' | b'\\' => {
                        out.push(b'\\');
                        out.push(b);
                    }
                    b'\r' => out.extend(b"\\r"),
                    b'\n' => out.extend(b"\\n"),
                    _ => out.push(b),
                }
            }
            out.push(b')');
        }
        Object::String(s, StringFormat::Hexadecimal) => {
            out.push(b'<');
            out.extend(hex::encode_upper(s).as_bytes());
            out.push(b'>');
        }
        Object::Array(a) => {
            out.push(b'[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 && needs_space(item) {
                    out.push(b' ');
                }
                write_object(out, item);
            }
            out.push(b']');
        }
        Object::Dictionary(d) => write_dict(out, d),
        Object::Stream(s) => {
            let mut dict = s.dict.clone();
            dict.set("Length", s.content.len() as i64);
            write_dict(out, &dict);
            out.extend(b"stream\n");
            out.extend(&s.content);
            out.extend(b"\nendstream");
        }
        Object::Reference((n, g)) => out.extend(format!("{n} {g} R").as_bytes()),
    }
}

fn write_dict(out: &mut Vec<u8>, d: &Dictionary) {
    out.extend(b"<<");
    for (k, v) in d.iter() {
        write_object(out, &Object::Name(k.clone()));
        if needs_space(v) {
            out.push(b' ');
        }
        write_object(out, v);
    }
    out.extend(b">>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::dictionary;

    #[test]
    fn objects_serialize_and_parse_back() {
        let d = dictionary! {
            "A" => 1,
            "B" => Object::Real(2.5),
            "N" => Object::Name(b"a b#".to_vec()),
            "S" => Object::string_literal("x(y)\\z\r"),
            "H" => Object::String(vec![0xFE, 0xFF], StringFormat::Hexadecimal),
            "R" => vec![Object::Reference((3, 0)), Object::Reference((4, 1)), true.into(), Object::Null],
        };
        let mut out = Vec::new();
        write_object(&mut out, &Object::Dictionary(d.clone()));
        let text = String::from_utf8_lossy(&out).to_string();
        assert_eq!(
            text,
            "<</A 1/B 2.5/N/a#20b#23/S(x\\(y\\)\\\\z\\r)/H<FEFF>/R[3 0 R 4 1 R true null]>>"
        );
    }
}
