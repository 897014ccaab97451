//! Reactions in the store seam: what a `react` did to a message's stored reactions, and the
//! pure toggle both backends share where they edit the state themselves (the embedded store;
//! DynamoDB edits its number sets in place with one `UpdateItem`).

use crate::protocol::{
    ChatMessage, MAX_REACTORS_PER_EMOJI, MessageReactions, REACTION_EMOJI, Reaction,
};

/// What [`super::Store::react`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reacted {
    /// The message's reactions now (its version raised by one).
    Changed(MessageReactions),
    /// No message at that seq, or it was deleted.
    Missing,
    /// The emoji already lists [`MAX_REACTORS_PER_EMOJI`] users.
    Full,
}

/// One user's change to one message's reactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactionChange {
    pub user_id: u64,
    /// Index into [`REACTION_EMOJI`].
    pub emoji: usize,
    /// Add (`true`) or take back.
    pub on: bool,
}

/// Applies `change` to `message` (not deleted): the new state, or `Full`.
pub fn toggle(message: &mut ChatMessage, change: ReactionChange) -> Reacted {
    let emoji = REACTION_EMOJI[change.emoji];
    let pos = message.reactions.iter().position(|r| r.emoji == emoji);
    match (pos, change.on) {
        (Some(i), true) => {
            let users = &mut message.reactions[i].users;
            if let Err(at) = users.binary_search(&change.user_id) {
                if users.len() >= MAX_REACTORS_PER_EMOJI {
                    return Reacted::Full;
                }
                users.insert(at, change.user_id);
            }
        }
        (None, true) => message.reactions.push(Reaction {
            emoji: emoji.to_string(),
            users: vec![change.user_id],
        }),
        (Some(i), false) => {
            message.reactions[i].users.retain(|&u| u != change.user_id);
            if message.reactions[i].users.is_empty() {
                message.reactions.remove(i);
            }
        }
        (None, false) => {}
    }
    message
        .reactions
        .sort_by_key(|r| REACTION_EMOJI.iter().position(|e| *e == r.emoji));
    message.reactions_version += 1;
    Reacted::Changed(MessageReactions {
        seq: message.seq,
        version: message.reactions_version,
        reactions: message.reactions.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::User;

    fn message() -> ChatMessage {
        ChatMessage {
            room: "r".into(),
            seq: 4,
            user: User {
                id: 1,
                nickname: "Al".into(),
                avatar: "fox".into(),
            },
            text: "x".into(),
            ts: 0,
            client_msg_id: "c".into(),
            attachment: None,
            deleted: false,
            reactions: Vec::new(),
            reactions_version: 0,
            reply_to: None,
            moderator: false,
        }
    }

    fn on(user_id: u64, emoji: usize) -> ReactionChange {
        ReactionChange {
            user_id,
            emoji,
            on: true,
        }
    }

    #[test]
    fn toggles_keep_the_set_order_and_raise_the_version() {
        let mut m = message();
        toggle(&mut m, on(5, 2));
        toggle(&mut m, on(3, 0));
        toggle(&mut m, on(2, 0));
        toggle(&mut m, on(2, 0));
        let Reacted::Changed(state) = toggle(&mut m, on(9, 2)) else {
            panic!("changed")
        };
        assert_eq!(state.version, 5);
        assert_eq!(state.reactions[0].emoji, REACTION_EMOJI[0]);
        assert_eq!(state.reactions[0].users, vec![2, 3], "once each, ascending");
        assert_eq!(state.reactions[1].users, vec![5, 9]);
        toggle(
            &mut m,
            ReactionChange {
                on: false,
                ..on(5, 2)
            },
        );
        toggle(
            &mut m,
            ReactionChange {
                on: false,
                ..on(9, 2)
            },
        );
        assert_eq!(m.reactions.len(), 1, "an emoji nobody holds is gone");
    }

    #[test]
    fn an_emoji_lists_at_most_the_limit() {
        let mut m = message();
        for u in 0..MAX_REACTORS_PER_EMOJI as u64 {
            toggle(&mut m, on(u, 1));
        }
        assert_eq!(toggle(&mut m, on(100_000, 1)), Reacted::Full);
        assert!(
            matches!(toggle(&mut m, on(7, 1)), Reacted::Changed(_)),
            "a repeat is no new entry"
        );
        assert!(matches!(
            toggle(&mut m, on(100_000, 3)),
            Reacted::Changed(_)
        ));
    }
}
