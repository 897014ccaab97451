//! A `send`, checked in one place and in this order: the frame's fields (room,
//! client_msg_id), the sender's membership of the room, the sender's mute, the attachment's
//! signed token, the text, the message it answers (`replies`); then the group commit, which refuses when the store is too far
//! behind. The ack (or an `unavailable` error) follows when the store has answered, from
//! the commit loop. The connection's frame rate is checked by `ws` before any frame is
//! decoded (every frame counts, whatever it is); a send refused for it is named the same way.

use std::sync::Arc;

use super::Hub;
use crate::auth::Tokens;
use crate::conn::Conn;
use crate::protocol::{
    Attachment, ErrorCode, Refusal, validate_client_msg_id, validate_room, validate_text,
};
use crate::store::NewMessage;

/// A client's `send` frame.
#[derive(Debug)]
pub struct SendRequest {
    pub room: String,
    pub client_msg_id: String,
    pub text: String,
    /// The token of an uploaded image (`POST /api/uploads/{id}/complete`).
    pub attachment: Option<String>,
    /// The seq of the message it answers.
    pub reply_to: Option<u64>,
}

/// A refused `send`: why, and the `client_msg_id` it names, so the client knows which
/// message to retry or drop.
#[derive(Debug, thiserror::Error)]
#[error("send {client_msg_id:?} refused: {refusal}")]
pub struct SendRefused {
    pub client_msg_id: String,
    pub refusal: Refusal,
}

impl Hub {
    /// Checks a `send` and queues it for the group commit; `tokens` open its attachment.
    pub async fn send(
        self: &Arc<Self>,
        conn: &Arc<Conn>,
        tokens: &Tokens,
        send: SendRequest,
    ) -> Result<(), SendRefused> {
        let SendRequest {
            room,
            client_msg_id,
            text,
            attachment,
            reply_to,
        } = send;
        let checked = async {
            let attachment = self
                .check_send(conn, tokens, &room, &client_msg_id, &text, attachment)
                .await?;
            let reply = match reply_to {
                Some(seq) => Some(Box::new(self.quote(&room, seq).await?)),
                None => None,
            };
            Ok((attachment, reply))
        };
        let (attachment, reply_to) = match checked.await {
            Ok(checked) => checked,
            Err(refusal) => {
                return Err(SendRefused {
                    client_msg_id,
                    refusal,
                });
            }
        };
        // The message ends the sender's typing burst (clients clear the indicator on it): the
        // next `typing` is news, whatever the throttle last passed.
        if let Some(open) = self.room(&room) {
            open.state.lock().typing_ended(conn.user.id);
        }
        let message = NewMessage {
            room,
            user: conn.user.clone(),
            client_msg_id,
            text,
            ts: crate::now_ms(),
            attachment: attachment.map(Box::new),
            reply_to,
            moderator: conn.moderator().is_some(),
        };
        self.committer
            .submit(Arc::clone(conn), message)
            .map_err(|full| SendRefused {
                client_msg_id: full.client_msg_id,
                refusal: Refusal::new(
                    ErrorCode::Unavailable,
                    "the server is saving too many messages; retry shortly",
                ),
            })
    }

    /// Every check of a send before the commit, in order; the opened attachment.
    async fn check_send(
        self: &Arc<Self>,
        conn: &Conn,
        tokens: &Tokens,
        room: &str,
        client_msg_id: &str,
        text: &str,
        attachment: Option<String>,
    ) -> Result<Option<Attachment>, Refusal> {
        validate_room(room)?;
        validate_client_msg_id(client_msg_id)?;
        if !conn.is_in(room) {
            return Err(Refusal::new(
                ErrorCode::NotJoined,
                format!("join room {room:?} before sending to it"),
            ));
        }
        self.check_not_muted(room, conn.user.id, "send").await?;
        let attachment = attachment
            .map(|token| crate::uploads::open_attachment(tokens, conn.user.id, &token))
            .transpose()?;
        validate_text(text, attachment.is_some())?;
        Ok(attachment)
    }
}
