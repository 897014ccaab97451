"""Every resource, data source, block, argument and reference of terraform/ is valid for the oldest
and the newest hashicorp/aws version versions.tf allows, checked against the real provider schemas
(from `@cdktf/provider-aws`'s `.jsii` manifests, which are generated from `terraform providers
schema -json`; fetched and cached by scripts/test-terraform.layer.sh, see provider_schema.py).
The checker itself must catch a misspelling, shown on a temporary copy."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import TERRAFORM, parse_file
from schema_check import check_configuration

# hashicorp/aws version -> @cdktf/provider-aws release generated from it (its README says so).
PROVIDER_PACKAGES = {"5.100.0": "20.1.0", "6.25.0": "21.22.1"}


def schema_path(version: str) -> Path:
    directory = os.environ.get("PROVIDER_SCHEMA_DIR")
    if not directory:
        pytest.fail("PROVIDER_SCHEMA_DIR is unset: run through scripts/test-terraform.layer.sh, which fetches the schemas")
    path = Path(directory) / f"aws-{version}.json"
    if not path.is_file():
        pytest.fail(f"{path} is missing: scripts/test-terraform.layer.sh makes it")
    return path


def load(version: str) -> dict:
    schema = json.loads(schema_path(version).read_text())
    assert schema["provider_version"] == version, f"{schema_path(version)} holds {schema['provider_version']}"
    assert schema["package_version"] == PROVIDER_PACKAGES[version]
    return schema


_SCHEMAS: list[dict] = []


def SCHEMAS() -> list[dict]:  # noqa: N802 - a cached constant
    if not _SCHEMAS:
        _SCHEMAS.extend(load(v) for v in sorted(PROVIDER_PACKAGES))
    return _SCHEMAS


@pytest.fixture(scope="module", params=sorted(PROVIDER_PACKAGES))
def schema(request):
    return next(s for s in SCHEMAS() if s["provider_version"] == request.param)


def test_schemas_cover_the_bounds_of_the_constraint():
    constraint = parse_file(TERRAFORM / "versions.tf")["terraform"][0]["required_providers"][0]["aws"]["version"]
    bounds = dict(re.findall(r"(>=|<=)\s*([0-9.]+)", constraint))
    assert set(bounds) == {">=", "<="}, f"the constraint {constraint!r} needs both bounds"
    assert sorted(PROVIDER_PACKAGES) == sorted(bounds.values()), f"schemas {sorted(PROVIDER_PACKAGES)} vs constraint {constraint}"


def test_configuration_is_valid_for_the_provider(schema):
    problems = check_configuration(TERRAFORM, schema)
    assert not problems, f"hashicorp/aws {schema['provider_version']}:\n" + "\n".join(problems)


@pytest.fixture
def copy(tmp_path):
    target = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, target, ignore=shutil.ignore_patterns("tests", ".terraform", "*.tfstate*"))
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) >= 1, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    "file, old, new, expected",
    [
        ("modules/alb/main.tf", "idle_timeout               = var.idle_timeout", "idle_timout                = var.idle_timeout", "unknown argument 'idle_timout'"),
        ("modules/alb/main.tf", "  health_check {", "  health_chek {", "unknown argument 'health_chek'"),
        ("modules/cdn/main.tf", "      frame_option = \"DENY\"", "      frame_options = \"DENY\"", "unknown argument 'frame_options'"),
        ("modules/cdn/main.tf", "  dynamic \"ordered_cache_behavior\" {", "  dynamic \"ordered_cache_behaviour\" {", "unknown dynamic block 'ordered_cache_behaviour'"),
        ("modules/monitoring/main.tf", "var.alb_arn_suffix }\n  statistic", "var.alb_arn_suffix }\n  statistics", "unknown argument 'statistics'"),
        ("modules/alb/outputs.tf", "aws_lb.this.arn_suffix", "aws_lb.this.arn_sufix", "has no attribute 'arn_sufix'"),
        ("modules/ecs/main.tf", "resource \"aws_ecs_cluster\" \"this\"", "resource \"aws_ecs_clustre\" \"this\"", "no resource type aws_ecs_clustre"),
        ("modules/ecs/main.tf", "ignore_changes = [task_definition, desired_count]", "ignore_changes = [task_defintion, desired_count]", "ignore_changes names 'task_defintion'"),
        ("main.tf", "module.alb.arn_suffix", "module.alb.arn_sufix", "module.alb.arn_sufix is not an output"),
        ("modules/vpc/main.tf", "data.aws_region.current.id", "data.aws_region.current.ids", "has no attribute 'ids'"),
    ],
)
def test_checker_catches_a_misspelling(copy, file, old, new, expected):
    edit(copy / file, old, new)
    problems = check_configuration(copy, *SCHEMAS())
    for version in PROVIDER_PACKAGES:
        assert any(p.startswith(version) and expected in p for p in problems), f"{version}: {expected!r} not reported, got {problems}"


def test_checker_tells_the_versions_apart(copy):
    """`region` on a resource exists only from 6.0: valid for the newest, refused for the oldest."""
    edit(copy / "modules/ecr/main.tf", "  image_tag_mutability = \"IMMUTABLE\"", "  region               = \"us-east-1\"\n  image_tag_mutability = \"IMMUTABLE\"")
    problems = check_configuration(copy, *SCHEMAS())
    assert not [p for p in problems if p.startswith("6.25.0")], problems
    assert any(p.startswith("5.100.0") and "unknown argument 'region'" in p for p in problems), problems
