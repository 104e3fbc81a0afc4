//! `sealctl stamp --daemon URL --seal ID FILE... [placement] [--lock] --out DIR`: uploads OFD
//! documents as one stamp request, shows what approvers see and how the request goes
//! (approvals, signing), then downloads the sealed files into DIR.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{json, Value};

use super::client::{DaemonClient, Part};
use super::progress::Progress;

/// What to seal, where, and where the sealed files go.
#[derive(Debug, Args)]
pub struct StampArgs {
    /// The running daemon (e.g. http://127.0.0.1:7780).
    #[arg(long, value_name = "URL")]
    pub daemon: String,
    /// The 0600 file holding your (client) API token; default: the file `SEALD_TOKEN_FILE` names.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The seal to stamp with.
    #[arg(long, value_name = "ID")]
    pub seal: i64,
    /// Why (shown to approvers and kept in the usage log).
    #[arg(long, default_value = "stamped with sealctl")]
    pub purpose: String,
    /// The OFD files, sealed alike under one approval.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// At a position: the page (from 1), with --x and --y.
    #[arg(long, value_name = "N", requires_all = ["x", "y"])]
    pub page: Option<u32>,
    /// Left edge of the seal, mm from the page's left (with --page).
    #[arg(long, value_name = "MM", requires = "page")]
    pub x: Option<f64>,
    /// Top edge of the seal, mm from the page's top (with --page).
    #[arg(long, value_name = "MM", requires = "page")]
    pub y: Option<f64>,
    /// By keyword: centred on the first place the text is found.
    #[arg(long, value_name = "TEXT", conflicts_with_all = ["page", "riding"])]
    pub keyword: Option<String>,
    /// With --keyword: on every place it is found.
    #[arg(long, requires = "keyword")]
    pub all: bool,
    /// A riding seal (骑缝章): `right`, `left`, `top` or `bottom`, optionally with pages
    /// (`right:2-5`, `right:3-`).
    #[arg(long, value_name = "EDGE[:PAGES]", conflicts_with = "page")]
    pub riding: Option<String>,
    /// Lock the documents: no further signature can be added after this one.
    #[arg(long)]
    pub lock: bool,
    /// Directory for the sealed files (created if needed; existing files are never replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// How long to wait for approvals and signing, in seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub wait_secs: u64,
}

/// The placement the arguments ask for, as the API takes it.
fn placement(args: &StampArgs) -> Result<Value, String> {
    if let (Some(page), Some(x), Some(y)) = (args.page, args.x, args.y) {
        return Ok(json!({ "kind": "at", "page": page, "x": x, "y": y }));
    }
    if let Some(text) = &args.keyword {
        return Ok(json!({ "kind": "keyword", "text": text, "all": args.all }));
    }
    if let Some(riding) = &args.riding {
        let (edge, pages) = match riding.split_once(':') {
            Some((edge, pages)) => (edge, Some(pages)),
            None => (riding.as_str(), None),
        };
        if !["right", "left", "top", "bottom"].contains(&edge) {
            return Err(format!(
                "--riding {riding:?}: the edge is right, left, top or bottom"
            ));
        }
        let mut p = json!({ "kind": "riding", "edge": edge });
        if let Some(pages) = pages {
            let bad =
                || format!("--riding {riding:?}: pages are FROM-TO, FROM- or one page N (from 1)");
            let number = |s: &str| s.trim().parse::<u32>().map_err(|_| bad());
            let (from, to) = match pages.split_once('-') {
                Some((from, "")) => (number(from)?, None),
                Some((from, to)) => (number(from)?, Some(number(to)?)),
                None => (number(pages)?, Some(number(pages)?)),
            };
            p["from"] = json!(from);
            if let Some(to) = to {
                p["to"] = json!(to);
            }
        }
        return Ok(p);
    }
    Err("say where the seal goes: --page N --x MM --y MM, --keyword TEXT [--all], or --riding EDGE[:PAGES]".into())
}

