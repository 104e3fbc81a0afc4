//! What a stamp looks like: the seal picture's image XObject (shared by every stamp of the
//! signature) and one form XObject per widget, drawing the picture (or its riding-seal slice)
//! upright on the displayed page.
//!
//! A widget's `/Rect` is the visible box in user space; its appearance's `/BBox` is that box
//! as displayed (points) and its `/Matrix` turns it by the page's `/Rotate` (counter-clockwise
//! in user space, so that the page's clockwise rotation shows it upright). For a riding slice
//! (`clip` relative to the boundary, top-left origin) the visible box is the clip, and the
//! whole picture is drawn offset so that only the slice falls inside the `/BBox`.

use std::io::Write;

use flate2::write::ZlibEncoder;
use lopdf::{dictionary, Dictionary, Object, Stream};

use super::image::Picture;
use super::page::{PageInfo, PT_PER_MM};
use crate::ofd::seal::ResolvedStamp;

/// Zlib (`/FlateDecode`) of `data`.
pub(crate) fn deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// A number as content streams write it (at most 4 decimals, no exponent).
pub(crate) fn num(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" || s.is_empty() {
        "0".into()
    } else {
        s.into()
    }
}

/// The image XObject(s) for `picture`: the image stream and, if it has an alpha channel, its
/// soft mask (which the caller must give `smask_ref` as object ID). `None` for no picture.
pub(crate) fn image_objects(picture: &Picture) -> (Stream, Option<Stream>) {
    match picture {
        Picture::Raster {
            width,
            height,
            rgb,
            alpha,
        } => {
            let dict = dictionary! {
                "Type" => "XObject",
                "Subtype" => "Image",
                "Width" => i64::from(*width),
                "Height" => i64::from(*height),
                "ColorSpace" => "DeviceRGB",
                "BitsPerComponent" => 8,
                "Filter" => "FlateDecode",
            };
            let image = Stream::new(dict, deflate(rgb));
            let mask = alpha.as_ref().map(|a| {
                Stream::new(
                    dictionary! {
                        "Type" => "XObject",
                        "Subtype" => "Image",
                        "Width" => i64::from(*width),
                        "Height" => i64::from(*height),
                        "ColorSpace" => "DeviceGray",
                        "BitsPerComponent" => 8,
                        "Filter" => "FlateDecode",
                    },
                    deflate(a),
                )
            });
            (image, mask)
        }
        Picture::Jpeg {
            width,
            height,
            components,
            data,
        } => {
            let space = match components {
                1 => "DeviceGray",
                4 => "DeviceCMYK",
                _ => "DeviceRGB",
            };
            let dict = dictionary! {
                "Type" => "XObject",
                "Subtype" => "Image",
                "Width" => i64::from(*width),
                "Height" => i64::from(*height),
                "ColorSpace" => space,
                "BitsPerComponent" => 8,
                "Filter" => "DCTDecode",
            };
            (Stream::new(dict, data.clone()), None)
        }
    }
}

/// The vector seal drawn when the picture cannot be used: a red ring with a thin inner ring,
/// filling the unit square (the caller scales it to the picture's box).
fn vector_seal() -> String {
    // Four Bézier quarters of a circle of radius r around (0.5, 0.5).
    let circle = |r: f64| {
        let k = 0.552_284_75 * r;
        let (c, l, rr) = (0.5, 0.5 - r, 0.5 + r);
        format!(
            "{} {} m {} {} {} {} {} {} c {} {} {} {} {} {} c {} {} {} {} {} {} c {} {} {} {} {} {} c h ",
            num(rr), num(c),
            num(rr), num(c + k), num(c + k), num(rr), num(c), num(rr),
            num(c - k), num(rr), num(l), num(c + k), num(l), num(c),
            num(l), num(c - k), num(c - k), num(l), num(c), num(l),
            num(c + k), num(l), num(rr), num(c - k), num(rr), num(c),
        )
    };
    format!(
        "0.86 0.08 0.08 RG 0.045 w {}S 0.012 w {}S",
        circle(0.475),
        circle(0.41)
    )
}

/// One stamp's appearance: the form XObject (its `/Resources` name the image `/Im0` when
/// `image` is given) and the widget's `/Rect` in user space.
pub(crate) fn stamp(
    page: &PageInfo,
    stamp: &ResolvedStamp,
    image: Option<lopdf::ObjectId>,
) -> (Stream, [f64; 4]) {
    let [bx, by, bw, bh] = stamp.boundary;
    let [cx, cy, cw, ch] = stamp.clip.unwrap_or([0.0, 0.0, bw, bh]);
    let rect = page.rect_to_user([bx + cx, by + cy, cw, ch]);
    let (w, h) = (cw * PT_PER_MM, ch * PT_PER_MM);
    let matrix: [f64; 6] = match page.rotate {
        90 => [0.0, 1.0, -1.0, 0.0, h, 0.0],
        180 => [-1.0, 0.0, 0.0, -1.0, w, h],
        270 => [0.0, -1.0, 1.0, 0.0, 0.0, w],
        _ => [1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
    };
    // The whole picture, placed so that the clip falls on the BBox.
    let (pw, ph) = (bw * PT_PER_MM, bh * PT_PER_MM);
    let (tx, ty) = (-cx * PT_PER_MM, (ch + cy - bh) * PT_PER_MM);
    let body = match image {
        Some(_) => "/Im0 Do".to_string(),
        None => vector_seal(),
    };
    let content = format!(
        "q 0 0 {} {} re W n q {} 0 0 {} {} {} cm {} Q Q\n",
        num(w),
        num(h),
        num(pw),
        num(ph),
        num(tx),
        num(ty),
        body
    );
    let mut resources = Dictionary::new();
    if let Some(id) = image {
        resources.set("XObject", dictionary! { "Im0" => id });
    }
    let dict = dictionary! {
        "Type" => "XObject",
        "Subtype" => "Form",
        "BBox" => vec![0.into(), 0.into(), Object::Real(w as f32), Object::Real(h as f32)],
        "Matrix" => matrix.iter().map(|v| Object::Real(*v as f32)).collect::<Vec<_>>(),
        "Resources" => resources,
    };
    (Stream::new(dict, content.into_bytes()), rect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_plain() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(-0.00001), "0");
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(1e-7 + 3.0), "3");
    }

    #[test]
    fn a_riding_slice_draws_the_picture_offset() {
        let page = PageInfo {
            id: (3, 0),
            vbox: [0.0, 0.0, 595.0, 842.0],
            rotate: 0,
        };
        let s = ResolvedStamp {
            page: 1,
            page_ref: "3 0".into(),
            boundary: [200.0, 100.0, 40.0, 40.0],
            clip: Some([10.0, 0.0, 10.0, 40.0]),
        };
        let (form, rect) = stamp(&page, &s, None);
        let text = String::from_utf8(form.content).unwrap();
        assert!(
            text.contains(&format!("-{} ", num(10.0 * PT_PER_MM))),
            "{text}"
        );
        assert!((rect[0] - 210.0 * PT_PER_MM).abs() < 1e-6);
        assert!((rect[2] - rect[0] - 10.0 * PT_PER_MM).abs() < 1e-6);
    }
}
