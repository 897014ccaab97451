//! Who this binary is: package version, git commit and build time, baked in by `build.rs`.
//! Shown by `chat-server --version`, `GET /version`, the `welcome` frame and the
//! `chat_build_info` metric, and used to version the web client's paths, so blue and green
//! builds can be told apart everywhere.

/// The package version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Full git commit of the build, or `unknown` (no git and no `CHAT_GIT_SHA`).
pub const GIT_SHA: &str = env!("CHAT_BUILD_GIT_SHA");
/// Build time, RFC 3339 in UTC to the second (`SOURCE_DATE_EPOCH` when set).
pub const BUILT_AT: &str = env!("CHAT_BUILD_TIME");
/// `chat-server --version`: `0.1.0 (git 0123…, built 2026-11-29T17:00:00Z)`.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("CHAT_BUILD_GIT_SHA"),
    ", built ",
    env!("CHAT_BUILD_TIME"),
    ")"
);

/// The commit shortened to 12 characters (or `unknown`).
pub fn short_sha() -> &'static str {
    &GIT_SHA[..GIT_SHA.len().min(12)]
}

/// The path segment of this build's web client for a colour: `<colour>-<short sha>`, with any
/// character outside `[A-Za-z0-9_-]` of the colour replaced by `_` so it is one safe segment.
/// The ALB routes `/assets/<colour>-*` to that colour's tasks (terraform/modules/alb).
pub fn asset_build_id(color: &str) -> String {
    let color: String = color
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{color}-{}", short_sha())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_baked_in() {
        assert!(GIT_SHA == "unknown" || GIT_SHA.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(
            BUILT_AT.ends_with('Z') && BUILT_AT.len() == 20,
            "{BUILT_AT}"
        );
        assert!(LONG_VERSION.starts_with(VERSION) && LONG_VERSION.contains(GIT_SHA));
    }

    #[test]
    fn asset_build_id_is_one_safe_path_segment() {
        assert_eq!(asset_build_id("green"), format!("green-{}", short_sha()));
        assert_eq!(asset_build_id("a/b c"), format!("a_b_c-{}", short_sha()));
    }
}
