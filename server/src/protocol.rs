//! The frames, error codes, close codes and limits of the public contract
//! (`docs/PROTOCOL.md`, which a test here keeps complete) as serde types and constants, with
//! the validation every entry point shares. Pure: no I/O, safe to fuzz.

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
/// Members listed by name in a `joined` frame (`online` counts them all).
pub const MAX_JOINED_MEMBERS: usize = 100;
/// Largest `limit` on the history route.
pub const MAX_HISTORY_LIMIT: usize = 200;
/// Most messages a `join` with `after` returns before `has_more`.
pub const MAX_JOIN_CATCH_UP: usize = 500;
/// Seconds a new connection has to send `hello`.
pub const HELLO_TIMEOUT_SECS: u64 = 10;
/// Frames a connection may send before `hello` (close 1008 above).
pub const MAX_FRAMES_BEFORE_HELLO: usize = 8;
/// Rooms one connection may be joined to at once (`too_many_rooms` above).
pub const MAX_ROOMS_PER_CONNECTION: usize = 32;
/// Bytes of messages (as JSON) in one `joined` frame before `has_more`.
pub const MAX_JOIN_BYTES: usize = 1024 * 1024;
/// `join`s that read history (a room not yet joined), per connection: burst, then one per
/// second (`rate_limited` above).
pub const JOIN_READS_BURST: u32 = 32;
/// Longest mute a moderator may give, in seconds (24 h); `bad_request` above.
pub const MAX_MUTE_SECS: u64 = 24 * 60 * 60;
/// Longest life of a moderator credential, in seconds (7 days).
pub const MAX_MODERATOR_TTL_SECS: u64 = 7 * 24 * 60 * 60;
/// Read positions that moved are sent to a room's members at most this often (milliseconds),
/// coalesced per room on each task.
pub const RECEIPTS_FLUSH_MS: u64 = 1000;
/// A user's read position in a room is written to the store at most this often (seconds).
pub const READ_STORE_SECS: u64 = 30;
/// Characters of the original's text a reply quotes (`reply_to.snippet`).
pub const REPLY_SNIPPET_CHARS: usize = 120;
/// Users one emoji may list on one message (`too_large` above).
pub const MAX_REACTORS_PER_EMOJI: usize = 1000;
/// Reactions that changed are sent to a room's members at most this often (milliseconds),
/// coalesced per room on each task.
pub const REACTIONS_FLUSH_MS: u64 = 500;
/// `react` frames per connection: burst, then [`REACTIONS_PER_SEC`] (`rate_limited` above).
pub const REACTIONS_BURST: u32 = 10;
/// `react` frames per connection per second, sustained.
pub const REACTIONS_PER_SEC: u32 = 2;
/// The emoji a message may be reacted with, in the order they are shown (and stored: new ones
/// are only ever appended).
pub const REACTION_EMOJI: [&str; 6] = ["👍", "❤️", "😂", "😮", "👏", "🎉"];

/// WebSocket close codes the server uses.
pub mod close {
    /// Every close code with its name, as `docs/PROTOCOL.md` lists them.
    pub const ALL: [(&str, u16); 7] = [
        ("NORMAL", NORMAL),
        ("PROTOCOL", PROTOCOL),
        ("INVALID_UTF8", INVALID_UTF8),
        ("POLICY", POLICY),
        ("TOO_BIG", TOO_BIG),
        ("DRAINING", DRAINING),
        ("UNAUTHORIZED", UNAUTHORIZED),
    ];

    pub const NORMAL: u16 = 1000;
    pub const PROTOCOL: u16 = 1002;
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
    /// Git commit of the build (`unknown` when built without git).
    pub git_sha: &'static str,
    /// Build time, RFC 3339 UTC.
    pub built_at: &'static str,
    pub task: String,
}

