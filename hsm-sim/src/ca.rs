//! Test CA: an SM2 root key in software files, SM2-with-SM3 X.509 v3 certificates.
//!
//! Signatures follow GB/T 32918: e = SM3(Z ‖ TBS), Z over the issuer's key with the
//! default ID 1234567812345678; the value is DER SEQUENCE { r, s }.

use der::asn1::{BitString, ObjectIdentifier, OctetString, SetOfVec, Utf8StringRef};
use der::{Any, DateTime, Decode, Encode};
use sm2::elliptic_curve::sec1::ToEncodedPoint;
use sm2::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use crate::crypto;

/// SM2-with-SM3 signature algorithm 1.2.156.10197.1.501.
pub const SM2_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
/// SM2 curve 1.2.156.10197.1.301.
pub const SM2_CURVE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const AT_O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
const AT_OU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");
const AT_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const AT_C: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");

/// Errors as readable text (this is a CLI-facing tool).
pub type CaResult<T> = Result<T, String>;

fn e<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |err| format!("{what}: {err}")
}

/// Validity window of a certificate.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Start (seconds since the epoch).
    pub not_before: u64,
    /// End (seconds since the epoch).
    pub not_after: u64,
}

impl Window {
    /// From now (minus a minute of clock slack) for `days` days.
    pub fn days(days: u64) -> Window {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Window {
            not_before: now.saturating_sub(60),
            not_after: now + days * 86_400,
        }
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (or `YYYY-MM-DD`) to seconds since the epoch.
pub fn parse_time(s: &str) -> CaResult<u64> {
    let bad = || format!("bad time {s:?}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
    let num =
        |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u16>().ok()).ok_or_else(bad);
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = if s.len() > 10 {
        (num(11..13)?, num(14..16)?, num(17..19)?)
    } else {
        (0, 0, 0)
    };
    let dt = DateTime::new(y, mo as u8, d as u8, h as u8, mi as u8, se as u8).map_err(|_| bad())?;
    Ok(dt.unix_duration().as_secs())
}

fn time(secs: u64) -> CaResult<Time> {
    let dt = DateTime::from_unix_duration(Duration::from_secs(secs)).map_err(e("time"))?;
    Ok(if dt.year() < 2050 {
        Time::UtcTime(der::asn1::UtcTime::from_date_time(dt).map_err(e("time"))?)
    } else {
        Time::GeneralTime(der::asn1::GeneralizedTime::from_date_time(dt))
    })
}

/// A Name from (type, UTF-8 value) pairs, one RDN each.
pub fn name(parts: &[(ObjectIdentifier, &str)]) -> CaResult<Name> {
    let mut rdns = Vec::new();
    for (oid, v) in parts {
        let value = if *oid == AT_C {
            Any::encode_from(&der::asn1::PrintableStringRef::new(v).map_err(e("country"))?)
        } else {
            Any::encode_from(&Utf8StringRef::new(v).map_err(e("name"))?)
        }
        .map_err(e("name"))?;
        let atv = AttributeTypeAndValue { oid: *oid, value };
        rdns.push(RelativeDistinguishedName(
            SetOfVec::try_from(vec![atv]).map_err(e("name"))?,
        ));
    }
    Ok(RdnSequence(rdns))
}

/// SubjectPublicKeyInfo of an SM2 point 04‖x‖y.
pub fn spki(point: &[u8]) -> CaResult<SubjectPublicKeyInfoOwned> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: EC_PUBLIC_KEY,
            parameters: Some(Any::encode_from(&SM2_CURVE).map_err(e("spki"))?),
        },
        subject_public_key: BitString::from_bytes(point).map_err(e("spki"))?,
    })
}

fn ext<T: Encode>(oid: ObjectIdentifier, critical: bool, v: &T) -> CaResult<Extension> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(v.to_der().map_err(e("extension"))?)
            .map_err(e("extension"))?,
    })
}

fn key_id(point: &[u8]) -> Vec<u8> {
    crypto::sm3(point)[..20].to_vec()
}

/// What to certify.
#[derive(Debug)]
pub struct Request<'a> {
    /// Subject.
    pub subject: Name,
    /// Subject's public point.
    pub point: &'a [u8],
    /// Validity.
    pub window: Window,
    /// A CA certificate (root) or an end-entity signing certificate.
    pub ca: bool,
}

