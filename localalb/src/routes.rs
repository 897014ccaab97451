//! Where new connections go: a snapshot of the listener's weighted target groups and their
//! registered targets, and the picker that spreads new connections over them by weight
//! (smooth weighted round-robin across groups, round-robin within one). Pure logic,
//! unit-tested here; `elb` builds snapshots, `proxy` asks for targets.

use std::net::SocketAddr;
use std::time::Duration;

/// One target group the listener forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    /// Raw listener weight (0–999).
    pub weight: u32,
    /// Registered targets (those ELBv2 reports in a routable state).
    pub targets: Vec<SocketAddr>,
    /// How long a deregistered target keeps its open connections before the cut.
    pub deregistration_delay: Duration,
}

/// The routing table at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    pub groups: Vec<Group>,
}

impl Routes {
    /// Every registered target with its group's deregistration delay.
    pub fn targets(&self) -> impl Iterator<Item = (SocketAddr, Duration)> + '_ {
        self.groups
            .iter()
            .flat_map(|g| g.targets.iter().map(|t| (*t, g.deregistration_delay)))
    }

    /// `name weight [targets]` per group, for the log.
    pub fn describe(&self) -> String {
        self.groups
            .iter()
            .map(|g| {
                let t: Vec<String> = g.targets.iter().map(ToString::to_string).collect();
                format!("{} w={} [{}]", g.name, g.weight, t.join(" "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Picker state carried across snapshots (so a refresh does not reset the spread).
#[derive(Debug, Default)]
pub struct Picker {
    /// Smooth weighted round-robin credit per group name.
    credit: Vec<(String, i64)>,
    /// Round-robin position per group name.
    next: Vec<(String, usize)>,
}

impl Picker {
    /// The target for the next new connection: groups with weight > 0 and at least one
    /// target take turns in proportion to their weights. `None` when no group can take it.
    pub fn pick(&mut self, routes: &Routes) -> Option<(String, SocketAddr)> {
        let live: Vec<&Group> = routes
            .groups
            .iter()
            .filter(|g| g.weight > 0 && !g.targets.is_empty())
            .collect();
        if live.is_empty() {
            return None;
        }
        let total: i64 = live.iter().map(|g| i64::from(g.weight)).sum();
        let mut best: Option<(usize, i64)> = None;
        for (i, g) in live.iter().enumerate() {
            let c = slot(&mut self.credit, &g.name, 0i64);
            *c += i64::from(g.weight);
            if best.is_none_or(|(_, b)| *c > b) {
                best = Some((i, *c));
            }
        }
        let (chosen, _) = best?;
        let group = live[chosen];
        *slot(&mut self.credit, &group.name, 0i64) -= total;
        let pos = slot(&mut self.next, &group.name, 0usize);
        let target = group.targets[*pos % group.targets.len()];
        *pos = pos.wrapping_add(1);
        Some((group.name.clone(), target))
    }
}

fn slot<'a, T: Copy>(v: &'a mut Vec<(String, T)>, name: &str, init: T) -> &'a mut T {
    let i = match v.iter().position(|(n, _)| n == name) {
        Some(i) => i,
        None => {
            v.push((name.to_string(), init));
            v.len() - 1
        }
    };
    &mut v[i].1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, weight: u32, ports: &[u16]) -> Group {
        Group {
            name: name.into(),
            weight,
            targets: ports
                .iter()
                .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
                .collect(),
            deregistration_delay: Duration::from_secs(1),
        }
    }

    fn spread(routes: &Routes, n: usize) -> (usize, usize) {
        let mut p = Picker::default();
        let mut blue = 0;
        for _ in 0..n {
            if p.pick(routes).expect("a target").0 == "blue" {
                blue += 1;
            }
        }
        (blue, n - blue)
    }

    #[test]
    fn new_connections_follow_the_weights_exactly() {
        let r = Routes {
            groups: vec![group("blue", 30, &[1]), group("green", 70, &[2])],
        };
        assert_eq!(spread(&r, 100), (30, 70));
        let r = Routes {
            groups: vec![group("blue", 1, &[1]), group("green", 1, &[2])],
        };
        assert_eq!(spread(&r, 200), (100, 100));
    }

    #[test]
    fn zero_weight_and_empty_groups_get_nothing() {
        let r = Routes {
            groups: vec![group("blue", 100, &[1]), group("green", 0, &[2])],
        };
        assert_eq!(spread(&r, 50), (50, 0));
        let r = Routes {
            groups: vec![group("blue", 50, &[]), group("green", 50, &[2])],
        };
        assert_eq!(spread(&r, 50), (0, 50));
        let r = Routes {
            groups: vec![group("blue", 0, &[1])],
        };
        assert!(Picker::default().pick(&r).is_none());
    }

    #[test]
    fn targets_of_a_group_take_turns() {
        let r = Routes {
            groups: vec![group("blue", 1, &[1, 2])],
        };
        let mut p = Picker::default();
        let ports: Vec<u16> = (0..4).map(|_| p.pick(&r).expect("t").1.port()).collect();
        assert_eq!(ports, vec![1, 2, 1, 2]);
    }
}