/// A stored chat message: the body of a `message` frame and of history pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub room: String,
    pub seq: u64,
    pub user: User,
    /// Empty only when the message carries an attachment.
    pub text: String,
    /// Milliseconds since the Unix epoch when the server accepted it.
    pub ts: i64,
    pub client_msg_id: String,
    /// An image shared with the message (absent on text-only messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// A moderator deleted it: `text` is empty and `attachment` gone; the seq stays, so
    /// history paging and ordering hold (only present when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Who reacted with what, in [`REACTION_EMOJI`] order (absent when nobody did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// Rises with every change of `reactions` (absent while 0): the newest state wins.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reactions_version: u64,
    /// The message this one answers, as it was when the reply was sent (absent on others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Box<ReplyRef>>,
    /// Sent from a connection with a valid moderator credential (set by the server only; only
    /// present when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moderator: bool,
}

/// What a reply quotes of the message it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyRef {
    pub seq: u64,
    pub user: User,
    /// The start of its text, at most [`REPLY_SNIPPET_CHARS`] characters with `…` when cut,
    /// whitespace runs as one space; empty for an image without text and a deleted message.
    pub snippet: String,
    /// The original was deleted by a moderator before the reply (only present when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl ReplyRef {
    /// The quote of `original`.
    pub fn of(original: &ChatMessage) -> Self {
        let flat = original
            .text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let mut snippet: String = flat.chars().take(REPLY_SNIPPET_CHARS).collect();
        if flat.chars().count() > REPLY_SNIPPET_CHARS {
            snippet.push('…');
        }
        Self {
            seq: original.seq,
            user: original.user.clone(),
            snippet,
            deleted: original.deleted,
        }
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One emoji on one message and the users who reacted with it (at least one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub emoji: String,
    /// User ids, ascending; at most [`MAX_REACTORS_PER_EMOJI`].
    pub users: Vec<u64>,
}

/// One message's reactions after a change, as the `reactions` frame carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReactions {
    pub seq: u64,
    pub version: u64,
    pub reactions: Vec<Reaction>,
}

/// The index of `emoji` in [`REACTION_EMOJI`], or `bad_request` naming the set.
pub fn reaction_index(emoji: &str) -> Result<usize, Refusal> {
    REACTION_EMOJI
        .iter()
        .position(|e| *e == emoji)
        .ok_or_else(|| {
            Refusal::new(
                ErrorCode::BadRequest,
                format!("emoji must be one of {}", REACTION_EMOJI.join(" ")),
            )
        })
}

impl ChatMessage {
    /// What a deleted message leaves in history: its seq, author, time and id, without its
    /// text or image.
    pub fn into_tombstone(mut self) -> Self {
        self.text.clear();
        self.attachment = None;
        self.deleted = true;
        self.reactions.clear();
        self
    }
}

/// An image a message carries, as the server measured it when it was uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Where the image is served: `/uploads/{name}` (embedded) or the CDN's URL (S3).
    pub url: String,
    /// `image/jpeg`, `image/png`, `image/gif` or `image/webp`, from its bytes.
    pub content_type: String,
    /// Pixels, so a page reserves the space before the image loads.
    pub width: u32,
    pub height: u32,
    /// Size of the file.
    pub bytes: u64,
}

/// The `type` of every [`ClientFrame`].
pub const CLIENT_FRAME_TYPES: [&str; 10] = [
    "hello", "join", "leave", "send", "typing", "ping", "delete", "mute", "read", "react",
];

/// Frames a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Hello {
        token: String,
        /// A moderator credential (`chat-server moderator-token`): the connection may then
        /// `delete` and `mute`.
        #[serde(default)]
        moderator: Option<String>,
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
        /// May be empty (`""`) when `attachment` is given.
        #[serde(default)]
        text: String,
        /// The `token` of `POST /api/uploads/{id}/complete`: an image checked by the server.
        #[serde(default)]
        attachment: Option<String>,
        /// The seq of the room's message this one answers.
        #[serde(default)]
        reply_to: Option<u64>,
    },
    Typing {
        room: String,
    },
    Ping,
    /// Moderators only: replaces the message at `seq` by a tombstone, live on every task.
    Delete {
        room: String,
        seq: u64,
    },
    /// Moderators only: `user_id` may not send in `room` for `secs` (0 lifts a mute).
    Mute {
        room: String,
        user_id: u64,
        secs: u64,
    },
    /// The sender has seen the room's messages up to `seq` (a lower one than before is ignored).
    Read {
        room: String,
        seq: u64,
    },
    /// Adds (`on`) or takes back the sender's `emoji` on the message at `seq`.
    React {
        room: String,
        seq: u64,
        emoji: String,
        on: bool,
    },
}

