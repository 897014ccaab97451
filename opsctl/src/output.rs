//! What the operator sees. Every command builds one report struct; this module prints it
//! either as a readable table (coloured on a terminal, plain when piped or under `NO_COLOR`)
//! or, with `--json`, as JSON from the very same struct. Progress bars (stepped shifts,
//! deploy waits) draw on stderr only when it is a terminal.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context as _;
use comfy_table::{Cell, Color as CellColor, ContentArrangement, Table, presets};
use console::style;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::aws::cloudwatch::AlarmState;
use crate::aws::ecs::Service;
use crate::aws::elbv2::TargetHealth;
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

/// `opsctl status`.
#[derive(Debug, Serialize)]
pub struct Status {
    pub alb: String,
    pub listener_port: i32,
    pub listener_arn: String,
    pub weights: Weights,
    /// Weights before the last change, which `rollback` restores.
    pub previous_weights: Option<Weights>,
    /// Colour last marked stable, `rollback`'s fallback.
    pub stable: Option<Color>,
    pub colors: Vec<ColorStatus>,
}

/// One colour's row in `status`.
#[derive(Debug, Serialize)]
pub struct ColorStatus {
    pub color: Color,
    pub weight: u8,
    pub target_group: String,
    pub healthy_targets: usize,
    pub total_targets: usize,
    pub service: Service,
    /// Open WebSockets on this colour; present when `--table-prefix` is given.
    pub live_connections: Option<u64>,
    /// Tasks with a fresh heartbeat, and how many of them are ready (when tasks publish them).
    pub live_tasks: Option<usize>,
    pub ready_tasks: Option<usize>,
}

impl Report for Status {
    fn render(&self, out: &Output) -> String {
        let mut head = format!(
            "{} :{}  {}",
            style(&self.alb).bold(),
            self.listener_port,
            out.weights(self.weights)
        );
        if let Some(c) = self.stable {
            head.push_str(&format!("  stable: {}", out.color_name(c)));
        }
        if let Some(p) = self.previous_weights {
            head.push_str(&format!("  rollback to: {}/{}", p.blue, p.green));
        }
        let mut t = out.table();
        t.set_header(vec![
            "colour",
            "weight",
            "targets",
            "service",
            "tasks",
            "task def",
            "image",
            "ready",
            "connections",
        ]);
        for c in &self.colors {
            let targets_ok = c.total_targets > 0 && c.healthy_targets == c.total_targets;
            let tasks_ok = c.service.running >= c.service.desired;
            let mut tasks = format!("{}/{}", c.service.running, c.service.desired);
            if c.service.pending > 0 {
                tasks.push_str(&format!(" ({} pending)", c.service.pending));
            }
            if c.service.deployments > 1 {
                tasks.push_str(&format!(" deploying ({})", c.service.deployments));
            }
            t.add_row(vec![
                out.color_cell(c.color),
                Cell::new(format!("{}%", c.weight)),
                Cell::new(format!("{}/{} healthy", c.healthy_targets, c.total_targets)).fg(
                    if targets_ok {
                        CellColor::Green
                    } else {
                        CellColor::Red
                    },
                ),
                Cell::new(&c.service.name),
                Cell::new(tasks).fg(if tasks_ok {
                    CellColor::Green
                } else {
                    CellColor::Red
                }),
                Cell::new(&c.service.revision),
                // The repository host is long and the same for both colours; the tag matters.
                Cell::new(
                    c.service
                        .images
                        .iter()
                        .map(|i| i.rsplit('/').next().unwrap_or(i))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                match (c.ready_tasks, c.live_tasks) {
                    (Some(r), Some(l)) => Cell::new(format!("{r}/{l}")).fg(if r == l && l > 0 {
                        CellColor::Green
                    } else {
                        CellColor::Red
                    }),
                    _ => Cell::new("-"),
                },
                Cell::new(
                    c.live_connections
                        .map_or_else(|| "-".to_string(), |n| n.to_string()),
                ),
            ]);
        }
        format!("{head}\n{t}")
    }
}

/// `opsctl health`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// Every target of every checked colour is healthy, and each colour has one.
    pub healthy: bool,
    pub colors: Vec<ColorHealth>,
}

