"""The task definition configures chat-server only with variables it reads, on the ports and
health check path it serves, and drains within the stop timeout."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from conftest import COLORS, MODULES, ROOT, help_default, resolve, task_containers, templatefile_args
from test_edge import default_action, listener_actions, target_groups

ECS_MAIN = MODULES / "ecs" / "main.tf"
# What the task must set for chat-server to run as one of many tasks on AWS.
REQUIRED = {
    "CHAT_LISTEN",
    "CHAT_ADMIN_LISTEN",
    "CHAT_DYNAMODB_TABLE_PREFIX",
    "CHAT_REDIS_URL",
    "CHAT_COLOR",
    "CHAT_TOKEN_SECRET",
    "CHAT_DRAIN_SECS",
}


def env_names_in_task_definition() -> set[str]:
    """Every CHAT_* name the ECS module sets, whatever expression builds the list."""
    return set(re.findall(r'name\s*=\s*\\?"(CHAT_[A-Z0-9_]+)\\?"', ECS_MAIN.read_text()))


def ecs_value(value, root, modules):
    return resolve(value, "ecs", root, modules["ecs"])


def test_every_chat_variable_is_one_chat_server_reads(server_env_vars):
    names = env_names_in_task_definition()
    assert REQUIRED <= names, f"task definition misses {sorted(REQUIRED - names)}"
    unknown = names - server_env_vars
    assert not unknown, f"task definition sets {sorted(unknown)}, which chat-server --help does not list"


def test_secrets_come_from_parameters_not_plain_environment(modules):
    locals_ = modules["ecs"]["locals"]
    secret_names = {s["name"] for s in locals_["secrets"]}
    plain_names = {e["name"] for e in locals_["base_environment"]}
    assert {"CHAT_TOKEN_SECRET", "CHAT_REDIS_URL"} <= secret_names
    assert not (secret_names & plain_names)
    for secret in locals_["secrets"]:
        assert secret["valueFrom"].startswith("${var."), secret


def test_redis_url_is_tls_on_6379(modules):
    """CHAT_REDIS_URL as stored in SSM: rediss:// (transit encryption is on), port 6379."""
    parameter = modules["elasticache"]["resource"]["aws_ssm_parameter"]["url"]
    assert parameter["type"] == "SecureString"
    assert parameter["value"].startswith("${local.scheme}://")
    assert modules["elasticache"]["locals"]["scheme"] == '${local.cluster ? "rediss+cluster" : "rediss"}'
    assert parameter["value"].endswith(":${var.port}")
    assert modules["elasticache"]["variable"]["port"]["default"] == 6379
    group = modules["elasticache"]["resource"]["aws_elasticache_replication_group"]["this"]
    assert group["transit_encryption_enabled"] is True
    assert group["at_rest_encryption_enabled"] is True
    assert group["automatic_failover_enabled"] is True
    assert group["multi_az_enabled"] is True


def test_listen_addresses(root, modules, server_help):
    env = {e["name"]: e["value"] for e in modules["ecs"]["locals"]["base_environment"]}
    port = ecs_value("${var.container_port}", root, modules)
    default_port = int(help_default(server_help, "CHAT_LISTEN").rsplit(":", 1)[1])
    assert port == default_port, "the task's port differs from chat-server's default CHAT_LISTEN port"
    assert env["CHAT_LISTEN"] == "0.0.0.0:${var.container_port}", "the ALB reaches the task only on 0.0.0.0"
    assert env["CHAT_ADMIN_LISTEN"].startswith("127.0.0.1:"), "the admin listener must stay on loopback"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4318"

    chat = task_containers()[0]
    assert [p["containerPort"] for p in chat["portMappings"]] == [port]
    assert templatefile_args(modules["ecs"])["container_port"] == "var.container_port"


def test_client_address_is_read_two_proxies_back(modules, server_help):
    """CloudFront appends the viewer, the ALB appends CloudFront: the per-address limits must
    count viewers, not CloudFront's edge addresses (the server's default trusts none: a single
    node has nothing in front, so Terraform must set it)."""
    env = {e["name"]: e["value"] for e in modules["ecs"]["locals"]["base_environment"]}
    assert help_default(server_help, "CHAT_TRUSTED_PROXIES") == "0"
    assert env["CHAT_TRUSTED_PROXIES"] == "2"


