"""The defects of issue 17, each pinned from the code: what `terraform init`/`plan` would take or
let through on the day. Validations are evaluated (hclexpr) with the values AWS refuses."""

from __future__ import annotations

import re

import pytest

from conftest import MODULE_NAMES, MODULES, ROOT, TERRAFORM, parse_dir, parse_file
from hclexpr import evaluate, validation_passes

TF_FILES = sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)
# Owned by another change (ElastiCache cluster mode); the root's constraint governs it anyway,
# since terraform intersects every module's constraint.
FOREIGN_MODULES = {"elasticache"}

LOWEST_AWS = (5, 100, 0)
HIGHEST_AWS = (6, 25, 0)


def version_tuple(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def constraint_bounds(constraint: str) -> dict[str, tuple[int, ...]]:
    bounds = {}
    for part in constraint.split(","):
        op, version = re.match(r"\s*(>=|<=|<|>|=|~>)\s*([0-9.]+)\s*$", part).groups()
        bounds[op] = version_tuple(version)
    return bounds


def aws_constraint(path) -> str:
    versions = parse_file(path / "versions.tf")["terraform"][0]
    return versions["required_providers"][0]["aws"]["version"]


def test_root_provider_constraint_is_bounded_on_both_sides():
    """A fresh `terraform init` must not pick a major version nobody has checked."""
    bounds = constraint_bounds(aws_constraint(TERRAFORM))
    assert bounds.get(">=") == LOWEST_AWS, bounds
    assert bounds.get("<=") == HIGHEST_AWS, "the upper bound is the newest provider the schema test checks"
    random = parse_file(TERRAFORM / "versions.tf")["terraform"][0]["required_providers"][0]["random"]["version"]
    assert "<" in random, "hashicorp/random needs an upper bound too"


@pytest.mark.parametrize("module", [m for m in MODULE_NAMES if m not in FOREIGN_MODULES])
def test_modules_share_the_root_constraint(module):
    assert aws_constraint(MODULES / module) == aws_constraint(TERRAFORM)


def test_foreign_modules_accept_the_tested_versions():
    for module in FOREIGN_MODULES:
        bounds = constraint_bounds(aws_constraint(MODULES / module))
        assert bounds.get(">=", (0,)) <= LOWEST_AWS
        assert "<" not in bounds or bounds["<"] > HIGHEST_AWS


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_no_attribute_deprecated_in_provider_6(path):
    """`data.aws_region.X.name` is deprecated in 6.x; `id` is the region in 5.x and 6.x alike."""
    text = path.read_text()
    assert not re.search(r"data\.aws_region\.[a-z_]+\.name\b", text), f"{path.name} reads data.aws_region.*.name"


def lifecycle_configurations():
    for module in MODULE_NAMES:
        doc = parse_dir(MODULES / module)
        for name, body in doc["resource"].get("aws_s3_bucket_lifecycle_configuration", {}).items():
            yield f"{module}.{name}", body


def test_lifecycle_rules_have_explicit_filters():
    """An empty `filter {}` warns since provider 5.90 ("will be an error in a future version")."""
    found = 0
    for where, body in lifecycle_configurations():
        for rule in body["rule"]:
            found += 1
            filters = rule.get("filter")
            assert filters and len(filters) == 1, f"{where}: rule {rule['id']} has no filter block"
            assert filters[0], f"{where}: rule {rule['id']} has an empty filter {{}}"
            assert set(filters[0]) & {"prefix", "and", "tag", "object_size_greater_than", "object_size_less_than"}
    assert found, "no lifecycle rule found: the test reads nothing"


def test_container_insights_log_group_is_owned_by_terraform():
    ecs = parse_dir(MODULES / "ecs")
    cluster = ecs["resource"]["aws_ecs_cluster"]["this"]
    assert cluster["name"] == "${var.name}"
    assert {"name": "containerInsights", "value": "enabled"} in cluster["setting"]
    group = ecs["resource"]["aws_cloudwatch_log_group"]["container_insights"]
    assert group["name"] == "/aws/ecs/containerinsights/${var.name}/performance"
    assert group["kms_key_id"] == "${var.kms_key_arn}", "Container Insights' own group would be unencrypted"
    assert group["retention_in_days"] == "${var.log_retention_days}"
    assert "${aws_cloudwatch_log_group.container_insights}" in cluster["depends_on"], (
        "the group must exist before the cluster, or Container Insights creates its own first"
    )


def test_no_check_blocks_only_preconditions():
    """`check` blocks only warn; a certificate without a domain name would 502 every dynamic path."""
    for path in TF_FILES:
        assert "check" not in parse_file(path), f"{path.name} has a check block (warnings only)"
    alb = parse_dir(MODULES / "alb")["resource"]
    listener = alb["aws_lb_listener"]["this"]["lifecycle"][0]["precondition"]
    (rule,) = [p["condition"] for p in listener if "var.domain_name" in p["condition"]]
    assert rule == '${each.value.protocol != "HTTPS" || var.domain_name != null}'
    check = rule.replace("each.value.protocol", "var.protocol")
    assert evaluate(check, {"protocol": "HTTPS", "domain_name": None}) is False, "a certificate without a domain name passes"
    assert evaluate(check, {"protocol": "HTTPS", "domain_name": "origin.chat.example.com"}) is True
    assert evaluate(check, {"protocol": "HTTP", "domain_name": None}) is True
    tg = alb["aws_lb_target_group"]["this"]["lifecycle"][0]["precondition"]
    assert any(p["condition"] == "${var.deregistration_delay > var.drain_secs}" for p in tg)
    root = parse_dir(TERRAFORM)
    assert root["module"]["alb"]["domain_name"] == "${var.alb_domain_name}"
    assert root["module"]["alb"]["drain_secs"] == "${var.drain_secs}"


def test_cdn_aliases_without_certificate_are_refused():
    dist = parse_dir(MODULES / "cdn")["resource"]["aws_cloudfront_distribution"]["this"]
    conditions = [p["condition"] for p in dist["lifecycle"][0]["precondition"]]
    rule = "${length(var.aliases) == 0 || local.custom_cert}"
    assert rule in conditions
    for aliases, custom_cert, ok in ((["chat.example.com"], False, False), (["chat.example.com"], True, True), ([], False, True)):
        assert evaluate(rule.replace("local.custom_cert", "var.custom_cert"), {"aliases": aliases, "custom_cert": custom_cert}) is ok
    root = parse_dir(TERRAFORM)
    assert root["module"]["cdn"]["aliases"] == "${var.cdn_aliases}"
    assert root["module"]["cdn"]["acm_certificate_arn"] == "${var.cdn_certificate_arn}"


@pytest.fixture(scope="module")
def variables():
    return parse_dir(TERRAFORM)["variable"]


@pytest.mark.parametrize(
    "value, ok",
    [
        ("chat", True), ("chat-2", True), ("event-chat-2026", True),
        ("c", False), ("chat-", False), ("chat--blue", False), ("-chat", False), ("2chat", False),
        ("Chat", False), ("internal-chat", False), ("a" * 21, False), ("chat_1", False),
    ],
)
def test_name_is_one_alb_and_elasticache_accept(variables, value, ok):
    """ALB: no leading/trailing hyphen, no "internal-" prefix; ElastiCache: no "--", no trailing "-"."""
    assert validation_passes(variables["name"], "name", value) is ok


def test_test_listener_cidrs_fit_the_security_group_quota(variables):
    """60 inbound rules per group, 55 taken by the CloudFront prefix list."""
    cidrs = [f"203.0.113.{i}/32" for i in range(1, 7)]
    assert validation_passes(variables["test_listener_cidr_blocks"], "test_listener_cidr_blocks", cidrs[:5])
    assert not validation_passes(variables["test_listener_cidr_blocks"], "test_listener_cidr_blocks", cidrs)
    assert not validation_passes(variables["test_listener_cidr_blocks"], "test_listener_cidr_blocks", ["203.0.113.7"])
    assert not validation_passes(variables["test_listener_cidr_blocks"], "test_listener_cidr_blocks", ["2001:db8::/64"])


@pytest.mark.parametrize(
    "value, ok",
    [(None, True), (["eu-west-1a", "eu-west-1b"], True), (["eu-west-1a"], False),
     (["eu-west-1a", "eu-west-1a"], False), (["a", "b"], False), (["eu-west-1a", "eu-west-1b", "eu-west-1c"], False)],
)
def test_availability_zone_names(variables, value, ok):
    assert validation_passes(variables["availability_zones"], "availability_zones", value) is ok


def test_availability_zones_are_checked_to_exist():
    """The default zones (region + a/b) are looked up; fewer than two found fails the plan."""
    vpc = parse_dir(MODULES / "vpc")
    data = vpc["data"]["aws_availability_zones"]["available"]
    assert data["filter"][0] == {"name": "zone-name", "values": "${local.requested_azs}"}
    assert data["state"] == "available"
    post = data["lifecycle"][0]["postcondition"]
    assert any(p["condition"] == "${length(self.names) == 2}" for p in post)
    assert "${data.aws_region.current.id}a" in vpc["locals"]["requested_azs"]


@pytest.mark.parametrize(
    "value, ok",
    [([], True), (["chat.example.com"], True), (["*.example.com"], True),
     (["Chat.Example.com"], False), (["chat"], False), (["https://chat.example.com"], False)],
)
def test_cdn_alias_names(variables, value, ok):
    assert validation_passes(variables["cdn_aliases"], "cdn_aliases", value) is ok


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_partition_is_never_hard_coded(path):
    """ARNs take the partition and endpoints the DNS suffix from data.aws_partition (GovCloud, China)."""
    text = path.read_text()
    assert not re.search(r"arn:aws:", text), f"{path.name} hard-codes the aws partition in an ARN"
    assert not re.search(r"\$\{[^}]*region[^}]*\}\.amazonaws\.com", text), f"{path.name} hard-codes amazonaws.com after a region"
    assert not re.search(r'"com\.amazonaws\.\$\{', text), f"{path.name} hard-codes the reverse DNS prefix"


def test_execution_role_policy_arn_uses_the_partition():
    iam = parse_dir(MODULES / "iam")
    attachment = iam["resource"]["aws_iam_role_policy_attachment"]["execution"]
    assert attachment["policy_arn"].startswith("arn:${data.aws_partition.current.partition}:iam::aws:policy/")
    assert "aws_partition" in iam["data"]


def test_spot_toggle_redeploys_in_place():
    """Changing the capacity provider strategy replaces the service (an outage) unless forced."""
    service = parse_dir(MODULES / "ecs")["resource"]["aws_ecs_service"]["this"]
    assert service["force_new_deployment"] is True
    assert service["capacity_provider_strategy"][0]["capacity_provider"] == "${local.capacity_provider}"


def test_lock_file_is_documented_and_not_ignored():
    readme = (TERRAFORM / "README.md").read_text()
    assert ".terraform.lock.hcl" in readme
    assert re.search(r"terraform providers lock(\s+\\\n\s*)?(\s+-platform=\S+){2,}", readme), (
        "README must show `terraform providers lock -platform=… -platform=…`"
    )
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert not any(".terraform.lock.hcl" in line and not line.startswith("!") for line in ignored)


@pytest.mark.parametrize(
    "path, ignored",
    [
        ("terraform/terraform.tfstate", True),
        ("terraform/terraform.tfstate.backup", True),
        ("terraform/.terraform/providers/x", True),
        ("terraform/terraform.tfvars", True),
        ("terraform/prod.tfvars.json", True),
        ("terraform/terraform.tfvars.example", False),
        ("terraform/.terraform.lock.hcl", False),
    ],
)
def test_state_and_variables_stay_out_of_git(path, ignored):
    """The state holds the token secret, Redis AUTH token and origin secrets in plain text, and
    tfvars the operator's addresses: git must never pick them up from terraform/."""
    import subprocess

    result = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT)
    assert (result.returncode == 0) == ignored, f"{path} is {'not ' if ignored else ''}git-ignored"


