//! PDF checkers the end-to-end tests run on sealed PDFs: `qpdf --check`, pyHanko's validator
//! (installed by `scripts/setup.sh` into `target/pdf-tools`), poppler's `pdfsig` and
//! `pdftoppm`, and OpenSSL. Each writes its input under `target/pdf-checks/` so a failure can
//! be looked at.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where checked PDFs and rendered pages are kept (`target/pdf-checks/`).
pub fn checks_dir() -> PathBuf {
    let dir = crate::bins::target_dir().join("pdf-checks");
    std::fs::create_dir_all(&dir).expect("target/pdf-checks");
    dir
}

/// Writes `bytes` to `target/pdf-checks/NAME`; its path.
pub fn keep(name: &str, bytes: &[u8]) -> PathBuf {
    let path = checks_dir().join(name);
    std::fs::write(&path, bytes).expect("write the PDF");
    path
}

fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&std::ffi::OsStr]) -> Output {
    let program = program.as_ref();
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program:?} (scripts/setup.sh installs it): {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `qpdf --check FILE`: asserts the PDF's structure is sound (exit 0, no warnings).
pub fn assert_qpdf_ok(path: &Path) {
    let out = run("qpdf", &["--check".as_ref(), path.as_os_str()]);
    assert!(
        out.status.success(),
        "qpdf --check {}: {}",
        path.display(),
        text(&out)
    );
}

/// The pyHanko CLI of `scripts/setup.sh` (`target/pdf-tools/bin/pyhanko`).
pub fn pyhanko() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/pdf-tools/bin/pyhanko");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/setup.sh",
        path.display()
    );
    path
}

/// `pyhanko sign validate --trust ROOT FILE`: whether pyHanko judges every signature valid and
/// trusted (exit 0), and what it printed.
pub fn pyhanko_validate(path: &Path, trust_root: &Path) -> (bool, String) {
    let out = run(
        pyhanko(),
        &[
            "--verbose".as_ref(),
            "sign".as_ref(),
            "validate".as_ref(),
            "--pretty-print".as_ref(),
            "--no-revocation-check".as_ref(),
            "--trust".as_ref(),
            trust_root.as_os_str(),
            path.as_os_str(),
        ],
    );
    (out.status.success(), text(&out))
}

/// `pdfsig FILE`: poppler's report (it checks every signature's digest and CMS; without an NSS
/// database holding the root it cannot trust the certificate, which the report says).
pub fn pdfsig(path: &Path) -> String {
    let out = run("pdfsig", &[path.as_os_str()]);
    text(&out)
}

/// A rendered page: RGB pixels, `width` × `height`, from the top-left.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// RGB, row by row.
    pub rgb: Vec<u8>,
}

impl Rendered {
    /// The pixel at column `x`, row `y`.
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// The bounding box `[x0, y0, x1, y1]` (pixels, inclusive) of the reddish pixels (the
    /// seal's ink), if any.
    pub fn red_box(&self) -> Option<[usize; 4]> {
        let mut found: Option<[usize; 4]> = None;
        for y in 0..self.height {
            for x in 0..self.width {
                let [r, g, b] = self.pixel(x, y);
                if r > 150 && g < 110 && b < 110 {
                    let f = found.get_or_insert([x, y, x, y]);
                    f[0] = f[0].min(x);
                    f[1] = f[1].min(y);
                    f[2] = f[2].max(x);
                    f[3] = f[3].max(y);
                }
            }
        }
        found
    }
}

/// Renders page `page` (from 1) of `path` at `dpi` with `pdftoppm`, keeping a PNG beside it
/// (`NAME-page.png`) for people; the pixels.
pub fn render(path: &Path, page: u32, dpi: u32) -> Rendered {
    let page_arg = page.to_string();
    let dpi_arg = dpi.to_string();
    let stem = path.with_extension("");
    let prefix = format!("{}-p{page}", stem.display());
    for format in ["-png", ""] {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "-r".as_ref(),
            dpi_arg.as_ref(),
            "-f".as_ref(),
            page_arg.as_ref(),
            "-l".as_ref(),
            page_arg.as_ref(),
            "-singlefile".as_ref(),
        ];
        if !format.is_empty() {
            args.push(format.as_ref());
        }
        args.push(path.as_os_str());
        args.push(prefix.as_ref());
        let out = run("pdftoppm", &args);
        assert!(out.status.success(), "pdftoppm: {}", text(&out));
    }
    let ppm = std::fs::read(format!("{prefix}.ppm")).expect("the rendered page");
    parse_ppm(&ppm)
}

/// A binary PPM (`P6`, maxval 255).
fn parse_ppm(bytes: &[u8]) -> Rendered {
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i] == b'#' {
            while bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        while !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..i]).into_owned());
    }
    assert_eq!(fields[0], "P6", "pdftoppm writes binary PPM");
    assert_eq!(fields[3], "255");
    let width: usize = fields[1].parse().expect("width");
    let height: usize = fields[2].parse().expect("height");
    let rgb = bytes[i + 1..].to_vec();
    assert_eq!(rgb.len(), width * height * 3, "PPM size");
    Rendered { width, height, rgb }
}

/// Millimetres to pixels at `dpi`.
pub fn mm_to_px(mm: f64, dpi: u32) -> f64 {
    mm * f64::from(dpi) / 25.4
}
