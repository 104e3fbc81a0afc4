//! Progress where people wait (`sealctl stamp`, `sealctl audit verify`): an indicatif spinner
//! or bar on standard error when it is a terminal; without one, only the plain lines, which
//! go to standard output either way (scripts and logs read those).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner or a bar, or nothing visible off a terminal.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A spinner showing `message` (e.g. while waiting for approvers).
    pub fn spinner(message: impl Into<String>) -> Self {
        let bar = ProgressBar::new_spinner().with_message(message.into());
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        Self { bar }
    }

    /// A bar over `len` steps (files, records), titled `message`.
    pub fn steps(len: u64, message: impl Into<String>) -> Self {
        let bar = ProgressBar::new(len).with_message(message.into());
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Self { bar }
    }

    /// Whether anything is drawn (standard error is a terminal).
    pub fn is_drawn(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Replaces the spinner's or bar's text (nothing off a terminal: the plain lines tell).
    pub fn set_message(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    /// One step done.
    pub fn inc(&self) {
        self.bar.inc(1);
    }

    /// Prints `text` as a line of standard output, above the spinner or bar.
    pub fn line(&self, text: &str) {
        self.bar.suspend(|| println!("{text}"));
    }

    /// Removes the spinner or bar; the lines printed stay.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}
