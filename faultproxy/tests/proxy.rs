//! The proxy against a real echo server on loopback: bytes pass both ways, each rule does
//! what it says (to the named operation only), and cuts and resets reach the client as FIN
//! and RST.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use faultproxy::{Action, FaultProxy, Mode, Rule};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

/// An echo server; every chunk it receives is also reported on the channel.
async fn echo() -> (SocketAddr, mpsc::UnboundedReceiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback I/O");
    let addr = listener.local_addr().expect("loopback I/O");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.expect("loopback I/O");
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let _ = tx.send(buf[..n].to_vec());
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn request(op: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.{op}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends `req` and reads its echo; returns how long the round trip took.
async fn round_trip(s: &mut TcpStream, req: &[u8]) -> Duration {
    let started = Instant::now();
    s.write_all(req).await.expect("loopback I/O");
    let mut back = vec![0u8; req.len()];
    tokio::time::timeout(WAIT, s.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("loopback I/O");
    assert_eq!(back, req);
    started.elapsed()
}

#[tokio::test]
async fn requests_pass_both_ways_and_are_counted_by_operation() {
    let (up, _) = echo().await;
    let proxy = FaultProxy::start(up, Mode::Http)
        .await
        .expect("loopback I/O");
    let mut s = TcpStream::connect(proxy.addr())
        .await
        .expect("loopback I/O");
    // Two requests in one write are framed apart.
    let mut two = request("GetItem", "{}");
    two.extend(request("TransactWriteItems", "{\"a\":1}"));
    round_trip(&mut s, &two).await;
    round_trip(&mut s, &request("GetItem", "{}")).await;
    assert_eq!(proxy.forwarded("GetItem"), 2);
    assert_eq!(proxy.forwarded("TransactWriteItems"), 1);
    assert_eq!(proxy.open_connections(), 1);
}

#[tokio::test]
async fn a_delay_slows_only_the_named_operation() {
    let (up, _) = echo().await;
    let proxy = FaultProxy::start(up, Mode::Http)
        .await
        .expect("loopback I/O");
    proxy.set_rules(vec![Rule::op(
        "TransactWriteItems",
        Action::Delay(Duration::from_millis(600)),
    )]);
    let mut s = TcpStream::connect(proxy.addr())
        .await
        .expect("loopback I/O");
    let read = round_trip(&mut s, &request("GetItem", "{}")).await;
    let write = round_trip(&mut s, &request("TransactWriteItems", "{}")).await;
    assert!(read < Duration::from_millis(500), "GetItem took {read:?}");
    assert!(
        write >= Duration::from_millis(600),
        "TransactWriteItems took {write:?}"
    );
}

#[tokio::test]
async fn a_hang_holds_the_request_until_the_rules_change() {
    let (up, mut arrived) = echo().await;
    let proxy = FaultProxy::start(up, Mode::Http)
        .await
        .expect("loopback I/O");
    proxy.set_rules(vec![Rule::all(Action::Hang)]);
    let mut s = TcpStream::connect(proxy.addr())
        .await
        .expect("loopback I/O");
    let req = request("PutItem", "{}");
    s.write_all(&req).await.expect("loopback I/O");
    let mut back = vec![0u8; req.len()];
    let held = tokio::time::timeout(Duration::from_millis(400), s.read_exact(&mut back)).await;
    assert!(held.is_err(), "a hung request was answered");
    assert!(
        arrived.try_recv().is_err(),
        "a hung request reached upstream"
    );
    assert_eq!(proxy.forwarded("PutItem"), 0);
    assert_eq!(proxy.held(), 1);
    proxy.clear();
    tokio::time::timeout(WAIT, s.read_exact(&mut back))
        .await
        .expect("released")
        .expect("loopback I/O");
    assert_eq!(back, req);
    assert_eq!(proxy.forwarded("PutItem"), 1);
    assert_eq!(proxy.held(), 0);
}

#[tokio::test]
async fn a_delayed_response_lands_at_once_and_answers_late() {
    let (up, mut arrived) = echo().await;
    let proxy = FaultProxy::start(up, Mode::Http)
        .await
        .expect("loopback I/O");
    proxy.set_rules(vec![Rule::op(
        "TransactWriteItems",
        Action::DelayResponse(Duration::from_millis(800)),
    )]);
    let mut s = TcpStream::connect(proxy.addr())
        .await
        .expect("loopback I/O");
    let req = request("TransactWriteItems", "{}");
    let started = Instant::now();
    s.write_all(&req).await.expect("loopback I/O");
    tokio::time::timeout(WAIT, arrived.recv())
        .await
        .expect("upstream got the request")
        .expect("loopback I/O");
    let landed = started.elapsed();
    let mut back = vec![0u8; req.len()];
    tokio::time::timeout(WAIT, s.read_exact(&mut back))
        .await
        .expect("answered")
        .expect("loopback I/O");
    let answered = started.elapsed();
    assert!(
        landed < Duration::from_millis(500),
        "landed after {landed:?}"
    );
    assert!(
        answered >= Duration::from_millis(800),
        "answered after {answered:?}"
    );
}

#[tokio::test]
async fn cut_all_closes_and_reset_all_resets_live_connections() {
    let (up, _) = echo().await;
    let proxy = FaultProxy::start(up, Mode::Tcp)
        .await
        .expect("loopback I/O");
    let mut a = TcpStream::connect(proxy.addr())
        .await
        .expect("loopback I/O");
    round_trip(&mut a, b"PING\r\n").await;
    proxy.cut_all();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(WAIT, a.read(&mut buf))
        .await
        .expect("closed in time");
    assert_eq!(
        n.expect("loopback I/O"),
        0,
        "a cut connection ends with FIN"
    );

    let mut b = TcpStream::connect(proxy.addr())
        .await
        .expect("loopback I/O");
    round_trip(&mut b, b"PING\r\n").await;
    proxy.reset_all();
    let r = tokio::time::timeout(WAIT, b.read(&mut buf))
        .await
        .expect("reset in time");
    assert_eq!(
        r.expect_err("a reset connection errors").kind(),
        std::io::ErrorKind::ConnectionReset
    );

    // New connections are served again.
    let mut c = TcpStream::connect(proxy.addr())
        .await
        .expect("loopback I/O");
    round_trip(&mut c, b"PING\r\n").await;
}

#[tokio::test]
async fn a_held_request_does_not_occupy_a_serial_upstream() {
    // A one-connection-at-a-time upstream: it accepts, serves one request, closes.
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback I/O");
    let up = listener.local_addr().expect("loopback I/O");
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.expect("loopback I/O");
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let _ = s.write_all(&buf[..n]).await;
        }
    });
    let proxy = FaultProxy::start(up, Mode::Http)
        .await
        .expect("loopback I/O");
    proxy.set_rules(vec![Rule::op("PutItem", Action::Hang)]);
    let mut held = TcpStream::connect(proxy.addr())
        .await
        .expect("loopback I/O");
    held.write_all(&request("PutItem", "{}"))
        .await
        .expect("loopback I/O");
    // While the PutItem hangs, another request is served.
    let mut other = TcpStream::connect(proxy.addr())
        .await
        .expect("loopback I/O");
    round_trip(&mut other, &request("GetItem", "{}")).await;
    proxy.clear();
    let mut back = vec![0u8; request("PutItem", "{}").len()];
    tokio::time::timeout(WAIT, held.read_exact(&mut back))
        .await
        .expect("released")
        .expect("loopback I/O");
}

