//! CloudWatch: the state of the alarms a shift is gated on.

use anyhow::bail;
use aws_sdk_cloudwatch::Client;
use serde::Serialize;

use super::SdkContext as _;

/// One alarm and its state (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
#[derive(Debug, Clone, Serialize)]
pub struct AlarmState {
    pub name: String,
    pub state: String,
}

impl AlarmState {
    pub fn firing(&self) -> bool {
        self.state == "ALARM"
    }
}

/// The state of each named alarm; an alarm that does not exist is an error, so a typo in
/// `--alarm` cannot silently disable the gate.
pub async fn alarm_states(client: &Client, names: &[String]) -> anyhow::Result<Vec<AlarmState>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    // DescribeAlarms takes at most 100 names.
    for chunk in names.chunks(100) {
        let mut token = None;
        loop {
            let out = client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .set_next_token(token)
                .send()
                .await
                .ctx(|| format!("reading CloudWatch alarms {}", chunk.join(", ")))?;
            for alarm in out.metric_alarms.unwrap_or_default() {
                found.push(AlarmState {
                    name: alarm.alarm_name.unwrap_or_default(),
                    state: alarm
                        .state_value
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                });
            }
            for alarm in out.composite_alarms.unwrap_or_default() {
                found.push(AlarmState {
                    name: alarm.alarm_name.unwrap_or_default(),
                    state: alarm
                        .state_value
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                });
            }
            token = out.next_token;
            if token.is_none() {
                break;
            }
        }
    }
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| !found.iter().any(|a| &a.name == *n))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        bail!("CloudWatch alarm not found: {}", missing.join(", "));
    }
    Ok(found)
}
