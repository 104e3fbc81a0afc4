//! OFD documents over the API: multipart uploads, downloads of sealed files, and hand-made zip
//! archives for bad input (duplicate or escaping member names, sizes that lie).

use std::io::Cursor;
use std::path::PathBuf;

use serde_json::Value;

use crate::daemon::RawResponse;
use crate::deployment::{Deployment, Who};

/// A `multipart/form-data` body: the `request` JSON part, then one `file` part per
/// `(file name, bytes)`. Returns the Content-Type and the body.
pub fn multipart(request: &Value, files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "seald-test-boundary-7c1e";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"request\"\r\nContent-Type: application/json\r\n\r\n{request}\r\n"
        )
        .as_bytes(),
    );
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/ofd\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// An HTTP answer with its body as bytes.
#[derive(Debug, Clone)]
pub struct BinaryResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl BinaryResponse {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Deployment {
    /// `who` uploads `files` with the `request` JSON part (POST /v1/stamp-requests).
    pub fn upload(&self, who: Who, request: &Value, files: &[(&str, &[u8])]) -> RawResponse {
        let (content_type, body) = multipart(request, files);
        let auth = format!("Bearer {}", self.token(who));
        self.daemon.raw(
            "POST",
            "/v1/stamp-requests",
            &[("Authorization", &auth), ("Content-Type", &content_type)],
            Some(&body),
        )
    }

    /// Uploads a one-page sample PDF for the deployment's seal (stamp at 100, 200 mm on page
    /// 1, `purpose`), has both approvers approve it and returns the sealed PDF.
    pub fn sealed_pdf(&self, purpose: &str) -> Vec<u8> {
        let pdf = seald::pdf::sample::Sample::new(1).build();
        let request = serde_json::json!({
            "seal_id": self.seal_id,
            "purpose": purpose,
            "placements": [{ "kind": "at", "page": 1, "x": 100, "y": 200 }],
        });
        let r = self.upload(Who::Client, &request, &[("contract.pdf", &pdf)]);
        assert_eq!(r.status, 202, "{}", r.body);
        let id = r.json()["id"].as_i64().expect("request id");
        self.approve_both(id);
        let v = self.wait_final(id);
        assert_eq!(v["state"], "signed", "{v}");
        let sealed = self.download(Who::Client, id, 1);
        assert_eq!(sealed.status, 200);
        sealed.body
    }

    /// `who` fetches sealed document `n` of request `id`.
    pub fn download(&self, who: Who, id: i64, n: u32) -> BinaryResponse {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.daemon.authority()).expect("connect");
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(60)));
        write!(
            stream,
            "GET /v1/stamp-requests/{id}/documents/{n} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.daemon.authority(),
            self.token(who)
        )
        .expect("send");
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("HTTP head");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        BinaryResponse {
            status,
            headers,
            body,
        }
    }

    /// The store's documents directory.
    pub fn documents_dir(&self) -> PathBuf {
        self.demo_dir().join("seald.db.documents")
    }

    /// Files now under `sub` (`uploads` or `sealed`) of the documents directory.
    pub fn stored(&self, sub: &str) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(self.documents_dir().join(sub))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        out.sort();
        out
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&body[..end]).trim(), 16).unwrap_or(0);
        let rest = &body[end + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        body = &rest[size..];
        if body.starts_with(b"\r\n") {
            body = &body[2..];
        }
    }
    out
}

/// The report of seald's own OFD verifier on `bytes`, against the demo's root.
pub fn verify(d: &Deployment, bytes: &[u8]) -> seald::ofd::OfdReport {
    let pem = std::fs::read(d.demo_dir().join("ca/root.pem")).expect("root.pem");
    let trust = seald::cert::TrustStore::from_pem_or_der(&pem).expect("trust store");
    seald::ofd::verify_ofd(Cursor::new(bytes), Some(&trust)).expect("readable OFD")
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A member of a hand-made zip: its name, bytes (stored, uncompressed) and, to make a zip bomb,
/// an uncompressed size that lies.
#[derive(Debug, Clone)]
pub struct Member {
    /// The name as written.
    pub name: String,
    /// The bytes.
    pub data: Vec<u8>,
    /// Declared uncompressed size, if not the real one.
    pub declared: Option<u32>,
}

impl Member {
    /// A plain member.
    pub fn new(name: &str, data: Vec<u8>) -> Self {
        Self {
            name: name.to_owned(),
            data,
            declared: None,
        }
    }
}

/// A zip archive written by hand (stored members), so names and sizes can be anything a zip
/// library would refuse to write.
pub fn zip(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for m in members {
        let offset = out.len() as u32;
        let crc = crc32(&m.data);
        let size = m.data.len() as u32;
        let declared = m.declared.unwrap_or(size);
        let name = m.name.as_bytes();
        let mut local = Vec::new();
        local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        local.extend_from_slice(&20u16.to_le_bytes()); // version needed
        local.extend_from_slice(&0x0800u16.to_le_bytes()); // UTF-8 names
        local.extend_from_slice(&0u16.to_le_bytes()); // stored
        local.extend_from_slice(&0u32.to_le_bytes()); // time, date
        local.extend_from_slice(&crc.to_le_bytes());
        local.extend_from_slice(&size.to_le_bytes());
        local.extend_from_slice(&declared.to_le_bytes());
        local.extend_from_slice(&(name.len() as u16).to_le_bytes());
        local.extend_from_slice(&0u16.to_le_bytes());
        local.extend_from_slice(name);
        out.extend_from_slice(&local);
        out.extend_from_slice(&m.data);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // made by
        central.extend_from_slice(&20u16.to_le_bytes()); // needed
        central.extend_from_slice(&0x0800u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u32.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&declared.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// The members of a sample OFD with `pages` pages, for hand-made variants.
pub fn sample_members(pages: u32) -> Vec<Member> {
    seald::ofd::sample::Sample::new(pages)
        .members()
        .into_iter()
        .map(|(name, data)| Member::new(&name, data))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn hand_made_zips_open_as_ofd_packages() {
        let bytes = zip(&sample_members(2));
        let mut package = seald::ofd::Package::open(Cursor::new(bytes)).expect("opens");
        assert!(package.read("OFD.xml").is_ok());
    }
}
