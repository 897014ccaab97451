//! One look of the rebalancing loop, as pure logic: from the fleet's heartbeats and what this
//! task remembers of its own last shed, whether to shed now (and how many) or wait. Kept apart
//! from the DynamoDB calls so that the damping can be unit-tested.
//!
//! Why damping: a shed connection is counted nowhere until it has reconnected, and another
//! task's heartbeat is up to a second old. A task that looked again too soon saw its colour
//! still over its share and shed again, up to twice the real excess (the live-connections test
//! once converged at 50/50, then ended at 60/140 after opsctl had exited). So a task sheds at
//! most once per round, and a round starts only from a view that is newer than every shed:
//!
//! - every live task's heartbeat was taken at least [`SETTLE_MS`] after the end of the latest
//!   shed window anywhere in the fleet (each task publishes its own as `shed_until_ms`);
//! - after any task's shed (its own, or one a heartbeat announces with `shed_from`), the fleet
//!   again holds about as many connections as that shed was decided from (the shed ones have
//!   landed somewhere), or [`LANDING_MS`] has passed (people do leave): a colour that received
//!   the first few hundred of 2,000 reconnecting clients is not "over its share" of the few
//!   connected so far (at 2,000 clients the receiving task once shed 140 of its first 317);
//! - a colour within [`TOLERANCE_PCT`] of its weight (opsctl's own tolerance) sheds nothing, so
//!   the fleet stops once opsctl sees it converged;
//! - any colour over its share sheds, whichever way the last move went (an overshoot is undone
//!   by the colour that received too many).
//!
//! Heartbeat times are wall-clock milliseconds of different hosts: ECS hosts keep their clocks
//! within milliseconds (NTP), far below [`SETTLE_MS`].

/// Most connections shed per connection of excess.
pub const MAX_FACTOR: f64 = 2.0;
/// A colour within this many percentage points of its weight is on target (as
/// `opsctl/src/converge.rs` judges it); a colour with weight 0 must hold none.
pub const TOLERANCE_PCT: f64 = 5.0;
/// ...and never less than this many connections.
const SLACK: u64 = 1;
/// A heartbeat counts for the next round only when taken this long after the end of the
/// latest shed window: the last shed client reconnects after `retry_after_ms` (100) plus its
/// own jitter.
pub const SETTLE_MS: i64 = 1_500;
/// A heartbeat older than this is late: its task is slow to write (a store answering slowly)
/// or has just died. A view with a late heartbeat is partial, and a task deciding from it
/// would shed toward the wrong total: it waits until the task writes again or is dead.
pub const LATE_MS: i64 = 3_000;
/// After its own shed, a task waits at most this long past the window for the fleet's total
/// to come back before it trusts a lower total.
pub const LANDING_MS: i64 = 10_000;

pub use crate::store::{Beat, Control};

/// What a task remembers of its own latest shed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastShed {
    /// When its window ends (ms since the epoch).
    pub until_ms: i64,
    /// Live connections in the fleet view it shed from.
    pub fleet_total: u64,
}

/// The outcome of one look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Not asked to rebalance, or a colour without a weight (`local`).
    Off,
    /// Some heartbeat predates the latest shed (plus [`SETTLE_MS`]): wait for a newer view.
    Stale,
    /// Connections shed by some task (this one or another) have not all landed yet: wait.
    Landing,
    /// This colour is within tolerance of its share.
    OnTarget,
    /// This colour holds less than its share: the other colour sheds.
    Under,
    /// Shed this many of this task's connections.
    Shed(u64),
}

/// The look of a task of `color` holding `mine` connections, given the fleet's live
/// heartbeats (`beats`, its own included; a dead task's are left out by the caller), its own
/// latest shed and the time now.
pub fn decide(
    control: &Control,
    color: &str,
    mine: u64,
    beats: &[Beat],
    last: Option<LastShed>,
    now_ms: i64,
) -> Look {
    let Some(weight) = control.weight(color) else {
        return Look::Off;
    };
    if !control.rebalance {
        return Look::Off;
    }
    let latest_shed = beats
        .iter()
        .map(|b| b.shed_until_ms)
        .chain(last.map(|l| l.until_ms))
        .max()
        .unwrap_or(0);
    if beats.iter().any(|b| {
        b.at_ms < now_ms - LATE_MS || (latest_shed > 0 && b.at_ms < latest_shed + SETTLE_MS)
    }) {
        return Look::Stale;
    }
    let total: u64 = beats.iter().map(|b| b.conns).sum();
    let landing = beats
        .iter()
        .map(|b| (b.shed_until_ms, b.shed_from))
        .chain(last.map(|l| (l.until_ms, l.fleet_total)))
        .any(|(until, from)| {
            until > 0
                && now_ms < until + LANDING_MS
                && (total as f64) < from as f64 - tolerance(from)
        });
    if landing {
        return Look::Landing;
    }
    let have: u64 = beats
        .iter()
        .filter(|b| b.color == color)
        .map(|b| b.conns)
        .sum();
    let want = total as f64 * f64::from(weight) / 100.0;
    let excess = have as f64 - want;
    let on_target = if weight == 0 {
        have == 0
    } else {
        excess.abs() <= tolerance(total)
    };
    if on_target || total == 0 {
        return Look::OnTarget;
    }
    if excess <= 0.0 || have == 0 || mine == 0 {
        return Look::Under;
    }
    let my_part = excess * mine as f64 / have as f64;
    let factor = (1.0 / (1.0 - f64::from(weight) / 100.0)).min(MAX_FACTOR);
    Look::Shed(((my_part * factor).ceil() as u64).clamp(1, mine))
}

