//! `opsctl status`, `health`, `watch`, `completions` and the setup errors, against a real
//! moto server.

mod support;

use support::{Moto, Options, Stack};

const ALB: &[&str] = &["--alb", support::ALB, "--cluster", support::CLUSTER];

fn args<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = ALB.to_vec();
    v.extend_from_slice(rest);
    v
}

#[tokio::test]
async fn status_reports_weights_targets_services_and_live_connections() {
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    for i in 0..3 {
        stack.put_connection(&format!("b{i}"), "blue", i).await;
    }
    stack.put_connection("g0", "green", 9).await;

    let json = moto
        .opsctl(&args(&[
            "status",
            "--json",
            "--table-prefix",
            support::PREFIX,
        ]))
        .expect_code(0)
        .json();
    assert_eq!(json["alb"], "chat-alb");
    assert_eq!(json["weights"]["blue"], 100);
    assert_eq!(json["weights"]["green"], 0);
    let colors = json["colors"].as_array().expect("colors");
    assert_eq!(colors.len(), 2);
    let (blue, green) = (&colors[0], &colors[1]);
    assert_eq!(blue["color"], "blue");
    assert_eq!(blue["weight"], 100);
    assert_eq!(blue["healthy_targets"], 2);
    assert_eq!(blue["total_targets"], 2);
    assert_eq!(blue["service"]["name"], "chat-blue");
    assert_eq!(blue["service"]["desired"], 2);
    assert_eq!(blue["service"]["running"], 2);
    assert_eq!(blue["service"]["revision"], "chat-blue:1");
    assert_eq!(blue["service"]["images"][0], "chat:1");
    assert_eq!(blue["live_connections"], 3);
    assert_eq!(green["color"], "green");
    assert_eq!(green["live_connections"], 1);

    // The same data as a table; without --table-prefix the connections column is "-".
    let run = moto.opsctl(&args(&["status"]));
    run.expect_code(0);
    assert!(
        run.stdout.contains("chat-alb :80  blue 100% / green 0%"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("chat-green:1"), "{}", run.stdout);
    assert!(run.stdout.contains("2/2 healthy"), "{}", run.stdout);
    assert!(
        !run.stdout.contains('\u{1b}'),
        "colour escapes with NO_COLOR / no TTY"
    );
}

#[tokio::test]
async fn health_exit_code_follows_target_health() {
    let moto = Moto::start();
    let _stack = Stack::create(
        &moto,
        Options {
            green_targets: 0,
            ..Options::default()
        },
    )
    .await;
    // Default: colours with weight > 0, i.e. blue, all healthy.
    let json = moto
        .opsctl(&args(&["health", "--json"]))
        .expect_code(0)
        .json();
    assert_eq!(json["healthy"], true);
    assert_eq!(json["colors"].as_array().map(Vec::len), Some(1));
    assert_eq!(json["colors"][0]["targets"][0]["state"], "healthy");

    let run = moto.opsctl(&args(&["health", "--color", "green"]));
    run.expect_code(1);
    assert!(run.stdout.contains("no targets"), "{}", run.stdout);
}

#[tokio::test]
async fn watch_redraws_status_and_completions_are_generated() {
    let moto = Moto::start();
    let _stack = Stack::create(&moto, Options::default()).await;
    let run = moto.opsctl(&args(&["watch", "--count", "2", "--interval", "0s"]));
    run.expect_code(0);
    assert_eq!(
        run.stdout.matches("chat-alb :80").count(),
        2,
        "{}",
        run.stdout
    );

    let run = moto.opsctl(&["completions", "bash"]);
    run.expect_code(0);
    assert!(run.stdout.contains("_opsctl()"), "{}", run.stdout);
    assert!(run.stdout.contains("rollback"), "{}", run.stdout);
}

#[tokio::test]
async fn setup_errors_exit_2_naming_what_is_missing() {
    let moto = Moto::start();
    let _stack = Stack::create(&moto, Options::default()).await;

    let run = moto.opsctl(&["status"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("--alb NAME or set OPSCTL_ALB"),
        "{}",
        run.stderr
    );

    let run = moto.opsctl(&["--alb", "nope", "--cluster", "chat", "status"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("load balancer \"nope\" not found"),
        "{}",
        run.stderr
    );

    let run = moto.opsctl(&args(&["--listener-port", "443", "status"]));
    run.expect_code(2);
    assert!(
        run.stderr.contains("no listener on port 443 (ports: 80"),
        "{}",
        run.stderr
    );

    let run = moto.opsctl(&["--alb", support::ALB, "--cluster", "other", "status"]);
    run.expect_code(2);
    assert!(run.stderr.contains("\"other\""), "{}", run.stderr);

    let run = moto.opsctl(&["--alb", support::ALB, "status"]);
    run.expect_code(2);
    assert!(run.stderr.contains("OPSCTL_CLUSTER"), "{}", run.stderr);

    let run = moto.opsctl(&args(&["frobnicate"]));
    run.expect_code(2);
}

/// A laptop whose clock runs a minute fast (venue Wi-Fi blocking NTP) would judge the heartbeats
/// tasks wrote just now a minute old: every task dead, every shift refused, `rollback` waiting
/// for ready tasks forever. Freshness is measured on the AWS side's clock instead. opsctl runs
/// under libfaketime (installed by scripts/test-env.sh), moto and the heartbeats on the real clock.
#[tokio::test]
async fn heartbeats_are_fresh_whatever_the_operators_clock_says() {
    let lib = std::env::var("FAKETIME_LIB")
        .ok()
        .filter(|l| !l.is_empty())
        .expect("FAKETIME_LIB is unset: run through scripts/test-env.sh (installs faketime)");
    let moto = Moto::start();
    let stack = Stack::create(&moto, Options::default()).await;
    stack
        .put_fleet(&[("b1", "blue", 3, true), ("g1", "green", 1, true)])
        .await;
    for offset in ["+60", "-60"] {
        let env = [
            ("LD_PRELOAD", lib.as_str()),
            ("FAKETIME", offset),
            ("FAKETIME_DONT_RESET", "1"),
        ];
        let json = moto
            .opsctl_env(
                &env,
                &args(&["status", "--json", "--table-prefix", support::PREFIX]),
            )
            .expect_code(0)
            .json();
        for (i, color) in ["blue", "green"].iter().enumerate() {
            assert_eq!(
                (
                    json["colors"][i]["live_tasks"].as_u64(),
                    json["colors"][i]["ready_tasks"].as_u64()
                ),
                (Some(1), Some(1)),
                "opsctl's clock {offset} s: {color}'s heartbeat of now must be fresh: {}",
                json["colors"][i]
            );
        }
    }
}
