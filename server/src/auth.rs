//! Guest identity: signed tokens (HMAC-SHA256) that carry a user's id, nickname and avatar,
//! so any task can check a token without a user table. New ids come from the store's atomic
//! counter (see `http::session`).
//!
//! A token is `{kid}.{payload}.{sig}`: `kid` names the key that signed it (derived from the
//! secret, so every task sharing a secret agrees on it), `payload` holds the claims with an
//! expiry, `sig` covers `{kid}.{payload}`. The secret is rotated by starting tasks with the new
//! secret and the old one as the previous key: tokens of the old key verify for a configured
//! overlap from the task's start, and every renewal (`POST /api/session` with a token) hands
//! out a token of the new key.
//!
//! The same sealing carries the uploads' slots and attachments ([`Tokens::seal`] with a
//! [`Purpose`]): the purpose is signed too, so a token made for one use opens for no other.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use rand::seq::IndexedRandom;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::protocol::User;

/// Animals a guest's avatar is drawn from.
pub const AVATARS: &[&str] = &[
    "otter", "fox", "panda", "koala", "owl", "penguin", "tiger", "whale", "rabbit", "hedgehog",
    "raccoon", "octopus", "turtle", "dolphin", "lion", "zebra", "giraffe", "badger", "beaver",
    "falcon", "frog", "moose", "seal", "sloth",
];

/// How long a token is valid without `CHAT_TOKEN_TTL_SECS`.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

/// Name of the generated secret file in the data dir.
const SECRET_FILE: &str = "token-secret";

/// One signing key and its id.
#[derive(Clone)]
struct Key {
    id: String,
    mac: Hmac<Sha256>,
}

impl Key {
    fn new(secret: &[u8]) -> Self {
        // HMAC accepts keys of any length.
        let mac = Hmac::<Sha256>::new_from_slice(secret)
            .unwrap_or_else(|e| unreachable!("HMAC takes any key length: {e}"));
        // A one-way name for the key: says which secret signed, reveals nothing of it.
        let digest = Sha256::new()
            .chain_update(b"chat-token-key-id:")
            .chain_update(secret)
            .finalize();
        let id = URL_SAFE_NO_PAD.encode(&digest[..6]);
        Self { id, mac }
    }

    fn mac(&self, purpose: Purpose, signed: &str) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(purpose.prefix().as_bytes());
        mac.update(b"\0");
        mac.update(signed.as_bytes());
        mac
    }

    fn sign(&self, purpose: Purpose, signed: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(purpose, signed).finalize().into_bytes())
    }

    fn verifies(&self, purpose: Purpose, signed: &str, sig: &str) -> bool {
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return false;
        };
        self.mac(purpose, signed).verify_slice(&sig).is_ok()
    }
}

/// Issues and verifies guest tokens.
#[derive(Clone)]
pub struct Tokens {
    current: Key,
    /// The key being rotated out, and until when its tokens still verify.
    previous: Option<(Key, Instant)>,
    ttl: Duration,
}

/// What a token carries, signed.
#[derive(Serialize, Deserialize)]
struct Claims {
    id: u64,
    nickname: String,
    avatar: String,
    /// Issued at, milliseconds since the epoch (keeps tokens distinct over time).
    iat: i64,
    /// Expires at, milliseconds since the epoch.
    exp: i64,
}

impl Tokens {
    /// Tokens signed with `secret`, valid for [`DEFAULT_TOKEN_TTL`].
    pub fn new(secret: &[u8]) -> Self {
        Self {
            current: Key::new(secret),
            previous: None,
            ttl: DEFAULT_TOKEN_TTL,
        }
    }

    /// Tokens issued from now on are valid for `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Also accepts tokens signed with `secret` (the key being rotated out) for `overlap`
    /// from now. Nothing is issued with it.
    pub fn with_previous(mut self, secret: &[u8], overlap: Duration) -> Self {
        self.previous = Some((Key::new(secret), Instant::now() + overlap));
        self
    }

    /// How long an issued token is valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The id of the key new tokens are signed with.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// The configured secret, or the one kept in `data_dir`; `None` when there is neither
    /// (nothing is created).
    pub fn read(secret: Option<&str>, data_dir: &Path) -> Option<Self> {
        if let Some(secret) = secret {
            return Some(Self::new(secret.as_bytes()));
        }
        match std::fs::read_to_string(data_dir.join(SECRET_FILE)) {
            Ok(secret) if !secret.trim().is_empty() => Some(Self::new(secret.trim().as_bytes())),
            _ => None,
        }
    }

