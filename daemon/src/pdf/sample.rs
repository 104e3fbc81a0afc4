//! PDFs generated for tests and benchmarks: pages with text at known places, rotated pages,
//! xref streams and object streams.