/// Connections a colour may be off by and still be on target, out of `total`.
fn tolerance(total: u64) -> f64 {
    (total as f64 * TOLERANCE_PCT / 100.0).max(SLACK as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn control(blue: u8, rebalance: bool) -> Control {
        Control {
            blue,
            green: 100 - blue,
            rebalance,
            window_ms: 5_000,
        }
    }

    fn beat(color: &str, conns: u64) -> Beat {
        Beat {
            color: color.into(),
            conns,
            ready: true,
            at_ms: NOW,
            shed_until_ms: 0,
            shed_from: 0,
        }
    }

    fn fleet(blue: u64, green: u64) -> Vec<Beat> {
        vec![beat("blue", blue), beat("green", green)]
    }

    fn look(blue_w: u8, color: &str, mine: u64, beats: &[Beat]) -> Look {
        decide(&control(blue_w, true), color, mine, beats, None, NOW)
    }

    #[test]
    fn sheds_so_that_the_expected_result_is_on_target() {
        // 200 on blue, weights 50/50: excess 100, half of the shed come back.
        assert_eq!(look(50, "blue", 200, &fleet(200, 0)), Look::Shed(200));
        assert_eq!(look(50, "green", 0, &fleet(200, 0)), Look::Under);
        // Rollback: green at weight 0 sheds everything, blue nothing.
        assert_eq!(look(100, "green", 40, &fleet(160, 40)), Look::Shed(40));
        assert_eq!(look(100, "blue", 160, &fleet(160, 40)), Look::Under);
        // 75/25 from 200/0: excess 50, times the capped factor 2.
        assert_eq!(look(75, "blue", 200, &fleet(200, 0)), Look::Shed(100));
    }

    #[test]
    fn within_tolerance_or_not_asked_sheds_nothing() {
        // 5 points of 200 = 10 connections either way.
        assert_eq!(look(50, "blue", 110, &fleet(110, 90)), Look::OnTarget);
        assert_eq!(look(50, "green", 90, &fleet(110, 90)), Look::OnTarget);
        assert_eq!(look(50, "blue", 111, &fleet(111, 89)), Look::Shed(22));
        // A colour at weight 0 must hold none, even one.
        assert_eq!(look(100, "green", 1, &fleet(199, 1)), Look::Shed(1));
        let c = control(50, false);
        assert_eq!(
            decide(&c, "blue", 200, &fleet(200, 0), None, NOW),
            Look::Off
        );
        assert_eq!(look(50, "local", 200, &fleet(200, 0)), Look::Off);
        assert_eq!(look(50, "blue", 0, &fleet(0, 0)), Look::OnTarget);
    }

    #[test]
    fn an_over_share_colour_sheds_whichever_way_the_last_move_went() {
        // Overshoot at 50/50: green received too many and gives them back.
        assert_eq!(look(50, "green", 140, &fleet(60, 140)), Look::Shed(80));
        assert_eq!(look(50, "blue", 60, &fleet(60, 140)), Look::Under);
    }

    #[test]
    fn a_task_sheds_its_part_of_its_colours_excess() {
        // Two blue tasks (150 + 50), one green (0), weights 50/50: excess 100.
        let beats = vec![beat("blue", 150), beat("blue", 50), beat("green", 0)];
        assert_eq!(look(50, "blue", 150, &beats), Look::Shed(150));
        assert_eq!(look(50, "blue", 50, &beats), Look::Shed(50));
        // 75/25: excess 50, the 150-task's part 37.5, times the capped factor 2.
        assert_eq!(look(75, "blue", 150, &beats), Look::Shed(75));
    }

    #[test]
    fn no_second_shed_from_a_view_older_than_the_last_shed() {
        // Blue shed 200 at 50/50 with a window ending at NOW; green's heartbeat was taken
        // before the shed connections arrived: the view says blue 100, green 40.
        let last = Some(LastShed {
            until_ms: NOW,
            fleet_total: 200,
        });
        let mut beats = fleet(100, 40);
        beats[0].at_ms = NOW + SETTLE_MS;
        beats[1].at_ms = NOW + 900;
        let c = control(50, true);
        assert_eq!(
            decide(&c, "blue", 100, &beats, last, NOW + 2_000),
            Look::Stale
        );
        // The other task (green) knows of blue's shed from blue's heartbeat alone.
        beats[0].shed_until_ms = NOW;
        assert_eq!(
            decide(&c, "green", 40, &beats, None, NOW + 2_000),
            Look::Stale
        );
        // Both heartbeats newer, but 60 connections still on their way: wait for them.
        beats[1].at_ms = NOW + SETTLE_MS;
        assert_eq!(
            decide(&c, "blue", 100, &beats, last, NOW + 2_000),
            Look::Landing
        );
        // Green too waits: blue's heartbeat says what its shed was decided from. Without that,
        // green saw itself under its share here; had more landed on green than on blue
        // (blue 40, green 100 of the 200), it would have shed from a partial view.
        beats[0].shed_from = 200;
        assert_eq!(
            decide(&c, "green", 40, &beats, None, NOW + 2_000),
            Look::Landing
        );
        let mut skewed = beats.clone();
        skewed[0].conns = 40;
        skewed[1].conns = 100;
        assert_eq!(
            decide(&c, "green", 100, &skewed, None, NOW + 2_000),
            Look::Landing
        );
        skewed[0].shed_from = 0;
        assert_eq!(
            decide(&c, "green", 100, &skewed, None, NOW + 2_000),
            Look::Shed(60),
            "what green did before heartbeats carried shed_from"
        );
        // They landed: on target, nothing more to shed.
        beats[1].conns = 100;
        assert_eq!(
            decide(&c, "blue", 100, &beats, last, NOW + 2_000),
            Look::OnTarget
        );
        // People left for good: after LANDING_MS the lower total is trusted.
        beats[1].conns = 40;
        beats[0].at_ms = NOW + LANDING_MS;
        beats[1].at_ms = NOW + LANDING_MS;
        assert_eq!(
            decide(&c, "blue", 100, &beats, last, NOW + LANDING_MS),
            Look::Shed(60)
        );
    }

    #[test]
    fn no_shed_while_a_task_is_late_to_heartbeat() {
        // Green's heartbeat is 5 s old (its store calls are slow): blue holding 200 of an
        // apparent 200 may be wrong, so nobody acts until green writes again.
        let mut beats = fleet(100, 100);
        beats[1].at_ms = NOW - 5_000;
        let c = control(50, true);
        assert_eq!(decide(&c, "blue", 100, &beats, None, NOW), Look::Stale);
        beats[1].at_ms = NOW - 1_000;
        assert_eq!(decide(&c, "blue", 100, &beats, None, NOW), Look::OnTarget);
    }

    #[test]
    fn rounds_converge_and_then_stay_put() {
        // A fleet of one blue and one green task where reconnects split exactly by weight,
        // each look one round: from 200/0 to 50/50, then a rollback to 100/0.
        fn round(c: &Control, blue: &mut u64, green: &mut u64) -> bool {
            let beats = fleet(*blue, *green);
            let mut moved = false;
            for color in ["blue", "green"] {
                let mine = if color == "blue" { *blue } else { *green };
                if let Look::Shed(n) = decide(c, color, mine, &beats, None, NOW) {
                    let back = (n * u64::from(c.weight(color).unwrap_or(0))).div_ceil(100);
                    if color == "blue" {
                        *blue = *blue - n + back;
                        *green += n - back;
                    } else {
                        *green = *green - n + back;
                        *blue += n - back;
                    }
                    moved = true;
                }
            }
            moved
        }
        let (mut blue, mut green) = (200, 0);
        assert!(round(&control(50, true), &mut blue, &mut green));
        assert_eq!((blue, green), (100, 100));
        for _ in 0..5 {
            assert!(!round(&control(50, true), &mut blue, &mut green));
        }
        assert!(round(&control(100, true), &mut blue, &mut green));
        assert_eq!((blue, green), (200, 0));
        assert!(!round(&control(100, true), &mut blue, &mut green));
    }
}
