//! A mutation run over the OFD XML readers on stable Rust (cargo-fuzz needs nightly, which CI
//! cannot fetch): every XML member of the shared OFD fixtures, mutated many times (bytes
//! flipped, inserted, deleted, ranges copied, spliced with another member), must give a result
//! or an error, never a panic, and the unchanged members must still read.
//!
//! CI runs a short pass; `SEALD_MUTATION_SECS=300 cargo test --release -p seald --test
//! ofd_xml_mutations -- --nocapture` runs for five minutes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use seald::ofd::xml;

fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SEALD_FIXTURES") {
        return PathBuf::from(dir);
    }
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .map(|d| d.join("shared").join("fixtures"))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| panic!("shared/fixtures not found above {}", start.display()))
}

/// Every `.xml` member of every OFD fixture (tampered ones too).
fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let ses = fixtures_dir().join("ses");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&ses)
        .unwrap()
        .chain(std::fs::read_dir(ses.join("tampered")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ofd"))
        .collect();
    files.sort();
    for file in files {
        let mut zip = zip::ZipArchive::new(std::fs::File::open(&file).unwrap()).unwrap();
        for i in 0..zip.len() {
            let mut member = zip.by_index(i).unwrap();
            if member.name().to_ascii_lowercase().ends_with(".xml") {
                let mut bytes = Vec::new();
                member.read_to_end(&mut bytes).unwrap();
                out.push((format!("{}:{}", file.display(), member.name()), bytes));
            }
        }
    }
    out
}

/// xorshift64*: deterministic, so a failure names a seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Interesting bytes for XML: markup, quotes, entities, digits, a NUL and a non-ASCII lead.
const BYTES: &[u8] = b"<>/=\"'&;:#x0123456789.- \n\0\xe4\xff?!";

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let i = at.min(bytes.len() - 1);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => bytes.insert(at, BYTES[rng.below(BYTES.len())]),
            2 if at < bytes.len() => {
                let end = (at + 1 + rng.below(64)).min(bytes.len());
                bytes.drain(at..end);
            }
            3 if at < bytes.len() => {
                let end = (at + 1 + rng.below(128)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                let to = rng.below(bytes.len() + 1);
                bytes.splice(to..to, copy);
            }
            4 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + 1 + rng.below(256)).min(other.len());
                bytes.splice(at..at, other[from..end].iter().copied());
            }
            _ => bytes.truncate(at),
        }
    }
}

fn read_all(bytes: &[u8]) {
    let _ = xml::read_ofd_entry(bytes);
    let _ = xml::read_pages(bytes);
    let _ = xml::read_signature_list(bytes);
    let _ = xml::read_signature(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        let _ = xml::parse_box(s);
    }
}

#[test]
fn mutated_ofd_xml_never_panics() {
    let seeds = seeds();
    assert!(
        seeds.len() >= 20,
        "expected the fixtures' XML members: {}",
        seeds.len()
    );
    for (_, bytes) in &seeds {
        read_all(bytes);
    }
    let secs = std::env::var("SEALD_MUTATION_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let mut rng = Rng(0x5ea1_d0fd_2026_1129);
    let mut runs = 0u64;
    while Instant::now() < until {
        let seed = rng.next();
        let (name, base) = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())].1;
        let mut bytes = base.clone();
        let mut local = Rng(seed | 1);
        mutate(&mut local, &mut bytes, other);
        let outcome = std::panic::catch_unwind(|| read_all(&bytes));
        assert!(
            outcome.is_ok(),
            "panic on a mutation of {name} (seed {seed:#x})"
        );
        runs += 1;
    }
    eprintln!(
        "{runs} mutated inputs from {} seeds in {secs} s, no panic",
        seeds.len()
    );
    assert!(runs > 0);
}
