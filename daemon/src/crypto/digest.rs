//! SM3 (GB/T 32905) and SHA-256 digests over bytes, readers and files, in constant memory.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::Sha256;
use sm3::{Digest, Sm3};

use super::signer::KeyAlgorithm;

/// Size of the buffer used when hashing a stream.
const CHUNK: usize = 64 * 1024;

/// SM3 of `data`.
pub fn sm3(data: &[u8]) -> [u8; 32] {
    Sm3::digest(data).into()
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SM3 of everything `reader` yields, read in fixed-size chunks.
pub fn sm3_reader<R: Read>(reader: R) -> io::Result<[u8; 32]> {
    stream::<Sm3, R>(reader)
}

/// SM3 of a file's contents, in constant memory.
pub fn sm3_file(path: &Path) -> io::Result<[u8; 32]> {
    sm3_reader(File::open(path)?)
}

/// The document digest a signature of `algorithm` carries in `dataHash`:
/// SM3 for SM2 signatures, SHA-256 for P-256 ones.
pub fn data_digest_reader<R: Read>(algorithm: KeyAlgorithm, reader: R) -> io::Result<[u8; 32]> {
    match algorithm {
        KeyAlgorithm::Sm2 => stream::<Sm3, R>(reader),
        KeyAlgorithm::P256 => stream::<Sha256, R>(reader),
    }
}

/// [`data_digest_reader`] over bytes in memory.
pub fn data_digest(algorithm: KeyAlgorithm, data: &[u8]) -> [u8; 32] {
    match algorithm {
        KeyAlgorithm::Sm2 => sm3(data),
        KeyAlgorithm::P256 => sha256(data),
    }
}

fn stream<D: Digest, R: Read>(mut reader: R) -> io::Result<[u8; 32]> {
    let mut hasher = D::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let out = hasher.finalize();
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&out[..32]);
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn sm3_standard_vectors() {
        assert_eq!(
            sm3(b"abc"),
            hex32("66C7F0F462EEEDD9D1F2D46BDC10E4E24167C4875CF2F7A2297DA02B8F4BA8E0")
        );
        let m = b"abcd".repeat(16);
        assert_eq!(
            sm3(&m),
            hex32("DEBE9FF92275B8A138604889C18E5A4D6FDB70E5387E5765293DCBA39C0C5732")
        );
    }

    /// A reader that hands out at most 7 bytes per call, to exercise chunk boundaries.
    struct Dribble<'a>(&'a [u8]);
    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(7).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn streaming_matches_one_shot_across_chunk_boundaries() {
        let data: Vec<u8> = (0..(CHUNK * 2 + 13))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        assert_eq!(sm3_reader(&data[..]).unwrap(), sm3(&data));
        assert_eq!(sm3_reader(Dribble(&data)).unwrap(), sm3(&data));
        assert_eq!(
            data_digest_reader(KeyAlgorithm::P256, &data[..]).unwrap(),
            sha256(&data)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doc");
        std::fs::write(&path, &data).unwrap();
        assert_eq!(sm3_file(&path).unwrap(), sm3(&data));
    }
}
