//! What the workspace's integration tests share for the processes they start: a loopback port a
//! child can listen on, a child that dies with the test, and a bounded wait until it listens.
//!
//! Ports come from below the kernel's ephemeral range (32768–60999 on Linux), so an outgoing
//! connection — a test's client, a server's Redis or DynamoDB socket — can never take the
//! port between the moment it is picked and the moment the child binds it (that race once
//! failed CI: a Redis Cluster node found its port taken). Within one test process no port is
//! handed out twice, so tests running side by side never pick the same one.
//!
//! # Layout
//! - this file: ports, child processes, waits.
//! - [`house`]: the house rules every crate's tests check (layout, file size, module map).

pub mod house;

use std::collections::HashSet;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Listening ports are picked from here: below Linux's default ephemeral range.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback port free right now, outside the ephemeral range and not handed out before in
/// this process.
pub fn free_port() -> u16 {
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed = handed.get_or_insert_with(HashSet::new);
    for _ in 0..10_000 {
        let port = fastrand::u16(PORTS);
        if handed.contains(&port) || TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        handed.insert(port);
        return port;
    }
    panic!("no free loopback port in {PORTS:?}");
}

/// A child process killed (and reaped) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something accepts on `port`; panics naming `what` if `child` exits first or
/// nothing listens `within`.
pub fn wait_listening(port: u16, what: &str, child: &mut Child, within: Duration) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("{what} exited ({status}) before listening on {port}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A binary of the workspace next to the running test's build directory (`cargo build -p
/// NAME` first when running one crate's tests alone).
pub fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} not built: run `cargo build -p {name}` (or the workspace tests) first",
        bin.display()
    );
    bin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_outside_the_ephemeral_range_and_never_repeat() {
        let ports: Vec<u16> = (0..500).map(|_| free_port()).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        assert!(ports.iter().all(|p| PORTS.contains(p)));
    }
}
