//! The wire format of one room event on a Redis channel: a fixed 18-byte header (version,
//! kind, seq or user id, origin task) followed by the frame's JSON exactly as the publishing
//! task encoded it, so a receiving task hands those bytes on without re-serialising.
//!
//! ```text
//! byte 0      version (1)
//! byte 1      kind: b'M' message, b'P' presence, b'T' typing, b'D' deleted, b'U' muted,
//!             b'R' receipts
//! bytes 2..10  seq (message, deleted) or user id (presence, typing, muted; 0 for receipts),
//!             big-endian u64
//! bytes 10..18 origin: the publishing task's random instance id, big-endian u64
//! bytes 18..   the frame's JSON
//! ```

use bytes::{BufMut, Bytes};

use crate::fanout::{EventKind, RoomEvent};

const VERSION: u8 = 1;
const HEADER: usize = 18;

/// A decoded envelope: who published it and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The publishing task's instance id (lets a task skip its own events).
    pub origin: u64,
    pub event: RoomEvent,
}

/// Why a payload is not an envelope this build understands.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("envelope of {0} bytes is shorter than its {HEADER}-byte header")]
    TooShort(usize),
    #[error("envelope version {0} is not {VERSION}")]
    Version(u8),
    #[error("envelope kind {0:#04x} is not M, P, T, D, U or R")]
    Kind(u8),
}

/// Encodes `event` from task `origin`.
pub fn encode(origin: u64, event: &RoomEvent) -> Vec<u8> {
    let (kind, id) = match event.kind {
        EventKind::Message { seq } => (b'M', seq),
        EventKind::Presence { user_id } => (b'P', user_id),
        EventKind::Typing { user_id } => (b'T', user_id),
        EventKind::Deleted { seq } => (b'D', seq),
        EventKind::Muted { user_id } => (b'U', user_id),
        EventKind::Receipts => (b'R', 0),
        EventKind::Reactions => (b'E', 0),
    };
    let mut out = Vec::with_capacity(HEADER + event.json.len());
    out.put_u8(VERSION);
    out.put_u8(kind);
    out.put_u64(id);
    out.put_u64(origin);
    out.extend_from_slice(&event.json);
    out
}

/// Decodes a payload; the event's JSON shares `payload`'s buffer (no copy).
pub fn decode(payload: Bytes) -> Result<Envelope, EnvelopeError> {
    if payload.len() < HEADER {
        return Err(EnvelopeError::TooShort(payload.len()));
    }
    if payload[0] != VERSION {
        return Err(EnvelopeError::Version(payload[0]));
    }
    let id = u64_at(&payload, 2);
    let origin = u64_at(&payload, 10);
    let kind = match payload[1] {
        b'M' => EventKind::Message { seq: id },
        b'P' => EventKind::Presence { user_id: id },
        b'T' => EventKind::Typing { user_id: id },
        b'D' => EventKind::Deleted { seq: id },
        b'U' => EventKind::Muted { user_id: id },
        b'R' => EventKind::Receipts,
        b'E' => EventKind::Reactions,
        other => return Err(EnvelopeError::Kind(other)),
    };
    Ok(Envelope {
        origin,
        event: RoomEvent {
            kind,
            json: payload.slice(HEADER..),
        },
    })
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, json: &'static str) -> RoomEvent {
        RoomEvent {
            kind,
            json: Bytes::from_static(json.as_bytes()),
        }
    }

    #[test]
    fn every_kind_round_trips_with_its_origin_and_bytes() {
        for kind in [
            EventKind::Message { seq: 457 },
            EventKind::Presence { user_id: 17 },
            EventKind::Typing { user_id: u64::MAX },
            EventKind::Deleted { seq: 12 },
            EventKind::Muted { user_id: 9 },
            EventKind::Receipts,
            EventKind::Reactions,
        ] {
            let e = event(kind, r#"{"type":"message","text":"hi"}"#);
            let wire = encode(0xdead_beef_0000_0001, &e);
            assert_eq!(wire.len(), HEADER + e.json.len());
            let back = decode(Bytes::from(wire)).expect("decodes");
            assert_eq!(back.origin, 0xdead_beef_0000_0001);
            assert_eq!(back.event, e);
        }
    }

    #[test]
    fn an_empty_frame_is_allowed_but_a_short_header_is_not() {
        let wire = encode(1, &event(EventKind::Message { seq: 1 }, ""));
        assert_eq!(
            decode(Bytes::from(wire.clone()))
                .expect("decodes")
                .event
                .json,
            ""
        );
        assert_eq!(
            decode(Bytes::from(wire[..HEADER - 1].to_vec())),
            Err(EnvelopeError::TooShort(HEADER - 1))
        );
    }

    #[test]
    fn unknown_versions_and_kinds_are_named() {
        let mut wire = encode(1, &event(EventKind::Message { seq: 1 }, "{}"));
        wire[0] = 9;
        assert_eq!(
            decode(Bytes::from(wire.clone())),
            Err(EnvelopeError::Version(9))
        );
        wire[0] = VERSION;
        wire[1] = b'X';
        let err = decode(Bytes::from(wire)).expect_err("bad kind");
        assert_eq!(err, EnvelopeError::Kind(b'X'));
        assert!(err.to_string().contains("0x58"), "{err}");
    }
}
