//! Replies in the hub: a `send` with `reply_to` names a message of the same room; the hub
//! checks it is there and quotes it ([`ReplyRef`]: its seq, author and the start of its text),
//! so every client shows the same quote without reading the original. One store read (a
//! history page of one message) per reply, none for other sends.

use std::sync::Arc;

use super::Hub;
use crate::protocol::{ErrorCode, Refusal, ReplyRef};
use crate::store::HistoryQuery;

impl Hub {
    /// The quote of the message at `seq` in `room`, or `not_found` when the room holds none
    /// there (a deleted one is quoted as deleted, with no text).
    pub(super) async fn quote(self: &Arc<Self>, room: &str, seq: u64) -> Result<ReplyRef, Refusal> {
        let missing = || {
            Refusal::new(
                ErrorCode::NotFound,
                format!("room {room:?} has no message at seq {seq} to reply to"),
            )
        };
        let last = self
            .room(room)
            .and_then(|r| r.state.lock().last_seq)
            .unwrap_or(0);
        if seq == 0 || seq > last {
            return Err(missing());
        }
        let query = HistoryQuery {
            before: Some(seq + 1),
            after: Some(seq - 1),
            limit: 1,
        };
        let page = self.store.history(room, query).await?;
        page.messages
            .iter()
            .find(|m| m.seq == seq)
            .map(ReplyRef::of)
            .ok_or_else(missing)
    }
}
