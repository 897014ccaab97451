//! One change at a time, the emergency always wins, errors restore, readiness gates, and
//! rollback to the stable colour — opsctl against a real moto server (and a fault proxy in
//! front of it), reading the listener back through the ELBv2 API.

mod support;

use std::time::Duration;

use support::{FaultProxy, Moto, Options, Running, Stack, args};

/// A stepped shift to green, 25 % a step, a minute between steps, waited until its first
/// step is in place.
async fn slow_stepped_shift(moto: &Moto, stack: &Stack) -> Running {
    let mut running = moto.spawn_opsctl(&args(&[
        "shift",
        "green",
        "--step",
        "25",
        "--interval",
        "60s",
        "--json",
    ]));
    support::eventually(Duration::from_secs(60), "the first step", || async {
        stack.weights().await == (75, 25)
    })
    .await;
    assert!(!running.exited(), "the stepped shift ended early");
    running
}

#[tokio::test]
async fn rollback_after_a_stepped_rollout_goes_back_to_the_stable_colour() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    for w in ["90/10", "50/50", "10/90"] {
        moto.opsctl(&args(&["shift", w])).expect_code(0);
    }
    assert_eq!(stack.listener_tags().await["opsctl:stable"], "blue");
    let run = moto.opsctl(&args(&["rollback"]));
    run.expect_code(0);
    assert!(
        run.stdout.contains("→ blue 100% / green 0%"),
        "{}",
        run.stdout
    );
    assert_eq!(stack.weights().await, (100, 0));
    // Tasks are asked to move live connections too.
    assert_eq!(stack.control().await, Some((100, 0, true)));
    // `undo` is its own verb: back to the split before the rollback.
    moto.opsctl(&args(&["undo"])).expect_code(0);
    assert_eq!(stack.weights().await, (10, 90));
}

#[tokio::test]
async fn rollback_scales_the_stable_colour_back_up_when_it_was_scaled_to_0() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    moto.opsctl(&args(&["shift", "10/90"])).expect_code(0);
    stack.set_desired("chat-blue", 0).await;
    let run = moto.opsctl(&args(&["rollback"]));
    run.expect_code(0);
    assert!(
        run.stdout.contains("scaled chat-blue from 0 to 2 tasks"),
        "{}",
        run.stdout
    );
    assert_eq!(stack.service("chat-blue").await.desired_count, 2);
    assert_eq!(stack.weights().await, (100, 0));
}

#[tokio::test]
async fn emergency_force_shift_during_a_stepped_shift_stays_in_force() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    let stepped = slow_stepped_shift(&moto, &stack).await;
    let run = moto.opsctl(&args(&["shift", "blue", "--force"]));
    run.expect_code(0);
    assert!(
        run.stdout.contains("took the lease from shift by"),
        "{}",
        run.stdout
    );

    let run = stepped.wait();
    run.expect_code(1);
    assert_eq!(run.json()["outcome"], "lease_lost");
    assert_eq!(stack.weights().await, (100, 0));
}

#[tokio::test]
async fn rollback_during_a_stepped_shift_stays_in_force() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    let stepped = slow_stepped_shift(&moto, &stack).await;
    moto.opsctl(&args(&["rollback"])).expect_code(0);
    let run = stepped.wait();
    run.expect_code(1);
    assert_eq!(run.json()["outcome"], "lease_lost");
    assert!(
        run.stderr.is_empty() || !run.stderr.contains("restored"),
        "{}",
        run.stderr
    );
    assert_eq!(stack.weights().await, (100, 0));
}

#[tokio::test]
async fn a_second_shift_is_refused_while_another_holds_the_lease() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    let stepped = slow_stepped_shift(&moto, &stack).await;
    let run = moto.opsctl(&args(&["shift", "50/50"]));
    run.expect_code(1);
    assert!(run.stderr.contains("refused (busy)"), "{}", run.stderr);
    assert!(run.stderr.contains("shift by"), "{}", run.stderr);
    assert_eq!(stack.weights().await, (75, 25));
    drop(stepped);
}

#[tokio::test]
async fn a_stepped_shift_stops_without_restoring_when_someone_else_changes_the_weights() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    let stepped = slow_stepped_shift(&moto, &stack).await;
    // Someone at the console, outside opsctl and its lease.
    stack.set_weights_directly(60, 40).await;
    let run = stepped.wait();
    run.expect_code(1);
    let json = run.json();
    assert_eq!(json["outcome"], "superseded");
    assert_eq!(json["after"]["blue"], 60);
    assert_eq!(stack.weights().await, (60, 40));
}