def test_ports_and_health_path_match_target_groups(root, modules, healthcheck_default_url):
    health = urlparse(healthcheck_default_url)
    alb = modules["alb"]
    tg = alb["resource"]["aws_lb_target_group"]["this"]
    assert resolve(tg["port"], "alb", root, alb) == health.port
    assert resolve(tg["health_check"][0]["path"], "alb", root, alb) == health.path
    assert tg["target_type"] == "ip", "awsvpc tasks register by IP"
    assert ecs_value("${var.container_port}", root, modules) == health.port
    assert ecs_value("${var.health_check_path}", root, modules) == health.path


def test_container_health_check_runs_chat_server_healthcheck(modules, server_help):
    assert re.search(r"^\s+healthcheck\b", server_help, re.M), "chat-server has no healthcheck subcommand"
    command = task_containers()[0]["healthCheck"]["command"]
    assert command[:3] == ["CMD", "/chat-server", "healthcheck"]
    assert command[3:] == ["--url", "http://127.0.0.1:8080/healthz"]
    args = templatefile_args(modules["ecs"])
    assert (args["container_port"], args["health_check_path"]) == ("var.container_port", "var.health_check_path")


def test_drain_fits_stop_timeout_and_deregistration(root, modules, server_help):
    drain_default = int(help_default(server_help, "CHAT_DRAIN_SECS"))
    drain = ecs_value("${var.drain_secs}", root, modules)
    stop = ecs_value("${var.stop_timeout}", root, modules)
    dereg = resolve("${var.deregistration_delay}", "alb", root, modules["alb"])
    assert drain == drain_default, "Terraform's drain window differs from chat-server's default"
    assert stop > drain, f"stopTimeout {stop} s must exceed the drain window {drain} s"
    assert stop <= 120, "Fargate allows a stopTimeout of at most 120 s"
    assert dereg > drain, f"deregistration delay {dereg} s must exceed the drain window {drain} s"
    assert task_containers()[0]["stopTimeout"] == stop
    assert templatefile_args(modules["ecs"])["stop_timeout"] == "var.stop_timeout"


def test_idle_timeout_outlives_server_pings(root, modules):
    """The server pings every HEARTBEAT (server/src/hub/); the ALB must not cut in between."""
    sources = "\n".join(p.read_text() for p in sorted((ROOT / "server" / "src").rglob("*.rs")))
    match = re.search(r"HEARTBEAT: Duration = Duration::from_secs\((\d+)\)", sources)
    assert match, "server/src no longer defines HEARTBEAT as Duration::from_secs(N)"
    ping = int(match.group(1))
    idle = resolve(modules["alb"]["resource"]["aws_lb"]["this"]["idle_timeout"], "alb", root, modules["alb"])
    assert idle >= 3 * ping, f"ALB idle timeout {idle} s should survive a couple of lost pings (every {ping} s)"


def test_services_and_target_groups_are_tagged_by_color(modules):
    ecs = modules["ecs"]["resource"]
    alb = modules["alb"]["resource"]
    assert modules["ecs"]["locals"]["colors"] == '${toset(["blue", "green"])}'
    assert modules["alb"]["locals"]["colors"] == '${toset(["blue", "green"])}'
    for resource in (
        ecs["aws_ecs_service"]["this"],
        ecs["aws_ecs_task_definition"]["this"],
        alb["aws_lb_target_group"]["this"],
    ):
        assert resource["for_each"] == "${local.colors}"
        assert resource["tags"] == "${merge(var.tags, {Color = each.key})}"
    service = ecs["aws_ecs_service"]["this"]
    assert service["name"] == "${var.name}-${each.key}"
    assert service["load_balancer"][0]["target_group_arn"] == "${var.target_group_arns[each.key]}"
    assert service["load_balancer"][0]["container_name"] == task_containers()[0]["name"]
    breaker = service["deployment_circuit_breaker"][0]
    assert breaker == {"enable": True, "rollback": True}
    assert "task_definition" in service["lifecycle"][0]["ignore_changes"][0]
    task = ecs["aws_ecs_task_definition"]["this"]
    assert 'value = each.key' in task["container_definitions"] and "CHAT_COLOR" in task["container_definitions"]


