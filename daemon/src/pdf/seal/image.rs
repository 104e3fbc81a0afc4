//! The seal picture as a PDF image: PNG (`png`, alpha → `/SMask`), GIF (`gif`, the first
//! frame, transparency → `/SMask`), JPEG (embedded as `/DCTDecode`, size and components from
//! its SOF). Anything else, or a picture that does not decode within the limits, is `None`:
//! the appearance then draws a vector seal instead.

use std::io::Cursor;

/// Most pixels a seal picture may have (a 4096 × 4096 picture).
pub(crate) const MAX_PIXELS: u64 = 4096 * 4096;

/// A decoded seal picture.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Picture {
    /// 8-bit RGB samples, with an 8-bit alpha channel when any pixel is not opaque.
    Raster {
        /// Pixels across.
        width: u32,
        /// Pixels down.
        height: u32,
        /// RGB, row by row.
        rgb: Vec<u8>,
        /// Alpha, row by row, if the picture is not opaque.
        alpha: Option<Vec<u8>>,
    },
    /// A baseline or progressive JPEG, embedded as it is.
    Jpeg {
        /// Pixels across.
        width: u32,
        /// Pixels down.
        height: u32,
        /// 1 (gray), 3 (YCbCr/RGB) or 4 (CMYK).
        components: u8,
        /// The file.
        data: Vec<u8>,
    },
}

fn size_ok(w: u32, h: u32) -> bool {
    w > 0 && h > 0 && u64::from(w) * u64::from(h) <= MAX_PIXELS
}

/// Decodes a seal picture of `kind` (`SES_SealInfo.picture.type`); the bytes decide when the
/// kind is unknown or wrong.
pub(crate) fn decode(kind: &str, data: &[u8]) -> Option<Picture> {
    let _ = kind;
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        png(data)
    } else if data.starts_with(b"GIF8") {
        gif(data)
    } else if data.starts_with(&[0xFF, 0xD8]) {
        jpeg(data)
    } else {
        None
    }
}

/// RGB and alpha apart; `None` for a picture with no visible pixel (it would stamp nothing:
/// the vector seal is drawn instead).
fn split_alpha(width: u32, height: u32, rgba: &[u8]) -> Option<Picture> {
    let mut rgb = Vec::with_capacity(rgba.len() / 4 * 3);
    let mut alpha = Vec::with_capacity(rgba.len() / 4);
    for px in rgba.chunks_exact(4) {
        rgb.extend_from_slice(&px[..3]);
        alpha.push(px[3]);
    }
    if alpha.iter().all(|a| *a == 0) {
        return None;
    }
    let opaque = alpha.iter().all(|a| *a == 255);
    Some(Picture::Raster {
        width,
        height,
        rgb,
        alpha: (!opaque).then_some(alpha),
    })
}

fn png(data: &[u8]) -> Option<Picture> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(data),
        png::Limits {
            bytes: (MAX_PIXELS * 8) as usize,
        },
    );
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().ok()?;
    let (w, h) = (reader.info().width, reader.info().height);
    if !size_ok(w, h) {
        return None;
    }
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    let (w, h) = (info.width, info.height);
    let line = info.line_size;
    let mut rgba = Vec::with_capacity(w as usize * h as usize * 4);
    for row in buf.chunks(line).take(h as usize) {
        let row = &row[..row.len().min(line)];
        match info.color_type {
            png::ColorType::Grayscale => {
                for g in row.iter().take(w as usize) {
                    rgba.extend_from_slice(&[*g, *g, *g, 255]);
                }
            }
            png::ColorType::GrayscaleAlpha => {
                for p in row.chunks_exact(2).take(w as usize) {
                    rgba.extend_from_slice(&[p[0], p[0], p[0], p[1]]);
                }
            }
            png::ColorType::Rgb => {
                for p in row.chunks_exact(3).take(w as usize) {
                    rgba.extend_from_slice(&[p[0], p[1], p[2], 255]);
                }
            }
            png::ColorType::Rgba => {
                for p in row.chunks_exact(4).take(w as usize) {
                    rgba.extend_from_slice(p);
                }
            }
            png::ColorType::Indexed => return None,
        }
    }
    if rgba.len() != w as usize * h as usize * 4 {
        return None;
    }
    split_alpha(w, h, &rgba)
}

