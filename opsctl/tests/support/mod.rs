//! Test support for opsctl: a real moto server per test (killed on drop), the AWS resources
//! laid out as the Terraform lays them out (VPC, subnets and security group through `ec2`,
//! ALB, two ip target groups tagged `Color`, a weighted listener, an ECS cluster with two
//! tagged services, a CloudWatch alarm, the connections table), read-back helpers, and a
//! runner for the opsctl binary.

// Each test file uses a different part of this module.
#![allow(dead_code)]

mod ec2;
mod fault;
pub mod live;

#[allow(unused_imports)]
pub use fault::FaultProxy;

use std::collections::HashMap;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, Compatibility, ContainerDefinition, LaunchType,
    NetworkConfiguration, NetworkMode, PortMapping,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig,
    HttpHeaderConditionConfig, ProtocolEnum, RuleCondition, Tag, TargetDescription,
    TargetGroupTuple, TargetTypeEnum,
};
use chat_contract::rollout::{self, Beat};
use ec2::Ec2;

pub const ALB: &str = "chat-alb";
pub const CLUSTER: &str = "chat";
pub const ALARM: &str = "chat-5xx";
pub const PREFIX: &str = "chat-";

/// opsctl's arguments for the test stack (`--alb`, `--cluster`, `--table-prefix`), then `rest`.
pub fn args<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--alb", ALB, "--cluster", CLUSTER, "--table-prefix", PREFIX];
    v.extend_from_slice(rest);
    v
}
/// Running count moto reports for every ECS service (`MOTO_ECS_SERVICE_RUNNING`).
pub const MOTO_RUNNING: i32 = 2;

/// A moto server on a free loopback port, killed when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    /// Where opsctl reaches DynamoDB instead, when the chat store runs on its own moto
    /// (`AWS_ENDPOINT_URL_DYNAMODB`).
    pub dynamodb_endpoint: Option<String>,
}

impl Moto {
    pub fn start() -> Moto {
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| {
            panic!(
                "MOTO_SERVER is not set: run the tests through ./scripts/test.sh \
                 (or `source scripts/test-env.sh` first)"
            )
        });
        // A free port can be taken by another test's server before moto binds it: moto then
        // exits, and starts again on another port. A loaded machine may take long to start it.
        for _ in 0..3 {
            let port = testkit::free_port();
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_ECS_SERVICE_RUNNING", MOTO_RUNNING.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Moto {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                        dynamodb_endpoint: None,
                    };
                }
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "moto did not listen on {port} within 90 s"
                );
                thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("moto exited three times before listening (ports taken?)");
    }

    pub async fn config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ecs::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await
    }

    /// Runs opsctl against this moto and waits (bounded) for it to finish.
    pub fn opsctl(&self, args: &[&str]) -> Run {
        self.spawn_opsctl(args).wait()
    }

    /// Starts opsctl against this moto without waiting.
    pub fn spawn_opsctl(&self, args: &[&str]) -> Running {
        self.spawn_opsctl_via(&self.endpoint, args)
    }

    /// Runs opsctl with its AWS calls sent to `endpoint` (a fault proxy in front of moto).
    pub fn opsctl_via(&self, endpoint: &str, args: &[&str]) -> Run {
        self.spawn_opsctl_via(endpoint, args).wait()
    }

    /// Starts opsctl with its AWS calls sent to `endpoint`.
    pub fn spawn_opsctl_via(&self, endpoint: &str, args: &[&str]) -> Running {
        self.spawn_opsctl_env(endpoint, &[], args)
    }

    /// Runs opsctl with extra environment variables (a faked clock).
    pub fn opsctl_env(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        self.spawn_opsctl_env(&self.endpoint, env, args).wait()
    }

    fn spawn_opsctl_env(&self, endpoint: &str, env: &[(&str, &str)], args: &[&str]) -> Running {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsctl"));
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("AWS_") || k.starts_with("OPSCTL_") {
                cmd.env_remove(&key);
            }
        }
        cmd.args(args)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent/opsctl-test")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/opsctl-test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1")
            .envs(
                self.dynamodb_endpoint
                    .iter()
                    .map(|e| ("AWS_ENDPOINT_URL_DYNAMODB", e)),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn opsctl");
        let stdout = reader(child.stdout.take());
        let stderr = reader(child.stderr.take());
        Running {
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
            args: args.join(" "),
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

fn join(reader: Option<thread::JoinHandle<String>>) -> String {
    reader
        .map(|r| r.join().expect("output reader"))
        .unwrap_or_default()
}

/// An opsctl process still running.
pub struct Running {
    child: Child,
    stdout: Option<thread::JoinHandle<String>>,
    stderr: Option<thread::JoinHandle<String>>,
    args: String,
}

impl Running {
    /// Whether it has exited yet.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }

    /// Waits up to two minutes, then kills it and fails the test.
    pub fn wait(mut self) -> Run {
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("opsctl {} did not finish within 120s", self.args);
            }
            thread::sleep(Duration::from_millis(20));
        };
        Run {
            status,
            stdout: join(self.stdout.take()),
            stderr: join(self.stderr.take()),
            args: std::mem::take(&mut self.args),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// A finished opsctl run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub args: String,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().expect("exit code")
    }

    /// Asserts the exit code, showing the output when it differs.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            code,
            "opsctl {} exited {}, expected {code}\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.code(),
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "opsctl {}: stdout is not JSON ({e}):\n{}",
                self.args, self.stdout
            )
        })
    }
}

