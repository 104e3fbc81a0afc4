//! Page geometry: the visible box (CropBox within the MediaBox, inherited through the page
//! tree), `/Rotate`, and the mapping between user space (points) and the page as displayed
//! (millimetres from its top-left corner, after rotation), the coordinates of placements.

use lopdf::{Dictionary, Document, Object, ObjectId};

use crate::ofd::seal::SealError;

/// Points per millimetre.
pub(crate) const PT_PER_MM: f64 = 72.0 / 25.4;

/// One page of the document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PageInfo {
    /// The page object.
    pub id: ObjectId,
    /// The visible box `[llx, lly, urx, ury]` in user space (points).
    pub vbox: [f64; 4],
    /// `/Rotate`: 0, 90, 180 or 270 (clockwise when displayed).
    pub rotate: u16,
}

/// A number (integer or real).
pub(crate) fn number(o: &Object) -> Option<f64> {
    match o {
        Object::Integer(i) => Some(*i as f64),
        Object::Real(r) => Some(f64::from(*r)),
        _ => None,
    }
}

/// Follows references (a bounded number of times).
pub(crate) fn deref<'a>(doc: &'a Document, mut o: &'a Object) -> &'a Object {
    for _ in 0..16 {
        match o {
            Object::Reference(id) => match doc.get_object(*id) {
                Ok(next) => o = next,
                Err(_) => return &Object::Null,
            },
            _ => return o,
        }
    }
    &Object::Null
}

/// `key` of `dict`, dereferenced.
pub(crate) fn get<'a>(doc: &'a Document, dict: &'a Dictionary, key: &[u8]) -> Option<&'a Object> {
    dict.get(key)
        .ok()
        .map(|o| deref(doc, o))
        .filter(|o| !matches!(o, Object::Null))
}

/// An inheritable page attribute: the page's own, else its ancestors' (bounded depth).
pub(crate) fn inherited<'a>(
    doc: &'a Document,
    page: &'a Dictionary,
    key: &[u8],
) -> Option<&'a Object> {
    let mut node = page;
    for _ in 0..64 {
        if let Some(v) = get(doc, node, key) {
            return Some(v);
        }
        node = match get(doc, node, b"Parent") {
            Some(Object::Dictionary(d)) => d,
            _ => return None,
        };
    }
    None
}

fn rect(o: Option<&Object>) -> Option<[f64; 4]> {
    let Some(Object::Array(a)) = o else {
        return None;
    };
    if a.len() != 4 {
        return None;
    }
    let v: Vec<f64> = a.iter().filter_map(number).collect();
    if v.len() != 4 || v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    Some([
        v[0].min(v[2]),
        v[1].min(v[3]),
        v[0].max(v[2]),
        v[1].max(v[3]),
    ])
}

impl PageInfo {
    /// Reads page `id` (`index` 0-based, for messages).
    pub(crate) fn read(doc: &Document, id: ObjectId, index: usize) -> Result<Self, SealError> {
        let dict = doc.get_dictionary(id).map_err(|e| {
            SealError::Structure(format!(
                "page {} ({} {} R) is unreadable: {e}",
                index + 1,
                id.0,
                id.1
            ))
        })?;
        let media = rect(inherited(doc, dict, b"MediaBox")).ok_or_else(|| {
            SealError::Structure(format!("page {} has no usable /MediaBox", index + 1))
        })?;
        let vbox = match rect(inherited(doc, dict, b"CropBox")) {
            Some(c) => {
                let b = [
                    media[0].max(c[0]),
                    media[1].max(c[1]),
                    media[2].min(c[2]),
                    media[3].min(c[3]),
                ];
                if b[2] > b[0] && b[3] > b[1] {
                    b
                } else {
                    media
                }
            }
            None => media,
        };
        if vbox[2] - vbox[0] <= 0.0 || vbox[3] - vbox[1] <= 0.0 {
            return Err(SealError::Structure(format!(
                "page {} has an empty /MediaBox",
                index + 1
            )));
        }
        let rotate = inherited(doc, dict, b"Rotate")
            .and_then(number)
            .map_or(0, |r| (((r as i64) % 360 + 360) % 360) as u16);
        let rotate = if rotate % 90 == 0 { rotate } else { 0 };
        Ok(Self { id, vbox, rotate })
    }

    /// Width and height of the page as displayed, in mm.
    pub(crate) fn displayed_mm(&self) -> (f64, f64) {
        let w = (self.vbox[2] - self.vbox[0]) / PT_PER_MM;
        let h = (self.vbox[3] - self.vbox[1]) / PT_PER_MM;
        if self.rotate % 180 == 90 {
            (h, w)
        } else {
            (w, h)
        }
    }

    /// A displayed point (mm from the displayed top-left) in user space (points).
    pub(crate) fn to_user(&self, u: f64, v: f64) -> (f64, f64) {
        let (u, v) = (u * PT_PER_MM, v * PT_PER_MM);
        let [llx, lly, urx, ury] = self.vbox;
        match self.rotate {
            90 => (llx + v, lly + u),
            180 => (urx - u, lly + v),
            270 => (urx - v, ury - u),
            _ => (llx + u, ury - v),
        }
    }

    /// A user-space point (points) as displayed (mm from the displayed top-left).
    pub(crate) fn to_displayed(&self, x: f64, y: f64) -> (f64, f64) {
        let [llx, lly, urx, ury] = self.vbox;
        let (u, v) = match self.rotate {
            90 => (y - lly, x - llx),
            180 => (urx - x, y - lly),
            270 => (ury - y, urx - x),
            _ => (x - llx, ury - y),
        };
        (u / PT_PER_MM, v / PT_PER_MM)
    }

    /// A displayed box `[x, y, w, h]` (mm) as a user-space rectangle `[x0, y0, x1, y1]`.
    pub(crate) fn rect_to_user(&self, b: [f64; 4]) -> [f64; 4] {
        let (x0, y0) = self.to_user(b[0], b[1]);
        let (x1, y1) = self.to_user(b[0] + b[2], b[1] + b[3]);
        [x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)]
    }
}

/// Every page, in document order.
pub(crate) fn pages(doc: &Document) -> Result<Vec<PageInfo>, SealError> {
    doc.page_iter()
        .enumerate()
        .map(|(i, id)| PageInfo::read(doc, id, i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displayed_and_user_space_round_trip_for_every_rotation() {
        for rotate in [0, 90, 180, 270] {
            let p = PageInfo {
                id: (1, 0),
                vbox: [10.0, 20.0, 610.0, 820.0],
                rotate,
            };
            let (u, v) = (31.0, 47.0);
            let (x, y) = p.to_user(u, v);
            let (u2, v2) = p.to_displayed(x, y);
            assert!((u - u2).abs() < 1e-9 && (v - v2).abs() < 1e-9, "{rotate}");
            // The displayed top-left corner.
            let corner = p.to_user(0.0, 0.0);
            let want = match rotate {
                0 => (10.0, 820.0),
                90 => (10.0, 20.0),
                180 => (610.0, 20.0),
                _ => (610.0, 820.0),
            };
            assert_eq!(corner, want, "{rotate}");
        }
    }
}
