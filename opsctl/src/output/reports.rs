//! The read-only reports: `opsctl status` and `opsctl health`.

use comfy_table::{Cell, Color as CellColor};
use console::style;
use serde::Serialize;

use super::{Output, Report};
use crate::aws::ecs::Service;
use crate::aws::elbv2::TargetHealth;
use crate::weights::{Color, Weights};

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
