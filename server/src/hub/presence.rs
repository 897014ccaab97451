//! Presence in a big room, summarised. Each `presence` frame goes to every other member, so a
//! crowd arriving, or a rebalance moving a thousand connections, would cost members × changes
//! frames: millions in a room of 2,000, enough to fill slow members' queues and close them.
//! A task with more than [`DETAIL_MAX`] members in a room (or with a summary already pending
//! there) gathers the room's presence changes for [`SUMMARY_EVERY`] and sends one `presence`
//! frame with `joined_users` and `left_users` instead; a user who left and came back (a
//! reconnect, a move to the other colour) or came and went within it is in neither.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

use crate::conn;
use crate::protocol::{ServerFrame, User};

/// Members of a room on one task above which its presence changes are summarised.
pub const DETAIL_MAX: usize = 100;
/// How long presence changes are gathered into one summary.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(1);

/// One `presence` frame's change, as encoded.
#[derive(Deserialize)]
struct Change {
    online: usize,
    joined: Option<User>,
    left: Option<User>,
}

/// The presence changes of one room gathered for its next summary.
#[derive(Default)]
pub(super) struct Summary {
    online: Option<usize>,
    joined: BTreeMap<u64, User>,
    left: BTreeMap<u64, User>,
    /// A flush of this summary is scheduled.
    pending: bool,
}

impl Summary {
    /// Gathers the change an encoded `presence` frame carries, when the room has more than
    /// [`DETAIL_MAX`] `members` here or a summary is already pending: `Some(true)` when this
    /// starts a summary (schedule its flush in [`SUMMARY_EVERY`]), `Some(false)` when one is
    /// pending. `None`: send the frame on its own.
    pub(super) fn gather(&mut self, members: usize, json: &[u8]) -> Option<bool> {
        if (members <= DETAIL_MAX && !self.pending) || !self.add(json) {
            return None;
        }
        Some(!std::mem::replace(&mut self.pending, true))
    }

    /// Adds the change an encoded `presence` frame carries; false when it carries none.
    fn add(&mut self, json: &[u8]) -> bool {
        let Ok(change) = serde_json::from_slice::<Change>(json) else {
            return false;
        };
        self.online = Some(change.online);
        if let Some(user) = change.joined
            && self.left.remove(&user.id).is_none()
        {
            self.joined.insert(user.id, user);
        }
        if let Some(user) = change.left
            && self.joined.remove(&user.id).is_none()
        {
            self.left.insert(user.id, user);
        }
        true
    }

    /// The summary frame of what was gathered (`None` when nothing was), emptying it; the
    /// next change starts a new summary.
    pub(super) fn take_frame(&mut self, room: &str) -> Option<Bytes> {
        self.pending = false;
        self.take_json(room).map(|json| conn::text_frame(&json))
    }

    fn take_json(&mut self, room: &str) -> Option<Bytes> {
        let online = self.online.take()?;
        let joined: Vec<User> = std::mem::take(&mut self.joined).into_values().collect();
        let left: Vec<User> = std::mem::take(&mut self.left).into_values().collect();
        Some(
            ServerFrame::PresenceSummary {
                room,
                online,
                joined_users: &joined,
                left_users: &left,
            }
            .to_json(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: u64) -> User {
        User {
            id,
            nickname: format!("u{id}"),
            avatar: "fox".into(),
        }
    }

    fn change(online: usize, joined: Option<u64>, left: Option<u64>) -> Vec<u8> {
        let (j, l) = (joined.map(user), left.map(user));
        ServerFrame::Presence {
            room: "r",
            online,
            joined: j.as_ref(),
            left: l.as_ref(),
        }
        .to_json()
        .to_vec()
    }

    fn ids(v: &serde_json::Value, key: &str) -> Vec<u64> {
        v[key]
            .as_array()
            .expect(key)
            .iter()
            .map(|u| u["id"].as_u64().expect("id"))
            .collect()
    }

    #[test]
    fn a_summary_nets_out_who_came_back_and_who_came_and_went() {
        let mut s = Summary::default();
        assert!(s.take_json("r").is_none(), "nothing gathered, nothing sent");
        // A small room's change goes on its own; a big room's starts a summary.
        assert_eq!(s.gather(DETAIL_MAX, &change(100, Some(9), None)), None);
        assert_eq!(
            s.gather(DETAIL_MAX + 1, &change(101, Some(9), None)),
            Some(true)
        );
        // Pending: gathered whatever the size now, no second flush.
        assert_eq!(s.gather(2, &change(100, None, Some(9))), Some(false));
        assert!(s.take_frame("r").is_some());
        assert_eq!(
            s.gather(2, &change(2, Some(9), None)),
            None,
            "flushed: small again"
        );
        assert!(s.add(&change(101, Some(1), None)));
        assert!(s.add(&change(102, Some(2), None)));
        // 3 moves to the other colour: it leaves here and joins there.
        assert!(s.add(&change(101, None, Some(3))));
        assert!(s.add(&change(102, Some(3), None)));
        // 2 came and went.
        assert!(s.add(&change(101, None, Some(2))));
        assert!(s.add(&change(100, None, Some(4))));
        assert!(!s.add(b"not json"));
        let json = s.take_json("r").expect("a summary");
        let v: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(v["type"], "presence");
        assert_eq!(v["room"], "r");
        assert_eq!(v["online"], 100);
        assert_eq!(ids(&v, "joined_users"), vec![1]);
        assert_eq!(ids(&v, "left_users"), vec![4]);
        assert!(s.take_json("r").is_none(), "emptied");
    }
}