/// Frames the server sends.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Welcome {
        user: &'a User,
        server: &'a ServerInfo,
        /// The moderator's name, when `hello` carried a valid moderator credential.
        #[serde(skip_serializing_if = "Option::is_none")]
        moderator: Option<&'a str>,
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
    /// A big room's presence changes over a second, netted out (`hub/presence.rs`).
    #[serde(rename = "presence")]
    PresenceSummary {
        room: &'a str,
        online: usize,
        joined_users: &'a [User],
        left_users: &'a [User],
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
    /// A moderator deleted the message at `seq`: show `message` (its tombstone) instead.
    Deleted {
        room: &'a str,
        seq: u64,
        message: &'a ChatMessage,
    },
    /// `user_id` may not send in `room` until `until` (ms since the epoch; in the past when a
    /// mute is lifted). To the muted user's connections and the moderator.
    Muted {
        room: &'a str,
        user_id: u64,
        until: i64,
    },
    /// Read positions: `[user_id, seq]` pairs, each the highest seq that user has seen.
    Receipts {
        room: &'a str,
        seen: &'a [(u64, u64)],
    },
    /// Messages whose reactions changed, each with its whole new state (coalesced).
    Reactions {
        room: &'a str,
        messages: &'a [MessageReactions],
    },
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
    TooManyRooms,
    UnsupportedType,
    InvalidImage,
    Muted,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::NotJoined,
        ErrorCode::InvalidRoom,
        ErrorCode::TooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::InvalidNickname,
        ErrorCode::NotFound,
        ErrorCode::Forbidden,
        ErrorCode::TooManyRooms,
        ErrorCode::UnsupportedType,
        ErrorCode::InvalidImage,
        ErrorCode::Muted,
    ];
}

/// A request that breaks a rule of the contract, with the code and a message naming the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The `error` frame that tells the client; `client_msg_id` names a refused send.
    pub fn frame<'a>(&'a self, client_msg_id: Option<&'a str>) -> ServerFrame<'a> {
        ServerFrame::Error {
            code: self.code,
            message: &self.message,
            client_msg_id,
        }
    }
}

/// Decodes one client text frame. Unknown fields are ignored; unknown types and bad shapes
/// are `bad_request` naming what was wrong.
pub fn decode_client_frame(text: &str) -> Result<ClientFrame, Refusal> {
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => Ok(frame),
        Err(err) => {
            // Tell an unknown type apart from a malformed known one.
            let kind = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
            let message = match kind {
                Some(kind) if !CLIENT_FRAME_TYPES.contains(&kind.as_str()) => {
                    format!("unknown frame type {kind:?}")
                }
                Some(kind) => format!("invalid {kind:?} frame: {err}"),
                None => format!("a frame must be a JSON object with a string \"type\": {err}"),
            };
            Err(Refusal::new(ErrorCode::BadRequest, message))
        }
    }
}

/// Room ids: 1–64 of `[A-Za-z0-9_-]`.
pub fn validate_room(room: &str) -> Result<(), Refusal> {
    if room.is_empty()
        || room.len() > MAX_ROOM_LEN
        || !room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Refusal::new(
            ErrorCode::InvalidRoom,
            format!("room id must be 1-{MAX_ROOM_LEN} characters of A-Z a-z 0-9 _ -"),
        ));
    }
    Ok(())
}

/// Characters a nickname may not contain beyond the control characters: bidi overrides,
/// embeddings, isolates and marks (they reorder or hide what others read), and zero-width or
/// invisible format characters (they make look-alike names).
fn is_deceptive(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E0000}'..='\u{E007F}')
}

