//! PDF pages for the shared placement geometry ([`crate::ofd::seal::place`]): sizes in mm
//! from the top-left of each page as displayed (its CropBox, else MediaBox, after `/Rotate`),
//! keyword hits from the page's text, object IDs `"N G"` as `page_ref`.

use std::collections::BTreeMap;

use lopdf::Document;

use super::page::PageInfo;
use super::text::{self, Glyph};
use crate::ofd::seal::place::{check_plan_on, resolve_on, PageGeometry};
use crate::ofd::seal::{Placement, SealError, SealPlan};

/// `"N G"`: a page's object number and generation, the plan's `page_ref`.
pub(crate) fn page_ref(p: &PageInfo) -> String {
    format!("{} {}", p.id.0, p.id.1)
}

/// Page scans, read once each.
struct Pages<'a> {
    doc: &'a Document,
    pages: &'a [PageInfo],
    scans: BTreeMap<usize, Vec<Glyph>>,
}

impl PageGeometry for Pages<'_> {
    fn count(&self) -> usize {
        self.pages.len()
    }

    fn page_ref(&self, index: usize) -> String {
        page_ref(&self.pages[index])
    }

    fn size(&mut self, index: usize) -> Result<Option<(f64, f64)>, SealError> {
        Ok(Some(self.pages[index].displayed_mm()))
    }

    fn find(&mut self, index: usize, keyword: &str) -> Result<Vec<[f64; 4]>, SealError> {
        let (doc, page) = (self.doc, &self.pages[index]);
        let glyphs = self
            .scans
            .entry(index)
            .or_insert_with(|| text::scan(doc, page));
        Ok(crate::ofd::seal::text::find(glyphs, keyword))
    }
}

/// Resolves every placement on the PDF's pages (see [`resolve_on`]).
pub(crate) fn resolve(
    doc: &Document,
    page_list: &[PageInfo],
    placements: &[Placement],
    seal_size_mm: (f64, f64),
) -> Result<SealPlan, SealError> {
    let mut pages = Pages {
        doc,
        pages: page_list,
        scans: BTreeMap::new(),
    };
    resolve_on(&mut pages, placements, seal_size_mm)
}

/// Checks that a plan fits this document (see [`check_plan_on`]).
pub(crate) fn check_plan(pages: &[PageInfo], plan: &SealPlan) -> Result<(), SealError> {
    let refs: Vec<String> = pages.iter().map(page_ref).collect();
    check_plan_on(&refs, plan)
}
