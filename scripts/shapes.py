"""The deployment's AWS shapes as Terraform lays them out, for the laptop rehearsal
(rehearsal_stack.py) and the tests: the two-container task definition rendered from the same
template Terraform renders (terraform/modules/ecs/containers.json.tftpl), the production listener
(403 by default, the weighted forward in a rule behind the origin header, the asset rules), the
test listener (green only), the tags and desired counts, and what a `terraform apply` puts back.

terraform/tests/test_shapes.py reads the Terraform files and fails when anything here diverges
from them, so a rehearsal that passes has met the shapes ECS and the ALB really have.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS_TEMPLATE = ROOT / "terraform" / "modules" / "ecs" / "containers.json.tftpl"

COLORS = ("blue", "green")
# Variable defaults of terraform/variables.tf and its modules (test_shapes.py compares).
CONTAINER_PORT = 8080
ADMIN_PORT = 9090
HEALTH_CHECK_PATH = "/healthz"
STOP_TIMEOUT = 30
DRAIN_SECS = 10
TRUSTED_PROXIES = 2
OTEL_COLLECTOR_IMAGE = "public.ecr.aws/aws-observability/aws-otel-collector:v0.45.1"
DESIRED_COUNTS = {"blue": 1, "green": 1}
INITIAL_WEIGHTS = {"blue": 100, "green": 0}
TEST_LISTENER_PORT = 9000
ORIGIN_HEADER = "X-Origin-Verify"
ASSETS_PATH = "/assets"
# Priorities of the production listener's rules (modules/alb: assets 10 + i, production 100).
ASSET_RULE_PRIORITY = {"blue": 10, "green": 11}
PRODUCTION_RULE_PRIORITY = 100
PRODUCTION_RULE_TAGS = {"chat:traffic": "production"}
# Every tag key Terraform sets on the ALB's and ECS's resources (var.tags is empty by default).
TERRAFORM_TAG_KEYS = {"Project", "Color", *PRODUCTION_RULE_TAGS}

# What a later `terraform apply` does to what opsctl changed (test_shapes.py reads these from
# the Terraform): tag keys with these prefixes are the provider's `ignore_tags` (kept as they
# are); the services' `lifecycle.ignore_changes`; whether each service update forces a deployment.
IGNORED_TAG_PREFIXES = ("opsctl:",)
SERVICE_IGNORE_CHANGES = ("task_definition", "desired_count")
FORCE_NEW_DEPLOYMENT = True

_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")


def template_variables(path: Path = CONTAINERS_TEMPLATE) -> set[str]:
    """The variable names a template refers to (only `${name}` and `${jsonencode(name)}`)."""
    names = set()
    for expr in _INTERPOLATION.findall(path.read_text()):
        match = re.fullmatch(r"\s*(?:jsonencode\((\w+)\)|(\w+))\s*", expr)
        if not match:
            raise ValueError(f"{path.name}: ${{{expr}}} is more than this renderer reads")
        names.add(match.group(1) or match.group(2))
    return names


def render(path: Path, values: dict) -> str:
    """Terraform's templatefile() for the subset the container template uses: `${name}` puts a
    string or number in as is, `${jsonencode(name)}` as JSON. A directive or any other expression
    raises, as does a missing variable (Terraform refuses both too)."""
    text = path.read_text()
    if "%{" in text:
        raise ValueError(f"{path.name}: template directives are more than this renderer reads")
    missing = template_variables(path) - values.keys()
    if missing:
        raise KeyError(f"{path.name}: no value for {sorted(missing)}")

    def one(match: re.Match) -> str:
        expr = match.group(1).strip()
        if expr.startswith("jsonencode("):
            return json.dumps(values[expr[len("jsonencode(") : -1]])
        value = values[expr]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError(f"{path.name}: ${{{expr}}} needs a string or number, got {value!r}")
        return str(value)

    return _INTERPOLATION.sub(one, text)


def chat_environment(color: str, table_prefix: str, region: str, allowed_origins: list[str]) -> list[dict]:
    """The chat container's environment as modules/ecs builds it (no uploads bucket or framing
    list on a laptop): base_environment, origins_environment, CHAT_COLOR."""
    env = [
        {"name": "CHAT_LISTEN", "value": f"0.0.0.0:{CONTAINER_PORT}"},
        {"name": "CHAT_ADMIN_LISTEN", "value": f"127.0.0.1:{ADMIN_PORT}"},
        {"name": "CHAT_DYNAMODB_TABLE_PREFIX", "value": table_prefix},
        {"name": "CHAT_DRAIN_SECS", "value": str(DRAIN_SECS)},
        {"name": "CHAT_TRUSTED_PROXIES", "value": str(TRUSTED_PROXIES)},
        {"name": "AWS_REGION", "value": region},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://localhost:4318"},
        {"name": "OTEL_SERVICE_NAME", "value": "chat-server"},
    ]
    if allowed_origins:
        env.append({"name": "CHAT_ALLOWED_ORIGINS", "value": ",".join(allowed_origins)})
    env.append({"name": "CHAT_COLOR", "value": color})
    return env


def chat_origins(url: str, test_listener_url: str) -> list[str]:
    """The browser origins Terraform's root `chat_origins` admits: the chat's public URL and the
    test listener's (the green preview's page opens its WebSocket from there)."""
    return list(dict.fromkeys([url.rstrip("/"), test_listener_url.rstrip("/")]))


def container_definitions(name: str, color: str, image: str, region: str, account: str, allowed_origins: list[str]) -> list[dict]:
    """The task definition's containers for `color`, rendered from Terraform's template."""
    values = {
        "image": image,
        "container_port": CONTAINER_PORT,
        "health_check_path": HEALTH_CHECK_PATH,
        "stop_timeout": STOP_TIMEOUT,
        "environment": chat_environment(color, f"{name}-", region, allowed_origins),
        "secrets": [
            {"name": "CHAT_TOKEN_SECRET", "valueFrom": f"arn:aws:ssm:{region}:{account}:parameter/{name}/token-secret"},
            {"name": "CHAT_REDIS_URL", "valueFrom": f"arn:aws:ssm:{region}:{account}:parameter/{name}/redis-url"},
        ],
        "color": color,
        "region": region,
        "log_group": f"/ecs/{name}",
        "otel_collector_image": OTEL_COLLECTOR_IMAGE,
        # The collector's YAML (modules/ecs collector_config); nothing reads it on a laptop.
        "collector_config": "# aws-otel-collector configuration (rendered by Terraform)\n",
    }
    return json.loads(render(CONTAINERS_TEMPLATE, values))


def terraform_tags(name: str, extra: dict | None = None) -> dict:
    """Tags Terraform sets on a resource: the provider's default_tags (var.tags, {} by default),
    the module's `local.tags` (Project = name) and the resource's own."""
    return {"Project": name, **(extra or {})}


def kept_on_apply(key: str) -> bool:
    """Whether `terraform apply` leaves a tag it did not set (the provider's ignore_tags)."""
    return any(key.startswith(p) for p in IGNORED_TAG_PREFIXES)