/// Nicknames: 2–15 characters after trimming; no control, bidi-override or zero-width
/// characters. Returns the trimmed name.
pub fn validate_nickname(nickname: &str) -> Result<String, Refusal> {
    let trimmed = nickname.trim();
    let chars = trimmed.chars().count();
    if !NICKNAME_CHARS.contains(&chars) {
        return Err(Refusal::new(
            ErrorCode::InvalidNickname,
            format!(
                "nickname must be {}-{} characters after trimming, got {chars}",
                NICKNAME_CHARS.start(),
                NICKNAME_CHARS.end()
            ),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Refusal::new(
            ErrorCode::InvalidNickname,
            "nickname must not contain control characters",
        ));
    }
    if trimmed.chars().any(is_deceptive) {
        return Err(Refusal::new(
            ErrorCode::InvalidNickname,
            "nickname must not contain invisible, zero-width or text-direction characters",
        ));
    }
    Ok(trimmed.to_string())
}

/// Message text: 1–2000 characters, or 0–2000 on a message with an attachment.
pub fn validate_text(text: &str, has_attachment: bool) -> Result<(), Refusal> {
    if text.trim().is_empty() && !has_attachment {
        return Err(Refusal::new(
            ErrorCode::BadRequest,
            "text must not be empty",
        ));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(Refusal::new(
            ErrorCode::TooLarge,
            format!("text is {chars} characters; the limit is {MAX_TEXT_CHARS}"),
        ));
    }
    Ok(())
}

/// `client_msg_id`: 1–64 printable ASCII characters (a UUID fits).
pub fn validate_client_msg_id(id: &str) -> Result<(), Refusal> {
    if id.is_empty()
        || id.len() > MAX_CLIENT_MSG_ID_LEN
        || !id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Refusal::new(
            ErrorCode::BadRequest,
            format!("client_msg_id must be 1-{MAX_CLIENT_MSG_ID_LEN} printable ASCII characters"),
        ));
    }
    Ok(())
}

