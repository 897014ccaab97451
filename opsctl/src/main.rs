//! opsctl: the operator's CLI for blue/green traffic control (filled in by its own issue).

use clap::Parser;

/// Blue/green traffic control for chat-server on AWS.
#[derive(Parser)]
#[command(version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
