//! localalb: a local stand-in for the application load balancer, for tests, the laptop
//! rehearsal and the demo rehearsal. It reads the weighted listener of a load balancer from
//! the ELBv2 API (moto via AWS_ENDPOINT_URL) every `--refresh`, and routes each new
//! connection to a target registered in one of the listener's target groups, in proportion
//! to the weights — so `opsctl shift` is visible live in a browser.
//!
//! It works on whole connections (bytes copied both ways, no HTTP parsing): a WebSocket
//! stays on the target it was routed to, as behind the ALB, and a deregistered target's
//! connections are cut once its group's deregistration delay is over.
//!
//! Layout: [`routes`] (routing table and weighted picker), [`elb`] (reading it from ELBv2),
//! [`proxy`] (accepting, routing, copying, cutting).

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

mod elb;
mod proxy;
mod routes;

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use aws_config::BehaviorVersion;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A weighted HTTP + WebSocket reverse proxy that follows an ALB listener's weights.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Name of the load balancer whose listener to follow.
    #[arg(long, env = "OPSCTL_ALB")]
    alb: String,
    /// Port of the weighted listener in ELBv2.
    #[arg(long, env = "OPSCTL_LISTENER_PORT", default_value_t = 80)]
    listener_port: i32,
    /// Where to accept connections (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// How often to re-read the weights and targets.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    refresh: Duration,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "localalb=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("localalb: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("localalb: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let client = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let listener_arn = elb::listener(&client, &args.alb, args.listener_port).await?;
    let first = elb::routes(&client, &listener_arn).await?;
    tracing::info!(routes = %first.describe(), "Routing");
    let (tx, rx) = watch::channel(first);
    let state = proxy::State::new(rx);

    let socket = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = socket.local_addr().context("reading the bound address")?;
    // The line tests and scripts wait for (the port may have been 0).
    println!("localalb listening on {addr}");
    std::io::stdout().flush().context("writing to stdout")?;

    let refresher = {
        let state = state.clone();
        async move {
            let mut tick = tokio::time::interval(args.refresh);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match elb::routes(&client, &listener_arn).await {
                    Ok(routes) => {
                        if *tx.borrow() != routes {
                            tracing::info!(routes = %routes.describe(), "Routing");
                        }
                        state.reconcile(&routes);
                        tx.send_replace(routes);
                    }
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "Refresh failed; keeping the last routes")
                    }
                }
            }
        }
    };
    tokio::select! {
        r = proxy::serve(socket, state) => r,
        () = refresher => Ok(()),
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C"),
    }
}

#[cfg(test)]
mod house {
    #[test]
    fn the_crate_keeps_the_house_rules() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let problems = testkit::house::problems(&src, "main.rs");
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
