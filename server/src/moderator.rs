//! Moderator credentials: a token sealed by the task's [`Tokens`] for [`Purpose::Moderator`]
//! (the same HMAC keys and rotation as guest tokens, but a guest token never opens as one),
//! carrying the moderator's name and an expiry of at most [`MAX_MODERATOR_TTL_SECS`].
//! An organiser gets one from `chat-server moderator-token --name NAME` run with the
//! deployment's `CHAT_TOKEN_SECRET` (or its data dir), and opens the page with it; every task
//! checks it without a lookup. Revoking all of them: rotate the secret (section 1 of
//! `docs/PROTOCOL.md`); each one ends by itself at its expiry.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::{Purpose, Tokens};
use crate::protocol::{MAX_MODERATOR_TTL_SECS, validate_nickname};

/// A moderator credential's life without `--ttl-secs`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(12 * 3600);

#[derive(Serialize, Deserialize)]
struct Claims {
    /// Who moderates (shown in logs, never to guests).
    name: String,
    iat: i64,
    exp: i64,
}

/// Why a credential for `name` valid for `ttl` cannot be issued: the name follows the
/// nickname rules, the life is at most [`MAX_MODERATOR_TTL_SECS`]. Returns the name as
/// normalised.
pub fn check(name: &str, ttl: Duration) -> Result<String, String> {
    let name = validate_nickname(name).map_err(|e| format!("--name: {}", e.message))?;
    if ttl.is_zero() || ttl.as_secs() > MAX_MODERATOR_TTL_SECS {
        return Err(format!(
            "--ttl-secs must be 1-{MAX_MODERATOR_TTL_SECS} (7 days); got {}",
            ttl.as_secs()
        ));
    }
    Ok(name)
}

/// A credential for `name`, valid for `ttl` (see [`check`]).
pub fn issue(tokens: &Tokens, name: &str, ttl: Duration) -> Result<String, String> {
    let name = check(name, ttl)?;
    let now = crate::now_ms();
    let claims = Claims {
        name,
        iat: now,
        exp: now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
    };
    Ok(tokens.seal(Purpose::Moderator, &claims))
}

/// A verified credential: who moderates, and until when (a connection's rights end then,
/// checked at each moderation action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moderator {
    pub name: String,
    /// Expiry, in ms since the epoch.
    pub expires_ms: i64,
}

/// The moderator, if `token` is a moderator credential of a key the task accepts and has not
/// expired.
pub fn verify(tokens: &Tokens, token: &str) -> Option<Moderator> {
    verify_at(tokens, token, crate::now_ms())
}

fn verify_at(tokens: &Tokens, token: &str, now_ms: i64) -> Option<Moderator> {
    let claims: Claims = tokens.open(Purpose::Moderator, token)?;
    (claims.exp > now_ms).then_some(Moderator {
        name: claims.name,
        expires_ms: claims.exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::User;

    #[test]
    fn a_credential_names_its_moderator_until_it_expires() {
        let tokens = Tokens::new(b"0123456789abcdef");
        let token = issue(&tokens, " Ada ", Duration::from_secs(60)).expect("issues");
        assert_eq!(
            verify(&tokens, &token).map(|m| m.name).as_deref(),
            Some("Ada")
        );
        let later = crate::now_ms() + 61_000;
        assert_eq!(verify_at(&tokens, &token, later), None, "expired");
        let other = Tokens::new(b"another secret!!");
        assert_eq!(verify(&other, &token), None, "another deployment's key");
    }

    #[test]
    fn a_guest_token_is_no_moderator_credential_and_back() {
        let tokens = Tokens::new(b"0123456789abcdef");
        let guest = tokens.issue(&User {
            id: 1,
            nickname: "Al".into(),
            avatar: "fox".into(),
        });
        assert_eq!(verify(&tokens, &guest), None);
        let moderator = issue(&tokens, "Ada", Duration::from_secs(60)).expect("issues");
        assert_eq!(tokens.verify(&moderator), None);
    }

    #[test]
    fn the_life_and_the_name_are_bounded() {
        let tokens = Tokens::new(b"0123456789abcdef");
        let too_long = Duration::from_secs(MAX_MODERATOR_TTL_SECS + 1);
        assert!(
            issue(&tokens, "Ada", too_long)
                .unwrap_err()
                .contains("604800")
        );
        assert!(issue(&tokens, "Ada", Duration::ZERO).is_err());
        assert!(issue(&tokens, "A", Duration::from_secs(60)).is_err());
        assert!(issue(&tokens, "Ada", Duration::from_secs(MAX_MODERATOR_TTL_SECS)).is_ok());
    }
}
