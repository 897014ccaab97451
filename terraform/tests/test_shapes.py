"""The rehearsal's AWS shapes (scripts/shapes.py, which rehearsal_stack.py builds in moto and the
guides layer runs DEMO_GUIDE's stage commands against) are the ones Terraform applies: the same
container template rendered with the same variables, the same listener layout, tags, counts and
variable defaults, and the same behaviour of a later `terraform apply`. Each test fails when the
Terraform and the rehearsal diverge.
"""

from __future__ import annotations

import re
import sys

import pytest

from conftest import MODULES, ROOT, parse_dir, parse_file, resolve, task_containers, templatefile_args

sys.path.insert(0, str(ROOT / "scripts"))
import shapes  # noqa: E402


@pytest.fixture(scope="module")
def ecs():
    return parse_dir(MODULES / "ecs")


@pytest.fixture(scope="module")
def alb():
    return parse_dir(MODULES / "alb")


@pytest.fixture(scope="module")
def root_doc():
    return parse_dir(ROOT / "terraform")


def rendered(color="green") -> list[dict]:
    return task_containers(color)


def test_terraform_renders_the_template_the_rehearsal_renders(ecs):
    names = set(templatefile_args(ecs))
    assert ecs["locals"]["container_template"] == "${path.module}/containers.json.tftpl"
    assert (MODULES / "ecs" / "containers.json.tftpl") == shapes.CONTAINERS_TEMPLATE
    template_names = shapes.template_variables()
    assert names == template_names, (
        f"Terraform passes {sorted(names - template_names)} the template does not use, "
        f"and not {sorted(template_names - names)} it does"
    )
    # The rehearsal provides exactly these (render() refuses a missing one).
    assert len(rendered()) == 2


def test_the_rendered_task_has_the_chat_container_and_the_collector_sidecar(ecs, root_doc):
    containers = rendered()
    assert [c["name"] for c in containers] == ["chat", "aws-otel-collector"]
    chat, collector = containers
    lb = ecs["resource"]["aws_ecs_service"]["this"]["load_balancer"][0]
    assert lb["container_name"] == chat["name"], "the target group serves the chat container"
    port = resolve(lb["container_port"], "ecs", root_doc, ecs)
    assert [p["containerPort"] for p in chat["portMappings"]] == [port] == [shapes.CONTAINER_PORT]
    assert chat["dependsOn"] == [{"containerName": "aws-otel-collector", "condition": "START"}]
    assert collector["essential"] is False and "portMappings" not in collector
    assert any(e["name"] == "AOT_CONFIG_CONTENT" for e in collector["environment"])


@pytest.mark.parametrize(
    "constant, module, variable",
    [
        ("CONTAINER_PORT", "ecs", "container_port"),
        ("ADMIN_PORT", "ecs", "admin_port"),
        ("HEALTH_CHECK_PATH", "ecs", "health_check_path"),
        ("STOP_TIMEOUT", "ecs", "stop_timeout"),
        ("DRAIN_SECS", "ecs", "drain_secs"),
        ("OTEL_COLLECTOR_IMAGE", "ecs", "otel_collector_image"),
        ("DESIRED_COUNTS", "ecs", "desired_counts"),
        ("INITIAL_WEIGHTS", "alb", "initial_weights"),
        ("TEST_LISTENER_PORT", "alb", "test_listener_port"),
        ("ORIGIN_HEADER", "alb", "origin_verify_header_name"),
        ("ASSETS_PATH", "alb", "assets_path"),
    ],
)
def test_rehearsal_values_are_terraforms_defaults(constant, module, variable, root_doc):
    doc = parse_dir(MODULES / module)
    value = resolve(f"${{var.{variable}}}", module, root_doc, doc)
    assert getattr(shapes, constant) == value, f"shapes.{constant} differs from {module}'s var.{variable} as the root deploys it"


def test_the_chat_environment_is_the_modules(ecs):
    """Same names in the same order, and the same literal values, as base_environment (+ the
    origins list and CHAT_COLOR)."""
    terraform = ecs["locals"]["base_environment"]
    rehearsal = shapes.chat_environment("green", "chat-", "us-east-1", ["https://chat.example.com"])
    names = [e["name"] for e in terraform] + ["CHAT_ALLOWED_ORIGINS", "CHAT_COLOR"]
    assert [e["name"] for e in rehearsal] == names
    for tf, mine in zip(terraform, rehearsal):
        if "${" not in tf["value"]:
            assert tf["value"] == mine["value"], tf["name"]
    assert 'name = "CHAT_ALLOWED_ORIGINS", value = join(",", var.allowed_origins)' in ecs["locals"]["origins_environment"]


