//! `opsctl shift` and `opsctl rollback` against a real moto server: weights are read back
//! through the ELBv2 API after every run.

mod support;

use std::time::Duration;

use support::{ALARM, Moto, Options, Stack, args};

#[tokio::test]
async fn shift_and_undo_change_the_listener_weights() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    assert_eq!(stack.weights().await, (100, 0));

    let run = moto.opsctl(&args(&["shift", "30/70"]));
    run.expect_code(0);
    assert!(
        run.stdout
            .contains("blue 100% / green 0% → blue 30% / green 70%"),
        "before → after line missing:\n{}",
        run.stdout
    );
    assert_eq!(stack.weights().await, (30, 70));
    let tags = stack.listener_tags().await;
    assert_eq!(tags["opsctl:previous-weights"], "blue=100,green=0");

    moto.opsctl(&args(&["shift", "green"])).expect_code(0);
    assert_eq!(stack.weights().await, (0, 100));
    // Stable is the colour that had everything before this rollout began.
    assert_eq!(stack.listener_tags().await["opsctl:stable"], "blue");

    // Back to the weights before the last shift; a second undo undoes the first.
    let run = moto.opsctl(&args(&["undo"]));
    run.expect_code(0);
    assert!(
        run.stdout.contains("→ blue 30% / green 70%"),
        "{}",
        run.stdout
    );
    assert_eq!(stack.weights().await, (30, 70));
    moto.opsctl(&args(&["undo"])).expect_code(0);
    assert_eq!(stack.weights().await, (0, 100));
    // The tasks are told each time, without being asked to rebalance.
    assert_eq!(stack.control().await, Some((0, 100, false)));

    // Shorthand `blue` and the same again: already there, nothing to do.
    moto.opsctl(&args(&["shift", "blue"])).expect_code(0);
    assert_eq!(stack.weights().await, (100, 0));
    let json = moto
        .opsctl(&args(&["shift", "blue", "--json"]))
        .expect_code(0)
        .json();
    assert_eq!(json["outcome"], "unchanged");
}

#[tokio::test]
async fn undo_and_rollback_with_nothing_recorded_exit_1() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    let run = moto.opsctl(&args(&["undo"]));
    run.expect_code(1);
    assert!(run.stderr.contains("nothing to undo"), "{}", run.stderr);
    // A split set outside opsctl, no stable colour recorded: rollback cannot guess.
    stack.set_weights_directly(50, 50).await;
    let run = moto.opsctl(&args(&["rollback"]));
    run.expect_code(1);
    assert!(
        run.stderr.contains("nothing to roll back to"),
        "{}",
        run.stderr
    );
    assert_eq!(stack.weights().await, (50, 50));
}

#[tokio::test]
async fn plain_target_group_listener_is_read_and_shifted() {
    let moto = Moto::start();
    let stack = Stack::create(
        &moto,
        Options {
            forward_config: false,
            ..Options::default()
        },
    )
    .await;
    let status = moto
        .opsctl(&args(&["status", "--json"]))
        .expect_code(0)
        .json();
    assert_eq!(status["weights"]["blue"], 100);
    assert_eq!(status["colors"][1]["target_group"], "chat-green");

    moto.opsctl(&args(&["shift", "50/50"])).expect_code(0);
    assert_eq!(stack.weights().await, (50, 50));
}

/// The Terraform's CloudFront-only listener: 403 by default, the weighted forward in the rule
/// that checks the secret origin header. opsctl shifts the rule and leaves the 403 alone.
#[tokio::test]
async fn origin_verified_rule_is_read_and_shifted() {
    let moto = Moto::start();
    let stack = Stack::create(
        &moto,
        Options {
            origin_rule: true,
            ..Options::default()
        },
    )
    .await;
    assert_eq!(stack.weights().await, (100, 0));
    let status = moto
        .opsctl(&args(&["status", "--json"]))
        .expect_code(0)
        .json();
    assert_eq!(status["weights"]["blue"], 100);

    moto.opsctl(&args(&["shift", "40/60"])).expect_code(0);
    assert_eq!(stack.weights().await, (40, 60));
    moto.opsctl(&args(&["rollback"])).expect_code(0);
    assert_eq!(stack.weights().await, (100, 0));

    let listener = stack
        .elb
        .describe_listeners()
        .listener_arns(&stack.listener_arn)
        .send()
        .await
        .expect("describe listener")
        .listeners
        .and_then(|l| l.into_iter().next())
        .expect("listener");
    let default = &listener.default_actions()[0];
    assert_eq!(
        default
            .fixed_response_config()
            .and_then(|f| f.status_code()),
        Some("403"),
        "the listener's 403 for requests without the origin header must stay"
    );
}

#[tokio::test]
async fn refuses_to_shift_toward_a_colour_without_healthy_targets() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    // Green's targets leave the group: moto then reports none registered.
    let targets: Vec<_> = ["10.20.1.20", "10.20.2.20"]
        .iter()
        .map(|ip| {
            aws_sdk_elasticloadbalancingv2::types::TargetDescription::builder()
                .id(*ip)
                .port(8080)
                .build()
        })
        .collect();
    stack
        .elb
        .deregister_targets()
        .target_group_arn(&stack.green_tg)
        .set_targets(Some(targets))
        .send()
        .await
        .expect("deregister");

    let run = moto.opsctl(&args(&["shift", "50/50"]));
    run.expect_code(1);
    assert!(
        run.stdout
            .contains("green: target group chat-green has no registered targets"),
        "{}",
        run.stdout
    );
    assert_eq!(stack.weights().await, (100, 0));

    let json = moto
        .opsctl(&args(&["shift", "green", "--json"]))
        .expect_code(1)
        .json();
    assert_eq!(json["outcome"], "refused");
    assert_eq!(stack.weights().await, (100, 0));

    // Weight to blue only is still allowed, and --force overrides the refusal.
    moto.opsctl(&args(&["shift", "50/50", "--force"]))
        .expect_code(0);
    assert_eq!(stack.weights().await, (50, 50));
    moto.opsctl(&args(&["shift", "blue"])).expect_code(0);
    assert_eq!(stack.weights().await, (100, 0));
}

