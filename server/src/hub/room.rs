//! The pure state of one room on this task: its local members and the in-order delivery
//! machine. A seq is passed only once it is settled: its message delivered, or the store says
//! it was abandoned (a tombstone: no write of it can land any more). Early arrivals wait;
//! every missing seq is timed on its own, so a new gap is never rushed because an old one was
//! slow. No I/O, no awaits: the hub calls it under the room's lock.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::conn::Conn;

/// Settled seqs remembered (with their frames) for members joining while the room moves.
const RECENT: usize = 1024;
/// Bytes of those frames a room keeps at most (the oldest go first): a room of big
/// messages remembers fewer of them, and joins further back read the store.
pub(crate) const RECENT_BYTES: usize = 256 * 1024;
/// Rooms one task follows at once: a join of one more is refused `unavailable`.
pub(crate) const MAX_ROOMS_PER_TASK: usize = 1024;
/// Shortest interval between two `typing` frames of one user in one room that this task
/// passes on (more are dropped silently: the web client sends one every 3 s while typing).
pub(crate) const TYPING_EVERY: Duration = Duration::from_secs(1);
/// Most missing seqs looked at in one pass (a counter far ahead is settled in steps).
const MAX_HOLES: u64 = 1024;

/// One local member of a room.
pub(super) struct Member {
    pub conn: Arc<Conn>,
    /// Messages up to this seq were in the member's `joined` frame (or before its join
    /// point): skip them.
    pub floor: u64,
}

#[derive(Default)]
pub(super) struct RoomState {
    pub(super) members: Vec<Member>,
    /// user id -> local connections of that user in the room.
    pub(super) users: HashMap<u64, usize>,
    /// user id -> when a `typing` of theirs was last passed on (a local user's entry goes
    /// with the user).
    pub(super) typed: HashMap<u64, Instant>,
    /// Highest seq settled in order (delivered, or abandoned); `None` until the first join
    /// says where the room starts.
    pub(super) last_seq: Option<u64>,
    /// Messages that arrived ahead of a missing seq.
    pub(super) pending: BTreeMap<u64, Bytes>,
    /// Where the room started on this task: seqs at or below it were never followed here
    /// (a catch-up join below it settles them in the store itself).
    pub(super) started_at: u64,
    /// Seqs above `last_seq` the store marked abandoned.
    abandoned: BTreeSet<u64>,
    /// Highest seq known to be reserved (any arrival, or the room's counter).
    horizon: u64,
    /// Each missing seq and when it was first seen missing.
    holes: BTreeMap<u64, Instant>,
    /// The last settled seqs, each with its message frame (`None`: abandoned).
    recent: VecDeque<(u64, Option<Bytes>)>,
    /// Bytes of the frames in `recent` (at most [`RECENT_BYTES`]).
    recent_bytes: usize,
    /// Presence changes gathered for a big room's next summary.
    pub(super) presence: super::presence::Summary,
    /// A repair task is working on this room.
    pub(super) repairing: bool,
    /// Removed from the map (last member left): joins must use a new room.
    pub(super) closed: bool,
}

pub(super) struct Room {
    pub(super) name: String,
    pub(super) state: Mutex<RoomState>,
    /// Held by the join that starts the room on this task (reads it from the store); the
    /// joins that arrive meanwhile wait for it, then answer from the room's memory.
    pub(super) first_load: tokio::sync::Mutex<()>,
}

impl RoomState {
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

    /// Whether a `typing` of `user_id` at `now` is passed on: at most one per
    /// [`TYPING_EVERY`].
    pub(super) fn may_type(&mut self, user_id: u64, now: Instant) -> bool {
        match self.typed.get(&user_id) {
            Some(&at) if now.saturating_duration_since(at) < TYPING_EVERY => false,
            _ => {
                self.typed.insert(user_id, now);
                true
            }
        }
    }

    /// `user_id` sent a message: their next `typing` starts a new burst and is passed on.
    pub(super) fn typing_ended(&mut self, user_id: u64) {
        self.typed.remove(&user_id);
    }

    /// Where the room starts (the first join read it from the store): nothing at or below
    /// `last` is delivered here.
    pub(super) fn start_at(&mut self, last: u64) -> u64 {
        if self.last_seq.is_some() {
            return 0;
        }
        self.last_seq = Some(last);
        self.started_at = last;
        self.horizon = self.horizon.max(last);
        self.pending.retain(|&s, _| s > last);
        self.abandoned.retain(|&s| s > last);
        self.advance()
    }