#[tokio::test]
async fn a_reset_rule_resets_each_new_request_in_tcp_mode() {
    let (up, mut arrived) = echo().await;
    let proxy = FaultProxy::start(up, Mode::Tcp)
        .await
        .expect("loopback I/O");
    proxy.set_rules(vec![Rule::all(Action::Reset)]);
    let mut s = TcpStream::connect(proxy.addr())
        .await
        .expect("loopback I/O");
    s.write_all(b"PING\r\n").await.expect("loopback I/O");
    let mut buf = [0u8; 8];
    let r = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("reset in time");
    assert_eq!(
        r.expect_err("reset").kind(),
        std::io::ErrorKind::ConnectionReset
    );
    assert!(arrived.try_recv().is_err(), "the chunk reached upstream");
}

#[tokio::test]
async fn a_dead_upstream_looks_dead_through_the_proxy() {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback I/O")
        .local_addr()
        .expect("loopback I/O");
    let proxy = FaultProxy::start(port, Mode::Tcp)
        .await
        .expect("loopback I/O");
    let mut s = TcpStream::connect(proxy.addr())
        .await
        .expect("loopback I/O");
    // Upstream is dialled when the first bytes arrive.
    s.write_all(b"PING\r\n").await.expect("loopback I/O");
    let mut buf = [0u8; 8];
    let r = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .expect("ended in time");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
}
