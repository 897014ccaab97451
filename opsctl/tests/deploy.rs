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

/// Terraform registers a new revision when the task definition changes but leaves the
/// services on theirs: the next deploy must carry that change, not copy the running revision.
#[tokio::test]
async fn deploy_starts_from_the_familys_newest_revision() {
    use aws_sdk_ecs::types::{
        Compatibility, ContainerDefinition, KeyValuePair, NetworkMode, PortMapping,
    };
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    // What `terraform apply` does after a new CHAT_* variable: revision 2, service untouched.
    stack
        .ecs
        .register_task_definition()
        .family("chat-green")
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(Compatibility::Fargate)
        .cpu("512")
        .memory("1024")
        .container_definitions(
            ContainerDefinition::builder()
                .name("chat-server")
                .image("chat:1")
                .essential(true)
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .environment(
                    KeyValuePair::builder()
                        .name("CHAT_UPLOADS_BUCKET")
                        .value("chat-uploads")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("register revision 2");
    let green = stack.service("chat-green").await;
    assert!(
        green
            .task_definition()
            .expect("td")
            .ends_with("chat-green:1")
    );

    moto.opsctl(&[
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
    .expect_code(0);
    let green = stack.service("chat-green").await;
    let td_arn = green.task_definition().expect("task definition");
    assert!(td_arn.ends_with("task-definition/chat-green:3"), "{td_arn}");
    let td = stack
        .ecs
        .describe_task_definition()
        .task_definition(td_arn)
        .send()
        .await
        .expect("describe task definition")
        .task_definition
        .expect("task definition");
    let chat = &td.container_definitions()[0];
    assert_eq!(chat.image(), Some("chat:2"));
    assert_eq!(
        chat.environment()
            .iter()
            .find(|e| e.name() == Some("CHAT_UPLOADS_BUCKET"))
            .and_then(|e| e.value()),
        Some("chat-uploads"),
        "the newest revision's environment is carried"
    );
    assert_eq!(td.cpu(), Some("512"));
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
