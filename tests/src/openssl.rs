//! Running the `openssl` command-line tool in a working directory.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// Runs `openssl ARGS…` in `dir`; its stdout, or its stderr if it failed.
pub fn try_openssl<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Result<Vec<u8>, String> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| format!("run openssl: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs `openssl ARGS…` in `dir`, asserting that it succeeds; its stdout.
pub fn openssl<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> Vec<u8> {
    try_openssl(dir, args).unwrap_or_else(|e| {
        let args: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
        panic!("openssl {args:?}: {e}")
    })
}

/// Writes the DER certificate `der` as `dir/name` in PEM (`openssl x509`); its path.
pub fn cert_pem(dir: &Path, name: &str, der: &[u8]) -> std::path::PathBuf {
    let der_file = dir.join(format!("{name}.der"));
    std::fs::write(&der_file, der).expect("write the DER certificate");
    let pem = dir.join(name);
    openssl(
        dir,
        &[
            OsStr::new("x509"),
            OsStr::new("-inform"),
            OsStr::new("DER"),
            OsStr::new("-in"),
            der_file.as_os_str(),
            OsStr::new("-out"),
            pem.as_os_str(),
        ],
    );
    pem
}
