//! The frames and limits of the public contract (PROTOCOL.md sections 2–3) as serde types,
//! with the validation every entry point shares. Pure: no I/O, safe to fuzz.

use serde::{Deserialize, Serialize};

/// Largest WebSocket message a client may send (close 1009 above it).
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// Message text length in characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Room id length.
pub const MAX_ROOM_LEN: usize = 64;
/// Nickname length in characters, after trimming.
pub const NICKNAME_CHARS: std::ops::RangeInclusive<usize> = 2..=15;
/// `client_msg_id` length.
pub const MAX_CLIENT_MSG_ID_LEN: usize = 64;
/// History page size without `limit`, and on `join` without `after`.
pub const DEFAULT_HISTORY: usize = 50;
/// Largest `limit` on the history route.
pub const MAX_HISTORY_LIMIT: usize = 200;
/// Most messages a `join` with `after` returns before `has_more`.
pub const MAX_JOIN_CATCH_UP: usize = 500;
/// Seconds a new connection has to send `hello`.
pub const HELLO_TIMEOUT_SECS: u64 = 10;

/// WebSocket close codes the server uses.
pub mod close {
    pub const NORMAL: u16 = 1000;
    pub const INVALID_UTF8: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const DRAINING: u16 = 1012;
    pub const UNAUTHORIZED: u16 = 4401;
}

/// A guest as every client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub nickname: String,
    pub avatar: String,
}

/// The server identity shown in `welcome` and `/version`.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    pub color: String,
    pub version: &'static str,
    pub task: String,
}

/// A stored chat message: the body of a `message` frame and of history pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub room: String,
    pub seq: u64,
    pub user: User,
    pub text: String,
    /// Milliseconds since the Unix epoch when the server accepted it.
    pub ts: i64,
    pub client_msg_id: String,
}

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Hello {
        token: String,
    },
    Join {
        room: String,
        #[serde(default)]
        after: Option<u64>,
    },
    Leave {
        room: String,
    },
    Send {
        room: String,
        client_msg_id: String,
        text: String,
    },
    Typing {
        room: String,
    },
    Ping,
}

/// Frames the server sends.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Welcome {
        user: &'a User,
        server: &'a ServerInfo,
    },
    Joined {
        room: &'a str,
        last_seq: u64,
        online: usize,
        members: &'a [User],
        messages: &'a [ChatMessage],
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        has_more: bool,
    },
    Ack {
        room: &'a str,
        client_msg_id: &'a str,
        seq: u64,
    },
    Message(&'a ChatMessage),
    Presence {
        room: &'a str,
        online: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        joined: Option<&'a User>,
        #[serde(skip_serializing_if = "Option::is_none")]
        left: Option<&'a User>,
    },
    Typing {
        room: &'a str,
        user: &'a User,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<&'a str>,
    },
    Reconnect {
        reason: &'a str,
        retry_after_ms: u64,
    },
    Pong,
}

impl ServerFrame<'_> {
    /// The frame as JSON bytes, ready to be framed once and shared by every recipient.
    pub fn to_json(&self) -> bytes::Bytes {
        // Serialising these types cannot fail: no maps with non-string keys, no foreign Serialize impls.
        serde_json::to_vec(self)
            .unwrap_or_else(|e| unreachable!("server frame serialises: {e}"))
            .into()
    }
}

/// Error codes of the contract, on the WebSocket and over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    NotJoined,
    InvalidRoom,
    TooLarge,
    RateLimited,
    Unavailable,
    InvalidNickname,
    NotFound,
    Forbidden,
}

/// A request that breaks a rule of the contract, with the code and a message naming the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub code: ErrorCode,
    pub message: String,
}

impl Invalid {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Decodes one client text frame. Unknown fields are ignored; unknown types and bad shapes
/// are `bad_request` naming what was wrong.
pub fn decode_client_frame(text: &str) -> Result<ClientFrame, Invalid> {
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => Ok(frame),
        Err(err) => {
            // Tell an unknown type apart from a malformed known one.
            let kind = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
            let message = match kind {
                Some(kind)
                    if !["hello", "join", "leave", "send", "typing", "ping"]
                        .contains(&kind.as_str()) =>
                {
                    format!("unknown frame type {kind:?}")
                }
                Some(kind) => format!("invalid {kind:?} frame: {err}"),
                None => format!("a frame must be a JSON object with a string \"type\": {err}"),
            };
            Err(Invalid::new(ErrorCode::BadRequest, message))
        }
    }
}

/// Room ids: 1–64 of `[A-Za-z0-9_-]`.
pub fn validate_room(room: &str) -> Result<(), Invalid> {
    if room.is_empty()
        || room.len() > MAX_ROOM_LEN
        || !room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Invalid::new(
            ErrorCode::InvalidRoom,
            format!("room id must be 1-{MAX_ROOM_LEN} characters of A-Z a-z 0-9 _ -"),
        ));
    }
    Ok(())
}

