//! Moderation in the hub: a moderator's `delete` (a tombstone in the store, then a `deleted`
//! event to the room on every task) and `mute` (a mute record in the store, then a `muted`
//! event every task applies), and the cache of mutes a `send` is checked against (`send`).
//!
//! Each task keeps a room's mutes in memory, read from the store when the room opens on the
//! task (in the background), when a send finds them missing (the send waits) or older than [`MUTE_REFRESH`] (one background read; sends go on
//! with the copy), and updated at once by every `muted` event: one store read per room per
//! task per [`MUTE_REFRESH`] at most, none per message. Every action
//! is logged with the moderator, the action, the room and the target.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use serde::Deserialize;

use super::Hub;
use crate::conn::Conn;
use crate::fanout::{EventKind, RoomEvent};
use crate::protocol::{
    ChatMessage, ErrorCode, Refusal, ServerFrame, validate_mute_secs, validate_room,
};

/// How long a task trusts the mutes it read for a room (a `muted` event updates them sooner).
pub const MUTE_REFRESH: Duration = Duration::from_secs(30);

/// Most rooms whose mutes a task keeps; beyond it the stalest are dropped (and read again).
const MAX_CACHED_ROOMS: usize = 4096;

/// One room's mutes as this task last read them.
struct RoomMutes {
    read_at: Instant,
    /// user id -> muted until (ms since the epoch).
    until: HashMap<u64, i64>,
    /// A read of the store is under way (sends meanwhile use what is here).
    refreshing: bool,
}

/// What this task knows of a user's mute in a room.
enum Known {
    /// Until when the user is muted (`None`: not muted), as last read or updated.
    Until(Option<i64>),
    /// The same, older than [`MUTE_REFRESH`]: the caller reads the store again, in the
    /// background (one caller per room).
    Stale(Option<i64>),
    /// Nothing read yet: the caller reads the store first.
    Missing,
}

/// The mutes of the rooms this task has checked.
#[derive(Default)]
pub(super) struct Mutes {
    rooms: Mutex<HashMap<String, RoomMutes>>,
}

impl Mutes {
    /// What this task knows of `user_id`'s mute in `room`; a stale answer is given to one
    /// caller only (marked refreshing), so one store read per room refreshes it.
    fn known(&self, room: &str, user_id: u64, now: Instant) -> Known {
        let mut rooms = self.rooms.lock();
        let Some(entry) = rooms.get_mut(room) else {
            return Known::Missing;
        };
        let until = entry.until.get(&user_id).copied();
        if entry.refreshing || now.saturating_duration_since(entry.read_at) < MUTE_REFRESH {
            return Known::Until(until);
        }
        entry.refreshing = true;
        Known::Stale(until)
    }

    /// A background refresh failed: the next stale answer tries again.
    fn refresh_failed(&self, room: &str) {
        if let Some(entry) = self.rooms.lock().get_mut(room) {
            entry.refreshing = false;
        }
    }

    fn fill(&self, room: &str, until: HashMap<u64, i64>, read_at: Instant) {
        let mut rooms = self.rooms.lock();
        if rooms.len() >= MAX_CACHED_ROOMS && !rooms.contains_key(room) {
            rooms.retain(|_, e| read_at.saturating_duration_since(e.read_at) < MUTE_REFRESH);
            if rooms.len() >= MAX_CACHED_ROOMS {
                rooms.clear();
            }
        }
        rooms.insert(
            room.to_string(),
            RoomMutes {
                read_at,
                until,
                refreshing: false,
            },
        );
    }

    /// A `muted` event (from this task or another): applies it to the room's cached mutes.
    fn apply(&self, room: &str, json: &[u8]) {
        #[derive(Deserialize)]
        struct Muted {
            user_id: u64,
            until: i64,
        }
        let Ok(muted) = serde_json::from_slice::<Muted>(json) else {
            tracing::warn!(room, "A muted event could not be read");
            return;
        };
        if let Some(entry) = self.rooms.lock().get_mut(room) {
            entry.until.insert(muted.user_id, muted.until);
        }
    }