fn gif(data: &[u8]) -> Option<Picture> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    options.set_memory_limit(gif::MemoryLimit::Bytes(std::num::NonZeroU64::new(
        MAX_PIXELS * 4,
    )?));
    let mut decoder = options.read_info(Cursor::new(data)).ok()?;
    let (cw, ch) = (u32::from(decoder.width()), u32::from(decoder.height()));
    if !size_ok(cw, ch) {
        return None;
    }
    let frame = decoder.read_next_frame().ok()??;
    let (fw, fh) = (u32::from(frame.width), u32::from(frame.height));
    let (left, top) = (u32::from(frame.left), u32::from(frame.top));
    if frame.buffer.len() != fw as usize * fh as usize * 4 {
        return None;
    }
    // The first frame on a transparent canvas.
    let mut canvas = vec![0u8; cw as usize * ch as usize * 4];
    for y in 0..fh {
        let cy = top + y;
        if cy >= ch {
            break;
        }
        for x in 0..fw {
            let cx = left + x;
            if cx >= cw {
                break;
            }
            let s = ((y * fw + x) * 4) as usize;
            let d = ((cy * cw + cx) * 4) as usize;
            canvas[d..d + 4].copy_from_slice(&frame.buffer[s..s + 4]);
        }
    }
    split_alpha(cw, ch, &canvas)
}

/// Reads a JPEG's frame header (SOF0–SOF15 but DHT/JPG/DAC) for its size and components.
fn jpeg(data: &[u8]) -> Option<Picture> {
    let mut i = 2;
    while i + 4 <= data.len() {
        if data[i] != 0xFF {
            return None;
        }
        let marker = data[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        if marker == 0xD8 || marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            i += 2;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        if len < 2 {
            return None;
        }
        let is_sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let seg = data.get(i + 4..i + 2 + len)?;
            if seg.len() < 6 {
                return None;
            }
            let height = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
            let width = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
            let components = seg[5];
            if !size_ok(width, height) || !matches!(components, 1 | 3 | 4) || seg[0] != 8 {
                return None;
            }
            return Some(Picture::Jpeg {
                width,
                height,
                components,
                data: data.to_vec(),
            });
        }
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        i += 2 + len;
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `w` × `h` PNG of one RGBA colour.
    pub(crate) fn solid_png(w: u32, h: u32, rgba: [u8; 4]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(png::ColorType::Rgba);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().unwrap();
            let data: Vec<u8> = (0..w * h).flat_map(|_| rgba).collect();
            writer.write_image_data(&data).unwrap();
        }
        out
    }

    #[test]
    fn png_with_and_without_alpha() {
        let opaque = decode("PNG", &solid_png(4, 3, [255, 0, 0, 255])).unwrap();
        let Picture::Raster {
            width,
            height,
            rgb,
            alpha,
        } = opaque
        else {
            panic!()
        };
        assert_eq!((width, height, rgb.len(), alpha), (4, 3, 36, None));
        let clear = decode("PNG", &solid_png(2, 2, [0, 0, 255, 10])).unwrap();
        let Picture::Raster { alpha, .. } = clear else {
            panic!()
        };
        assert_eq!(alpha, Some(vec![10; 4]));
        // Nothing visible: no picture, so the vector seal is drawn.
        assert!(decode("PNG", &solid_png(2, 2, [255, 0, 0, 0])).is_none());
        let invisible_gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
        assert!(decode("GIF", invisible_gif).is_none());
    }

    #[test]
    fn gif_first_frame_with_transparency() {
        let mut out = Vec::new();
        {
            let mut enc = gif::Encoder::new(&mut out, 3, 2, &[255, 0, 0, 255, 255, 255]).unwrap();
            let mut frame = gif::Frame::from_indexed_pixels(3, 2, vec![0, 1, 0, 1, 0, 1], Some(1));
            frame.width = 3;
            frame.height = 2;
            enc.write_frame(&frame).unwrap();
        }
        let Some(Picture::Raster {
            width,
            height,
            rgb,
            alpha,
        }) = decode("GIF", &out)
        else {
            panic!("the GIF does not decode")
        };
        assert_eq!((width, height), (3, 2));
        assert_eq!(&rgb[..3], &[255, 0, 0]);
        assert_eq!(alpha, Some(vec![255, 0, 255, 0, 255, 0]));
    }

    #[test]
    fn jpeg_header_and_garbage() {
        // SOI, APP0 (len 4), SOF0: len 11, 8 bits, 20 high, 30 wide, 3 components…
        let mut j = vec![
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC0, 0, 17, 8, 0, 20, 0, 30, 3,
        ];
        j.extend([1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        j.extend([0xFF, 0xDA]);
        let Some(Picture::Jpeg {
            width,
            height,
            components,
            ..
        }) = decode("JPG", &j)
        else {
            panic!()
        };
        assert_eq!((width, height, components), (30, 20, 3));
        assert_eq!(
            decode("PNG", b"\x89PNG\r\n\x1a\nnot really a picture"),
            None
        );
        assert_eq!(decode("SVG", b"<svg/>"), None);
    }
}
