//! Reactions in the hub: a member's `react` changes the message's reactions in the store at
//! once (one atomic write, which returns the new state with its version); the new states are
//! then coalesced like read receipts, so a busy room does not multiply traffic: every
//! [`REACTIONS_FLUSH_MS`] the task sends the messages whose reactions changed here as ONE
//! `reactions` frame to its members and ONE fanout event to the other tasks (which keep the
//! newest state of each message and pass the frame on). Each task keeps the newest state of
//! the room's latest messages, and sends it to a member right after `joined` (whose messages
//! may come from frames remembered before the reactions changed).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Deserialize;

use super::Hub;
use crate::conn::Conn;
use crate::fanout::{EventKind, RoomEvent};
use crate::protocol::{
    ErrorCode, MAX_REACTORS_PER_EMOJI, MessageReactions, REACTIONS_FLUSH_MS, Refusal, ServerFrame,
    reaction_index, validate_room,
};
use crate::store::reactions::{Reacted, ReactionChange};

/// Messages per room whose newest reactions a task keeps (the newest seqs).
const KEPT_PER_ROOM: usize = 1024;

/// One room's reactions on this task.
#[derive(Default)]
struct RoomReactions {
    /// seq -> the newest state known here.
    known: BTreeMap<u64, MessageReactions>,
    /// Seqs changed by this task's members since the last flush.
    moved: BTreeSet<u64>,
}

/// The reactions of the rooms this task serves.
#[derive(Default)]
pub(super) struct Reactions {
    rooms: Mutex<HashMap<String, RoomReactions>>,
}

impl Reactions {
    /// Keeps `state` where it is newer than what is known; true when it was.
    fn keep(r: &mut RoomReactions, state: MessageReactions) -> bool {
        if r.known
            .get(&state.seq)
            .is_some_and(|k| k.version >= state.version)
        {
            return false;
        }
        r.known.insert(state.seq, state);
        while r.known.len() > KEPT_PER_ROOM {
            r.known.pop_first();
        }
        true
    }

    /// A change made here: kept, and sent at the next flush.
    fn changed(&self, room: &str, state: MessageReactions) {
        let mut rooms = self.rooms.lock();
        let r = rooms.entry(room.to_string()).or_default();
        let seq = state.seq;
        if Self::keep(r, state) {
            r.moved.insert(seq);
        }
    }

    /// States from another task: kept where newer.
    fn merge(&self, room: &str, states: Vec<MessageReactions>) {
        let mut rooms = self.rooms.lock();
        let r = rooms.entry(room.to_string()).or_default();
        for state in states {
            Self::keep(r, state);
        }
    }

    /// Each room's states changed here since the last flush; rooms no longer served here are
    /// forgotten.
    fn take(&self, live: &dyn Fn(&str) -> bool) -> Vec<(String, Vec<MessageReactions>)> {
        let mut rooms = self.rooms.lock();
        rooms.retain(|name, r| live(name) || !r.moved.is_empty());
        let mut out = Vec::new();
        for (name, r) in rooms.iter_mut() {
            let moved = std::mem::take(&mut r.moved);
            let states: Vec<MessageReactions> = moved
                .iter()
                .filter_map(|seq| r.known.get(seq).cloned())
                .collect();
            if !states.is_empty() {
                out.push((name.clone(), states));
            }
        }
        out
    }

    /// Every state known of `room` with at least one reaction or a change.
    fn all(&self, room: &str) -> Vec<MessageReactions> {
        self.rooms
            .lock()
            .get(room)
            .map(|r| r.known.values().cloned().collect())
            .unwrap_or_default()
    }
}