    /// Forgets a room's mutes (a room new on this task may have missed `muted` events).
    pub(super) fn forget(&self, room: &str) {
        self.rooms.lock().remove(room);
    }
}

/// The `message` frame of the tombstone a `deleted` event carries.
fn tombstone_frame(json: &[u8]) -> Option<Bytes> {
    #[derive(Deserialize)]
    struct Deleted {
        message: ChatMessage,
    }
    let deleted = serde_json::from_slice::<Deleted>(json).ok()?;
    Some(crate::conn::text_frame(
        &ServerFrame::Message(&deleted.message).to_json(),
    ))
}

fn moderator_of(conn: &Conn, action: &str) -> Result<String, Refusal> {
    conn.moderator().map(str::to_owned).ok_or_else(|| {
        Refusal::new(
            ErrorCode::Forbidden,
            format!(
                "only a moderator may {action}; connect with a moderator credential \
                 (one that has expired no longer counts)"
            ),
        )
    })
}

fn joined(conn: &Conn, room: &str, action: &str) -> Result<(), Refusal> {
    validate_room(room)?;
    if !conn.is_in(room) {
        return Err(Refusal::new(
            ErrorCode::NotJoined,
            format!("join room {room:?} before you {action} in it"),
        ));
    }
    Ok(())
}

impl Hub {
    /// A moderator's `delete`: the message at `seq` becomes its tombstone in the store, and
    /// every member of the room on every task gets `deleted`.
    pub async fn delete(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        room_name: &str,
        seq: u64,
    ) -> Result<(), Refusal> {
        let moderator = moderator_of(conn, "delete messages")?;
        joined(conn, room_name, "delete messages")?;
        let Some(tombstone) = self.store.delete_message(room_name, seq).await? else {
            return Err(Refusal::new(
                ErrorCode::NotFound,
                format!("room {room_name:?} has no message at seq {seq}"),
            ));
        };
        tracing::info!(
            moderator,
            action = "delete",
            room = room_name,
            seq,
            target_user = tombstone.user.id,
            "Moderation"
        );
        let json = ServerFrame::Deleted {
            room: room_name,
            seq,
            message: &tombstone,
        }
        .to_json();
        self.emit_moderation(
            room_name,
            RoomEvent {
                kind: EventKind::Deleted { seq },
                json,
            },
        )
        .await;
        Ok(())
    }

    /// A moderator's `mute`: `user_id` may not send in the room for `secs` (0 lifts it), on
    /// every task. The muted user's connections and the moderator get `muted`.
    pub async fn mute(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        room_name: &str,
        user_id: u64,
        secs: u64,
    ) -> Result<(), Refusal> {
        let moderator = moderator_of(conn, "mute")?;
        joined(conn, room_name, "mute")?;
        validate_mute_secs(secs)?;
        // Bounded by MAX_MUTE_SECS: no overflow.
        let until = crate::now_ms() + (secs * 1000) as i64;
        self.store.set_mute(room_name, user_id, until).await?;
        tracing::info!(
            moderator,
            action = if secs == 0 { "unmute" } else { "mute" },
            room = room_name,
            target_user = user_id,
            secs,
            "Moderation"
        );
        let json = ServerFrame::Muted {
            room: room_name,
            user_id,
            until,
        }
        .to_json();
        if conn.user.id != user_id {
            conn.push(crate::conn::text_frame(&json));
        }
        self.emit_moderation(
            room_name,
            RoomEvent {
                kind: EventKind::Muted { user_id },
                json,
            },
        )
        .await;
        Ok(())
    }

    /// Until when `user_id` is muted in `room` (ms since the epoch), from this task's copy:
    /// read from the store first when there is none, refreshed in the background when stale.
    pub(super) async fn muted_until(
        self: &Arc<Self>,
        room: &str,
        user_id: u64,
    ) -> Result<Option<i64>, Refusal> {
        Ok(match self.mutes.known(room, user_id, Instant::now()) {
            Known::Until(until) => until,
            Known::Stale(until) => {
                self.refresh_mutes(room);
                until
            }
            Known::Missing => self.read_mutes(room).await?.get(&user_id).copied(),
        })
    }

