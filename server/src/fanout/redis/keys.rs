//! The names a room uses in Redis. Every key and channel of a room carries the hash tag
//! `{room}`, so in a Redis Cluster they all live in one slot: one shard carries a room's
//! events and presence, and a pipeline about one room never spans slots.

use crate::protocol::User;

/// The channel carrying a room's events.
pub fn channel(room: &str) -> String {
    format!("chat:{{{room}}}:events")
}

/// The room of a channel named by [`channel`].
pub fn room_of(channel: &str) -> Option<&str> {
    channel.strip_prefix("chat:{")?.strip_suffix("}:events")
}

/// The room of a channel named by [`channel`], reusing the channel's allocation.
pub fn into_room(mut channel: String) -> Option<String> {
    let len = room_of(&channel)?.len();
    const PREFIX: usize = "chat:{".len();
    channel.truncate(PREFIX + len);
    channel.drain(..PREFIX);
    Some(channel)
}

/// The sorted set of a room's presence: member = [`member`], score = expiry (Unix ms).
pub fn presence_key(room: &str) -> String {
    format!("chat:{{{room}}}:presence")
}

/// One task's registration of one user in a room: the task's instance id (16 hex digits)
/// then the user as JSON, so a reader needs no second lookup.
pub fn member(origin: u64, user: &User) -> String {
    let json = serde_json::to_string(user).unwrap_or_default();
    format!("{origin:016x}{json}")
}

/// The user of a presence member, if it parses.
pub fn member_user(member: &str) -> Option<User> {
    serde_json::from_str(member.get(16..)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rooms_keys_and_channel_share_one_hash_tag() {
        assert_eq!(channel("lobby"), "chat:{lobby}:events");
        assert_eq!(presence_key("lobby"), "chat:{lobby}:presence");
        assert_eq!(room_of(&channel("a-b_9")), Some("a-b_9"));
        assert_eq!(into_room(channel("a-b_9")).as_deref(), Some("a-b_9"));
        assert_eq!(into_room("chat:{lobby}:presence".into()), None);
        assert_eq!(room_of("chat:{lobby}:presence"), None);
        assert_eq!(room_of("other"), None);
    }

    #[test]
    fn a_member_names_its_task_and_carries_the_user() {
        let user = User {
            id: 17,
            nickname: "otter fan".into(),
            avatar: "otter".into(),
        };
        let m = member(0xabc, &user);
        assert!(m.starts_with("0000000000000abc{"), "{m}");
        assert_ne!(
            m,
            member(0xabd, &user),
            "two tasks register distinct members"
        );
        assert_eq!(member_user(&m), Some(user));
        assert_eq!(member_user("short"), None);
        assert_eq!(member_user("0000000000000abcnot json"), None);
    }
}
