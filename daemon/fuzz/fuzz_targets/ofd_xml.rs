//! Any bytes given to the OFD XML readers (OFD.xml, Document.xml, Signatures.xml,
//! Signature.xml, ST_Box) give a result or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seald::ofd::xml;

fuzz_target!(|data: &[u8]| {
    let _ = xml::read_ofd_entry(data);
    let _ = xml::read_pages(data);
    let _ = xml::read_signature_list(data);
    let _ = xml::read_signature(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = xml::parse_box(s);
        let _ = seald::ofd::package::resolve("Doc_0", s);
    }
});