fn describe_stamp(s: &Value) -> String {
    let b = &s["boundary"];
    let f = |v: &Value| v.as_f64().map(|x| format!("{x:.1}")).unwrap_or_default();
    let mut text = format!(
        "page {} at x {} y {} mm, {}×{} mm",
        s["page"],
        f(&b[0]),
        f(&b[1]),
        f(&b[2]),
        f(&b[3])
    );
    if !s["clip"].is_null() {
        text.push_str(" (riding slice)");
    }
    text
}

/// A file name for a sealed document in the output directory: the document's name without
/// any directory part or character a file name should not have; `document-N.EXT` when
/// nothing is left (`ext` from the document's format).
fn output_name(name: &str, n: u64, ext: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    let clean = clean.trim().trim_start_matches('.').to_owned();
    if clean.is_empty() {
        format!("document-{n}.{ext}")
    } else {
        clean
    }
}

/// `sealctl stamp`.
pub fn run(args: StampArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let placement = placement(&args)?;
    let client = DaemonClient::new(&args.daemon, args.token_file.as_deref())?;
    let mut seen = BTreeSet::new();
    for file in &args.files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !seen.insert(name.clone()) {
            return Err(format!(
                "two files are named {name:?}: their sealed copies would have the same name in --out; rename one"
            )
            .into());
        }
        if args.out.join(&name).exists() {
            return Err(format!(
                "{} already exists; choose another --out directory (sealed files never replace a file)",
                args.out.join(&name).display()
            )
            .into());
        }
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("--out {}: {e}", args.out.display()))?;

    let mut parts = vec![Part::Json {
        name: "request".into(),
        value: json!({
            "seal_id": args.seal,
            "purpose": args.purpose,
            "placements": [placement],
            "mode": if args.lock { "lock" } else { "continue" },
        }),
    }];
    for file in &args.files {
        parts.push(Part::File {
            name: "file".into(),
            file_name: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "document".into()),
            path: file.clone(),
            // seald recognises the format by content; the type is only a hint.
            content_type: "application/octet-stream".into(),
        });
    }
    let uploading = Progress::spinner(format!("uploading {} documents", args.files.len()));
    let created = client.upload("/v1/stamp-requests", &parts)?;
    uploading.finish();
    let id = created["id"]
        .as_i64()
        .ok_or("seald's answer has no request id")?;
    println!(
        "request {id}: {} documents, waiting for approval",
        args.files.len()
    );
    for f in created["files"].as_array().into_iter().flatten() {
        println!(
            "  {} {} ({}): {} bytes, SM3 {}, {} pages, {} mode",
            f["n"],
            f["name"].as_str().unwrap_or_default(),
            f["format"].as_str().unwrap_or_default().to_uppercase(),
            f["size"],
            f["sm3"].as_str().unwrap_or_default(),
            f["plan"]["pages"],
            f["mode"].as_str().unwrap_or_default()
        );
        for s in f["plan"]["stamps"].as_array().into_iter().flatten() {
            println!("      seal on {}", describe_stamp(s));
        }
    }

    let request = wait(&client, id, Duration::from_secs(args.wait_secs))?;
    let files = request["files"].as_array().cloned().unwrap_or_default();
    let downloads = Progress::steps(files.len() as u64, "downloading sealed files");
    for f in &files {
        let n = f["n"].as_u64().unwrap_or_default();
        let dest = args.out.join(output_name(
            f["name"].as_str().unwrap_or_default(),
            n,
            f["format"].as_str().unwrap_or("ofd"),
        ));
        let bytes = client.download(&format!("/v1/stamp-requests/{id}/documents/{n}"), &dest)?;
        downloads.line(&format!("sealed: {} ({bytes} bytes)", dest.display()));
        downloads.inc();
    }
    downloads.finish();
    println!(
        "check them with: sealctl verify FILE --trust ROOT (each carries its seal, signature and References)"
    );
    Ok(ExitCode::SUCCESS)
}

