//! One summary row per scenario run, printed as a table or as one JSON line; `chat-load table`
//! turns a file of JSON lines (several runs) back into one table.

use serde::{Deserialize, Serialize};

/// The headline figures of one run; `detail` keeps everything else (ramp steps, RSS, ...).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Row {
    pub scenario: String,
    /// Free text naming the set-up (`1 task, 1000 members`, ...).
    pub setup: String,
    pub connections: u64,
    pub sent_per_s: Option<f64>,
    pub acked_per_s: Option<f64>,
    pub deliveries_per_s: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    /// The scenario's own headline (`RSS/conn 6.1 KiB`, `1234 conn+join/s`, ...).
    pub result: String,
    #[serde(default)]
    pub detail: serde_json::Value,
}

const HEADER: [&str; 10] = [
    "scenario",
    "setup",
    "conns",
    "sent/s",
    "acked/s",
    "deliveries/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "result",
];

fn num(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.2}"),
    }
}

/// Renders rows as an aligned plain-text table.
pub fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.clone(),
                r.setup.clone(),
                r.connections.to_string(),
                num(r.sent_per_s),
                num(r.acked_per_s),
                num(r.deliveries_per_s),
                num(r.p50_ms),
                num(r.p99_ms),
                num(r.p999_ms),
                r.result.clone(),
            ]
        })
        .collect();
    let mut width = HEADER.map(str::len);
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: Vec<&str>| {
        let parts: Vec<String> = cols
            .iter()
            .zip(width)
            .enumerate()
            .map(|(i, (c, w))| {
                if (2..9).contains(&i) {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(HEADER.to_vec());
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns_and_marks_missing_figures() {
        let rows = vec![Row {
            scenario: "fanout".into(),
            setup: "1 task".into(),
            connections: 1000,
            deliveries_per_s: Some(512_345.6),
            p99_ms: Some(1.234),
            result: "ok".into(),
            ..Row::default()
        }];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("scenario"));
        assert!(lines[1].contains("512346"));
        assert!(lines[1].contains("1.23"));
        assert!(lines[1].contains(" - "));
    }
}
