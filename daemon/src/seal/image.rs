//! Seal images: PNG, GIF or JPEG, recognised by their magic bytes, with a printed size in mm.

use crate::store::model::{ImageFormat, SealImage};

/// Largest image accepted, in bytes.
pub const MAX_IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// Largest printed side accepted, in millimetres (real seals are 20–60 mm).
pub const MAX_SIDE_MM: f64 = 200.0;

/// Why an image was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImageError {
    /// No image bytes.
    #[error("the seal image is empty")]
    Empty,
    /// Not PNG, GIF or JPEG.
    #[error("the seal image is not PNG, GIF or JPEG (its first bytes are {0})")]
    UnknownFormat(String),
    /// Too many bytes.
    #[error("the seal image is {len} bytes; the limit is {MAX_IMAGE_BYTES}")]
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// The printed size is missing, not positive, or absurd.
    #[error("the seal's printed size {width_mm} × {height_mm} mm is invalid: each side must be above 0 and at most {MAX_SIDE_MM} mm")]
    BadSize {
        /// Width given.
        width_mm: f64,
        /// Height given.
        height_mm: f64,
    },
}

/// The format named by the magic bytes at the start of `data`.
pub fn sniff(data: &[u8]) -> Option<ImageFormat> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else {
        None
    }
}

/// Checks an image and its printed size.
pub fn check(data: Vec<u8>, width_mm: f64, height_mm: f64) -> Result<SealImage, ImageError> {
    if data.is_empty() {
        return Err(ImageError::Empty);
    }
    if data.len() > MAX_IMAGE_BYTES {
        return Err(ImageError::TooLarge { len: data.len() });
    }
    let format = sniff(&data)
        .ok_or_else(|| ImageError::UnknownFormat(hex::encode(&data[..data.len().min(8)])))?;
    let side_ok = |v: f64| v.is_finite() && v > 0.0 && v <= MAX_SIDE_MM;
    if !side_ok(width_mm) || !side_ok(height_mm) {
        return Err(ImageError::BadSize {
            width_mm,
            height_mm,
        });
    }
    Ok(SealImage {
        format,
        data,
        width_mm,
        height_mm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_decide_the_format() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some(ImageFormat::Png));
        assert_eq!(sniff(b"GIF89a..."), Some(ImageFormat::Gif));
        assert_eq!(sniff(b"GIF87a..."), Some(ImageFormat::Gif));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"BM......"), None);
        assert_eq!(sniff(b"<svg"), None);
    }

    #[test]
    fn refuses_unknown_empty_and_bad_sizes() {
        assert!(matches!(
            check(b"BM1234".to_vec(), 40.0, 40.0),
            Err(ImageError::UnknownFormat(_))
        ));
        assert_eq!(check(Vec::new(), 40.0, 40.0), Err(ImageError::Empty));
        let png = b"\x89PNG\r\n\x1a\n".to_vec();
        assert!(matches!(
            check(png.clone(), 0.0, 40.0),
            Err(ImageError::BadSize { .. })
        ));
        assert!(matches!(
            check(png.clone(), 40.0, f64::NAN),
            Err(ImageError::BadSize { .. })
        ));
        assert!(matches!(
            check(png.clone(), 400.0, 40.0),
            Err(ImageError::BadSize { .. })
        ));
        assert_eq!(check(png, 42.0, 42.0).unwrap().format, ImageFormat::Png);
    }
}
