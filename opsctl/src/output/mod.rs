//! What the operator sees. Every command builds one report struct; this module prints it
//! either as a readable table (coloured on a terminal, plain when piped or under `NO_COLOR`)
//! or, with `--json`, as JSON from the very same struct. Progress bars (stepped shifts,
//! deploy waits) draw on stderr only when it is a terminal.
//!
//! This file holds the [`Output`] settings and the drawing helpers; the reports are in
//! `output/reports` (status, health) and `output/changes` (weight changes, deploys).

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context as _;
use comfy_table::{Cell, Color as CellColor, ContentArrangement, Table, presets};
use console::style;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::weights::{Color, Weights};

/// How to print, decided once from `--json`, the terminal and `NO_COLOR`.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    /// Colour escapes allowed (stdout is a terminal and `NO_COLOR` is unset).
    pub color: bool,
    /// stderr is a terminal, so progress bars can draw.
    pub progress: bool,
    /// stdout is a terminal, so `watch` can redraw the screen.
    pub tty: bool,
}

impl Output {
    pub fn new(json: bool) -> Output {
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = tty && !no_color && !json;
        console::set_colors_enabled(color);
        console::set_colors_enabled_stderr(std::io::stderr().is_terminal() && !no_color);
        Output {
            json,
            color,
            progress: std::io::stderr().is_terminal() && !json,
            tty,
        }
    }

    /// Prints a report: JSON, or its table.
    pub fn emit<R: Report>(&self, report: &R) -> anyhow::Result<()> {
        if self.json {
            let text = serde_json::to_string_pretty(report).context("encoding JSON")?;
            self.stdout(&text)
        } else {
            self.stdout(&report.render(self))
        }
    }

    /// A progress line ("blue 100% → 75%..."): stdout for people, stderr under `--json`
    /// so stdout stays one JSON document.
    pub fn note(&self, bar: Option<&ProgressBar>, line: impl Display) -> anyhow::Result<()> {
        let line = line.to_string();
        let print = || {
            if self.json {
                let mut err = std::io::stderr().lock();
                writeln!(err, "{line}").context("writing to stderr")
            } else {
                self.stdout(&line)
            }
        };
        match bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    fn stdout(&self, text: &str) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")
            .and_then(|()| out.flush())
            .context("writing to stdout")
    }

    /// Clears the screen before a `watch` redraw (only on a terminal).
    pub fn clear_screen(&self) -> anyhow::Result<()> {
        if self.tty && !self.json {
            console::Term::stdout()
                .clear_screen()
                .context("clearing the screen")?;
        }
        Ok(())
    }

    /// A bar of `len` steps on stderr; hidden when stderr is not a terminal or under `--json`.
    pub fn bar(&self, len: u64, message: impl Into<String>) -> ProgressBar {
        let target = if self.progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        let template = "{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed}";
        if let Ok(s) = ProgressStyle::with_template(template) {
            bar.set_style(s.progress_chars("=> "));
        }
        bar.set_message(message.into());
        if self.progress {
            bar.enable_steady_tick(Duration::from_millis(120));
        }
        bar
    }

    /// A colour's name, painted in that colour.
    pub fn color_name(&self, c: Color) -> String {
        match c {
            Color::Blue => style(c.as_str()).blue().bold().to_string(),
            Color::Green => style(c.as_str()).green().bold().to_string(),
        }
    }

    pub fn weights(&self, w: Weights) -> String {
        format!(
            "{} {}% / {} {}%",
            self.color_name(Color::Blue),
            w.blue,
            self.color_name(Color::Green),
            w.green
        )
    }

    /// `before → after`, the line every weight change prints.
    pub fn change(&self, before: Weights, after: Weights) -> String {
        format!("{} → {}", self.weights(before), self.weights(after))
    }

    fn table(&self) -> Table {
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
        if self.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        t
    }

    fn color_cell(&self, c: Color) -> Cell {
        let cell = Cell::new(c.as_str());
        match c {
            Color::Blue => cell.fg(CellColor::Blue),
            Color::Green => cell.fg(CellColor::Green),
        }
    }

    fn ok(&self, text: impl Display, good: bool) -> String {
        if good {
            style(text).green().to_string()
        } else {
            style(text).red().bold().to_string()
        }
    }
}

/// A report a command prints: JSON through serde, a table through `render`.
pub trait Report: Serialize {
    fn render(&self, out: &Output) -> String;
}

mod changes;
mod reports;

pub use changes::{Change, Deploy, Outcome, WeightChange};
pub use reports::{ColorHealth, ColorStatus, Health, Status};