/// How to lay out the stack.
pub struct Options {
    /// Registered targets in the green target group.
    pub green_targets: usize,
    /// Listener shape: `ForwardConfig` with weights (as the Terraform), else a plain
    /// `TargetGroupArn` to blue.
    pub forward_config: bool,
    /// As the Terraform's CloudFront-only listener: the default action answers 403 and a rule
    /// matching the secret origin header holds the weighted forward.
    pub origin_rule: bool,
    /// Desired tasks of the green service (moto runs `MOTO_RUNNING` of each).
    pub green_desired: i32,
    /// Real (blue, green) targets registered instead of made-up addresses (the
    /// live-connections test's chat-server tasks, reached through localalb).
    pub real_targets: Option<(SocketAddr, SocketAddr)>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            green_targets: 2,
            forward_config: true,
            origin_rule: false,
            green_desired: MOTO_RUNNING,
            real_targets: None,
        }
    }
}

/// The resources, and clients to read them back.
pub struct Stack {
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub listener_arn: String,
    /// The rule holding the weighted forward (`origin_rule`).
    pub rule_arn: Option<String>,
    pub blue_tg: String,
    pub green_tg: String,
}

impl Stack {
    pub async fn create(moto: &Moto, opts: Options) -> Stack {
        let config = moto.config().await;
        let ec2 = Ec2::new(&moto.endpoint);
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
        let ecs = aws_sdk_ecs::Client::new(&config);
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);

        let vpc = ec2.create_vpc("10.20.0.0/16").await;
        let mut subnets = Vec::new();
        for (cidr, az) in [
            ("10.20.1.0/24", "us-east-1a"),
            ("10.20.2.0/24", "us-east-1b"),
        ] {
            subnets.push(ec2.create_subnet(&vpc, cidr, az).await);
        }
        let security_group = ec2
            .create_security_group(&vpc, "chat-tasks", "chat-server tasks")
            .await;

        let lb_arn = elb
            .create_load_balancer()
            .name(ALB)
            .set_subnets(Some(subnets.clone()))
            .send()
            .await
            .expect("create load balancer")
            .load_balancers
            .and_then(|l| l.into_iter().next())
            .and_then(|l| l.load_balancer_arn)
            .expect("lb arn");

        let mut tgs = HashMap::new();
        for color in ["blue", "green"] {
            let arn = elb
                .create_target_group()
                .name(format!("chat-{color}"))
                .protocol(ProtocolEnum::Http)
                .port(8080)
                .vpc_id(&vpc)
                .target_type(TargetTypeEnum::Ip)
                .health_check_path("/healthz")
                .tags(tag("Color", color))
                .send()
                .await
                .expect("create target group")
                .target_groups
                .and_then(|t| t.into_iter().next())
                .and_then(|t| t.target_group_arn)
                .expect("tg arn");
            let count = if color == "green" {
                opts.green_targets
            } else {
                2
            };
            let targets: Vec<TargetDescription> = match opts.real_targets {
                Some((blue, green)) => {
                    let addr = if color == "blue" { blue } else { green };
                    vec![
                        TargetDescription::builder()
                            .id(addr.ip().to_string())
                            .port(i32::from(addr.port()))
                            .build(),
                    ]
                }
                None => {
                    let octet = if color == "blue" { 10 } else { 20 };
                    (0..count)
                        .map(|i| {
                            TargetDescription::builder()
                                .id(format!("10.20.{}.{octet}", i + 1))
                                .port(8080)
                                .build()
                        })
                        .collect()
                }
            };
            if !targets.is_empty() {
                elb.register_targets()
                    .target_group_arn(&arn)
                    .set_targets(Some(targets))
                    .send()
                    .await
                    .expect("register targets");
            }
            tgs.insert(color, arn);
        }
        let (blue_tg, green_tg) = (tgs["blue"].clone(), tgs["green"].clone());

