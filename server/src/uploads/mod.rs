//! Images in messages. An upload takes three steps that are the same on every deployment:
//! `POST /api/uploads` gives a slot (a signed upload id and where to PUT the bytes), the browser
//! PUTs them (to chat-server, or straight to S3 through a presigned URL), and
//! `POST /api/uploads/{id}/complete` reads the stored bytes back, checks that they are a JPEG,
//! PNG, GIF or WebP of at most 5 MiB (by their bytes) and measures them. It answers a signed
//! attachment that a `send` frame carries; any task can check it without a lookup.
//!
//! Layout: [`sniff`] reads type and size from bytes; [`backend`] stores them (data dir or S3);
//! [`routes`] is the HTTP side.

pub mod backend;
pub mod routes;
pub mod sniff;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::auth::{Purpose, Tokens};
use crate::protocol::{Attachment, ErrorCode, Refusal, User};
use backend::{Backend, Fetched, UploadTarget};
use sniff::{ImageKind, MAX_IMAGE_BYTES, SniffError, sniff};

/// How long an upload slot may be used (PUT and complete).
pub const SLOT_TTL_MS: i64 = 10 * 60 * 1000;
/// How long the attachment token of a checked upload may be put in a `send`.
pub const ATTACHMENT_TTL_MS: i64 = 60 * 60 * 1000;
/// Longest attachment token a `send` frame may carry.
pub const MAX_ATTACHMENT_TOKEN_LEN: usize = 1024;

/// The uploads service: a backend and the key that signs slots and attachments.
pub struct Uploads {
    pub backend: Backend,
    tokens: std::sync::Arc<Tokens>,
}

/// What an upload id carries, signed: who may use it, for what, until when.
#[derive(Debug, Serialize, Deserialize)]
struct SlotClaims {
    /// The user the slot was given to.
    u: u64,
    /// The object name, `{random}.{ext}`.
    n: String,
    /// The declared type.
    k: ImageKind,
    /// The declared size in bytes.
    b: u64,
    /// Expiry, ms since the epoch.
    x: i64,
}

/// A signed attachment: the verified facts a message will carry, and who verified them for.
#[derive(Debug, Serialize, Deserialize)]
struct AttachmentClaims {
    u: u64,
    url: String,
    k: ImageKind,
    w: u32,
    h: u32,
    b: u64,
    /// Expiry, ms since the epoch ([`ATTACHMENT_TTL_MS`] after the check).
    x: i64,
}

/// The answer to `POST /api/uploads`.
#[derive(Debug, Serialize)]
pub struct Slot {
    pub id: String,
    pub upload: UploadTarget,
}

/// The answer to `POST /api/uploads/{id}/complete`: the attachment's facts (for the page to
/// show it at once) and the token a `send` frame carries.
#[derive(Debug, Serialize)]
pub struct Offer {
    #[serde(flatten)]
    pub attachment: Attachment,
    pub token: String,
}

impl Uploads {
    pub fn new(backend: Backend, tokens: std::sync::Arc<Tokens>) -> Self {
        Self { backend, tokens }
    }

    /// A slot for `user` to upload an image of the declared type and size.
    pub async fn begin(
        &self,
        user: &User,
        content_type: &str,
        bytes: u64,
    ) -> Result<Slot, Refusal> {
        let kind = ImageKind::from_mime(content_type).ok_or_else(|| {
            Refusal::new(
                ErrorCode::UnsupportedType,
                "only JPEG, PNG, GIF and WebP images can be shared",
            )
        })?;
        check_size(bytes)?;
        let random: [u8; 18] = rand::random();
        let name = format!(
            "{}.{}",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, random),
            kind.ext()
        );
        let claims = SlotClaims {
            u: user.id,
            n: name.clone(),
            k: kind,
            b: bytes,
            x: crate::now_ms() + SLOT_TTL_MS,
        };
        let id = self.tokens.seal(Purpose::Upload, &claims);
        let upload = self
            .backend
            .target(&id, &name, kind, bytes)
            .await
            .map_err(|e| unavailable("preparing the upload", &e))?;
        Ok(Slot { id, upload })
    }

    /// The bytes of an upload PUT to chat-server (embedded backend): checked, then stored.
    pub async fn receive(&self, user: &User, id: &str, body: Bytes) -> Result<(), Refusal> {
        let slot = self.slot(user, id)?;
        if body.len() as u64 != slot.b {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                format!(
                    "the upload has {} bytes but {} were announced",
                    body.len(),
                    slot.b
                ),
            ));
        }
        sniff(&body, Some(slot.k)).map_err(invalid_image)?;
        self.backend
            .put(&slot.n, body)
            .await
            .map_err(|e| unavailable("storing the upload", &e))
    }

    /// Reads the stored upload back, checks it by its bytes and returns the attachment offer.
    /// An object that fails the check is deleted.
    pub async fn complete(&self, user: &User, id: &str) -> Result<Offer, Refusal> {
        let slot = self.slot(user, id)?;
        let fetched = self
            .backend
            .get(&slot.n)
            .await
            .map_err(|e| unavailable("reading the upload", &e))?;
        let bytes = match fetched {
            Fetched::Missing => {
                return Err(Refusal::new(
                    ErrorCode::NotFound,
                    "nothing was uploaded for this id (PUT the bytes first)",
                ));
            }
            Fetched::TooLarge(n) => {
                self.discard(&slot.n).await;
                return Err(too_large(n));
            }
            Fetched::Found(bytes) => bytes,
        };
        let checked = if bytes.len() as u64 == slot.b {
            sniff(&bytes, Some(slot.k)).map_err(invalid_image)
        } else {
            Err(Refusal::new(
                ErrorCode::BadRequest,
                format!(
                    "the upload has {} bytes but {} were announced",
                    bytes.len(),
                    slot.b
                ),
            ))
        };
        let image = match checked {
            Ok(image) => image,
            Err(e) => {
                self.discard(&slot.n).await;
                return Err(e);
            }
        };
        let attachment = Attachment {
            url: self.backend.public_url(&slot.n),
            content_type: image.kind.mime().to_string(),
            width: image.width,
            height: image.height,
            bytes: bytes.len() as u64,
        };
        let token = self.tokens.seal(
            Purpose::Attachment,
            &AttachmentClaims {
                u: user.id,
                url: attachment.url.clone(),
                k: image.kind,
                w: image.width,
                h: image.height,
                b: attachment.bytes,
                x: crate::now_ms() + ATTACHMENT_TTL_MS,
            },
        );
        tracing::info!(
            user = user.id,
            bytes = attachment.bytes,
            kind = image.kind.mime(),
            backend = self.backend.name(),
            "Image uploaded"
        );
        Ok(Offer { attachment, token })
    }

    /// Removes an object that failed its check. Best effort: on S3 the bucket's lifecycle
    /// expires anything left.
    async fn discard(&self, name: &str) {
        if let Err(e) = self.backend.delete(name).await {
            tracing::warn!(error = %format!("{e:#}"), "Could not remove a refused upload");
        }
    }

    /// The size announced for `user`'s upload slot `id`: checked before its body is read.
    pub fn announced(&self, user: &User, id: &str) -> Result<u64, Refusal> {
        Ok(self.slot(user, id)?.b)
    }

    fn slot(&self, user: &User, id: &str) -> Result<SlotClaims, Refusal> {
        let slot: SlotClaims = self
            .tokens
            .open(Purpose::Upload, id)
            .ok_or_else(|| Refusal::new(ErrorCode::NotFound, "no such upload"))?;
        if slot.u != user.id {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "this upload belongs to someone else",
            ));
        }
        if slot.x < crate::now_ms() {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                "this upload slot expired; start again",
            ));
        }
        Ok(slot)
    }
}

