//! Writes the man pages and shell completions of `seald` and `sealctl`, generated from their
//! clap definitions, for the Debian package (packaging/build-deb.sh):
//!
//! `cargo run -p seald --example packaging_docs -- target/packaging`
//!
//! gives `man/*.1.gz` (seald, sealctl and one page per subcommand, gzipped without a time
//! stamp so builds are reproducible) and `completions/{bash,zsh,fish}/`.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory};
use clap_complete::Shell;
use seald::cli::args::{SealctlArgs, SealdArgs};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let out: PathBuf = match std::env::args_os().nth(1) {
        Some(dir) => dir.into(),
        None => return Err("usage: packaging_docs <output directory>".into()),
    };
    for cmd in [SealdArgs::command(), SealctlArgs::command()] {
        man_pages(cmd.clone(), &out.join("man"))?;
        completions(cmd, &out.join("completions"))?;
    }
    Ok(())
}

/// One page for the command and one for each subcommand at any depth, named git-style
/// (`sealctl-user-add.1`); hidden ones and `help` left out. Shallower commands are written
/// first and keep a name two commands share: `sealctl pin-change` gets `sealctl-pin-change.1`,
/// and `sealctl pin change` is then described in `sealctl-pin.1` only.
fn man_pages(cmd: Command, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = HashSet::new();
    let mut level = vec![cmd];
    while !level.is_empty() {
        let mut next = Vec::new();
        for cmd in level {
            // After build(), a subcommand's display name is its path joined by '-'.
            let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_owned();
            if written.insert(name.clone()) {
                let mut page = Vec::new();
                clap_mangen::Man::new(cmd.clone())
                    .title(name.to_uppercase())
                    .render(&mut page)?;
                gzip(&dir.join(format!("{name}.1.gz")), &page)?;
            } else {
                eprintln!("packaging_docs: {name}.1 is taken by a shorter command; `{}` is described in its parent's page only", name.replace('-', " "));
            }
            next.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        }
        level = next;
    }
    Ok(())
}

/// gzip -9n: no file name, modification time 0.
fn gzip(path: &Path, data: &[u8]) -> Result<()> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(File::create(path)?, flate2::Compression::best());
    encoder.write_all(data)?;
    encoder.finish()?.sync_all()?;
    Ok(())
}

fn completions(mut cmd: Command, dir: &Path) -> Result<()> {
    let bin = cmd.get_name().to_owned();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let shell_dir = dir.join(shell.to_string());
        std::fs::create_dir_all(&shell_dir)?;
        clap_complete::generate_to(shell, &mut cmd, &bin, &shell_dir)?;
    }
    Ok(())
}