def test_the_test_listeners_origin_is_admitted_like_the_rehearsals(root_doc):
    """The green preview's page is served from the test listener: its WebSocket upgrade and
    image uploads come from that origin, so chat-server and the bucket's CORS must admit it."""
    origins = root_doc["locals"]["chat_origins"]
    assert "module.alb.test_listener_url" in origins
    assert root_doc["module"]["ecs"]["allowed_origins"] == "${local.chat_origins}"
    assert root_doc["module"]["uploads"]["allowed_origins"] == "${local.chat_origins}", "the bucket's CORS"
    assert shapes.chat_origins("http://a", "http://b:9000") == ["http://a", "http://b:9000"]


def test_the_listener_layout_is_terraforms(alb):
    listener = alb["resource"]["aws_lb_listener"]["this"]
    assert alb["locals"]["production_action"] == '${local.verify_origin ? "fixed-response" : "forward"}'
    response = listener["default_action"][0]["dynamic"]
    fixed = next(d["fixed_response"] for d in response if "fixed_response" in d)["content"][0]
    assert (fixed["status_code"], fixed["content_type"], fixed["message_body"]) == ("403", "text/plain", "Forbidden")
    rule = alb["resource"]["aws_lb_listener_rule"]["production"]
    assert rule["priority"] == shapes.PRODUCTION_RULE_PRIORITY
    assert rule["condition"][0]["http_header"][0]["http_header_name"] == "${var.origin_verify_header_name}"
    assert rule["tags"] == "${merge(var.tags, {%s})}" % ", ".join(f'"{k}" = "{v}"' for k, v in shapes.PRODUCTION_RULE_TAGS.items())
    assert alb["locals"]["asset_rules"] == "${{for i, c in sort(tolist(local.colors)) : c => 10 + i}}"
    assert shapes.ASSET_RULE_PRIORITY == {c: 10 + i for i, c in enumerate(sorted(shapes.COLORS))}
    test = alb["resource"]["aws_lb_listener"]["test"]
    assert test["default_action"] == [{"type": "forward", "target_group_arn": '${aws_lb_target_group.this["green"].arn}'}]


def test_terraforms_tags_are_the_rehearsals(root_doc, alb, ecs):
    assert root_doc["locals"]["tags"] == "${merge(var.tags, {Project = var.name})}"
    assert root_doc["variable"]["tags"]["default"] == {}
    assert root_doc["module"]["alb"]["tags"] == root_doc["module"]["ecs"]["tags"] == "${local.tags}"
    assert alb["resource"]["aws_lb_listener"]["this"]["tags"] == "${var.tags}"
    assert alb["resource"]["aws_lb_target_group"]["this"]["tags"] == "${merge(var.tags, {Color = each.key})}"
    assert ecs["resource"]["aws_ecs_service"]["this"]["tags"] == "${merge(var.tags, {Color = each.key})}"
    assert shapes.TERRAFORM_TAG_KEYS == {"Project", "Color", *shapes.PRODUCTION_RULE_TAGS}


def test_a_later_apply_is_simulated_as_terraform_behaves(ecs):
    """rehearsal_stack.py reapply does what these settings make `terraform apply` do."""
    providers = parse_file(ROOT / "terraform" / "main.tf")["provider"]
    for provider in providers:
        aws = provider["aws"]
        prefixes = [p for block in aws.get("ignore_tags", []) for p in block.get("key_prefixes", [])]
        assert tuple(prefixes) == shapes.IGNORED_TAG_PREFIXES, f"provider {aws.get('alias', 'aws')}"
    service = ecs["resource"]["aws_ecs_service"]["this"]
    assert tuple(service["lifecycle"][0]["ignore_changes"]) == shapes.SERVICE_IGNORE_CHANGES
    assert service["force_new_deployment"] is shapes.FORCE_NEW_DEPLOYMENT


def test_opsctls_memory_and_the_counts_survive_an_apply():
    """opsctl keeps the stable colour and the previous weights in `opsctl:` listener tags, and the
    demo scales blue to 0: an apply must keep both (else rollback takes the wrong colour, or a
    forced deployment replaces a colour's tasks)."""
    aws = ROOT / "opsctl" / "src" / "aws"
    opsctl = "".join(p.read_text() for p in sorted(aws.rglob("*.rs")))
    keys = re.findall(r'pub const TAG_(?:PREVIOUS|STABLE): &str = "([^"]+)"', opsctl)
    assert len(keys) == 2, f"opsctl's two listener tags not found under {aws}: {keys}"
    for key in keys:
        assert shapes.kept_on_apply(key), f"terraform apply removes opsctl's {key} tag"
    assert "desired_count" in shapes.SERVICE_IGNORE_CHANGES