/// Builds and signs a certificate with the issuer's key `d` (issuer = `issuer`, its point `issuer_point`).
pub fn sign_cert(
    req: &Request,
    issuer: &Name,
    d: &[u8],
    issuer_point: &[u8],
) -> CaResult<Certificate> {
    let mut serial = crypto::random(16);
    serial[0] &= 0x7f;
    serial[0] |= 0x10;
    let usage = if req.ca {
        KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature
    } else {
        KeyUsages::DigitalSignature | KeyUsages::NonRepudiation
    };
    let exts = vec![
        ext(
            ID_CE_BASIC_CONSTRAINTS,
            true,
            &BasicConstraints {
                ca: req.ca,
                path_len_constraint: None,
            },
        )?,
        ext(ID_CE_KEY_USAGE, true, &KeyUsage(usage))?,
        ext(
            ID_CE_SKI,
            false,
            &SubjectKeyIdentifier(OctetString::new(key_id(req.point)).map_err(e("ski"))?),
        )?,
        ext(
            ID_CE_AKI,
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(key_id(issuer_point)).map_err(e("aki"))?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
        )?,
    ];
    let alg = AlgorithmIdentifierOwned {
        oid: SM2_SM3,
        parameters: None,
    };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial).map_err(e("serial"))?,
        signature: alg.clone(),
        issuer: issuer.clone(),
        validity: Validity {
            not_before: time(req.window.not_before)?,
            not_after: time(req.window.not_after)?,
        },
        subject: req.subject.clone(),
        subject_public_key_info: spki(req.point)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(exts),
    };
    let tbs_der = tbs.to_der().map_err(e("tbs"))?;
    let ev = crypto::e_value(crypto::DEFAULT_ID, issuer_point, &tbs_der).ok_or("bad issuer key")?;
    let rs = crypto::sign_e(d, &ev).ok_or("signing failed")?;
    let sig = crypto::der_sig(&rs);
    Ok(Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg,
        signature: BitString::from_bytes(&sig).map_err(e("sig"))?,
    })
}

const ID_CE_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const ID_CE_SKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const ID_CE_AKI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");

const ID_CE_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");

/// PEM of a DER certificate.
pub fn pem(der: &[u8]) -> String {
    use std::fmt::Write;
    let b64 = base64(der);
    let mut s = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        let _ = writeln!(s, "{}", String::from_utf8_lossy(chunk));
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The CA's files in its directory.
#[derive(Debug)]
pub struct CaDir {
    dir: PathBuf,
}

impl CaDir {
    /// A CA directory (not necessarily initialized).
    pub fn new(dir: &Path) -> CaDir {
        CaDir {
            dir: dir.to_path_buf(),
        }
    }

    /// Creates the root key and self-signed root certificate.
    pub fn init(&self, org: &str, cn: &str, days: u64) -> CaResult<PathBuf> {
        std::fs::create_dir_all(&self.dir).map_err(e("create CA dir"))?;
        let sk = sm2::SecretKey::random(&mut rand_core::OsRng);
        let point = sk.public_key().to_encoded_point(false).as_bytes().to_vec();
        let subject = name(&[(AT_C, "CN"), (AT_O, org), (AT_CN, cn)])?;
        let req = Request {
            subject: subject.clone(),
            point: &point,
            window: Window::days(days),
            ca: true,
        };
        let cert = sign_cert(&req, &subject, &sk.to_bytes(), &point)?;
        let der = cert.to_der().map_err(e("encode"))?;
        let key_pem = sk.to_pkcs8_pem(LineEnding::LF).map_err(e("key"))?;
        write_private(&self.dir.join("root.key.pem"), key_pem.as_bytes())?;
        std::fs::write(self.dir.join("root.der"), &der).map_err(e("write"))?;
        let path = self.dir.join("root.pem");
        std::fs::write(&path, pem(&der)).map_err(e("write"))?;
        Ok(path)
    }

    /// Issues a certificate for `point`; writes `issued/<name>.pem|.der`; returns the DER and subject DER.
    pub fn issue(
        &self,
        point: &[u8],
        org: &str,
        cn: &str,
        maker: bool,
        window: Window,
        file: &str,
    ) -> CaResult<(Vec<u8>, Vec<u8>, PathBuf)> {
        let key_pem = std::fs::read_to_string(self.dir.join("root.key.pem"))
            .map_err(e("read root key (run `hsm-sim ca init` first)"))?;
        let sk = sm2::SecretKey::from_pkcs8_pem(&key_pem).map_err(e("root key"))?;
        let root_der = std::fs::read(self.dir.join("root.der")).map_err(e("read root cert"))?;
        let root = Certificate::from_der(&root_der).map_err(e("root cert"))?;
        let ipoint = sk.public_key().to_encoded_point(false).as_bytes().to_vec();
        let mut parts = vec![(AT_C, "CN"), (AT_O, org)];
        if maker {
            parts.push((AT_OU, "Seal Maker"));
        }
        parts.push((AT_CN, cn));
        let subject = name(&parts)?;
        let req = Request {
            subject: subject.clone(),
            point,
            window,
            ca: false,
        };
        let cert = sign_cert(&req, &root.tbs_certificate.subject, &sk.to_bytes(), &ipoint)?;
        let der = cert.to_der().map_err(e("encode"))?;
        let out = self.dir.join("issued");
        std::fs::create_dir_all(&out).map_err(e("create"))?;
        std::fs::write(out.join(format!("{file}.der")), &der).map_err(e("write"))?;
        let path = out.join(format!("{file}.pem"));
        std::fs::write(&path, pem(&der)).map_err(e("write"))?;
        Ok((der, subject.to_der().map_err(e("subject"))?, path))
    }
}

fn write_private(path: &Path, data: &[u8]) -> CaResult<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(e("write key"))?;
    f.write_all(data).map_err(e("write key"))
}