#[derive(Debug, Serialize)]
pub struct ColorHealth {
    pub color: Color,
    pub target_group: String,
    pub healthy: bool,
    pub targets: Vec<TargetHealth>,
    /// Why the colour's tasks are not ready (fleet heartbeats), when they are not.
    pub not_ready: Option<String>,
}

impl Report for Health {
    fn render(&self, out: &Output) -> String {
        let mut t = out.table();
        t.set_header(vec!["colour", "target", "port", "state", "reason"]);
        for c in &self.colors {
            if c.targets.is_empty() {
                t.add_row(vec![
                    out.color_cell(c.color),
                    Cell::new("(none registered)"),
                    Cell::new(""),
                    Cell::new("no targets").fg(CellColor::Red),
                    Cell::new(""),
                ]);
            }
            for target in &c.targets {
                t.add_row(vec![
                    out.color_cell(c.color),
                    Cell::new(&target.id),
                    Cell::new(target.port.map(|p| p.to_string()).unwrap_or_default()),
                    Cell::new(&target.state).fg(if target.healthy() {
                        CellColor::Green
                    } else {
                        CellColor::Red
                    }),
                    Cell::new(target.reason.clone().unwrap_or_default()),
                ]);
            }
        }
        let mut t = t.to_string();
        for c in &self.colors {
            if let Some(why) = &c.not_ready {
                t.push_str(&format!("\n{} {why}", out.ok("✗", false)));
            }
        }
        let verdict = if self.healthy {
            out.ok("healthy", true)
        } else {
            out.ok("NOT healthy", false)
        };
        format!("{t}\n{verdict}")
    }
}

/// How a weight change ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Reached the target weights.
    Done,
    /// Already at the target; nothing written.
    Unchanged,
    /// A check failed before any change; nothing written.
    Refused,
    /// A check failed mid-way; the starting weights were put back.
    Restored,
    /// `--dry-run`: checks ran, nothing written.
    DryRun,
    /// Someone else changed the weights meanwhile; theirs stay in force.
    Superseded,
    /// Someone else took the lease (`rollback`, `--force`); their change stays in force.
    LeaseLost,
    /// An AWS error mid-way; the starting weights were put back.
    ErrorRestored,
    /// An AWS error, and nothing could be put back (or nothing had changed yet).
    Failed,
    /// The weights are in place but live connections did not follow in time.
    NotConverged,
}

/// One write of the listener's weights.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub from: Weights,
    pub to: Weights,
}

/// `opsctl shift` and `opsctl rollback`.
#[derive(Debug, Serialize)]
pub struct WeightChange {
    /// `shift` or `rollback`.
    pub command: &'static str,
    pub before: Weights,
    pub target: Weights,
    /// Weights in force when opsctl finished.
    pub after: Weights,
    pub outcome: Outcome,
    /// The steps planned (all of them, also under `--dry-run`).
    pub plan: Vec<Weights>,
    /// The writes made, in order, a restore included.
    pub changes: Vec<Change>,
    /// Why a check failed.
    pub failures: Vec<String>,
    pub alarms: Vec<AlarmState>,
    /// Colour marked stable by this run (the one it moved traffic away from).
    pub marked_stable: Option<Color>,
    /// The change this run's lease displaced (`rollback`, `--force`).
    pub lease_taken_from: Option<String>,
    /// The AWS error that ended the run.
    pub error: Option<String>,
    /// Live connections per colour at the end of a rebalance.
    pub connections: Option<BTreeMap<Color, u64>>,
    /// Seconds from the last weight write until live connections matched.
    pub converge_secs: Option<f64>,
}

