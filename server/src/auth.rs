//! Guest identity: signed tokens (HMAC-SHA256) that carry a user's id, nickname and avatar,
//! so any task can check a token without a user table. New ids come from the store's atomic
//! counter (see `http::session`).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rand::seq::IndexedRandom;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::protocol::User;

/// Animals a guest's avatar is drawn from.
pub const AVATARS: &[&str] = &[
    "otter", "fox", "panda", "koala", "owl", "penguin", "tiger", "whale", "rabbit", "hedgehog",
    "raccoon", "octopus", "turtle", "dolphin", "lion", "zebra", "giraffe", "badger", "beaver",
    "falcon", "frog", "moose", "seal", "sloth",
];

/// Name of the generated secret file in the data dir.
const SECRET_FILE: &str = "token-secret";

/// Issues and verifies guest tokens.
#[derive(Clone)]
pub struct Tokens {
    key: Hmac<Sha256>,
}

/// What a token carries, signed.
#[derive(Serialize, Deserialize)]
struct Claims {
    id: u64,
    nickname: String,
    avatar: String,
    /// Issued at, milliseconds since the epoch (keeps tokens distinct over time).
    iat: i64,
}

impl Tokens {
    pub fn new(secret: &[u8]) -> Self {
        // HMAC accepts keys of any length.
        let key = Hmac::<Sha256>::new_from_slice(secret)
            .unwrap_or_else(|e| unreachable!("HMAC takes any key length: {e}"));
        Self { key }
    }

    /// The configured secret, or the one kept in `data_dir` (generated on first start).
    pub fn load(secret: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        if let Some(secret) = secret {
            return Ok(Self::new(secret.as_bytes()));
        }
        let path = data_dir.join(SECRET_FILE);
        match std::fs::read_to_string(&path) {
            Ok(secret) if !secret.trim().is_empty() => Ok(Self::new(secret.trim().as_bytes())),
            _ => {
                std::fs::create_dir_all(data_dir)
                    .with_context(|| format!("creating {}", data_dir.display()))?;
                let bytes: [u8; 32] = rand::random();
                let secret = URL_SAFE_NO_PAD.encode(bytes);
                write_private(&path, &secret)
                    .with_context(|| format!("writing {}", path.display()))?;
                Ok(Self::new(secret.as_bytes()))
            }
        }
    }

    /// A token for `user`.
    pub fn issue(&self, user: &User) -> String {
        let claims = Claims {
            id: user.id,
            nickname: user.nickname.clone(),
            avatar: user.avatar.clone(),
            iat: crate::now_ms(),
        };
        self.seal(Purpose::Guest, &claims)
    }

    /// The user a token was issued for, if it is well formed and signed with our key.
    pub fn verify(&self, token: &str) -> Option<User> {
        let claims: Claims = self.open(Purpose::Guest, token)?;
        Some(User {
            id: claims.id,
            nickname: claims.nickname,
            avatar: claims.avatar,
        })
    }

    /// `claims` as `payload.signature` (base64url JSON, HMAC-SHA256 over the purpose and the
    /// payload): readable by anyone, forgeable by no one without the key. The purpose keeps a
    /// token made for one use from being accepted for another.
    pub fn seal<T: Serialize>(&self, purpose: Purpose, claims: &T) -> String {
        let payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(claims).unwrap_or_else(|e| unreachable!("claims serialise: {e}")),
        );
        let sig = URL_SAFE_NO_PAD.encode(self.mac(purpose, &payload).finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// The claims of a token sealed by [`Tokens::seal`] for `purpose`, if its signature holds.
    pub fn open<T: DeserializeOwned>(&self, purpose: Purpose, token: &str) -> Option<T> {
        let (payload, sig) = token.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        self.mac(purpose, payload).verify_slice(&sig).ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }

    fn mac(&self, purpose: Purpose, payload: &str) -> Hmac<Sha256> {
        let mut mac = self.key.clone();
        // Guest tokens predate purposes: theirs is empty, so tokens already issued still verify.
        let prefix = purpose.prefix();
        if !prefix.is_empty() {
            mac.update(prefix.as_bytes());
            mac.update(b"\0");
        }
        mac.update(payload.as_bytes());
        mac
    }
}

/// What a sealed token is for; a token opens only for the purpose it was sealed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A guest's identity (`hello`, `POST /api/session`).
    Guest,
    /// An upload slot: who may put which image where.
    Upload,
    /// A verified image a `send` frame may attach.
    Attachment,
}

impl Purpose {
    fn prefix(self) -> &'static str {
        match self {
            Purpose::Guest => "",
            Purpose::Upload => "upload",
            Purpose::Attachment => "attachment",
        }
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// A random animal for a new guest.
pub fn random_avatar() -> &'static str {
    AVATARS.choose(&mut rand::rng()).copied().unwrap_or("otter")
}

/// The nickname a guest gets when they do not choose one.
pub fn default_nickname(id: u64) -> String {
    format!("Guest {id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: 17,
            nickname: "Bob".into(),
            avatar: "otter".into(),
        }
    }

    #[test]
    fn sealed_claims_open_only_for_their_purpose() {
        let tokens = Tokens::new(b"0123456789abcdef");
        let sealed = tokens.seal(Purpose::Upload, &vec![1u64, 2, 3]);
        assert_eq!(
            tokens.open::<Vec<u64>>(Purpose::Upload, &sealed),
            Some(vec![1, 2, 3])
        );
        assert_eq!(tokens.open::<Vec<u64>>(Purpose::Attachment, &sealed), None);
        assert_eq!(tokens.open::<Vec<u64>>(Purpose::Guest, &sealed), None);
        // A guest token is no upload slot either.
        assert_eq!(
            tokens.open::<serde_json::Value>(Purpose::Upload, &tokens.issue(&user())),
            None
        );
    }

    #[test]
    fn issued_tokens_verify() {
        let tokens = Tokens::new(b"0123456789abcdef");
        assert_eq!(tokens.verify(&tokens.issue(&user())), Some(user()));
    }

    #[test]
    fn forged_and_foreign_tokens_do_not_verify() {
        let tokens = Tokens::new(b"0123456789abcdef");
        let other = Tokens::new(b"another secret!!");
        let token = other.issue(&user());
        assert_eq!(tokens.verify(&token), None);
        let (payload, sig) = tokens
            .issue(&user())
            .split_once('.')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap();
        let forged_payload =
            URL_SAFE_NO_PAD.encode(br#"{"id":1,"nickname":"Admin","avatar":"fox","iat":0}"#);
        assert_eq!(tokens.verify(&format!("{forged_payload}.{sig}")), None);
        assert_eq!(tokens.verify(&payload), None);
        assert_eq!(tokens.verify("garbage"), None);
    }

    #[test]
    fn default_nicknames_are_valid() {
        for id in [1, 42, 999_999_999] {
            assert!(crate::protocol::validate_nickname(&default_nickname(id)).is_ok());
        }
    }
}