/// Polls request `id` until it is final, printing votes and state changes; the signed request,
/// or why it was not signed.
fn wait(
    client: &DaemonClient,
    id: i64,
    limit: Duration,
) -> Result<Value, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let deadline = started + limit;
    let progress = Progress::spinner(format!("request {id}: waiting for approval"));
    let mut votes_seen = 0;
    let mut state_seen = String::from("pending");
    loop {
        let v = client.call("GET", &format!("/v1/stamp-requests/{id}"), None)?;
        let votes = v["votes"].as_array().cloned().unwrap_or_default();
        for vote in votes.iter().skip(votes_seen) {
            let what = if vote["approve"] == true {
                "approved"
            } else {
                "rejected"
            };
            let comment = vote["comment"].as_str().unwrap_or_default();
            if comment.is_empty() {
                progress.line(&format!("  approver #{} {what}", vote["approver"]));
            } else {
                progress.line(&format!(
                    "  approver #{} {what}: {comment}",
                    vote["approver"]
                ));
            }
        }
        votes_seen = votes.len();
        let state = v["state"].as_str().unwrap_or_default().to_owned();
        if state != state_seen {
            if state_seen == "pending" && state == "signed" {
                // Approved and signed between two looks.
                progress.line(&format!(
                    "request {id} approved: signing on the seal's device"
                ));
            }
            progress.line(&match state.as_str() {
                "approved" => format!("request {id} approved: signing on the seal's device"),
                "signed" => format!("request {id} signed"),
                other => format!("request {id} is {other}"),
            });
            state_seen = state.clone();
        }
        match state.as_str() {
            "signed" => return Ok(v),
            "failed" => {
                return Err(format!(
                    "request {id} failed: {}",
                    v["failure"].as_str().unwrap_or("no reason given")
                )
                .into())
            }
            "rejected" => return Err(format!("request {id} was rejected by an approver").into()),
            "expired" => {
                return Err(format!(
                    "request {id} expired before it was approved and signed; ask again"
                )
                .into())
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "request {id} is still {state} after {} s; it goes on in seald: fetch the sealed files later with GET /v1/stamp-requests/{id}/documents/N",
                limit.as_secs()
            )
            .into());
        }
        progress.set_message(format!(
            "request {id}: {state}, {votes_seen} votes so far ({} s)",
            started.elapsed().as_secs()
        ));
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Whether `path` is inside `dir`.
    fn inside(dir: &Path, path: &Path) -> bool {
        path.parent() == Some(dir)
    }

    fn args(extra: &[&str]) -> StampArgs {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            stamp: StampArgs,
        }
        let mut argv = vec![
            "sealctl",
            "--daemon",
            "http://127.0.0.1:1",
            "--seal",
            "1",
            "--out",
            "o",
        ];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).map(|c| c.stamp).unwrap()
    }

    #[test]
    fn placements_from_the_command_line() {
        let p = placement(&args(&["a.ofd", "--page", "2", "--x", "10", "--y", "20.5"])).unwrap();
        assert_eq!(p, json!({"kind":"at","page":2,"x":10.0,"y":20.5}));
        let p = placement(&args(&["a.ofd", "--keyword", "甲方", "--all"])).unwrap();
        assert_eq!(p, json!({"kind":"keyword","text":"甲方","all":true}));
        let p = placement(&args(&["a.ofd", "--riding", "right:2-5"])).unwrap();
        assert_eq!(p, json!({"kind":"riding","edge":"right","from":2,"to":5}));
        let p = placement(&args(&["a.ofd", "--riding", "left:3-"])).unwrap();
        assert_eq!(p, json!({"kind":"riding","edge":"left","from":3}));
        assert!(placement(&args(&["a.ofd", "--riding", "middle"])).is_err());
        assert!(placement(&args(&["a.ofd", "--riding", "right:x"])).is_err());
        let err = placement(&args(&["a.ofd"])).unwrap_err();
        assert!(err.contains("--keyword"), "{err}");
    }

    #[test]
    fn output_names_stay_in_the_output_directory() {
        let dir = Path::new("out");
        for (name, want) in [
            ("a.ofd", "a.ofd"),
            ("../../etc/passwd", "passwd"),
            ("..", "document-1.ofd"),
            ("x\\..\\y.ofd", "y.ofd"),
            ("", "document-1.ofd"),
        ] {
            let got = output_name(name, 1, "ofd");
            assert_eq!(got, want, "{name}");
            assert!(inside(dir, &dir.join(&got)));
        }
    }
}