def test_an_encrypted_locked_s3_backend_is_documented():
    readme = (TERRAFORM / "README.md").read_text()
    block = re.search(r'backend "s3" \{(.*?)\n  \}', readme, re.S)
    assert block, "terraform/README.md shows no S3 backend block"
    assert re.search(r"encrypt\s*=\s*true", block.group(1))
    assert re.search(r"use_lockfile\s*=\s*true|dynamodb_table\s*=", block.group(1))
    assert "terraform init -migrate-state" in readme


def test_every_image_build_names_the_task_definitions_platform():
    """An ARM laptop's plain `docker build` makes an image an X86_64 task cannot start."""
    default = parse_dir(TERRAFORM)["variable"]["cpu_architecture"]["default"]
    platform = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}[default]
    builds = []
    for doc in ["README.md", "DEMO_GUIDE.md", "TEST_GUIDE.md", "terraform/README.md", "docs"]:
        for path in [ROOT / doc] if not (ROOT / doc).is_dir() else sorted((ROOT / doc).rglob("*.md")):
            for line in path.read_text().splitlines():
                if re.search(r"docker (buildx )?build\s", line):
                    builds.append((path.name, line))
    assert len(builds) >= 3, builds
    for name, line in builds:
        assert f"--platform {platform}" in line, f"{name}: {line.strip()}"
