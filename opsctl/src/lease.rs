//! One weight change at a time: every command that writes weights first takes the lease
//! (`opsctl#lease` in the connections table, see `aws::control`) with a conditional write,
//! keeps it alive while it works, and gives it back at the end. `rollback` and `--force`
//! take it unconditionally: the emergency always wins, and the change it displaced notices
//! at its next renewal and stops.
//!
//! Why DynamoDB and not a listener tag: ELBv2 tag writes are unconditional, so two
//! operators could both "take" a tag lease; DynamoDB's condition expression makes taking it
//! atomic, and the table already exists with the tasks' permissions and TTL.

use std::time::Duration;

use anyhow::anyhow;
use tokio::time::Instant;

use crate::aws::control::{self, Holder, now_ms};
use crate::context::Context;

/// How long a lease lasts without renewal: a crashed opsctl blocks others this long at most.
pub const LEASE_FOR: Duration = Duration::from_secs(30);
/// Renew when the lease has less than this left.
const RENEW_EVERY: Duration = Duration::from_secs(5);

/// A held lease.
pub struct Lease {
    pub owner: String,
    table: String,
    renewed: Instant,
    /// The holder this lease displaced (`rollback` / `--force` only).
    pub displaced: Option<Holder>,
}

/// Why the lease could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("another change holds the lease: {} (for {}s more)", .0.owner, (.0.until_ms - now_ms()).max(0) / 1000)]
    Busy(Holder),
}

/// `user@host:pid`, so a message about the lease names a person and a terminal.
pub fn owner_id(command: &str) -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "someone".into());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{command} by {user}@{host} pid {}", std::process::id())
}

impl Lease {
    /// Takes the lease; `steal` for the emergency paths.
    pub async fn take(
        ctx: &Context,
        command: &str,
        steal: bool,
    ) -> anyhow::Result<Result<Lease, LeaseError>> {
        let table = ctx.lease_table()?;
        let owner = owner_id(command);
        let until = now_ms() + i64::try_from(LEASE_FOR.as_millis()).unwrap_or(30_000);
        match control::take_lease(&ctx.clients.dynamodb, &table, &owner, until, steal).await? {
            Ok(displaced) => Ok(Ok(Lease {
                owner,
                table,
                renewed: Instant::now(),
                displaced,
            })),
            Err(holder) => Ok(Err(LeaseError::Busy(holder))),
        }
    }

    /// Confirms (and extends) the lease; `false` when someone else took it. Renews at most
    /// every few seconds unless `now`, so calling it every second costs little.
    pub async fn still_held(&mut self, ctx: &Context, now: bool) -> anyhow::Result<bool> {
        if !now && self.renewed.elapsed() < RENEW_EVERY {
            // Cheap check between renewals: a consistent read of the holder.
            let holder = control::read_lease(&ctx.clients.dynamodb, &self.table).await?;
            return Ok(holder.is_some_and(|h| h.owner == self.owner));
        }
        let until = now_ms() + i64::try_from(LEASE_FOR.as_millis()).unwrap_or(30_000);
        let held =
            control::renew_lease(&ctx.clients.dynamodb, &self.table, &self.owner, until).await?;
        if held {
            self.renewed = Instant::now();
        }
        Ok(held)
    }

    /// Gives the lease back (if still ours); errors are reported, not fatal: it expires.
    pub async fn release(self, ctx: &Context) {
        if let Err(e) =
            control::release_lease(&ctx.clients.dynamodb, &self.table, &self.owner).await
        {
            let _ = ctx.out.note(
                None,
                format!(
                    "  note: {:#} (it expires by itself)",
                    anyhow!(e).context("releasing the lease")
                ),
            );
        }
    }
}