    /// Message `seq` exists: deliver it when it is next, else hold it. Returns how many
    /// members got a frame.
    pub(super) fn offer(&mut self, seq: u64, frame: Bytes) -> u64 {
        self.horizon = self.horizon.max(seq);
        if self.last_seq.is_some_and(|last| seq <= last) {
            return 0;
        }
        self.holes.remove(&seq);
        self.pending.insert(seq, frame);
        self.advance()
    }

    /// The store says `seq` was abandoned: pass over it when it is next.
    pub(super) fn abandoned(&mut self, seq: u64) -> u64 {
        self.horizon = self.horizon.max(seq);
        if self.last_seq.is_some_and(|last| seq <= last) {
            return 0;
        }
        self.holes.remove(&seq);
        self.abandoned.insert(seq);
        self.advance()
    }

    /// The room's counter says seqs up to `seq` are reserved.
    pub(super) fn reserved(&mut self, seq: u64) {
        self.horizon = self.horizon.max(seq);
    }

    /// The highest seq known to be reserved in the room.
    pub(super) fn horizon(&self) -> u64 {
        self.horizon
    }

    /// Some reserved seq is not settled yet.
    pub(super) fn has_gap(&self) -> bool {
        self.last_seq.is_some_and(|last| last < self.horizon)
    }

    fn advance(&mut self) -> u64 {
        let Some(mut last) = self.last_seq else {
            return 0;
        };
        let mut n = 0;
        loop {
            let next = last + 1;
            if let Some(frame) = self.pending.remove(&next) {
                n += self.fan_to(&frame, |m| next > m.floor);
                self.remember(next, Some(frame));
            } else if self.abandoned.remove(&next) {
                self.remember(next, None);
            } else {
                break;
            }
            last = next;
        }
        self.last_seq = Some(last);
        self.holes.retain(|&s, _| s > last);
        n
    }

    fn remember(&mut self, seq: u64, frame: Option<Bytes>) {
        let len = frame.as_ref().map_or(0, Bytes::len);
        while !self.recent.is_empty()
            && (self.recent.len() == RECENT || self.recent_bytes + len > RECENT_BYTES)
        {
            if let Some((_, Some(old))) = self.recent.pop_front() {
                self.recent_bytes -= old.len();
            }
        }
        self.recent_bytes += len;
        self.recent.push_back((seq, frame));
    }

    /// A moderator deleted `seq`: its frame, wherever it still waits (ahead of a gap) or is
    /// remembered for joins, becomes `tombstone`, so no one gets the deleted text from here.
    pub(super) fn redact(&mut self, seq: u64, tombstone: &Bytes) {
        if let Some(frame) = self.pending.get_mut(&seq) {
            *frame = tombstone.clone();
        }
        for (s, frame) in self.recent.iter_mut() {
            if *s == seq
                && let Some(old) = frame
            {
                self.recent_bytes = self.recent_bytes - old.len() + tombstone.len();
                *frame = Some(tombstone.clone());
            }
        }
    }

    /// Missing seqs that have been missing for at least `wait` (each timed from when it was
    /// first seen missing), oldest first.
    pub(super) fn overdue(&mut self, now: Instant, wait: Duration) -> Vec<u64> {
        let Some(last) = self.last_seq else {
            return Vec::new();
        };
        let top = self.horizon.min(last.saturating_add(MAX_HOLES));
        for seq in last + 1..=top {
            if !self.pending.contains_key(&seq) && !self.abandoned.contains(&seq) {
                self.holes.entry(seq).or_insert(now);
            }
        }
        self.holes
            .iter()
            .filter(|&(_, &since)| now.saturating_duration_since(since) >= wait)
            .map(|(&seq, _)| seq)
            .collect()
    }

    /// The latest `n` settled messages (oldest first), each seq with its frame, when memory
    /// is known to hold them: it remembers at least `n`, or reaches back to the room's first
    /// seq. `None` otherwise (the store answers).
    pub(super) fn latest(&self, n: usize) -> Option<Vec<(u64, Bytes)>> {
        let last = self.last_seq?;
        let from_first = self.recent.front().map_or(last == 0, |(s, _)| *s == 1);
        // From the newest back: a join looks at its page, not at all 1024 remembered seqs.
        let mut page: Vec<(u64, Bytes)> = self
            .recent
            .iter()
            .rev()
            .filter_map(|(s, f)| Some((*s, f.clone()?)))
            .take(n)
            .collect();
        if page.len() < n && !from_first {
            return None;
        }
        page.reverse();
        Some(page)
    }

