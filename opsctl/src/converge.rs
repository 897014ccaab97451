//! Waiting for live connections to follow the weights: after a `--rebalance` shift or a
//! rollback, opsctl watches the fleet heartbeats (connections per colour, dead tasks
//! excluded) with one bar per colour until each colour holds its share and the audience is
//! back (the shed clients have reconnected: a share of the few connected mid-move proves
//! nothing), and keeps checking that the lease is still its own and the listener still
//! carries its weights.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::{Instant, sleep};

use crate::aws::control::{self, TaskBeat};
use crate::aws::elbv2::{self, Topology};
use crate::context::Context;
use crate::lease::Lease;
use crate::weights::{Color, Weights};

/// A colour is on target within this many percentage points of its weight; a colour with
/// weight 0 must hold none.
pub const TOLERANCE_PCT: f64 = 5.0;
/// Time between readings.
const POLL: Duration = Duration::from_millis(500);
/// The audience is back when the fleet holds at least this share of the connections it held
/// when the wait began...
const BACK_PCT: u64 = 90;
/// ... or, when people left meanwhile, once its total has not changed for this long (as the
/// tasks trust a lower total after their shed, `rebalance/decide.rs`).
const QUIET: Duration = Duration::from_secs(10);

/// Whether the audience is back: `total` connections now, `start` when the wait began, the
/// total unchanged for `quiet`.
pub fn audience_back(total: u64, start: u64, quiet: Duration) -> bool {
    total * 100 >= start * BACK_PCT || quiet >= QUIET
}

/// How the wait ended.
#[derive(Debug)]
pub enum Converged {
    /// Each colour holds its share.
    Yes(BTreeMap<Color, u64>),
    /// No task publishes heartbeats: nothing to count (and nothing that could move).
    NoFleet,
    /// Still off target at the deadline.
    TimedOut(BTreeMap<Color, u64>),
    /// Someone took the lease.
    LeaseLost,
    /// The listener no longer carries `weights`.
    Superseded(Weights),
}

/// Whether `counts` match `weights`.
pub fn on_target(counts: &BTreeMap<Color, u64>, weights: Weights) -> bool {
    let total: u64 = counts.values().sum();
    if total == 0 {
        return true;
    }
    Color::ALL.into_iter().all(|c| {
        let have = counts.get(&c).copied().unwrap_or(0);
        let want = weights.get(c);
        if want == 0 {
            return have == 0;
        }
        let pct = have as f64 * 100.0 / total as f64;
        (pct - f64::from(want)).abs() <= TOLERANCE_PCT
    })
}

/// Whether the live tasks' heartbeats show each colour holding its share. No live task at
/// all (every heartbeat stale: tasks dead, or too slow to write) proves nothing: not yet.
pub fn converged(beats: &[TaskBeat], weights: Weights) -> bool {
    !beats.is_empty() && on_target(&control::counts(beats), weights)
}

/// Waits up to `timeout` for the live connections to match `weights`.
pub async fn wait(
    ctx: &Context,
    topo: &Topology,
    lease: &mut Lease,
    weights: Weights,
    timeout: Duration,
) -> anyhow::Result<Converged> {
    let table = ctx.lease_table()?;
    let client = &ctx.clients.dynamodb;
    if control::fleet(client, &table).await?.is_none() {
        return Ok(Converged::NoFleet);
    }
    let multi = MultiProgress::with_draw_target(if ctx.out.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let bars: BTreeMap<Color, ProgressBar> = Color::ALL
        .into_iter()
        .map(|c| {
            let bar = multi.add(ProgressBar::new(0));
            if let Ok(s) =
                ProgressStyle::with_template("{msg:<28} [{bar:30}] {pos}/{len} conns {elapsed}")
            {
                bar.set_style(s.progress_chars("=> "));
            }
            (c, bar)
        })
        .collect();
    let deadline = Instant::now() + timeout;
    let mut start = None;
    let (mut last_total, mut changed_at) = (None, Instant::now());
    let end = loop {
        if !lease.still_held(ctx, false).await? {
            break Converged::LeaseLost;
        }
        let now = elbv2::current_weights(&ctx.clients.elb, topo).await?;
        if now != weights {
            break Converged::Superseded(now);
        }
        let beats = control::fleet(client, &table).await?.unwrap_or_default();
        let counts = control::counts(&beats);
        let total: u64 = counts.values().sum();
        for (c, bar) in &bars {
            let have = counts.get(c).copied().unwrap_or(0);
            let want = (total as f64 * f64::from(weights.get(*c)) / 100.0).round();
            bar.set_length(total);
            bar.set_position(have);
            bar.set_message(format!(
                "{} → {want} ({}%)",
                ctx.out.color_name(*c),
                weights.get(*c)
            ));
        }
        let start = *start.get_or_insert(total);
        if last_total != Some(total) {
            (last_total, changed_at) = (Some(total), Instant::now());
        }
        if converged(&beats, weights) && audience_back(total, start, changed_at.elapsed()) {
            break Converged::Yes(counts);
        }
        if Instant::now() >= deadline {
            break Converged::TimedOut(counts);
        }
        sleep(POLL).await;
    };
    for bar in bars.values() {
        bar.finish_and_clear();
    }
    let _ = multi.clear();
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(blue: u64, green: u64) -> BTreeMap<Color, u64> {
        [(Color::Blue, blue), (Color::Green, green)].into()
    }

    #[test]
    fn on_target_within_tolerance_and_zero_means_none() {
        let half = Weights {
            blue: 50,
            green: 50,
        };
        assert!(on_target(&counts(105, 95), half));
        assert!(!on_target(&counts(120, 80), half));
        let blue = Weights {
            blue: 100,
            green: 0,
        };
        assert!(on_target(&counts(200, 0), blue));
        assert!(!on_target(&counts(199, 1), blue));
        assert!(on_target(&counts(0, 0), blue));
    }

    #[test]
    fn a_share_of_the_few_connected_mid_move_is_not_the_audience_back() {
        let now = Duration::ZERO;
        // 2,000 shed, 171 back so far: not yet, however well they split.
        assert!(!audience_back(171, 2000, now));
        assert!(audience_back(1800, 2000, now));
        assert!(audience_back(2000, 2000, now));
        // People left for good: once the total stops moving, what is there is the audience.
        assert!(!audience_back(1500, 2000, Duration::from_secs(9)));
        assert!(audience_back(1500, 2000, QUIET));
        assert!(audience_back(0, 0, now));
    }

    #[test]
    fn no_live_task_is_not_converged() {
        let beat = |color, conns| TaskBeat {
            task: format!("{color:?}-1"),
            color,
            conns,
            ready: true,
            age_ms: 0,
        };
        let half = Weights {
            blue: 50,
            green: 50,
        };
        // Every heartbeat stale (filtered out): nothing counted, nothing proven.
        assert!(!converged(&[], half));
        assert!(converged(
            &[beat(Color::Blue, 100), beat(Color::Green, 100)],
            half
        ));
        // Live tasks without any connection: nobody to move.
        assert!(converged(&[beat(Color::Blue, 0)], half));
        assert!(!converged(
            &[beat(Color::Blue, 200), beat(Color::Green, 0)],
            half
        ));
    }
}