#[tokio::test]
async fn an_aws_error_on_a_weight_write_mid_shift_restores_the_starting_weights() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    let proxy = FaultProxy::start(&moto.endpoint, "ModifyListener", 2);
    let run = moto.opsctl_via(
        &proxy.endpoint,
        &args(&[
            "shift",
            "green",
            "--step",
            "50",
            "--interval",
            "0s",
            "--json",
        ]),
    );
    run.expect_code(3);
    let json = run.json();
    assert_eq!(json["outcome"], "error_restored");
    assert!(
        json["error"]
            .as_str()
            .expect("error")
            .contains("fault injected"),
        "{json}"
    );
    assert_eq!(stack.weights().await, (100, 0));
    // Step 1, the failed step 2, the restore.
    assert_eq!(proxy.calls("ModifyListener"), 3);
    assert!(
        !stack
            .listener_tags()
            .await
            .contains_key("opsctl:previous-weights")
    );
}

#[tokio::test]
async fn an_aws_error_in_the_gate_while_baking_restores_the_starting_weights() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    // Calls 1 and 2 are the gate before step 1 (blue, green); call 3 is the first
    // re-check while baking at 50/50.
    let proxy = FaultProxy::start(&moto.endpoint, "DescribeTargetHealth", 3);
    let run = moto.opsctl_via(
        &proxy.endpoint,
        &args(&[
            "shift",
            "green",
            "--step",
            "50",
            "--interval",
            "30s",
            "--json",
        ]),
    );
    run.expect_code(3);
    assert_eq!(run.json()["outcome"], "error_restored");
    assert_eq!(stack.weights().await, (100, 0));
}

#[tokio::test]
async fn a_failed_first_write_changes_nothing_and_records_no_way_back() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    let proxy = FaultProxy::start(&moto.endpoint, "ModifyListener", 1);
    let run = moto.opsctl_via(&proxy.endpoint, &args(&["shift", "50/50", "--json"]));
    run.expect_code(2);
    assert_eq!(run.json()["outcome"], "failed");
    assert_eq!(stack.weights().await, (100, 0));
    assert!(stack.listener_tags().await.is_empty());
}

#[tokio::test]
async fn a_colour_failing_readiness_fails_health_and_every_shift_gate() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    stack
        .put_fleet(&[("blue-1", "blue", 3, true), ("green-1", "green", 0, false)])
        .await;
    let run = moto.opsctl(&args(&["shift", "50/50"]));
    run.expect_code(1);
    assert!(
        run.stdout
            .contains("green: 1 of 1 tasks not ready (store or fanout failing): green-1"),
        "{}",
        run.stdout
    );
    let run = moto.opsctl(&args(&["health", "--color", "green"]));
    run.expect_code(1);
    assert!(run.stdout.contains("not ready"), "{}", run.stdout);
    moto.opsctl(&args(&["health"])).expect_code(0);

    // No live green task at all fails the gate too.
    stack.put_fleet(&[("blue-1", "blue", 3, true)]).await;
    let run = moto.opsctl(&args(&[
        "shift",
        "green",
        "--step",
        "50",
        "--interval",
        "0s",
    ]));
    run.expect_code(1);
    assert!(
        run.stdout.contains("green: no live task reports readiness"),
        "{}",
        run.stdout
    );
    assert_eq!(stack.weights().await, (100, 0));

    stack
        .put_fleet(&[("blue-1", "blue", 3, true), ("green-1", "green", 0, true)])
        .await;
    moto.opsctl(&args(&["shift", "50/50"])).expect_code(0);
    let status = moto
        .opsctl(&args(&["status", "--json"]))
        .expect_code(0)
        .json();
    assert_eq!(status["colors"][0]["live_connections"], 3);
    assert_eq!(status["colors"][1]["ready_tasks"], 1);
}

#[tokio::test]
async fn rebalance_exits_0_only_once_live_connections_follow() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    stack
        .put_fleet(&[
            ("blue-1", "blue", 100, true),
            ("green-1", "green", 100, true),
        ])
        .await;
    let json = moto
        .opsctl(&args(&["shift", "50/50", "--rebalance=1s", "--json"]))
        .expect_code(0)
        .json();
    assert_eq!(json["outcome"], "done");
    assert_eq!(json["connections"]["blue"], 100);
    assert_eq!(stack.control().await, Some((50, 50, true)));

    // Nobody moves (the fleet item stays as written): not converged in time, exit 1.
    let json = moto
        .opsctl(&args(&[
            "shift",
            "10/90",
            "--rebalance",
            "--timeout",
            "2s",
            "--json",
        ]))
        .expect_code(1)
        .json();
    assert_eq!(json["outcome"], "not_converged");
    assert_eq!(stack.weights().await, (10, 90));
}