/// Nicknames: 2–15 characters after trimming, no control characters. Returns the trimmed name.
pub fn validate_nickname(nickname: &str) -> Result<String, Invalid> {
    let trimmed = nickname.trim();
    let chars = trimmed.chars().count();
    if !NICKNAME_CHARS.contains(&chars) {
        return Err(Invalid::new(
            ErrorCode::InvalidNickname,
            format!(
                "nickname must be {}-{} characters after trimming, got {chars}",
                NICKNAME_CHARS.start(),
                NICKNAME_CHARS.end()
            ),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Invalid::new(
            ErrorCode::InvalidNickname,
            "nickname must not contain control characters",
        ));
    }
    Ok(trimmed.to_string())
}

/// Message text: 1–2000 characters.
pub fn validate_text(text: &str) -> Result<(), Invalid> {
    if text.trim().is_empty() {
        return Err(Invalid::new(
            ErrorCode::BadRequest,
            "text must not be empty",
        ));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(Invalid::new(
            ErrorCode::TooLarge,
            format!("text is {chars} characters; the limit is {MAX_TEXT_CHARS}"),
        ));
    }
    Ok(())
}

/// `client_msg_id`: 1–64 printable ASCII characters (a UUID fits).
pub fn validate_client_msg_id(id: &str) -> Result<(), Invalid> {
    if id.is_empty()
        || id.len() > MAX_CLIENT_MSG_ID_LEN
        || !id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Invalid::new(
            ErrorCode::BadRequest,
            format!("client_msg_id must be 1-{MAX_CLIENT_MSG_ID_LEN} printable ASCII characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_every_client_frame() {
        assert_eq!(
            decode_client_frame(r#"{"type":"join","room":"lobby","after":3,"extra":true}"#),
            Ok(ClientFrame::Join {
                room: "lobby".into(),
                after: Some(3)
            })
        );
        assert_eq!(
            decode_client_frame(r#"{"type":"ping"}"#),
            Ok(ClientFrame::Ping)
        );
        assert!(matches!(
            decode_client_frame(r#"{"type":"send","room":"a","client_msg_id":"x","text":"hi"}"#),
            Ok(ClientFrame::Send { .. })
        ));
    }

    #[test]
    fn names_unknown_types_and_bad_shapes() {
        let err = decode_client_frame(r#"{"type":"dance"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest);
        assert!(
            err.message.contains("unknown frame type \"dance\""),
            "{}",
            err.message
        );
        let err = decode_client_frame(r#"{"type":"join"}"#).unwrap_err();
        assert!(err.message.contains("room"), "{}", err.message);
        let err = decode_client_frame("[1,2]").unwrap_err();
        assert!(err.message.contains("\"type\""), "{}", err.message);
    }

    #[test]
    fn room_rules() {
        assert!(validate_room("lobby_1-A").is_ok());
        assert!(validate_room(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "ä", &"a".repeat(65), "a/b"] {
            assert_eq!(
                validate_room(bad).unwrap_err().code,
                ErrorCode::InvalidRoom,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn nickname_rules() {
        assert_eq!(validate_nickname("  Bob  ").unwrap(), "Bob");
        assert!(validate_nickname("ÅÄÖÅÄÖÅÄÖÅÄÖÅÄÖ").is_ok());
        for bad in ["B", " B ", "abcdefghijklmnop", "Bo\u{7}b", ""] {
            assert_eq!(
                validate_nickname(bad).unwrap_err().code,
                ErrorCode::InvalidNickname
            );
        }
    }

    #[test]
    fn text_rules() {
        assert!(validate_text("hi").is_ok());
        assert!(validate_text(&"é".repeat(2000)).is_ok());
        assert_eq!(
            validate_text(&"a".repeat(2001)).unwrap_err().code,
            ErrorCode::TooLarge
        );
        assert_eq!(validate_text("  ").unwrap_err().code, ErrorCode::BadRequest);
    }

    #[test]
    fn server_frames_serialise_as_the_contract_says() {
        let user = User {
            id: 1,
            nickname: "Bob".into(),
            avatar: "otter".into(),
        };
        let json = ServerFrame::Presence {
            room: "r",
            online: 2,
            joined: Some(&user),
            left: None,
        }
        .to_json();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["type"], "presence");
        assert_eq!(v["joined"]["nickname"], "Bob");
        assert!(v.get("left").is_none());
        let msg = ChatMessage {
            room: "r".into(),
            seq: 4,
            user,
            text: "t".into(),
            ts: 5,
            client_msg_id: "c".into(),
        };
        let v: serde_json::Value =
            serde_json::from_slice(&ServerFrame::Message(&msg).to_json()).unwrap();
        assert_eq!(v["type"], "message");
        assert_eq!(v["seq"], 4);
        assert_eq!(v["user"]["id"], 1);
    }

    proptest! {
        #[test]
        fn decoder_never_panics(input in ".{0,512}") {
            let _ = decode_client_frame(&input);
        }

        #[test]
        fn decoder_never_panics_on_json_like_input(
            kind in "(hello|join|leave|send|typing|ping|[a-z]{0,6})",
            room in ".{0,80}",
            after in proptest::option::of(any::<i64>()),
        ) {
            let frame = serde_json::json!({"type": kind, "room": room, "after": after, "text": room, "client_msg_id": room, "token": room});
            if let Ok(ClientFrame::Join { room: r, .. }) = decode_client_frame(&frame.to_string()) {
                prop_assert_eq!(r, room);
            }
        }
    }
}