/// The attachment a `send` frame's token stands for, if `tokens` signed it for `user_id`.
/// Used by the WebSocket side; needs no backend.
pub fn open_attachment(tokens: &Tokens, user_id: u64, token: &str) -> Result<Attachment, Refusal> {
    let refused = || {
        Refusal::new(
            ErrorCode::BadRequest,
            "attachment must be the token POST /api/uploads/{id}/complete returned to you",
        )
    };
    if token.len() > MAX_ATTACHMENT_TOKEN_LEN {
        return Err(refused());
    }
    let c: AttachmentClaims = tokens
        .open(Purpose::Attachment, token)
        .ok_or_else(refused)?;
    if c.u != user_id {
        return Err(refused());
    }
    if c.x < crate::now_ms() {
        return Err(Refusal::new(
            ErrorCode::BadRequest,
            "this attachment token expired; upload the image again",
        ));
    }
    Ok(Attachment {
        url: c.url,
        content_type: c.k.mime().to_string(),
        width: c.w,
        height: c.h,
        bytes: c.b,
    })
}

fn check_size(bytes: u64) -> Result<(), Refusal> {
    if bytes == 0 {
        return Err(Refusal::new(ErrorCode::BadRequest, "the image is empty"));
    }
    if bytes > MAX_IMAGE_BYTES {
        return Err(too_large(bytes));
    }
    Ok(())
}

fn too_large(bytes: u64) -> Refusal {
    Refusal::new(
        ErrorCode::TooLarge,
        format!("an image is at most {MAX_IMAGE_BYTES} bytes (5 MiB); this one has {bytes}"),
    )
}

fn invalid_image(e: SniffError) -> Refusal {
    let code = match e {
        SniffError::NotAnImage | SniffError::Mismatch { .. } => ErrorCode::UnsupportedType,
        SniffError::NoDimensions | SniffError::TooManyPixels { .. } => ErrorCode::InvalidImage,
    };
    Refusal::new(code, e.to_string())
}

fn unavailable(what: &str, e: &anyhow::Error) -> Refusal {
    tracing::warn!(error = %format!("{e:#}"), "Upload backend failed {what}");
    Refusal::new(ErrorCode::Unavailable, format!("{what} failed; try again"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(user: u64, expires: i64) -> AttachmentClaims {
        AttachmentClaims {
            u: user,
            url: "/uploads/a.png".into(),
            k: ImageKind::Png,
            w: 1,
            h: 1,
            b: 10,
            x: expires,
        }
    }

    #[test]
    fn an_attachment_token_opens_for_its_user_until_it_expires() {
        let tokens = Tokens::new(b"0123456789abcdef");
        let now = crate::now_ms();
        let fresh = tokens.seal(Purpose::Attachment, &claims(7, now + 60_000));
        assert_eq!(open_attachment(&tokens, 7, &fresh).map(|a| a.bytes), Ok(10));
        assert!(open_attachment(&tokens, 8, &fresh).is_err(), "another user");
        let old = tokens.seal(Purpose::Attachment, &claims(7, now - 1));
        let err = open_attachment(&tokens, 7, &old).expect_err("expired");
        assert!(err.message.contains("expired"), "{}", err.message);
    }
}
