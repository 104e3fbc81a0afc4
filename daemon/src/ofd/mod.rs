//! OFD packages (GB/T 33190): reading a package strictly and verifying its signatures as a
//! whole document — each signature's SES_Signature over `Signature.xml`, its `References` over
//! the package members, its stamps, and which members the valid signatures cover.
//!
//! Knows nothing of devices or HTTP; uses `ses` for the SES_Signature itself.

pub mod cms;
pub mod package;
pub mod references;
pub mod sample;
pub mod seal;
mod verify;
pub mod xml;

pub use cms::{verify_cms, CmsReport};
pub use package::{OfdError, Package, ReadError, MAX_MEMBER, MAX_TOTAL};
pub use references::{CheckMethod, ReferenceCheck, ReferencesReport};
pub use verify::{
    verify_ofd, verify_ofd_with, OfdOutcome, OfdReport, OfdSignature, PageInfo, StampInfo,
};

#[cfg(test)]
mod tests;