    /// The settled messages in `(after, upto]`, each seq with its frame, or `None` when they
    /// are no longer remembered.
    pub(super) fn settled_since(&self, after: u64, upto: u64) -> Option<Vec<(u64, Bytes)>> {
        if after >= upto {
            return Some(Vec::new());
        }
        let first = self.recent.front()?.0;
        if first > after + 1 {
            return None;
        }
        Some(
            self.recent
                .iter()
                .filter(|(s, _)| *s > after && *s <= upto)
                .filter_map(|(s, f)| Some((*s, f.clone()?)))
                .collect(),
        )
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

    fn room_at(last: u64, floor: u64) -> (RoomState, mpsc::Receiver<Outbound>) {
        let (m, rx) = member(floor);
        let mut st = RoomState {
            members: vec![m],
            ..Default::default()
        };
        st.start_at(last);
        (st, rx)
    }

    fn seqs_of(picked: Option<Vec<(u64, Bytes)>>) -> Option<Vec<u64>> {
        picked.map(|v| v.into_iter().map(|(s, _)| s).collect())
    }

    #[test]
    fn the_latest_page_comes_from_memory_only_when_memory_holds_all_of_it() {
        // An empty room: nothing, known.
        let (mut st, _rx) = room_at(0, 0);
        assert_eq!(seqs_of(st.latest(3)), Some(vec![]));
        // From the first seq on, fewer than asked is still all of them (2 abandoned).
        st.offer(1, frame(1));
        st.abandoned(2);
        st.offer(3, frame(3));
        assert_eq!(seqs_of(st.latest(3)), Some(vec![1, 3]));
        st.offer(4, frame(4));
        st.offer(5, frame(5));
        assert_eq!(seqs_of(st.latest(3)), Some(vec![3, 4, 5]));
        // Started at 4 on this task: two messages do not make a page of three...
        let (mut st, _rx) = room_at(4, 0);
        st.offer(5, frame(5));
        st.offer(6, frame(6));
        assert_eq!(seqs_of(st.latest(3)), None);
        assert_eq!(seqs_of(st.latest(2)), Some(vec![5, 6]));
        // ... and one not settled yet is not in it.
        st.offer(8, frame(8));
        assert_eq!(seqs_of(st.latest(2)), Some(vec![5, 6]));
        // A room whose start is not known yet answers nothing.
        assert_eq!(seqs_of(RoomState::default().latest(1)), None);
    }

    #[test]
    fn typing_passes_once_per_interval_per_user() {
        let mut st = RoomState::default();
        let t0 = Instant::now();
        assert!(st.may_type(1, t0));
        assert!(!st.may_type(1, t0 + TYPING_EVERY / 2));
        assert!(st.may_type(2, t0), "another user has their own interval");
        assert!(st.may_type(1, t0 + TYPING_EVERY));
    }

    #[test]
    fn a_message_ends_a_typing_burst() {
        let mut st = RoomState::default();
        let t0 = Instant::now();
        assert!(st.may_type(1, t0));
        st.typing_ended(1);
        assert!(
            st.may_type(1, t0 + TYPING_EVERY / 10),
            "typing again right after a send is passed on"
        );
        assert!(
            !st.may_type(1, t0 + TYPING_EVERY / 5),
            "then throttled again"
        );
    }

    #[test]
    fn early_messages_wait_for_the_gap_and_leave_in_order() {
        let (mut st, mut rx) = room_at(0, 0);
        st.offer(2, frame(2));
        st.offer(3, frame(3));
        assert_eq!(seqs(&mut rx), Vec::<u8>::new());
        assert!(st.has_gap());
        st.offer(1, frame(1));
        assert_eq!(seqs(&mut rx), vec![1, 2, 3]);
        assert!(!st.has_gap());
        // Repeats are dropped.
        st.offer(2, frame(2));
        assert_eq!(seqs(&mut rx), Vec::<u8>::new());
    }

    #[test]
    fn a_missing_seq_is_passed_only_once_abandoned_never_on_time_alone() {
        let (mut st, mut rx) = room_at(4, 0);
        st.offer(6, frame(6));
        let now = Instant::now();
        assert_eq!(st.overdue(now, Duration::from_secs(5)), Vec::<u64>::new());
        let later = now + Duration::from_secs(3600);
        assert_eq!(st.overdue(later, Duration::from_secs(5)), vec![5]);
        // However long it waits, 6 stays held until 5 is settled.
        assert_eq!(seqs(&mut rx), Vec::<u8>::new());
        assert_eq!(st.last_seq, Some(4));
        st.abandoned(5);
        assert_eq!(seqs(&mut rx), vec![6]);
        assert_eq!(st.last_seq, Some(6));
    }

    #[test]
    fn a_slow_write_is_delivered_in_order_however_late_it_lands() {
        let (mut st, mut rx) = room_at(0, 0);
        for seq in 2..=9 {
            st.offer(seq, frame(seq));
        }
        assert_eq!(seqs(&mut rx), Vec::<u8>::new());
        st.offer(1, frame(1));
        assert_eq!(seqs(&mut rx), (1..=9).collect::<Vec<u8>>());
    }

    #[test]
    fn each_gap_is_timed_from_when_it_opened() {
        let (mut st, _rx) = room_at(0, 0);
        let t0 = Instant::now();
        st.offer(2, frame(2));
        assert_eq!(st.overdue(t0, Duration::from_secs(5)), Vec::<u64>::new());
        // 1 is settled; a new gap (3) opens 10 s after the first one did.
        st.offer(1, frame(1));
        st.offer(4, frame(4));
        let t10 = t0 + Duration::from_secs(10);
        assert_eq!(st.overdue(t10, Duration::from_secs(5)), Vec::<u64>::new());
        assert_eq!(
            st.overdue(t10 + Duration::from_secs(5), Duration::from_secs(5)),
            vec![3]
        );
    }

    #[test]
    fn a_counter_ahead_of_deliveries_is_a_gap() {
        let (mut st, _rx) = room_at(3, 0);
        assert!(!st.has_gap());
        st.reserved(5);
        assert!(st.has_gap());
        let now = Instant::now();
        assert_eq!(st.overdue(now, Duration::ZERO), vec![4, 5]);
        st.offer(4, frame(4));
        st.abandoned(5);
        assert!(!st.has_gap());
    }

    #[test]
    fn a_member_skips_what_its_joined_frame_held() {
        let (mut st, mut rx) = room_at(5, 7);
        for seq in 6..=9 {
            st.offer(seq, frame(seq));
        }
        assert_eq!(seqs(&mut rx), vec![8, 9]);
    }

    #[test]
    fn before_the_room_knows_its_start_everything_waits() {
        let (m, mut rx) = member(0);
        let mut st = RoomState {
            members: vec![m],
            ..Default::default()
        };
        st.offer(3, frame(3));
        st.offer(4, frame(4));
        assert_eq!(seqs(&mut rx), Vec::<u8>::new());
        st.start_at(3);
        assert_eq!(seqs(&mut rx), vec![4]);
    }

    #[test]
    fn a_redacted_seq_is_remembered_and_held_as_its_tombstone() {
        let mut st = RoomState::default();
        st.start_at(0);
        st.offer(1, Bytes::from_static(b"one"));
        st.offer(3, Bytes::from_static(b"three"));
        let gone = Bytes::from_static(b"gone");
        st.redact(1, &gone);
        st.redact(3, &gone);
        assert_eq!(st.settled_since(0, 1), Some(vec![(1, gone.clone())]));
        st.offer(2, Bytes::from_static(b"two"));
        assert_eq!(
            st.settled_since(0, 3),
            Some(vec![
                (1, gone.clone()),
                (2, Bytes::from_static(b"two")),
                (3, gone)
            ])
        );
    }

    #[test]
    fn a_room_remembers_at_most_its_bytes_of_frames() {
        let (mut st, _rx) = room_at(0, 0);
        let big = Bytes::from(vec![b'x'; RECENT_BYTES / 4 + 1]);
        for seq in 1..=8 {
            st.offer(seq, big.clone());
        }
        assert!(st.recent_bytes <= RECENT_BYTES, "{}", st.recent_bytes);
        assert_eq!(st.recent.len(), 3, "the three newest fit");
        assert_eq!(seqs_of(st.settled_since(5, 8)), Some(vec![6, 7, 8]));
        assert_eq!(
            st.settled_since(2, 8),
            None,
            "older ones come from the store"
        );
    }

    #[test]
    fn recently_settled_frames_are_remembered_for_joins() {
        let (mut st, _rx) = room_at(0, 0);
        for seq in 1..=3 {
            st.offer(seq, frame(seq));
        }
        st.abandoned(4);
        st.offer(5, frame(5));
        let got = st.settled_since(1, 5).expect("remembered");
        assert_eq!(got, vec![(2, frame(2)), (3, frame(3)), (5, frame(5))]);
        assert_eq!(st.settled_since(5, 5), Some(Vec::new()));
        // Before what is remembered: the caller must read the store again.
        let (mut st, _rx) = room_at(100, 0);
        st.offer(101, frame(101));
        assert!(st.settled_since(50, 101).is_none());
    }
}