impl WeightChange {
    pub fn new(
        command: &'static str,
        before: Weights,
        target: Weights,
        plan: Vec<Weights>,
    ) -> Self {
        WeightChange {
            command,
            before,
            target,
            after: before,
            outcome: Outcome::Unchanged,
            plan,
            changes: Vec::new(),
            failures: Vec::new(),
            alarms: Vec::new(),
            marked_stable: None,
            lease_taken_from: None,
            error: None,
            connections: None,
            converge_secs: None,
        }
    }
}

impl Report for WeightChange {
    fn render(&self, out: &Output) -> String {
        let planned = out.change(self.before, self.target);
        let mut s = match self.outcome {
            Outcome::Done => format!("{}: {planned} ({})", self.command, out.ok("done", true)),
            Outcome::Unchanged => format!(
                "{}: already at {} (unchanged)",
                self.command,
                out.weights(self.after)
            ),
            Outcome::Refused => format!(
                "{}: {planned} {}, nothing changed",
                self.command,
                out.ok("refused", false)
            ),
            Outcome::Restored => format!(
                "{}: {planned} {}, back at {}",
                self.command,
                out.ok("failed", false),
                out.weights(self.after)
            ),
            Outcome::DryRun => format!("{}: {planned} (dry run, nothing changed)", self.command),
            Outcome::Superseded => format!(
                "{}: {planned} {}: someone else set {}; left as they set it",
                self.command,
                out.ok("superseded", false),
                out.weights(self.after)
            ),
            Outcome::LeaseLost => format!(
                "{}: {planned} {}: another change took over (rollback or --force); stopped at {}",
                self.command,
                out.ok("lease lost", false),
                out.weights(self.after)
            ),
            Outcome::ErrorRestored => format!(
                "{}: {planned} {} on an AWS error, back at {}",
                self.command,
                out.ok("restored", false),
                out.weights(self.after)
            ),
            Outcome::Failed => format!(
                "{}: {planned} {}, weights now {}",
                self.command,
                out.ok("FAILED", false),
                out.weights(self.after)
            ),
            Outcome::NotConverged => format!(
                "{}: {planned} in place, live connections {} in time",
                self.command,
                out.ok("did not follow", false)
            ),
        };
        if self.outcome == Outcome::DryRun {
            let plan: Vec<String> = self
                .plan
                .iter()
                .map(|w| format!("{}/{}", w.blue, w.green))
                .collect();
            s.push_str(&format!("\n  plan: {}", plan.join(" → ")));
        }
        for f in &self.failures {
            s.push_str(&format!("\n  {} {f}", out.ok("✗", false)));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!("\n  {} {e}", out.ok("✗", false)));
        }
        if let Some(counts) = &self.connections {
            let live: Vec<String> = counts
                .iter()
                .map(|(c, n)| format!("{} {n}", out.color_name(*c)))
                .collect();
            if !live.is_empty() {
                s.push_str(&format!("\n  live connections: {}", live.join(", ")));
            }
            if let Some(secs) = self.converge_secs {
                s.push_str(&format!(" (followed in {secs:.1}s)"));
            }
        }
        if let Some(c) = self.marked_stable {
            s.push_str(&format!(
                "\n  {} is the stable colour (rollback returns there)",
                out.color_name(c)
            ));
        }
        s
    }
}

/// `opsctl deploy`.
#[derive(Debug, Serialize)]
pub struct Deploy {
    pub color: Color,
    pub service: String,
    pub previous_task_definition: String,
    pub task_definition: String,
    pub image: String,
    /// The service reached a steady state before the timeout.
    pub steady: bool,
    pub running: i32,
    pub desired: i32,
}

impl Report for Deploy {
    fn render(&self, out: &Output) -> String {
        let short = |arn: &str| arn.rsplit('/').next().unwrap_or(arn).to_string();
        let state = if self.steady {
            out.ok("steady", true)
        } else {
            out.ok(
                format!("NOT steady ({}/{} running)", self.running, self.desired),
                false,
            )
        };
        format!(
            "deploy {} ({}): {} → {} image {}: {state}",
            out.color_name(self.color),
            self.service,
            short(&self.previous_task_definition),
            short(&self.task_definition),
            self.image
        )
    }
}