    /// The configured secret, or the one kept in `data_dir` (generated on first start).
    pub fn load(secret: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        if let Some(tokens) = Self::read(secret, data_dir) {
            return Ok(tokens);
        }
        let path = data_dir.join(SECRET_FILE);
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let bytes: [u8; 32] = rand::random();
        let secret = URL_SAFE_NO_PAD.encode(bytes);
        write_private(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
        Ok(Self::new(secret.as_bytes()))
    }

    /// A token for `user`, valid for [`Tokens::ttl`] from now.
    pub fn issue(&self, user: &User) -> String {
        self.issue_at(user, crate::now_ms())
    }

    fn issue_at(&self, user: &User, now_ms: i64) -> String {
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let claims = Claims {
            id: user.id,
            nickname: user.nickname.clone(),
            avatar: user.avatar.clone(),
            iat: now_ms,
            exp: now_ms.saturating_add(ttl_ms),
        };
        self.seal(Purpose::Guest, &claims)
    }

    /// The user a token was issued for, if it is well formed, signed with a key we accept,
    /// and not expired.
    pub fn verify(&self, token: &str) -> Option<User> {
        self.verify_at(token, crate::now_ms())
    }

    fn verify_at(&self, token: &str, now_ms: i64) -> Option<User> {
        let claims: Claims = self.open(Purpose::Guest, token)?;
        if claims.exp <= now_ms {
            return None;
        }
        Some(User {
            id: claims.id,
            nickname: claims.nickname,
            avatar: claims.avatar,
        })
    }

    /// `claims` as `kid.payload.signature` (base64url JSON, HMAC-SHA256 over the purpose, the
    /// key id and the payload): readable by anyone, forgeable by no one without the key.
    pub fn seal<T: Serialize>(&self, purpose: Purpose, claims: &T) -> String {
        let payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(claims).unwrap_or_else(|e| unreachable!("claims serialise: {e}")),
        );
        let signed = format!("{}.{payload}", self.current.id);
        let sig = self.current.sign(purpose, &signed);
        format!("{signed}.{sig}")
    }

    /// The claims of a token sealed by [`Tokens::seal`] for `purpose`, if it is signed with a
    /// key we accept (the current one, or the previous one during its overlap).
    pub fn open<T: DeserializeOwned>(&self, purpose: Purpose, token: &str) -> Option<T> {
        let (signed, sig) = token.rsplit_once('.')?;
        let (kid, payload) = signed.split_once('.')?;
        let key = if kid == self.current.id {
            &self.current
        } else {
            match &self.previous {
                Some((key, until)) if kid == key.id && Instant::now() < *until => key,
                _ => return None,
            }
        };
        if !key.verifies(purpose, signed, sig) {
            return None;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
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
    /// A moderator credential (`crate::moderator`).
    Moderator,
}

impl Purpose {
    fn prefix(self) -> &'static str {
        match self {
            Purpose::Guest => "guest",
            Purpose::Upload => "upload",
            Purpose::Attachment => "attachment",
            Purpose::Moderator => "moderator",
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
    fn a_token_names_its_key_and_expires_after_the_ttl() {
        let tokens = Tokens::new(b"0123456789abcdef").with_ttl(Duration::from_secs(60));
        let now = crate::now_ms();
        let token = tokens.issue_at(&user(), now);
        assert!(
            token.starts_with(&format!("{}.", tokens.key_id())),
            "{token}"
        );
        assert_eq!(tokens.verify_at(&token, now + 59_999), Some(user()));
        assert_eq!(tokens.verify_at(&token, now + 60_000), None);
        // The expiry is signed: a payload with a later one does not verify.
        let (kid, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let later = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"id":17,"nickname":"Bob","avatar":"otter","iat":{now},"exp":{}}}"#,
            now + 3_600_000
        ));
        assert_eq!(
            tokens.verify_at(&format!("{kid}.{later}.{sig}"), now + 60_000),
            None
        );
    }

    #[test]
    fn the_previous_key_verifies_only_during_the_overlap() {
        let old = Tokens::new(b"the old secret, 1");
        let token = old.issue(&user());
        let new = Tokens::new(b"the new secret, 2");
        assert_ne!(old.key_id(), new.key_id());
        assert_eq!(new.verify(&token), None);
        let rotating = new
            .clone()
            .with_previous(b"the old secret, 1", Duration::from_secs(3600));
        assert_eq!(rotating.verify(&token), Some(user()));
        // Renewals are signed with the new key.
        assert!(rotating.issue(&user()).starts_with(new.key_id()));
        let over = new.with_previous(b"the old secret, 1", Duration::ZERO);
        assert_eq!(over.verify(&token), None);
    }

    #[test]
    fn forged_foreign_and_keyless_tokens_do_not_verify() {
        let tokens = Tokens::new(b"0123456789abcdef");
        let other = Tokens::new(b"another secret!!");
        let token = other.issue(&user());
        assert_eq!(tokens.verify(&token), None);
        // The other key's signature under our key id.
        let (_, rest) = token.split_once('.').unwrap();
        assert_eq!(tokens.verify(&format!("{}.{rest}", tokens.key_id())), None);
        let good = tokens.issue(&user());
        let (kid, rest) = good.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD
            .encode(br#"{"id":1,"nickname":"Admin","avatar":"fox","iat":0,"exp":99999999999999}"#);
        assert_eq!(
            tokens.verify(&format!("{kid}.{forged_payload}.{sig}")),
            None
        );
        // A token of the old `{payload}.{sig}` form (no key id, no expiry) is refused.
        let legacy_payload =
            URL_SAFE_NO_PAD.encode(br#"{"id":17,"nickname":"Bob","avatar":"otter","iat":0}"#);
        let legacy_sig = tokens.current.sign(Purpose::Guest, &legacy_payload);
        assert_eq!(
            tokens.verify(&format!("{legacy_payload}.{legacy_sig}")),
            None
        );
        assert_eq!(tokens.verify(rest), None);
        assert_eq!(tokens.verify("garbage"), None);
        assert_eq!(tokens.verify("a.b.c"), None);
    }

    #[test]
    fn default_nicknames_are_valid() {
        for id in [1, 42, 999_999_999] {
            assert!(crate::protocol::validate_nickname(&default_nickname(id)).is_ok());
        }
    }
}
