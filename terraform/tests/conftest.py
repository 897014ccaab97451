"""Shared helpers for the Terraform and Dockerfile checks.

No terraform binary or provider can be downloaded here, so the checks read the configuration
with python-hcl2 and compare it with what the real chat-server binary says about itself:
its `--help` (every CHAT_* variable and default) and `create-tables --print-schema`.
Run through scripts/test-terraform.layer.sh, which builds the binary and sets CHAT_SERVER_BIN.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
MODULES = TERRAFORM / "modules"
MODULE_NAMES = ["vpc", "alb", "ecs", "elasticache", "dynamodb", "iam", "ecr", "cdn", "monitoring", "uploads"]
COLORS = ["blue", "green"]


def hcl2_module():
    """python-hcl2 itself, not checkov's bc-python-hcl2 fork that installs under the same name."""
    import hcl2

    version = metadata.version("python-hcl2")
    expected = Path(metadata.distribution("python-hcl2").locate_file("hcl2"))
    loaded = Path(hcl2.__file__).parent
    if loaded.resolve() != expected.resolve():
        pytest.fail(
            f"`import hcl2` loaded {loaded}, not python-hcl2 {version} ({expected}); "
            "run through scripts/test-terraform.layer.sh, which puts python-hcl2 first on PYTHONPATH"
        )
    return hcl2


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def clean(value):
    """python-hcl2 8 keeps string quotes and adds __markers__; drop both."""
    if isinstance(value, dict):
        return {unquote(k): clean(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, str):
        return unquote(value)
    return value


def parse_file(path: Path) -> dict:
    hcl2 = hcl2_module()
    with path.open() as fh:
        return clean(hcl2.load(fh))


def parse_dir(path: Path) -> dict:
    """Every .tf of one module merged: {"resource": {type: {name: body}}, "variable": {...}, ...}."""
    merged: dict = {"resource": {}, "data": {}, "variable": {}, "output": {}, "module": {}, "locals": {}}
    for tf in sorted(path.glob("*.tf")):
        doc = parse_file(tf)
        for block in doc.get("resource", []) + []:
            for rtype, named in block.items():
                merged["resource"].setdefault(rtype, {}).update(named)
        for block in doc.get("data", []):
            for dtype, named in block.items():
                merged["data"].setdefault(dtype, {}).update(named)
        for kind in ("variable", "output", "module"):
            for block in doc.get(kind, []):
                merged[kind].update(block)
        for block in doc.get("locals", []):
            merged["locals"].update(block)
    return merged


@pytest.fixture(scope="session")
def root() -> dict:
    return parse_dir(TERRAFORM)


@pytest.fixture(scope="session")
def modules() -> dict:
    return {name: parse_dir(MODULES / name) for name in MODULE_NAMES}


VAR_REF = re.compile(r"^\$\{var\.([a-z0-9_]+)\}$")


def resolve(value, module_name: str, root_doc: dict, module_doc: dict):
    """The value of `var.X` inside a module as the root deploys it by default.

    Follows `${var.X}` through the root's module call, then the root variable's default, then the
    module variable's default. Anything else (an expression) is returned as it is.
    """
    match = VAR_REF.match(value) if isinstance(value, str) else None
    if not match:
        return value
    name = match.group(1)
    call = root_doc["module"].get(module_name, {})
    if name in call:
        passed = call[name]
        root_match = VAR_REF.match(passed) if isinstance(passed, str) else None
        if root_match:
            return root_doc["variable"][root_match.group(1)]["default"]
        return passed
    return module_doc["variable"][name]["default"]


def chat_server_bin() -> Path:
    path = os.environ.get("CHAT_SERVER_BIN")
    if not path:
        pytest.fail("CHAT_SERVER_BIN is unset: run through ./scripts/test.sh or scripts/test-terraform.layer.sh")
    binary = Path(path)
    if not binary.is_file():
        pytest.fail(f"CHAT_SERVER_BIN={binary} does not exist: build it with `cargo build -p chat-server`")
    return binary


def clean_env() -> dict:
    """The test's environment without CHAT_* so `--help` shows defaults, not local values."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}


def run_chat_server(*args: str, env: dict | None = None) -> str:
    proc = subprocess.run(
        [str(chat_server_bin()), *args],
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, f"chat-server {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="session")
def server_help() -> str:
    return run_chat_server("--help")


@pytest.fixture(scope="session")
def server_env_vars(server_help: str) -> set[str]:
    names = set(re.findall(r"\[env: (CHAT_[A-Z0-9_]+)", server_help))
    assert names, f"chat-server --help lists no CHAT_* variable:\n{server_help}"
    return names


def help_default(help_text: str, env_var: str) -> str:
    """The `[default: …]` clap prints next to `[env: VAR=…]`."""
    match = re.search(r"\[env: " + re.escape(env_var) + r"[=\]][^\[]*\[default: ([^\]]+)\]", help_text)
    assert match, f"no default for {env_var} in chat-server --help:\n{help_text}"
    return match.group(1)


@pytest.fixture(scope="session")
def healthcheck_default_url() -> str:
    text = run_chat_server("healthcheck", "--help")
    match = re.search(r"\[default: (http://[^\]]+)\]", text)
    assert match, f"chat-server healthcheck --help shows no default URL:\n{text}"
    return match.group(1)


@pytest.fixture(scope="session")
def printed_schema() -> list[dict]:
    env = clean_env()
    env["CHAT_DYNAMODB_TABLE_PREFIX"] = "tfcheck-"
    env["CHAT_TOKEN_SECRET"] = "terraform-tests-secret-0123456789"
    out = run_chat_server("create-tables", "--print-schema", env=env)
    doc = json.loads(out)
    tables = doc["tables"] if isinstance(doc, dict) else doc
    assert isinstance(tables, list) and tables, f"create-tables --print-schema printed no tables: {out}"
    return tables


def templatefile_args(ecs_doc: dict) -> dict[str, str]:
    """The task definition's `templatefile(local.container_template, {...})` call in
    modules/ecs: each variable the template gets, with the HCL expression Terraform passes."""
    body = ecs_doc["resource"]["aws_ecs_task_definition"]["this"]["container_definitions"]
    match = re.fullmatch(r"\$\{templatefile\(local\.container_template, \{(.*)\}\)\}", body, re.S)
    assert match, f"container_definitions is not templatefile(local.container_template, {{...}}): {body[:120]}"
    args, depth, item = {}, 0, ""
    for ch in match.group(1) + ",":
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            name, _, expr = item.partition("=")
            args[name.strip()] = expr.strip()
            item = ""
        else:
            item += ch
    return args


def task_containers(color: str = "green") -> list[dict]:
    """The task definition's containers rendered from modules/ecs/containers.json.tftpl with the
    rehearsal's values (scripts/shapes.py; test_shapes.py checks they are Terraform's defaults)."""
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    import shapes

    return shapes.container_definitions("chat", color, "chat:v1", "us-east-1", "123456789012", ["https://chat.example.com"])
