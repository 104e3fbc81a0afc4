//! Resolving placements to stamp boxes on PDF pages, as the OFD engine does (the same
//! geometry: at a position, centred on keyword hits, riding seal slices over a page range with
//! ofdrw's `RidingStampPos` slices). Boxes are in mm from the top-left of each page as
//! displayed (its CropBox, else MediaBox, after `/Rotate`). Every length is rounded to
//! 0.001 mm.

use std::collections::BTreeMap;

use lopdf::Document;

use super::page::PageInfo;
use super::text::{self, Glyph};
use crate::ofd::seal::{Edge, Placement, ResolvedStamp, SealError, SealPlan, MAX_STAMPS};

/// `"N G"`: a page's object number and generation, the plan's `page_ref`.
pub(crate) fn page_ref(p: &PageInfo) -> String {
    format!("{} {}", p.id.0, p.id.1)
}

fn round(v: f64) -> f64 {
    let r = (v * 1000.0).round() / 1000.0;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

fn round_box(b: [f64; 4]) -> [f64; 4] {
    b.map(round)
}

/// Page scans, read once each.
struct Pages<'a> {
    doc: &'a Document,
    pages: &'a [PageInfo],
    scans: BTreeMap<usize, Vec<Glyph>>,
}

impl Pages<'_> {
    /// The characters of page `index` (0-based).
    fn scan(&mut self, index: usize) -> &[Glyph] {
        let (doc, page) = (self.doc, &self.pages[index]);
        self.scans
            .entry(index)
            .or_insert_with(|| text::scan(doc, page))
    }

    /// The displayed size of page `index` in mm.
    fn size(&self, index: usize) -> (f64, f64) {
        self.pages[index].displayed_mm()
    }
}

fn err(index: usize, reason: impl Into<String>) -> SealError {
    SealError::Placement {
        index,
        reason: reason.into(),
    }
}

fn positive(index: usize, what: &str, v: f64) -> Result<f64, SealError> {
    if v.is_finite() && v > 0.0 && round(v) > 0.0 {
        Ok(v)
    } else {
        Err(err(
            index,
            format!("{what} must be a positive number of mm, not {v}"),
        ))
    }
}

fn finite(index: usize, what: &str, v: f64) -> Result<f64, SealError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(err(
            index,
            format!("{what} must be a number of mm, not {v}"),
        ))
    }
}

fn page_index(index: usize, page: u32, pages: usize) -> Result<usize, SealError> {
    if page >= 1 && page as usize <= pages {
        Ok(page as usize - 1)
    } else {
        Err(err(
            index,
            format!(
                "page {page} does not exist: the document has {pages} page(s), numbered from 1"
            ),
        ))
    }
}

fn seal_size(index: usize, size: (f64, f64)) -> Result<(f64, f64), SealError> {
    let ok = |v: f64| v.is_finite() && v > 0.0;
    if ok(size.0) && ok(size.1) {
        Ok(size)
    } else {
        Err(err(
            index,
            format!(
                "the seal's size {} x {} mm is unusable; give width and height",
                size.0, size.1
            ),
        ))
    }
}

fn too_many(index: usize, what: &str, n: usize) -> SealError {
    err(
        index,
        format!(
            "{what} would put {n} stamps on the document; at most {MAX_STAMPS} are allowed in one document's signature"
        ),
    )
}

