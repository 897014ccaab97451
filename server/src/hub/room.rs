//! The pure state of one room on this task: its local members and the in-order delivery
//! machine (deliver the next seq, hold early arrivals, skip a hole only when told). No I/O,
//! no awaits: the hub calls it under the room's lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::conn::Conn;

/// One local member of a room.
pub(super) struct Member {
    pub conn: Arc<Conn>,
    /// Messages up to this seq were in the member's `joined` frame: skip them.
    pub floor: u64,
}

#[derive(Default)]
pub(super) struct RoomState {
    pub(super) members: Vec<Member>,
    /// user id -> local connections of that user in the room.
    pub(super) users: HashMap<u64, usize>,
    /// Highest seq delivered in order; `None` until the first join reads it from the store.
    pub(super) last_seq: Option<u64>,
    /// Messages that arrived ahead of a missing seq.
    pub(super) pending: BTreeMap<u64, Bytes>,
    /// When the current gap opened.
    pub(super) gap_since: Option<Instant>,
    /// A repair task is scheduled for the current gap.
    pub(super) repairing: bool,
    /// Removed from the map (last member left): joins must use a new room.
    pub(super) closed: bool,
}

pub(super) struct Room {
    pub(super) name: String,
    pub(super) state: Mutex<RoomState>,
}

impl RoomState {
    /// Hands message `seq` to every member above its floor. Returns how many got it.
    pub(super) fn fan(&self, seq: u64, frame: &Bytes) -> u64 {
        self.fan_to(frame, |m| seq > m.floor)
    }

    /// Hands `frame` to every member `to` picks. Returns how many got it.
    pub(super) fn fan_to(&self, frame: &Bytes, to: impl Fn(&Member) -> bool) -> u64 {
        let mut n = 0;
        for m in self.members.iter().filter(|m| to(m)) {
            if m.conn.push(frame.clone()) {
                n += 1;
            }
        }
        n
    }

    /// Delivers `seq` if it is next (or `skip_holes`), else holds it. Then drains held
    /// messages that became next.
    pub(super) fn offer(&mut self, seq: u64, frame: Bytes, skip_holes: bool) -> u64 {
        let Some(last) = self.last_seq else {
            self.pending.insert(seq, frame);
            return 0;
        };
        if seq <= last {
            return 0;
        }
        let mut n = 0;
        if seq == last + 1 || skip_holes {
            n += self.fan(seq, &frame);
            self.last_seq = Some(seq);
        } else {
            self.pending.insert(seq, frame);
        }
        n + self.drain_pending(skip_holes)
    }

    pub(super) fn drain_pending(&mut self, skip_holes: bool) -> u64 {
        let mut n = 0;
        while let Some(entry) = self.pending.first_entry() {
            let last = self.last_seq.unwrap_or(0);
            let seq = *entry.key();
            if seq <= last {
                entry.remove();
            } else if seq == last + 1 || skip_holes {
                let frame = entry.remove();
                n += self.fan(seq, &frame);
                self.last_seq = Some(seq);
            } else {
                break;
            }
        }
        if self.pending.is_empty() {
            self.gap_since = None;
        } else if self.gap_since.is_none() {
            self.gap_since = Some(Instant::now());
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Outbound;
    use crate::protocol::User;
    use tokio::sync::mpsc;

    fn member(floor: u64) -> (Member, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(64);
        let user = User {
            id: 1,
            nickname: "Al".into(),
            avatar: "fox".into(),
        };
        let conn = Arc::new(Conn::new(
            1,
            "t/1".into(),
            user,
            tx,
            usize::MAX,
            Arc::default(),
        ));
        (Member { conn, floor }, rx)
    }

    fn seqs(rx: &mut mpsc::Receiver<Outbound>) -> Vec<u8> {
        let mut out = Vec::new();
        while let Ok(Outbound::Frame(f)) = rx.try_recv() {
            out.push(*f.last().unwrap());
        }
        out
    }

    fn frame(seq: u64) -> Bytes {
        Bytes::from(vec![u8::try_from(seq).unwrap()])
    }

    #[test]
    fn early_messages_wait_for_the_gap_and_leave_in_order() {
        let (m, mut rx) = member(0);
        let mut st = RoomState {
            members: vec![m],
            last_seq: Some(0),
            ..Default::default()
        };
        st.offer(2, frame(2), false);
        st.offer(3, frame(3), false);
        assert_eq!(seqs(&mut rx), Vec::<u8>::new());
        assert!(st.gap_since.is_some());
        st.offer(1, frame(1), false);
        assert_eq!(seqs(&mut rx), vec![1, 2, 3]);
        assert!(st.gap_since.is_none());
        // Repeats are dropped.
        st.offer(2, frame(2), false);
        assert_eq!(seqs(&mut rx), Vec::<u8>::new());
    }

    #[test]
    fn a_hole_is_skipped_only_when_told() {
        let (m, mut rx) = member(0);
        let mut st = RoomState {
            members: vec![m],
            last_seq: Some(4),
            ..Default::default()
        };
        st.offer(6, frame(6), false);
        assert_eq!(seqs(&mut rx), Vec::<u8>::new());
        st.drain_pending(true);
        assert_eq!(seqs(&mut rx), vec![6]);
        assert_eq!(st.last_seq, Some(6));
    }

    #[test]
    fn a_member_skips_what_its_joined_frame_held() {
        let (m, mut rx) = member(7);
        let mut st = RoomState {
            members: vec![m],
            last_seq: Some(5),
            ..Default::default()
        };
        for seq in 6..=9 {
            st.offer(seq, frame(seq), false);
        }
        assert_eq!(seqs(&mut rx), vec![8, 9]);
    }

    #[test]
    fn before_the_room_knows_its_seq_everything_waits() {
        let (m, mut rx) = member(0);
        let mut st = RoomState {
            members: vec![m],
            ..Default::default()
        };
        st.offer(3, frame(3), false);
        st.offer(4, frame(4), false);
        assert_eq!(seqs(&mut rx), Vec::<u8>::new());
        st.last_seq = Some(3);
        st.drain_pending(false);
        assert_eq!(seqs(&mut rx), vec![4]);
    }
}
