//! chat-load against a real chat-server (in this process, embedded store, port 0): a 1-second
//! fanout run reports deliveries. A behaviour test only; it asserts no speed.

use std::process::Command;

use chat_server::config::Cli;
use clap::Parser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_second_fanout_run_reports_deliveries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path").to_string();
    let cli = Cli::try_parse_from([
        "chat-server",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--token-secret",
        "smoke-secret-0123456789",
        "--rate-per-sec",
        "1000",
        "--rate-burst",
        "1000",
    ])
    .expect("valid flags");
    let settings = cli.config.validate().expect("valid config");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = chat_server::app::start(settings, async {
        let _ = stopped.await;
    })
    .await
    .expect("server starts");
    let url = format!("http://{}", running.addr);

    let load = env!("CARGO_BIN_EXE_chat-load");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(load)
            .args([
                "fanout",
                "--url",
                &url,
                "--members",
                "20",
                "--senders",
                "2",
                "--rate",
                "50",
                "--duration",
                "1",
                "--users",
                "2",
                "--timeout",
                "60",
                "--json",
            ])
            .output()
            .expect("run chat-load")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "chat-load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON summary");
    assert_eq!(row["scenario"], "fanout");
    assert_eq!(row["connections"], 20);
    let deliveries = row["detail"]["phase"]["deliveries"]
        .as_u64()
        .expect("deliveries");
    assert!(deliveries > 0, "no deliveries reported: {row}");
    // Every member, the senders included, receives each acked message.
    let acked = row["detail"]["phase"]["acked"].as_u64().expect("acked");
    assert!(acked > 0, "no acks reported: {row}");
    assert_eq!(row["detail"]["phase"]["expected_deliveries"], acked * 20);

    let _ = stop.send(());
    running.wait().await.expect("server stops cleanly");
}