#[tokio::test]
async fn refuses_when_the_ecs_service_runs_fewer_tasks_than_desired() {
    let moto = Moto::start();
    let stack = Stack::create(
        &moto,
        Options {
            green_desired: support::MOTO_RUNNING + 1,
            ..Options::default()
        },
    )
    .await;
    let run = moto.opsctl(&args(&["shift", "50/50"]));
    run.expect_code(1);
    assert!(
        run.stdout
            .contains("green: ECS service chat-green runs 2 of 3 desired tasks"),
        "{}",
        run.stdout
    );
    assert_eq!(stack.weights().await, (100, 0));
}

#[tokio::test]
async fn healthy_stepped_shift_ends_at_the_target() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    let run = moto.opsctl(&args(&[
        "shift",
        "0/100",
        "--step",
        "30",
        "--interval",
        "100ms",
        "--alarm",
        ALARM,
        "--json",
    ]));
    let json = run.expect_code(0).json();
    assert_eq!(json["outcome"], "done");
    let steps: Vec<(u64, u64)> = json["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["to"]["blue"].as_u64().expect("blue"),
                c["to"]["green"].as_u64().expect("green"),
            )
        })
        .collect();
    assert_eq!(steps, vec![(70, 30), (40, 60), (10, 90), (0, 100)]);
    assert_eq!(json["marked_stable"], "blue");
    assert_eq!(stack.weights().await, (0, 100));
    // Each change is also printed as before → after (on stderr under --json).
    assert!(
        run.stderr
            .contains("blue 10% / green 90% → blue 0% / green 100%"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn stepped_shift_restores_the_start_weights_when_the_alarm_fires() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    // A long interval: the alarm goes off while opsctl waits after its first step.
    let mut running = moto.spawn_opsctl(&args(&[
        "shift",
        "green",
        "--step",
        "25",
        "--interval",
        "60s",
        "--alarm",
        ALARM,
    ]));
    support::eventually(Duration::from_secs(60), "the first step", || async {
        stack.weights().await == (75, 25)
    })
    .await;
    assert!(
        !running.exited(),
        "opsctl finished before the alarm was raised"
    );
    stack.set_alarm("ALARM").await;

    let run = running.wait();
    run.expect_code(1);
    assert!(
        run.stdout.contains("alarm chat-5xx is in ALARM"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("restored blue 75% / green 25% → blue 100% / green 0%"),
        "{}",
        run.stdout
    );
    assert_eq!(stack.weights().await, (100, 0));
    // The failed shift leaves nothing for rollback to undo.
    assert!(
        !stack
            .listener_tags()
            .await
            .contains_key("opsctl:previous-weights")
    );
}

#[tokio::test]
async fn stepped_shift_with_the_alarm_already_firing_changes_nothing() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    stack.set_alarm("ALARM").await;
    let json = moto
        .opsctl(&args(&[
            "shift",
            "green",
            "--step",
            "50",
            "--interval",
            "0s",
            "--alarm",
            ALARM,
            "--json",
        ]))
        .expect_code(1)
        .json();
    assert_eq!(json["outcome"], "refused");
    assert_eq!(json["alarms"][0]["state"], "ALARM");
    assert_eq!(stack.weights().await, (100, 0));

    // An alarm that does not exist is a setup error, not a silent pass.
    let run = moto.opsctl(&args(&["shift", "green", "--alarm", "no-such-alarm"]));
    run.expect_code(2);
    assert!(run.stderr.contains("no-such-alarm"), "{}", run.stderr);
}

#[tokio::test]
async fn invalid_weights_exit_2_and_change_nothing() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    for bad in ["60/60", "101/-1", "50", "abc/def", "red", "100/0/0"] {
        let run = moto.opsctl(&args(&["shift", bad]));
        run.expect_code(2);
        assert!(
            run.stderr.contains("invalid weights"),
            "{bad}: {}",
            run.stderr
        );
    }
    moto.opsctl(&args(&["shift", "50/50", "--step", "0"]))
        .expect_code(2);
    moto.opsctl(&args(&["shift", "50/50", "--interval", "soon"]))
        .expect_code(2);
    assert_eq!(stack.weights().await, (100, 0));
    assert!(
        !stack
            .listener_tags()
            .await
            .contains_key("opsctl:previous-weights")
    );
}

#[tokio::test]
async fn dry_run_checks_and_changes_nothing() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    let json = moto
        .opsctl(&args(&[
            "shift",
            "green",
            "--step",
            "50",
            "--dry-run",
            "--json",
        ]))
        .expect_code(0)
        .json();
    assert_eq!(json["outcome"], "dry_run");
    assert_eq!(json["plan"].as_array().map(Vec::len), Some(2));
    assert_eq!(stack.weights().await, (100, 0));
    assert!(stack.listener_tags().await.is_empty());
    assert_eq!(stack.control().await, None);
}