/// Resolves every placement (see the module documentation); refuses an impossible one, and
/// more than [`MAX_STAMPS`] stamps in all (counted before they are made: a riding seal by its
/// page range, keyword hits page by page, each page searched once however often it is listed).
pub(crate) fn resolve(
    doc: &Document,
    page_list: &[PageInfo],
    placements: &[Placement],
    seal_size_mm: (f64, f64),
) -> Result<SealPlan, SealError> {
    if placements.is_empty() {
        return Err(err(0, "no placement given: a seal needs at least one"));
    }
    // Every placement makes at least one stamp.
    if placements.len() > MAX_STAMPS {
        return Err(too_many(
            MAX_STAMPS,
            &format!("{} placements (at least one stamp each)", placements.len()),
            placements.len(),
        ));
    }
    let n_pages = page_list.len();
    let mut pages = Pages {
        doc,
        pages: page_list,
        scans: BTreeMap::new(),
    };
    let mut stamps = Vec::new();
    for (i, p) in placements.iter().enumerate() {
        match p {
            Placement::At {
                page,
                x,
                y,
                width,
                height,
            } => {
                let pi = page_index(i, *page, n_pages)?;
                let x = finite(i, "x", *x)?;
                let y = finite(i, "y", *y)?;
                let (w, h) = match (width, height) {
                    (Some(w), Some(h)) => (*w, *h),
                    _ => {
                        let (sw, sh) = seal_size(i, seal_size_mm)?;
                        (width.unwrap_or(sw), height.unwrap_or(sh))
                    }
                };
                let w = positive(i, "width", w)?;
                let h = positive(i, "height", h)?;
                let (pw, ph) = pages.size(pi);
                if x >= pw || y >= ph || x + w <= 0.0 || y + h <= 0.0 {
                    return Err(err(
                        i,
                        format!(
                            "the box {x} {y} {w} {h} mm lies outside page {page} ({:.1} x {:.1} mm as displayed)",
                            pw, ph
                        ),
                    ));
                }
                if stamps.len() >= MAX_STAMPS {
                    return Err(too_many(
                        i,
                        "the placements up to this one",
                        stamps.len() + 1,
                    ));
                }
                stamps.push(ResolvedStamp {
                    page: *page,
                    page_ref: page_ref(&page_list[pi]),
                    boundary: round_box([x, y, w, h]),
                    clip: None,
                });
            }
            Placement::Keyword {
                text: keyword,
                all,
                pages: which,
            } => {
                if keyword.chars().all(char::is_whitespace) {
                    return Err(err(i, "the keyword is empty"));
                }
                let (w, h) = seal_size(i, seal_size_mm)?;
                let list: Vec<u32> = match which {
                    None => (1..=n_pages as u32).collect(),
                    Some(l) if l.is_empty() => {
                        return Err(err(i, "the list of pages to search is empty"))
                    }
                    Some(l) => {
                        // Each page once, in the order given.
                        let mut seen = std::collections::BTreeSet::new();
                        l.iter().copied().filter(|p| seen.insert(*p)).collect()
                    }
                };
                let indexes = list
                    .iter()
                    .map(|p| page_index(i, *p, n_pages))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut found = 0;
                for (page, pi) in list.iter().zip(indexes) {
                    let hits = text::find(pages.scan(pi), keyword);
                    let take = if *all { hits.len() } else { hits.len().min(1) };
                    if stamps.len() + take > MAX_STAMPS {
                        return Err(too_many(
                            i,
                            &format!(
                                "the placements up to this one (keyword {keyword:?}, page {page})"
                            ),
                            stamps.len() + take,
                        ));
                    }
                    for hit in hits {
                        let cx = hit[0] + hit[2] / 2.0;
                        let cy = hit[1] + hit[3] / 2.0;
                        stamps.push(ResolvedStamp {
                            page: *page,
                            page_ref: page_ref(&page_list[pi]),
                            boundary: round_box([cx - w / 2.0, cy - h / 2.0, w, h]),
                            clip: None,
                        });
                        found += 1;
                        if !all {
                            break;
                        }
                    }
                    if found > 0 && !all {
                        break;
                    }
                }
                if found == 0 {
                    let where_ = match which {
                        None => format!("any of the {n_pages} page(s)"),
                        Some(_) => format!(
                            "page(s) {}",
                            list.iter()
                                .map(u32::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    return Err(err(
                        i,
                        format!("the keyword {keyword:?} was not found in the text of {where_}"),
                    ));
                }
            }
            Placement::Riding {
                edge,
                from,
                to,
                offset,
            } => {
                let (w, h) = seal_size(i, seal_size_mm)?;
                let from = from.unwrap_or(1);
                let to = to.unwrap_or(n_pages as u32);
                let first = page_index(i, from, n_pages)?;
                let last = page_index(i, to, n_pages)?;
                if first > last {
                    return Err(err(i, format!("the page range {from}..{to} is empty")));
                }
                if let Some(o) = offset {
                    finite(i, "offset", *o)?;
                }
                if stamps.len() + (last - first + 1) > MAX_STAMPS {
                    return Err(too_many(
                        i,
                        &format!(
                            "the placements up to this one (riding seal over pages {from}..{to})"
                        ),
                        stamps.len() + (last - first + 1),
                    ));
                }
                let n = (last - first + 1) as f64;
                for (k, pi) in (first..=last).enumerate() {
                    let k = k as f64;
                    let (pw, ph) = pages.size(pi);
                    let (boundary, clip) = match edge {
                        Edge::Right | Edge::Left => {
                            let item = w / n;
                            let y = offset.unwrap_or(ph / 2.0 - h / 2.0);
                            if *edge == Edge::Right {
                                ([pw - item * (k + 1.0), y, w, h], [k * item, 0.0, item, h])
                            } else {
                                let s = n - 1.0 - k;
                                ([-item * s, y, w, h], [s * item, 0.0, item, h])
                            }
                        }
                        Edge::Top | Edge::Bottom => {
                            let item = h / n;
                            let x = offset.unwrap_or(pw / 2.0 - w / 2.0);
                            if *edge == Edge::Bottom {
                                ([x, ph - item * (k + 1.0), w, h], [0.0, k * item, w, item])
                            } else {
                                let s = n - 1.0 - k;
                                ([x, -item * s, w, h], [0.0, s * item, w, item])
                            }
                        }
                    };
                    let clip = round_box(clip);
                    if clip[2] <= 0.0 || clip[3] <= 0.0 {
                        return Err(err(
                            i,
                            format!("{n} pages make slices thinner than 0.001 mm"),
                        ));
                    }
                    stamps.push(ResolvedStamp {
                        page: pi as u32 + 1,
                        page_ref: page_ref(&page_list[pi]),
                        boundary: round_box(boundary),
                        clip: Some(clip),
                    });
                }
            }
        }
    }
    Ok(SealPlan {
        pages: n_pages as u32,
        stamps,
    })
}

/// Checks that a plan fits this document: the same page count, every stamp on an existing
/// page whose object ID it names, boxes with finite numbers and positive sizes, at most
/// [`MAX_STAMPS`] stamps.
pub(crate) fn check_plan(pages: &[PageInfo], plan: &SealPlan) -> Result<(), SealError> {
    let n = pages.len();
    if plan.pages as usize != n {
        return Err(SealError::Structure(format!(
            "the plan was made for {} page(s) but the document has {n}: plan it again",
            plan.pages
        )));
    }
    if plan.stamps.is_empty() {
        return Err(err(0, "the plan has no stamp"));
    }
    if plan.stamps.len() > MAX_STAMPS {
        return Err(too_many(MAX_STAMPS, "the plan", plan.stamps.len()));
    }
    for (i, s) in plan.stamps.iter().enumerate() {
        let pi = page_index(i, s.page, n)?;
        let actual = page_ref(&pages[pi]);
        if actual != s.page_ref {
            return Err(SealError::Structure(format!(
                "stamp {i}: page {} is object {actual:?}, not {:?}: the plan was made for another document",
                s.page, s.page_ref
            )));
        }
        let good = |b: &[f64; 4]| b.iter().all(|v| v.is_finite()) && b[2] > 0.0 && b[3] > 0.0;
        if !good(&s.boundary) || s.clip.as_ref().is_some_and(|c| !good(c)) {
            return Err(err(
                i,
                "a stamp box needs finite numbers and a positive size",
            ));
        }
    }
    Ok(())
}
