//! Colours and traffic weights: parsing what the operator types (`50/50`, `green`), the
//! listener-tag form (`blue=100,green=0`), validation and step plans. Pure logic, so it is
//! unit-tested here and the AWS modules only move already-valid values.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A deployment colour, as carried by the `Color` tag of target groups and ECS services.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    /// Both colours, in display order.
    pub const ALL: [Color; 2] = [Color::Blue, Color::Green];

    /// The other colour.
    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }

    /// Reads a `Color` tag value; tags are written by people, so case is ignored.
    pub fn from_tag(value: &str) -> Option<Color> {
        match value.trim().to_ascii_lowercase().as_str() {
            "blue" => Some(Color::Blue),
            "green" => Some(Color::Green),
            _ => None,
        }
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Percent of new connections sent to each colour; always sums to 100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    pub blue: u8,
    pub green: u8,
}

/// Why a weight string was rejected; the message names the value and the rule.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid weights {input:?}: {reason} (expected B/G with B+G = 100, e.g. 50/50, or `blue` / `green`)"
)]
pub struct WeightsError {
    input: String,
    reason: String,
}

impl Weights {
    /// Validated weights: each 0–100 and the two summing to 100.
    pub fn new(blue: i64, green: i64) -> Result<Weights, String> {
        for (name, w) in [("blue", blue), ("green", green)] {
            if !(0..=100).contains(&w) {
                return Err(format!("{name} weight {w} is outside 0-100"));
            }
        }
        if blue + green != 100 {
            return Err(format!("{blue} + {green} = {}, not 100", blue + green));
        }
        // Both are within 0..=100 here, so the casts cannot truncate.
        Ok(Weights {
            blue: blue as u8,
            green: green as u8,
        })
    }

    /// All traffic to one colour.
    pub fn all_to(color: Color) -> Weights {
        match color {
            Color::Blue => Weights {
                blue: 100,
                green: 0,
            },
            Color::Green => Weights {
                blue: 0,
                green: 100,
            },
        }
    }

    pub fn get(self, color: Color) -> u8 {
        match color {
            Color::Blue => self.blue,
            Color::Green => self.green,
        }
    }

    /// Colours receiving any traffic.
    pub fn receiving(self) -> Vec<Color> {
        Color::ALL
            .into_iter()
            .filter(|c| self.get(*c) > 0)
            .collect()
    }

    /// The colour holding all traffic, if one does.
    pub fn sole(self) -> Option<Color> {
        Color::ALL.into_iter().find(|c| self.get(*c) == 100)
    }

    /// Weights from the listener's raw forward weights (0–999 each, any sum), as percentages.
    pub fn from_raw(blue: i32, green: i32) -> Option<Weights> {
        let (blue, green) = (i64::from(blue.max(0)), i64::from(green.max(0)));
        let sum = blue + green;
        if sum == 0 {
            return None;
        }
        let b = (blue * 100 + sum / 2) / sum;
        Weights::new(b, 100 - b).ok()
    }

    /// The steps from `self` to `target`, moving at most `step` percent each; the last is
    /// `target`. Empty when already there.
    pub fn steps_to(self, target: Weights, step: u8) -> Vec<Weights> {
        let step = i64::from(step.max(1));
        let (mut blue, goal) = (i64::from(self.blue), i64::from(target.blue));
        let mut plan = Vec::new();
        while blue != goal {
            blue = if blue < goal {
                (blue + step).min(goal)
            } else {
                (blue - step).max(goal)
            };
            plan.extend(Weights::new(blue, 100 - blue).ok());
        }
        plan
    }

    /// The form kept in the listener tag: `blue=100,green=0`.
    pub fn to_tag(self) -> String {
        format!("blue={},green={}", self.blue, self.green)
    }

