//! Resolving placements to stamp boxes on pages, for OFD and PDF alike (a document's pages
//! through [`PageGeometry`]): at a position, centred on keyword hits, or
//! riding seal slices over a page range (ofdrw's `RidingStampPos` geometry: on the right edge,
//! page i of N shows slice i, `Boundary = (W − (i+1)·w/N, y, w, h)`,
//! `Clip = (i·w/N, 0, w/N, h)`; left, top and bottom mirrored). Every length is rounded to
//! 0.001 mm, as it will be written.

use std::collections::BTreeMap;
use std::io::{Read, Seek};

use super::locate::Layout;
use super::text::{self, PageScan};
use super::{Edge, Placement, ResolvedStamp, SealError, SealPlan, MAX_STAMPS};
use crate::ofd::package::Package;

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
struct Pages<'a, R> {
    package: &'a mut Package<R>,
    layout: &'a Layout,
    scans: BTreeMap<usize, PageScan>,
}

impl<R: Read + Seek> Pages<'_, R> {
    /// The scan of page `index` (0-based), with its templates' glyphs before its own.
    fn scan(&mut self, index: usize) -> Result<&PageScan, SealError> {
        if !self.scans.contains_key(&index) {
            let member = &self.layout.pages[index].content;
            let bytes = self.package.read(member)?;
            let mut scan = text::scan(&bytes).map_err(|e| {
                SealError::Structure(format!("page {} (/{member}): {e}", index + 1))
            })?;
            let mut glyphs = Vec::new();
            for id in &scan.templates {
                if let Some(t) = self.layout.templates.get(id) {
                    if let Ok(bytes) = self.package.read(t) {
                        if let Ok(t) = text::scan(&bytes) {
                            glyphs.extend(t.glyphs);
                        }
                    }
                }
            }
            glyphs.append(&mut scan.glyphs);
            scan.glyphs = glyphs;
            self.scans.insert(index, scan);
        }
        Ok(&self.scans[&index])
    }

    /// The size of page `index`: its own `Area`, else the document's `PageArea`.
    fn own_size(&mut self, index: usize) -> Result<Option<(f64, f64)>, SealError> {
        let own = match self.scans.get(&index) {
            Some(scan) => scan.size,
            None => {
                let member = &self.layout.pages[index].content;
                let bytes = self.package.read(member)?;
                text::page_size(&bytes).map_err(|e| {
                    SealError::Structure(format!("page {} (/{member}): {e}", index + 1))
                })?
            }
        };
        Ok(own.or(self.layout.page_area))
    }
}

/// What placing a seal needs from a document's pages (OFD or PDF).
pub(crate) trait PageGeometry {
    /// How many pages.
    fn count(&self) -> usize;
    /// Page `index`'s (0-based) object ID, the plan's `page_ref`.
    fn page_ref(&self, index: usize) -> String;
    /// Page `index`'s width and height in mm as displayed, if the document says.
    fn size(&mut self, index: usize) -> Result<Option<(f64, f64)>, SealError>;
    /// The boxes `[x, y, w, h]` (mm) of `keyword` on page `index`, in content order.
    fn find(&mut self, index: usize, keyword: &str) -> Result<Vec<[f64; 4]>, SealError>;
}

impl<R: Read + Seek> PageGeometry for Pages<'_, R> {
    fn count(&self) -> usize {
        self.layout.pages.len()
    }

    fn page_ref(&self, index: usize) -> String {
        self.layout.pages[index].id.clone()
    }

    fn size(&mut self, index: usize) -> Result<Option<(f64, f64)>, SealError> {
        self.own_size(index)
    }

    fn find(&mut self, index: usize, keyword: &str) -> Result<Vec<[f64; 4]>, SealError> {
        Ok(text::find(&self.scan(index)?.glyphs, keyword))
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
pub(super) fn resolve<R: Read + Seek>(
    package: &mut Package<R>,
    layout: &Layout,
    placements: &[Placement],
    seal_size_mm: (f64, f64),
) -> Result<SealPlan, SealError> {
    let mut pages = Pages {
        package,
        layout,
        scans: BTreeMap::new(),
    };
    resolve_on(&mut pages, placements, seal_size_mm)
}

/// [`resolve`] on any document's pages.
pub(crate) fn resolve_on(
    pages: &mut impl PageGeometry,
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
    let n_pages = pages.count();
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
                if let Some((pw, ph)) = pages.size(pi)? {
                    if x >= pw || y >= ph || x + w <= 0.0 || y + h <= 0.0 {
                        return Err(err(
                            i,
                            format!(
                                "the box {x} {y} {w} {h} mm lies outside page {page} ({} x {} mm as displayed)",
                                round(pw),
                                round(ph)
                            ),
                        ));
                    }
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
                    page_ref: pages.page_ref(pi),
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
                    let hits = pages.find(pi, keyword)?;
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
                            page_ref: pages.page_ref(pi),
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
                    let (pw, ph) = pages.size(pi)?.ok_or_else(|| {
                        err(
                            i,
                            format!(
                                "page {} has no size (no Area/PhysicalBox, no PageArea): a riding seal needs it",
                                pi + 1
                            ),
                        )
                    })?;
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
                        page_ref: pages.page_ref(pi),
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
pub(super) fn check_plan(layout: &Layout, plan: &SealPlan) -> Result<(), SealError> {
    let ids: Vec<String> = layout.pages.iter().map(|p| p.id.clone()).collect();
    check_plan_on(&ids, plan)
}

/// [`check_plan`] on any document's pages, given as their object IDs in order.
pub(crate) fn check_plan_on(page_refs: &[String], plan: &SealPlan) -> Result<(), SealError> {
    let n = page_refs.len();
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
        if page_refs[pi] != s.page_ref {
            return Err(SealError::Structure(format!(
                "stamp {i}: page {} has the object ID {:?}, not {:?}: the plan was made for another document",
                s.page, page_refs[pi], s.page_ref
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