def test_listener_weights_belong_to_opsctl(modules):
    """The weighted forward (blue 100 / green 0 at creation) sits in the production listener's
    default action with alb_public_access, else in the origin-verified `production` rule; either
    way terraform ignores later changes, which belong to opsctl."""
    alb_doc = modules["alb"]
    alb = alb_doc["resource"]
    listeners = alb["aws_lb_listener"]
    assert "default_action" in listeners["this"]["lifecycle"][0]["ignore_changes"][0]
    for https in (False, True):
        production = listener_actions(alb_doc, https=https, public_access=True)["https" if https else "http"]
        assert production["action"] == "forward", f"with public access the production listener forwards (https={https})"
    forwards = [default_action(alb_doc, "forward")]
    rule = alb["aws_lb_listener_rule"]["production"]
    assert "action" in rule["lifecycle"][0]["ignore_changes"]
    forwards.append(rule["action"][0]["forward"][0])
    for forward in forwards:
        groups = target_groups(forward)
        assert [g["arn"] for g in groups] == [f'${{aws_lb_target_group.this["{c}"].arn}}' for c in COLORS]
        assert [g["weight"] for g in groups] == [f'${{var.initial_weights["{c}"]}}' for c in COLORS]
    weights = alb_doc["variable"]["initial_weights"]["default"]
    assert weights == {"blue": 100, "green": 0}, "at creation blue takes all traffic; opsctl shifts it"
    test = listeners["test"]
    assert test["default_action"][0]["target_group_arn"] == '${aws_lb_target_group.this["green"].arn}'
    assert "lifecycle" not in test, "the test listener always forwards to green; terraform keeps it so"


def test_cloudfront_sends_dynamic_paths_to_the_alb_uncached(modules):
    cdn = modules["cdn"]
    dist = cdn["resource"]["aws_cloudfront_distribution"]["this"]
    paths = cdn["locals"]["api_paths"]
    for path in ("/ws", "/api/*", "/version"):
        assert path in paths
    behaviour = dist["dynamic"][0]["ordered_cache_behavior"]
    assert behaviour["for_each"] == "${local.api_paths}"
    content = behaviour["content"][0]
    assert content["target_origin_id"] == "${local.alb_origin_id}"
    assert content["cache_policy_id"] == "${local.cache_disabled}"
    assert content["origin_request_policy_id"] == "${local.all_viewer_except_host}"
    assert cdn["locals"]["cache_disabled"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    default = dist["default_cache_behavior"][0]
    assert default["target_origin_id"] == "${local.alb_origin_id}"
    assert "default_root_object" not in dist, "chat-server answers / itself"


def test_task_role_reaches_only_the_chat_tables(modules, root):
    statements = modules["iam"]["data"]["aws_iam_policy_document"]["task"]["statement"]
    dynamo = [s for s in statements if any(a.startswith("dynamodb:") for a in s["actions"])]
    assert len(dynamo) == 1
    assert dynamo[0]["resources"] == '${concat(var.table_arns, [for arn in var.table_arns : "${arn}/index/*"])}'
    assert root["module"]["iam"]["table_arns"] == "${module.dynamodb.table_arns}"
    for statement in statements:
        if statement["resources"] == ["*"]:
            assert all(a.startswith("xray:") for a in statement["actions"]), statement


def test_outputs_for_operators_and_opsctl(root):
    needed = {
        "alb_name", "alb_dns_name", "listener_port", "test_listener_url", "cloudfront_domain_name",
        "cluster_name", "service_names", "table_prefix", "ecr_repository_url", "redis_endpoint", "alarm_names",
    }
    missing = needed - set(root["output"])
    assert not missing, f"missing outputs: {sorted(missing)}"
    for color in COLORS:
        assert color in root["variable"]["desired_counts"]["default"]