    /// Parses [`Weights::to_tag`]'s form.
    pub fn from_tag(value: &str) -> Result<Weights, String> {
        let (mut blue, mut green) = (None, None);
        for part in value.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("tag value {value:?} is not blue=B,green=G"))?;
            let v: i64 = v
                .trim()
                .parse()
                .map_err(|_| format!("tag value {value:?}: {v:?} is not a number"))?;
            match Color::from_tag(k) {
                Some(Color::Blue) => blue = Some(v),
                Some(Color::Green) => green = Some(v),
                None => return Err(format!("tag value {value:?}: unknown colour {k:?}")),
            }
        }
        match (blue, green) {
            (Some(b), Some(g)) => Weights::new(b, g),
            _ => Err(format!("tag value {value:?} lacks a colour")),
        }
    }
}

impl FromStr for Weights {
    type Err = WeightsError;

    fn from_str(s: &str) -> Result<Weights, WeightsError> {
        let fail = |reason: String| WeightsError {
            input: s.to_string(),
            reason,
        };
        let t = s.trim();
        if let Some(color) = Color::from_tag(t) {
            return Ok(Weights::all_to(color));
        }
        let (b, g) = t
            .split_once('/')
            .ok_or_else(|| fail("no `/` between the blue and green weights".into()))?;
        let num = |name: &str, v: &str| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| fail(format!("{name} weight {v:?} is not a whole number")))
        };
        Weights::new(num("blue", b)?, num("green", g)?).map_err(fail)
    }
}

impl fmt::Display for Weights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blue {}% / green {}%", self.blue, self.green)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(blue: u8, green: u8) -> Weights {
        Weights { blue, green }
    }

    #[test]
    fn parses_pairs_and_shorthands() {
        assert_eq!("50/50".parse(), Ok(w(50, 50)));
        assert_eq!(" 0 / 100 ".parse(), Ok(w(0, 100)));
        assert_eq!("green".parse(), Ok(w(0, 100)));
        assert_eq!("Blue".parse(), Ok(w(100, 0)));
    }

    #[test]
    fn rejects_bad_weights_naming_the_problem() {
        for (input, needle) in [
            ("60/60", "not 100"),
            ("101/-1", "outside 0-100"),
            ("50", "no `/`"),
            ("a/b", "not a whole number"),
            ("red", "no `/`"),
            ("100/0/0", "not a whole number"),
        ] {
            let err = input.parse::<Weights>().expect_err(input).to_string();
            assert!(err.contains(needle), "{input}: {err}");
            assert!(err.contains(input), "{input}: {err}");
        }
    }

    #[test]
    fn steps_move_by_at_most_step_and_end_at_target() {
        assert_eq!(
            w(100, 0).steps_to(w(0, 100), 30),
            vec![w(70, 30), w(40, 60), w(10, 90), w(0, 100)]
        );
        assert_eq!(w(20, 80).steps_to(w(50, 50), 50), vec![w(50, 50)]);
        assert!(w(50, 50).steps_to(w(50, 50), 10).is_empty());
        assert_eq!(w(0, 100).steps_to(w(2, 98), 0), vec![w(1, 99), w(2, 98)]);
    }

    #[test]
    fn tag_form_round_trips() {
        let x = w(25, 75);
        assert_eq!(Weights::from_tag(&x.to_tag()), Ok(x));
        assert!(Weights::from_tag("blue=60,green=60").is_err());
        assert!(Weights::from_tag("blue=100").is_err());
    }

    #[test]
    fn raw_listener_weights_become_percentages() {
        assert_eq!(Weights::from_raw(1, 0), Some(w(100, 0)));
        assert_eq!(Weights::from_raw(1, 3), Some(w(25, 75)));
        assert_eq!(Weights::from_raw(0, 0), None);
        assert_eq!(Weights::from_raw(1, 2), Some(w(33, 67)));
    }

    #[test]
    fn receiving_and_sole() {
        assert_eq!(w(100, 0).sole(), Some(Color::Blue));
        assert_eq!(w(50, 50).sole(), None);
        assert_eq!(w(50, 50).receiving(), vec![Color::Blue, Color::Green]);
    }
}