impl Hub {
    /// A member's `react`: adds (`on`) or takes back its user's `emoji` on the message at
    /// `seq`. Stored at once; the room hears of it at the next flush.
    pub async fn react(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        room_name: &str,
        seq: u64,
        emoji: &str,
        on: bool,
    ) -> Result<(), Refusal> {
        validate_room(room_name)?;
        let emoji_index = reaction_index(emoji)?;
        if !conn.is_in(room_name) {
            return Err(Refusal::new(
                ErrorCode::NotJoined,
                format!("join room {room_name:?} before reacting in it"),
            ));
        }
        let last = self
            .room(room_name)
            .and_then(|r| r.state.lock().last_seq)
            .unwrap_or(0);
        let missing = || {
            Refusal::new(
                ErrorCode::NotFound,
                format!("room {room_name:?} has no message at seq {seq} to react to"),
            )
        };
        if seq == 0 || seq > last {
            return Err(missing());
        }
        self.check_not_muted(room_name, conn.user.id, "react")
            .await?;
        let change = ReactionChange {
            user_id: conn.user.id,
            emoji: emoji_index,
            on,
        };
        match self.store.react(room_name, seq, change).await? {
            Reacted::Changed(state) => {
                self.reactions.changed(room_name, state);
                Ok(())
            }
            Reacted::Missing => Err(missing()),
            Reacted::Full => Err(Refusal::new(
                ErrorCode::TooLarge,
                format!("{MAX_REACTORS_PER_EMOJI} people already reacted {emoji} to this message"),
            )),
        }
    }

    /// Sends `conn` the newest reactions this task knows of the room it just joined (the
    /// `joined` frame may hold older ones).
    pub fn send_reactions(self: &Arc<Self>, conn: &Arc<Conn>, room_name: &str) {
        let states = self.reactions.all(room_name);
        if !states.is_empty() {
            conn.send(&ServerFrame::Reactions {
                room: room_name,
                messages: &states,
            });
        }
    }

    /// Reactions from another task: keep the newest states (the frame itself reaches the
    /// local members as it is).
    pub(super) fn deliver_reactions(self: &Arc<Self>, room_name: &str, json: &[u8]) {
        #[derive(Deserialize)]
        struct Frame {
            messages: Vec<MessageReactions>,
        }
        match serde_json::from_slice::<Frame>(json) {
            Ok(f) => self.reactions.merge(room_name, f.messages),
            Err(e) => {
                tracing::warn!(error = %e, room = room_name, "A reactions event could not be read")
            }
        }
    }

    /// Every [`REACTIONS_FLUSH_MS`]: each room's changed reactions to its members here and
    /// on the other tasks, as one frame and one event.
    pub(super) fn spawn_reactions(self: &Arc<Self>) {
        let hub = Arc::clone(self);
        self.background.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(REACTIONS_FLUSH_MS));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let live = |room: &str| hub.room(room).is_some();
                for (room, states) in hub.reactions.take(&live) {
                    let json = ServerFrame::Reactions {
                        room: &room,
                        messages: &states,
                    }
                    .to_json();
                    let event = RoomEvent {
                        kind: EventKind::Reactions,
                        json,
                    };
                    hub.deliver_local(&room, &event);
                    if let Err(e) = hub.fanout.publish(&room, &event).await {
                        tracing::debug!(error = %e, "Could not publish reactions");
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(seq: u64, version: u64) -> MessageReactions {
        MessageReactions {
            seq,
            version,
            reactions: Vec::new(),
        }
    }

    #[test]
    fn changes_are_coalesced_per_flush_and_the_newest_version_wins() {
        let r = Reactions::default();
        let live = |_: &str| true;
        r.changed("a", state(4, 1));
        r.changed("a", state(4, 3));
        r.changed("a", state(4, 2));
        r.changed("a", state(5, 1));
        let flush = r.take(&live);
        assert_eq!(flush.len(), 1);
        let versions: Vec<(u64, u64)> = flush[0].1.iter().map(|s| (s.seq, s.version)).collect();
        assert_eq!(
            versions,
            vec![(4, 3), (5, 1)],
            "one state per message, the newest"
        );
        assert!(r.take(&live).is_empty(), "nothing changed since");
        r.merge("a", vec![state(4, 2), state(6, 1)]);
        assert!(
            r.take(&live).is_empty(),
            "another task's states are not sent again"
        );
        let all: Vec<(u64, u64)> = r.all("a").iter().map(|s| (s.seq, s.version)).collect();
        assert_eq!(all, vec![(4, 3), (5, 1), (6, 1)]);
        assert!(r.take(&|_: &str| false).is_empty());
        assert!(r.all("a").is_empty(), "forgotten once the room is gone");
    }

    #[test]
    fn a_room_keeps_the_newest_messages_only() {
        let r = Reactions::default();
        for seq in 1..=(KEPT_PER_ROOM as u64 + 10) {
            r.merge("a", vec![state(seq, 1)]);
        }
        let all = r.all("a");
        assert_eq!(all.len(), KEPT_PER_ROOM);
        assert_eq!(all[0].seq, 11);
    }
}
