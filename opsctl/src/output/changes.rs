//! The reports of commands that change something: a weight change (shift, rollback, undo)
//! and a deploy.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Output, Report};
use crate::aws::cloudwatch::AlarmState;
use crate::weights::{Color, Weights};

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
