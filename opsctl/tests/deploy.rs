//! `opsctl deploy` against a real moto server: a new task-definition revision with the new
//! image, the service pointed at it, and the wait for a steady state.

mod support;

use support::{Moto, Options, Stack};

#[tokio::test]
async fn deploy_registers_a_revision_with_the_image_and_updates_the_service() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    let json = moto
        .opsctl(&[
            "--alb",
            support::ALB,
            "--cluster",
            support::CLUSTER,
            "deploy",
            "--color",
            "green",
            "--image",
            "chat:2",
            "--timeout",
            "30s",
            "--interval",
            "100ms",
            "--json",
        ])
        .expect_code(0)
        .json();
    assert_eq!(json["steady"], true);
    assert_eq!(json["service"], "chat-green");

    let green = stack.service("chat-green").await;
    let td_arn = green.task_definition().expect("task definition");
    assert!(td_arn.ends_with("task-definition/chat-green:2"), "{td_arn}");
    let td = stack
        .ecs
        .describe_task_definition()
        .task_definition(td_arn)
        .send()
        .await
        .expect("describe task definition")
        .task_definition
        .expect("task definition");
    assert_eq!(td.container_definitions()[0].image(), Some("chat:2"));
    assert_eq!(td.cpu(), Some("256"), "other settings are copied");
    assert_eq!(td.memory(), Some("512"));
    // Blue is untouched.
    let blue = stack.service("chat-blue").await;
    assert!(blue.task_definition().expect("td").ends_with("chat-blue:1"));

    let status = moto
        .opsctl(&[
            "--alb",
            support::ALB,
            "--cluster",
            support::CLUSTER,
            "status",
            "--json",
        ])
        .expect_code(0)
        .json();
    assert_eq!(status["colors"][1]["service"]["images"][0], "chat:2");
}

#[tokio::test]
async fn deploy_that_never_becomes_steady_exits_1() {
    let moto = Moto::start();
    let stack = Stack::create(
        &moto,
        Options {
            green_desired: support::MOTO_RUNNING + 1,
            ..Options::default()
        },
    )
    .await;
    let run = moto.opsctl(&[
        "--alb",
        support::ALB,
        "--cluster",
        support::CLUSTER,
        "deploy",
        "--color",
        "green",
        "--image",
        "chat:2",
        "--timeout",
        "500ms",
        "--interval",
        "100ms",
    ]);
    run.expect_code(1);
    assert!(
        run.stdout.contains("NOT steady (2/3 running)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("did not reach a steady state"),
        "{}",
        run.stderr
    );
    // The update itself happened.
    let green = stack.service("chat-green").await;
    assert!(
        green
            .task_definition()
            .expect("td")
            .ends_with("chat-green:2")
    );
}

#[tokio::test]
async fn deploy_with_an_unknown_container_exits_2() {
    let moto = Moto::start();
    let _stack = Stack::create(&moto, Options::default()).await;
    let run = moto.opsctl(&[
        "--alb",
        support::ALB,
        "--cluster",
        support::CLUSTER,
        "deploy",
        "--color",
        "blue",
        "--image",
        "chat:2",
        "--container",
        "sidecar",
    ]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("no container \"sidecar\" (containers: chat-server)"),
        "{}",
        run.stderr
    );
}