        let action = if opts.forward_config {
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .forward_config(
                    ForwardActionConfig::builder()
                        .target_groups(tuple(&blue_tg, 100))
                        .target_groups(tuple(&green_tg, 0))
                        .build(),
                )
                .build()
        } else {
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&blue_tg)
                .build()
        };
        let refuse = Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code("403")
                    .content_type("text/plain")
                    .message_body("Forbidden")
                    .build(),
            )
            .build();
        let (default_action, rule_action) = if opts.origin_rule {
            (refuse, Some(action))
        } else {
            (action, None)
        };
        let listener_arn = elb
            .create_listener()
            .load_balancer_arn(&lb_arn)
            .protocol(ProtocolEnum::Http)
            .port(80)
            .default_actions(default_action)
            .send()
            .await
            .expect("create listener")
            .listeners
            .and_then(|l| l.into_iter().next())
            .and_then(|l| l.listener_arn)
            .expect("listener arn");
        let mut rule_arn = None;
        if let Some(action) = rule_action {
            rule_arn = elb
                .create_rule()
                .listener_arn(&listener_arn)
                .priority(100)
                .conditions(
                    RuleCondition::builder()
                        .field("http-header")
                        .http_header_config(
                            HttpHeaderConditionConfig::builder()
                                .http_header_name("X-Origin-Verify")
                                .values("secret-a")
                                .values("secret-b")
                                .build(),
                        )
                        .build(),
                )
                .actions(action)
                .send()
                .await
                .expect("create rule")
                .rules
                .and_then(|r| r.into_iter().next())
                .and_then(|r| r.rule_arn);
        }

        ecs.create_cluster()
            .cluster_name(CLUSTER)
            .send()
            .await
            .expect("create cluster");
        for color in ["blue", "green"] {
            let td = ecs
                .register_task_definition()
                .family(format!("chat-{color}"))
                .network_mode(NetworkMode::Awsvpc)
                .requires_compatibilities(Compatibility::Fargate)
                .cpu("256")
                .memory("512")
                .container_definitions(
                    ContainerDefinition::builder()
                        .name("chat-server")
                        .image("chat:1")
                        .essential(true)
                        .port_mappings(PortMapping::builder().container_port(8080).build())
                        .build(),
                )
                .send()
                .await
                .expect("register task definition")
                .task_definition
                .and_then(|t| t.task_definition_arn)
                .expect("task definition arn");
            let desired = if color == "green" {
                opts.green_desired
            } else {
                MOTO_RUNNING
            };
            ecs.create_service()
                .cluster(CLUSTER)
                .service_name(format!("chat-{color}"))
                .task_definition(td)
                .desired_count(desired)
                .launch_type(LaunchType::Fargate)
                .network_configuration(
                    NetworkConfiguration::builder()
                        .awsvpc_configuration(
                            AwsVpcConfiguration::builder()
                                .set_subnets(Some(subnets.clone()))
                                .security_groups(&security_group)
                                .assign_public_ip(AssignPublicIp::Disabled)
                                .build()
                                .expect("awsvpc"),
                        )
                        .build(),
                )
                .tags(
                    aws_sdk_ecs::types::Tag::builder()
                        .key("Color")
                        .value(color)
                        .build(),
                )
                .send()
                .await
                .expect("create service");
        }

        cloudwatch
            .put_metric_alarm()
            .alarm_name(ALARM)
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(5.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await
            .expect("put alarm");

        let stack = Stack {
            elb,
            ecs,
            cloudwatch,
            dynamodb,
            listener_arn,
            rule_arn,
            blue_tg,
            green_tg,
        };
        stack.set_alarm("OK").await;
        stack.create_tables().await;
        stack
    }

    /// The (blue, green) weights of the listener's forward (or of its origin rule) as read
    /// back through the API.
    pub async fn weights(&self) -> (i32, i32) {
        let actions = if let Some(rule_arn) = &self.rule_arn {
            self.elb
                .describe_rules()
                .rule_arns(rule_arn)
                .send()
                .await
                .expect("describe rule")
                .rules
                .and_then(|r| r.into_iter().next())
                .and_then(|r| r.actions)
                .expect("rule actions")
        } else {
            self.elb
                .describe_listeners()
                .listener_arns(&self.listener_arn)
                .send()
                .await
                .expect("describe listener")
                .listeners
                .and_then(|l| l.into_iter().next())
                .and_then(|l| l.default_actions)
                .expect("listener")
        };
        let action = actions
            .iter()
            .find(|a| a.r#type() == Some(&ActionTypeEnum::Forward))
            .expect("forward action");
        let tuples = action
            .forward_config()
            .map(|f| f.target_groups())
            .unwrap_or_default();
        if tuples.is_empty() {
            let arn = action.target_group_arn().expect("target group arn");
            return if arn == self.blue_tg {
                (100, 0)
            } else {
                (0, 100)
            };
        }
        let weight = |arn: &str| {
            tuples
                .iter()
                .filter(|t| t.target_group_arn() == Some(arn))
                .filter_map(|t| t.weight())
                .sum::<i32>()
        };
        (weight(&self.blue_tg), weight(&self.green_tg))
    }

    pub async fn listener_tags(&self) -> HashMap<String, String> {
        self.elb
            .describe_tags()
            .resource_arns(&self.listener_arn)
            .send()
            .await
            .expect("describe tags")
            .tag_descriptions()
            .iter()
            .flat_map(|d| d.tags())
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    pub async fn remove_listener_tag(&self, key: &str) {
        self.elb
            .remove_tags()
            .resource_arns(&self.listener_arn)
            .tag_keys(key)
            .send()
            .await
            .expect("remove tag");
    }

    pub async fn set_alarm(&self, state: &str) {
        self.cloudwatch
            .set_alarm_state()
            .alarm_name(ALARM)
            .state_value(state.into())
            .state_reason("set by the test")
            .send()
            .await
            .expect("set alarm state");
    }

    /// Writes the fleet heartbeat item as tasks do: `(task, colour, connections, ready)`,
    /// each beat fresh now (the whole item, in the contract's encoding).
    pub async fn put_fleet(&self, tasks: &[(&str, &str, u64, bool)]) {
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis(),
        )
        .expect("ms fit");
        let beats: Vec<(&str, Beat)> = tasks
            .iter()
            .map(|&(task, color, conns, ready)| {
                let beat = Beat {
                    color: color.to_string(),
                    conns,
                    ready,
                    at_ms: now,
                    shed_until_ms: 0,
                    shed_from: 0,
                };
                (task, beat)
            })
            .collect();
        let refs: Vec<(&str, &Beat)> = beats.iter().map(|(t, b)| (*t, b)).collect();
        self.dynamodb
            .put_item()
            .table_name(format!("{PREFIX}connections"))
            .set_item(Some(rollout::fleet_item(&refs)))
            .send()
            .await
            .expect("put fleet");
    }

    /// The control record opsctl writes for the tasks: (blue, green, rebalance).
    pub async fn control(&self) -> Option<(i64, i64, bool)> {
        let item = self
            .dynamodb
            .get_item()
            .table_name(format!("{PREFIX}connections"))
            .key(rollout::KEY, AttributeValue::S(rollout::CONTROL_KEY.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get control")
            .item?;
        let control = rollout::Control::from_item(&item).expect("a readable control record");
        Some((
            i64::from(control.blue),
            i64::from(control.green),
            control.rebalance,
        ))
    }

    /// Sets a service's desired count, as an operator scaling it in would.
    pub async fn set_desired(&self, service: &str, desired: i32) {
        self.ecs
            .update_service()
            .cluster(CLUSTER)
            .service(service)
            .desired_count(desired)
            .send()
            .await
            .expect("update service");
    }

    /// Sets the listener's weights directly, as someone at the console would.
    pub async fn set_weights_directly(&self, blue: i32, green: i32) {
        let action = Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(tuple(&self.blue_tg, blue))
                    .target_groups(tuple(&self.green_tg, green))
                    .build(),
            )
            .build();
        self.elb
            .modify_listener()
            .listener_arn(&self.listener_arn)
            .default_actions(action)
            .send()
            .await
            .expect("modify listener");
    }

    /// The chat server's tables, as the contract defines them (the connections table holds
    /// the rollout's items).
    async fn create_tables(&self) {
        chat_contract::admin::create_tables(&self.dynamodb, PREFIX)
            .await
            .expect("create the chat tables");
    }

    /// One live connection item as a chat-server task writes it.
    pub async fn put_connection(&self, conn_id: &str, color: &str, user_id: u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        self.dynamodb
            .put_item()
            .table_name(format!("{PREFIX}connections"))
            .item("conn_id", AttributeValue::S(conn_id.into()))
            .item("user_id", AttributeValue::N(user_id.to_string()))
            .item("rooms", AttributeValue::Ss(vec!["lobby".into()]))
            .item("task", AttributeValue::S(format!("task-{color}-1")))
            .item("color", AttributeValue::S(color.into()))
            .item("connected_at", AttributeValue::N(now.to_string()))
            .item("expires_at", AttributeValue::N((now + 120).to_string()))
            .send()
            .await
            .expect("put connection");
    }

    /// Task definition and desired count of a service.
    pub async fn service(&self, name: &str) -> aws_sdk_ecs::types::Service {
        self.ecs
            .describe_services()
            .cluster(CLUSTER)
            .services(name)
            .send()
            .await
            .expect("describe service")
            .services
            .and_then(|s| s.into_iter().next())
            .expect("service")
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn tuple(arn: &str, weight: i32) -> TargetGroupTuple {
    TargetGroupTuple::builder()
        .target_group_arn(arn)
        .weight(weight)
        .build()
}

/// Polls `check` every 50 ms until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
