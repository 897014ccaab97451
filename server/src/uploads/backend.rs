//! Where image bytes live. Embedded (the default): files under `{data dir}/uploads/`, put and
//! served by chat-server itself. S3 (on AWS): the browser puts the bytes straight into the
//! bucket through a presigned URL and CloudFront serves them; chat-server only reads an object
//! back once to check it, and deletes what fails the check.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_s3::presigning::PresigningConfig;
use bytes::Bytes;

use super::sniff::{ImageKind, MAX_IMAGE_BYTES};

/// How long a presigned upload URL stays valid.
pub const PRESIGN_TTL: Duration = Duration::from_secs(300);

/// Where a browser sends the bytes of one upload.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UploadTarget {
    pub method: &'static str,
    /// Absolute (S3) or relative to the API base (embedded).
    pub url: String,
    /// Headers the PUT must carry exactly (they are part of the signature on S3).
    pub headers: std::collections::BTreeMap<&'static str, String>,
}

/// What reading a stored object found.
#[derive(Debug)]
pub enum Fetched {
    Missing,
    /// Over the cap: not read (size in bytes).
    TooLarge(u64),
    Found(Bytes),
}

/// The storage of uploaded images.
pub enum Backend {
    Embedded {
        dir: PathBuf,
    },
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        /// Key prefix inside the bucket, e.g. `uploads/`; CloudFront serves it at `/uploads/`.
        prefix: String,
        /// Public base URL objects are served from (`https://d123.cloudfront.net/uploads/`).
        public_base: String,
    },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Embedded { .. } => "embedded",
            Backend::S3 { .. } => "s3",
        }
    }

    /// Where the browser puts the bytes of object `name` (`{random}.{ext}`).
    pub async fn target(
        &self,
        upload_id: &str,
        name: &str,
        kind: ImageKind,
        bytes: u64,
    ) -> anyhow::Result<UploadTarget> {
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("content-type", kind.mime().to_string());
        match self {
            Backend::Embedded { .. } => Ok(UploadTarget {
                method: "PUT",
                url: format!("/api/uploads/{upload_id}"),
                headers,
            }),
            Backend::S3 {
                client,
                bucket,
                prefix,
                ..
            } => {
                let presigned = client
                    .put_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{name}"))
                    .content_type(kind.mime())
                    .content_length(i64::try_from(bytes).context("upload size")?)
                    .cache_control("public, max-age=31536000, immutable")
                    // Once: a second PUT to this URL (after `complete` checked the bytes)
                    // is refused 412, so the checked object cannot be replaced.
                    .if_none_match("*")
                    .presigned(PresigningConfig::expires_in(PRESIGN_TTL)?)
                    .await
                    .context("presigning the S3 upload")?;
                for (k, v) in presigned.headers() {
                    if let Some(k) = signed_header(k) {
                        headers.insert(k, v.to_string());
                    }
                }
                Ok(UploadTarget {
                    method: "PUT",
                    url: presigned.uri().to_string(),
                    headers,
                })
            }
        }
    }

    /// Stores bytes received by chat-server itself (embedded only).
    pub async fn put(&self, name: &str, body: Bytes) -> anyhow::Result<()> {
        let Backend::Embedded { dir } = self else {
            anyhow::bail!("uploads go to S3 directly, not through chat-server");
        };
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("creating {}", dir.display()))?;
        // Written aside, then renamed: a reader never sees half a file.
        let tmp = dir.join(format!(".{name}.part"));
        tokio::fs::write(&tmp, &body)
            .await
            .with_context(|| format!("writing {}", tmp.display()))?;
        tokio::fs::rename(&tmp, dir.join(name))
            .await
            .context("publishing the upload")?;
        Ok(())
    }

    /// The stored object's bytes; never more than [`MAX_IMAGE_BYTES`] are read.
    pub async fn get(&self, name: &str) -> anyhow::Result<Fetched> {
        match self {
            Backend::Embedded { dir } => match tokio::fs::read(dir.join(name)).await {
                Ok(b) if b.len() as u64 > MAX_IMAGE_BYTES => Ok(Fetched::TooLarge(b.len() as u64)),
                Ok(b) => Ok(Fetched::Found(Bytes::from(b))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Fetched::Missing),
                Err(e) => Err(e).context("reading the upload"),
            },
            Backend::S3 {
                client,
                bucket,
                prefix,
                ..
            } => {
                let got = client
                    .get_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{name}"))
                    .send()
                    .await;
                let out = match got {
                    Ok(out) => out,
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                        return Ok(Fetched::Missing);
                    }
                    Err(e) => return Err(anyhow::Error::new(e).context("reading the upload")),
                };
                let len = u64::try_from(out.content_length().unwrap_or(0)).unwrap_or(0);
                if len > MAX_IMAGE_BYTES {
                    return Ok(Fetched::TooLarge(len));
                }
                let body = out.body.collect().await.context("reading the upload")?;
                Ok(Fetched::Found(body.into_bytes()))
            }
        }
    }

    /// Removes an object that failed its check (best effort: the bucket's lifecycle expires
    /// anything left anyway).
    pub async fn delete(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Backend::Embedded { dir } => match tokio::fs::remove_file(dir.join(name)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).context("removing the upload")
                }
                _ => Ok(()),
            },
            Backend::S3 {
                client,
                bucket,
                prefix,
                ..
            } => {
                client
                    .delete_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{name}"))
                    .send()
                    .await
                    .context("removing the upload")?;
                Ok(())
            }
        }
    }

    /// The URL a message carries for object `name`.
    pub fn public_url(&self, name: &str) -> String {
        match self {
            Backend::Embedded { .. } => format!("/uploads/{name}"),
            Backend::S3 { public_base, .. } => format!("{public_base}{name}"),
        }
    }
}

/// An S3 client from the environment (the task role on ECS). With `AWS_ENDPOINT_URL` (a local
/// S3-compatible endpoint such as moto) objects are addressed by path, not by host name.
pub async fn s3_client_from_env() -> aws_sdk_s3::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let local = std::env::var_os("AWS_ENDPOINT_URL").is_some();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(local)
            .build(),
    )
}

/// The presigned request's headers the browser must repeat (host is set by the browser).
fn signed_header(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "content-type" => Some("content-type"),
        "cache-control" => Some("cache-control"),
        "if-none-match" => Some("if-none-match"),
        _ => None,
    }
}
