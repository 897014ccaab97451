//! Bakes the build's identity into chat-server, so blue and green builds can be told apart:
//! the git commit (`CHAT_GIT_SHA` from the environment — the Dockerfile's `GIT_SHA` build arg,
//! since `.git` stays out of the image's build context — else `git rev-parse HEAD`, else
//! `unknown`) and the build time (`SOURCE_DATE_EPOCH` when set, for reproducible builds, else
//! now), as `CHAT_BUILD_GIT_SHA` and `CHAT_BUILD_TIME` for `env!` in `src/build_info.rs`.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=CHAT_GIT_SHA");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");

    let from_env = std::env::var("CHAT_GIT_SHA")
        .ok()
        .filter(|s| !s.is_empty() && s != "unknown");
    let sha = from_env
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .filter(|s| s.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".to_string());
    // A commit or checkout moves HEAD or the branch it names: take the new identity then.
    for path in [
        git(&["rev-parse", "--git-path", "HEAD"]),
        git(&["symbolic-ref", "-q", "HEAD"]).and_then(|r| git(&["rev-parse", "--git-path", &r])),
    ]
    .into_iter()
    .flatten()
    {
        println!("cargo:rerun-if-changed={path}");
    }

    let built = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or_else(SystemTime::now, |secs| {
            UNIX_EPOCH + Duration::from_secs(secs)
        });
    println!("cargo:rustc-env=CHAT_BUILD_GIT_SHA={sha}");
    println!(
        "cargo:rustc-env=CHAT_BUILD_TIME={}",
        humantime::format_rfc3339_seconds(built)
    );
}