/// Mute length: 0 (lifts a mute) to [`MAX_MUTE_SECS`].
pub fn validate_mute_secs(secs: u64) -> Result<(), Refusal> {
    if secs > MAX_MUTE_SECS {
        return Err(Refusal::new(
            ErrorCode::BadRequest,
            format!("a mute lasts at most {MAX_MUTE_SECS} seconds (24 h); got {secs}"),
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
        // Bidi overrides and isolates, zero-width characters, invisible fillers.
        for bad in [
            "Bob\u{202E}gnp.exe",
            "\u{2067}Bob",
            "Bo\u{200B}b",
            "Bo\u{200D}b",
            "\u{FEFF}Bob",
            "Bo\u{2060}b",
            "Bob\u{3164}",
            "Bo\u{200F}b",
        ] {
            let err = validate_nickname(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidNickname, "{bad:?}");
            assert!(err.message.contains("zero-width"), "{}", err.message);
        }
        assert!(validate_nickname("Zoë 😀").is_ok());
        assert!(validate_nickname("محمد").is_ok());
    }

    #[test]
    fn text_rules() {
        assert!(validate_text("hi", false).is_ok());
        assert!(validate_text(&"é".repeat(2000), false).is_ok());
        assert_eq!(
            validate_text(&"a".repeat(2001), false).unwrap_err().code,
            ErrorCode::TooLarge
        );
        assert_eq!(
            validate_text(&"a".repeat(2001), true).unwrap_err().code,
            ErrorCode::TooLarge
        );
        assert_eq!(
            validate_text("  ", false).unwrap_err().code,
            ErrorCode::BadRequest
        );
        assert!(validate_text("", true).is_ok(), "an image needs no text");
    }

    #[test]
    fn a_reply_quotes_the_start_of_the_text_on_one_line() {
        let mut m = ChatMessage {
            room: "r".into(),
            seq: 7,
            user: User {
                id: 2,
                nickname: "Bo".into(),
                avatar: "owl".into(),
            },
            text: "two\n\n  lines".into(),
            ts: 0,
            client_msg_id: "c".into(),
            attachment: None,
            deleted: false,
            reactions: Vec::new(),
            reactions_version: 0,
            reply_to: None,
            moderator: false,
        };
        let r = ReplyRef::of(&m);
        assert_eq!((r.seq, r.user.id, r.snippet.as_str()), (7, 2, "two lines"));
        m.text = "é".repeat(REPLY_SNIPPET_CHARS + 1);
        let r = ReplyRef::of(&m);
        assert_eq!(r.snippet.chars().count(), REPLY_SNIPPET_CHARS + 1);
        assert!(r.snippet.ends_with('…'));
        m.text = "é".repeat(REPLY_SNIPPET_CHARS);
        assert!(!ReplyRef::of(&m).snippet.ends_with('…'));
    }

    #[test]
    fn mute_rules() {
        assert!(validate_mute_secs(0).is_ok());
        assert!(validate_mute_secs(MAX_MUTE_SECS).is_ok());
        let err = validate_mute_secs(MAX_MUTE_SECS + 1).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest);
        assert!(err.message.contains("86400"), "{}", err.message);
    }

    #[test]
    fn a_tombstone_keeps_the_seq_and_drops_the_content() {
        let m = ChatMessage {
            room: "r".into(),
            seq: 9,
            user: User {
                id: 3,
                nickname: "Eve".into(),
                avatar: "fox".into(),
            },
            text: "abuse".into(),
            ts: 5,
            client_msg_id: "c".into(),
            attachment: Some(Attachment {
                url: "/uploads/x.png".into(),
                content_type: "image/png".into(),
                width: 1,
                height: 1,
                bytes: 10,
            }),
            deleted: false,
            reactions: Vec::new(),
            reactions_version: 0,
            reply_to: None,
            moderator: false,
        };
        let t = m.into_tombstone();
        assert_eq!((t.seq, t.user.id, t.ts), (9, 3, 5));
        assert!(t.text.is_empty() && t.attachment.is_none() && t.deleted);
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["deleted"], true);
        assert!(v.get("attachment").is_none());
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
            attachment: None,
            deleted: false,
            reactions: Vec::new(),
            reactions_version: 0,
            reply_to: None,
            moderator: false,
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

    /// `docs/PROTOCOL.md` lists every frame type, error code, close code and limit of this
    /// module, each limit with its value: adding one here without documenting it fails.
    #[test]
    fn protocol_doc_lists_every_frame_code_and_limit() {
        let doc = include_str!("../../docs/PROTOCOL.md");
        let row = |first: &str| {
            doc.lines()
                .find(|l| l.starts_with(&format!("| {first} |")))
                .unwrap_or_else(|| panic!("docs/PROTOCOL.md has no table row for {first}"))
        };
        let mut missing = Vec::new();

        // Client frames: every variant has its type in CLIENT_FRAME_TYPES.
        let client_type = |f: &ClientFrame| match f {
            ClientFrame::Hello { .. } => "hello",
            ClientFrame::Join { .. } => "join",
            ClientFrame::Leave { .. } => "leave",
            ClientFrame::Send { .. } => "send",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::Ping => "ping",
            ClientFrame::Delete { .. } => "delete",
            ClientFrame::Mute { .. } => "mute",
            ClientFrame::Read { .. } => "read",
            ClientFrame::React { .. } => "react",
        };
        for t in CLIENT_FRAME_TYPES {
            let json = match t {
                "hello" => r#"{"type":"hello","token":"t"}"#.to_string(),
                "join" | "leave" | "typing" => format!(r#"{{"type":"{t}","room":"r"}}"#),
                "send" => r#"{"type":"send","room":"r","client_msg_id":"c","text":"x"}"#.into(),
                "delete" => r#"{"type":"delete","room":"r","seq":1}"#.into(),
                "mute" => r#"{"type":"mute","room":"r","user_id":2,"secs":60}"#.into(),
                "read" => r#"{"type":"read","room":"r","seq":3}"#.into(),
                "react" => r#"{"type":"react","room":"r","seq":3,"emoji":"👍","on":true}"#.into(),
                _ => format!(r#"{{"type":"{t}"}}"#),
            };
            let frame = decode_client_frame(&json).expect("every client type decodes");
            assert_eq!(client_type(&frame), t);
        }
        let client_doc = doc
            .split("### Client frames")
            .nth(1)
            .and_then(|rest| rest.split("### Server frames").next())
            .unwrap_or_default();
        for t in CLIENT_FRAME_TYPES {
            if !client_doc.contains(&format!("| `{t}` |")) {
                missing.push(format!("client frame {t}"));
            }
        }

        // Server frames: one of each variant (the match makes a new variant fail to compile
        // until it is added here).
        let user = User {
            id: 1,
            nickname: "Al".into(),
            avatar: "fox".into(),
        };
        let info = ServerInfo {
            color: "blue".into(),
            version: "0",
            git_sha: "0123",
            built_at: "2026-01-01T00:00:00Z",
            task: "t".into(),
        };
        let message = ChatMessage {
            room: "r".into(),
            seq: 1,
            user: user.clone(),
            text: "x".into(),
            ts: 0,
            client_msg_id: "c".into(),
            attachment: None,
            deleted: false,
            reactions: Vec::new(),
            reactions_version: 0,
            reply_to: None,
            moderator: false,
        };
        let frames = [
            ServerFrame::Welcome {
                user: &user,
                server: &info,
                moderator: None,
            },
            ServerFrame::Joined {
                room: "r",
                last_seq: 0,
                online: 0,
                members: &[],
                messages: &[],
                has_more: false,
            },
            ServerFrame::Ack {
                room: "r",
                client_msg_id: "c",
                seq: 1,
            },
            ServerFrame::Message(&message),
            ServerFrame::Presence {
                room: "r",
                online: 1,
                joined: None,
                left: None,
            },
            ServerFrame::PresenceSummary {
                room: "r",
                online: 1,
                joined_users: &[],
                left_users: &[],
            },
            ServerFrame::Typing {
                room: "r",
                user: &user,
            },
            ServerFrame::Error {
                code: ErrorCode::BadRequest,
                message: "m",
                client_msg_id: None,
            },
            ServerFrame::Reconnect {
                reason: "draining",
                retry_after_ms: 0,
            },
            ServerFrame::Pong,
            ServerFrame::Deleted {
                room: "r",
                seq: 1,
                message: &message,
            },
            ServerFrame::Muted {
                room: "r",
                user_id: 2,
                until: 0,
            },
            ServerFrame::Receipts {
                room: "r",
                seen: &[(2, 1)],
            },
            ServerFrame::Reactions {
                room: "r",
                messages: &[],
            },
        ];
        for frame in &frames {
            match frame {
                ServerFrame::Welcome { .. }
                | ServerFrame::Joined { .. }
                | ServerFrame::Ack { .. }
                | ServerFrame::Message(_)
                | ServerFrame::Presence { .. }
                | ServerFrame::PresenceSummary { .. }
                | ServerFrame::Typing { .. }
                | ServerFrame::Error { .. }
                | ServerFrame::Reconnect { .. }
                | ServerFrame::Pong
                | ServerFrame::Deleted { .. }
                | ServerFrame::Muted { .. }
                | ServerFrame::Receipts { .. }
                | ServerFrame::Reactions { .. } => {}
            }
        }
        let server_doc = doc.split("### Server frames").nth(1).unwrap_or_default();
        for frame in &frames {
            let json: serde_json::Value =
                serde_json::from_slice(&frame.to_json()).expect("frames are JSON");
            let t = json["type"].as_str().expect("frames have a type");
            if !server_doc.contains(&format!("| `{t}` |")) {
                missing.push(format!("server frame {t}"));
            }
        }

        // Error codes (the match makes a new variant fail to compile until it is in ALL).
        for code in ErrorCode::ALL {
            match code {
                ErrorCode::BadRequest
                | ErrorCode::Unauthorized
                | ErrorCode::NotJoined
                | ErrorCode::InvalidRoom
                | ErrorCode::TooLarge
                | ErrorCode::RateLimited
                | ErrorCode::Unavailable
                | ErrorCode::InvalidNickname
                | ErrorCode::NotFound
                | ErrorCode::Forbidden
                | ErrorCode::TooManyRooms
                | ErrorCode::UnsupportedType
                | ErrorCode::InvalidImage
                | ErrorCode::Muted => {}
            }
            let name = serde_json::to_value(code).expect("codes serialise");
            let name = name.as_str().expect("codes are strings");
            if !doc.lines().any(|l| l.starts_with(&format!("| `{name}` |"))) {
                missing.push(format!("error code {name}"));
            }
        }

        // Close codes: number and name on one row.
        for (name, code) in close::ALL {
            let line = row(&code.to_string());
            if !line.contains(&format!("`{name}`")) {
                missing.push(format!("close code {code} {name}"));
            }
        }

        // Limits: name and value on one row.
        let limits = [
            ("MAX_FRAME_BYTES", MAX_FRAME_BYTES.to_string()),
            ("MAX_TEXT_CHARS", MAX_TEXT_CHARS.to_string()),
            ("MAX_ROOM_LEN", MAX_ROOM_LEN.to_string()),
            (
                "NICKNAME_CHARS",
                format!("{}–{}", NICKNAME_CHARS.start(), NICKNAME_CHARS.end()),
            ),
            ("MAX_CLIENT_MSG_ID_LEN", MAX_CLIENT_MSG_ID_LEN.to_string()),
            ("DEFAULT_HISTORY", DEFAULT_HISTORY.to_string()),
            ("MAX_JOINED_MEMBERS", MAX_JOINED_MEMBERS.to_string()),
            ("MAX_HISTORY_LIMIT", MAX_HISTORY_LIMIT.to_string()),
            ("MAX_JOIN_CATCH_UP", MAX_JOIN_CATCH_UP.to_string()),
            ("HELLO_TIMEOUT_SECS", HELLO_TIMEOUT_SECS.to_string()),
            (
                "MAX_FRAMES_BEFORE_HELLO",
                MAX_FRAMES_BEFORE_HELLO.to_string(),
            ),
            (
                "MAX_ROOMS_PER_CONNECTION",
                MAX_ROOMS_PER_CONNECTION.to_string(),
            ),
            ("MAX_JOIN_BYTES", MAX_JOIN_BYTES.to_string()),
            ("JOIN_READS_BURST", JOIN_READS_BURST.to_string()),
            ("MAX_MUTE_SECS", MAX_MUTE_SECS.to_string()),
            ("MAX_MODERATOR_TTL_SECS", MAX_MODERATOR_TTL_SECS.to_string()),
            ("RECEIPTS_FLUSH_MS", RECEIPTS_FLUSH_MS.to_string()),
            ("READ_STORE_SECS", READ_STORE_SECS.to_string()),
            ("REPLY_SNIPPET_CHARS", REPLY_SNIPPET_CHARS.to_string()),
            ("MAX_REACTORS_PER_EMOJI", MAX_REACTORS_PER_EMOJI.to_string()),
            ("REACTIONS_FLUSH_MS", REACTIONS_FLUSH_MS.to_string()),
            ("REACTIONS_BURST", REACTIONS_BURST.to_string()),
            ("REACTIONS_PER_SEC", REACTIONS_PER_SEC.to_string()),
            ("REACTION_EMOJI", REACTION_EMOJI.join(" ")),
        ];
        // Every constant of this file is in the lists above: a new one must be documented.
        let source = include_str!("protocol.rs");
        for line in source.lines() {
            let Some(rest) = line.trim_start().strip_prefix("pub const ") else {
                continue;
            };
            let name = rest.split(':').next().unwrap_or_default();
            let known = name == "CLIENT_FRAME_TYPES"
                || name == "ALL"
                || limits.iter().any(|(n, _)| *n == name)
                || close::ALL.iter().any(|(n, _)| *n == name);
            assert!(
                known,
                "constant {name} is neither a listed limit nor a close code"
            );
        }
        for (name, value) in &limits {
            let line = row(&format!("`{name}`"));
            if !line.contains(&format!("| {value} |")) {
                missing.push(format!("limit {name} = {value}"));
            }
        }
        assert!(
            missing.is_empty(),
            "docs/PROTOCOL.md is missing: {}",
            missing.join(", ")
        );
    }
}