    /// `muted` when `user_id` may not `action` in `room` now, naming the seconds left.
    pub(super) async fn check_not_muted(
        self: &Arc<Self>,
        room: &str,
        user_id: u64,
        action: &str,
    ) -> Result<(), Refusal> {
        let until = self.muted_until(room, user_id).await?;
        let now = crate::now_ms();
        if let Some(until) = until
            && until > now
        {
            let secs = (until - now + 999) / 1000;
            return Err(Refusal::new(
                ErrorCode::Muted,
                format!(
                    "a moderator muted you in room {room:?}; you may {action} again in {secs} s"
                ),
            ));
        }
        Ok(())
    }

    /// Reads the room's mutes from the store into this task's copy.
    async fn read_mutes(self: &Arc<Self>, room: &str) -> Result<HashMap<u64, i64>, Refusal> {
        let read_at = Instant::now();
        let mutes = self.store.mutes(room, crate::now_ms()).await?;
        let until: HashMap<u64, i64> = mutes.iter().map(|m| (m.user_id, m.until_ms)).collect();
        self.mutes.fill(room, until.clone(), read_at);
        Ok(until)
    }

    /// [`Hub::read_mutes`] in the background; sends meanwhile use the copy already here (or,
    /// with none yet, read it themselves).
    pub(super) fn refresh_mutes(self: &Arc<Self>, room: &str) {
        let hub = Arc::clone(self);
        let room = room.to_string();
        self.background.spawn(async move {
            if hub.read_mutes(&room).await.is_err() {
                hub.mutes.refresh_failed(&room);
            }
        });
    }

    async fn emit_moderation(self: &Arc<Self>, room_name: &str, event: RoomEvent) {
        self.deliver_local(room_name, &event);
        if let Err(e) = self.fanout.publish(room_name, &event).await {
            tracing::warn!(error = %e, room = room_name, "Could not publish a moderation event");
        }
    }

    /// Delivers a moderation event to this task's members of the room (under its lock):
    /// `deleted` to everyone (and the seq's frames held or remembered become its tombstone),
    /// `muted` to the muted user (and the mute applied to this task's cache).
    pub(super) fn deliver_moderation(
        self: &Arc<Self>,
        room_name: &str,
        st: &mut super::room::RoomState,
        event: &RoomEvent,
        frame: &Bytes,
    ) -> u64 {
        match event.kind {
            EventKind::Deleted { seq } => {
                if let Some(tombstone) = tombstone_frame(&event.json) {
                    st.redact(seq, &tombstone);
                }
                st.fan_to(frame, |_| true)
            }
            EventKind::Muted { user_id } => {
                self.mutes.apply(room_name, &event.json);
                st.fan_to(frame, |m| m.conn.user.id == user_id)
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_copy_is_refreshed_by_one_caller_and_events_apply_at_once() {
        let mutes = Mutes::default();
        let t0 = Instant::now();
        assert!(matches!(mutes.known("a", 7, t0), Known::Missing));
        mutes.fill("a", HashMap::from([(7, 5_000)]), t0);
        assert!(matches!(mutes.known("a", 7, t0), Known::Until(Some(5_000))));
        assert!(matches!(mutes.known("a", 8, t0), Known::Until(None)));
        mutes.apply(
            "a",
            br#"{"type":"muted","room":"a","user_id":8,"until":9000}"#,
        );
        assert!(matches!(mutes.known("a", 8, t0), Known::Until(Some(9_000))));

        let later = t0 + MUTE_REFRESH;
        assert!(matches!(
            mutes.known("a", 7, later),
            Known::Stale(Some(5_000))
        ));
        assert!(
            matches!(mutes.known("a", 7, later), Known::Until(Some(5_000))),
            "one refresh at a time"
        );
        mutes.refresh_failed("a");
        assert!(matches!(mutes.known("a", 7, later), Known::Stale(_)));
        mutes.forget("a");
        assert!(matches!(mutes.known("a", 7, later), Known::Missing));
    }
}
