"""Every .tf parses with python-hcl2 and follows the terraform-aws-modules habits (STYLE.md)."""

from __future__ import annotations

import re

import pytest

from conftest import MODULE_NAMES, MODULES, TERRAFORM, parse_dir, parse_file

TF_FILES = sorted(p for p in TERRAFORM.rglob("*.tf") if ".terraform" not in p.parts)
MODULE_DIRS = [TERRAFORM] + [MODULES / m for m in MODULE_NAMES]

# Resource types the AWS provider gives no `tags` argument; every other resource must carry tags.
UNTAGGABLE = {
    "aws_cloudfront_cache_policy",
    "aws_cloudfront_origin_access_control",
    "aws_cloudfront_response_headers_policy",
    "aws_cloudwatch_dashboard",
    "aws_ecr_lifecycle_policy",
    "aws_ecs_cluster_capacity_providers",
    "aws_iam_role_policy",
    "aws_iam_role_policy_attachment",
    "aws_kms_alias",
    "aws_route",
    "aws_route_table_association",
    "aws_s3_bucket_lifecycle_configuration",
    "aws_s3_bucket_cors_configuration",
    "aws_s3_bucket_logging",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_versioning",
    "random_password",
}


def test_found_the_configuration():
    assert len(TF_FILES) >= 4 * (len(MODULE_NAMES) + 1)


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(path):
    doc = parse_file(path)
    assert doc, f"{path} parsed to nothing"


@pytest.mark.parametrize("path", MODULE_DIRS, ids=lambda p: p.name)
def test_module_layout(path):
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert (path / name).is_file(), f"{path.name} lacks {name}"
    versions = parse_file(path / "versions.tf")["terraform"][0]
    assert versions["required_version"].startswith(">=")
    aws = versions["required_providers"][0]["aws"]
    assert aws["source"] == "hashicorp/aws" and aws["version"].startswith(">=")


@pytest.mark.parametrize("path", MODULE_DIRS, ids=lambda p: p.name)
def test_no_name_is_declared_twice_in_a_module(path):
    """terraform init refuses a module that declares a variable, output, local, module call,
    resource or data source twice (across its files too); parse_dir would silently keep one."""
    seen: dict[tuple, str] = {}
    for tf in sorted(path.glob("*.tf")):
        doc = parse_file(tf)
        names = [("locals", k) for block in doc.get("locals", []) for k in block]
        names += [(kind, k) for kind in ("variable", "output", "module") for block in doc.get(kind, []) for k in block]
        names += [(kind, t, n) for kind in ("resource", "data") for block in doc.get(kind, []) for t, named in block.items() for n in named]
        for name in names:
            assert name not in seen, f"{path.name}: {' '.join(name)} declared in {seen[name]} and again in {tf.name}"
            seen[name] = tf.name


@pytest.mark.parametrize("path", MODULE_DIRS, ids=lambda p: p.name)
def test_every_variable_has_description_and_type(path):
    variables = parse_dir(path)["variable"]
    assert variables
    for name, body in variables.items():
        assert body.get("description"), f"{path.name}: variable {name} has no description"
        assert body.get("type"), f"{path.name}: variable {name} has no type"


@pytest.mark.parametrize("path", MODULE_DIRS, ids=lambda p: p.name)
def test_every_output_has_description(path):
    for name, body in parse_dir(path)["output"].items():
        assert body.get("description"), f"{path.name}: output {name} has no description"


@pytest.mark.parametrize("path", MODULE_DIRS, ids=lambda p: p.name)
def test_tags_flow_to_every_resource(path):
    doc = parse_dir(path)
    if path != TERRAFORM:
        assert "tags" in doc["variable"], f"{path.name} takes no tags"
    for rtype, named in doc["resource"].items():
        if rtype in UNTAGGABLE:
            continue
        for name, body in named.items():
            tags = body.get("tags")
            assert tags and ("var.tags" in tags or "local.tags" in tags), f"{path.name}: {rtype}.{name} does not carry the tags"


def test_root_passes_tags_to_every_module():
    root = parse_dir(TERRAFORM)
    assert sorted(root["module"]) == sorted(MODULE_NAMES)
    for name, call in root["module"].items():
        assert call["source"] == f"./modules/{name}"
        assert call["tags"] == "${local.tags}", f"module {name} does not get the tags"


def test_tfvars_example_parses_and_names_real_variables():
    example = parse_file(TERRAFORM / "terraform.tfvars.example")
    variables = parse_dir(TERRAFORM)["variable"]
    assert example
    for name in example:
        assert name in variables, f"terraform.tfvars.example sets unknown variable {name}"


SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def test_every_checkov_skip_has_a_reason():
    skips = []
    for path in TF_FILES:
        for line in path.read_text().splitlines():
            match = SKIP.search(line)
            if match:
                reason = (match.group(2) or "").strip()
                assert len(reason) >= 30, f"{path.name}: skip {match.group(1)} needs a real reason, got {reason!r}"
                skips.append(match.group(1))
    assert skips, "expected the documented skips (see terraform/README.md)"


def test_readme_lists_every_checkov_skip():
    readme = (TERRAFORM / "README.md").read_text()
    for path in TF_FILES:
        for line in path.read_text().splitlines():
            match = SKIP.search(line)
            if match:
                assert match.group(1) in readme, f"terraform/README.md does not explain skip {match.group(1)}"
