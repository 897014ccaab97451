//! `opsctl watch`: `status` redrawn every interval on a cleared screen, for a projector.

use std::process::ExitCode;

use crate::cli::WatchArgs;
use crate::cmd::status;
use crate::context::Context;

pub async fn run(ctx: &Context, args: &WatchArgs) -> anyhow::Result<ExitCode> {
    let mut drawn = 0u64;
    loop {
        let status = status::gather(ctx).await?;
        ctx.out.clear_screen()?;
        ctx.out.emit(&status)?;
        drawn += 1;
        if args.count.is_some_and(|n| drawn >= n) {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(args.interval).await;
    }
}
