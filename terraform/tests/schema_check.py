"""Checks a Terraform configuration against a provider schema (provider_schema.py): every
resource and data source type exists, every argument and block is one the type has (nested blocks
and `dynamic` blocks included), every `ignore_changes` entry names one, and every reference
resolves: `aws_x.name.attr` and `data.aws_x.name.attr` to a declared block of that module and an
attribute of its type, `var.`/`local.`/`module.X.out` to a declared variable, local or output.
Returns the problems found as readable strings; an empty list means valid."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import parse_dir

META_ARGS = {"count", "for_each", "provider", "depends_on", "lifecycle", "provisioner", "connection"}
LIFECYCLE_KEYS = {"create_before_destroy", "prevent_destroy", "ignore_changes", "replace_triggered_by", "precondition", "postcondition"}
REF = re.compile(r"(?<![A-Za-z0-9_.\"-])(data\.)?(aws_[a-z0-9_]+|random_[a-z0-9_]+)\.([a-z0-9_]+)((?:\[[^\]]*\])?)(?:\.([a-z0-9_]+))?")
NAMED_REF = re.compile(r"(?<![A-Za-z0-9_.])(var|local|module)\.([a-z0-9_]+)(?:\.([a-z0-9_]+))?")


def check_body(body: dict, schema: dict, where: str, problems: list[str], top: bool) -> None:
    for key, value in body.items():
        if top and key in META_ARGS:
            continue
        if key == "dynamic":
            for entry in value:
                for block_name, spec in entry.items():
                    nested = schema["blocks"].get(block_name)
                    if nested is None:
                        problems.append(f"{where}: unknown dynamic block {block_name!r}")
                        continue
                    for content in spec.get("content", []):
                        check_body(content, nested, f"{where}.{block_name}", problems, top=False)
            continue
        if key in schema["blocks"]:
            if not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
                problems.append(f"{where}: {key!r} is a block, written as an argument")
                continue
            for item in value:
                check_body(item, schema["blocks"][key], f"{where}.{key}", problems, top=False)
        elif key not in schema["args"]:
            problems.append(f"{where}: unknown argument {key!r}")


def check_lifecycle(body: dict, schema: dict, where: str, problems: list[str]) -> None:
    for lifecycle in body.get("lifecycle", []):
        for key in lifecycle:
            if key not in LIFECYCLE_KEYS:
                problems.append(f"{where}: unknown lifecycle setting {key!r}")
        for entry in lifecycle.get("ignore_changes", []):
            names = entry if isinstance(entry, list) else [entry]
            for name in names:
                root = re.split(r"[.\[]", name.strip("${}"))[0]
                if root not in schema["args"] and root not in schema["blocks"]:
                    problems.append(f"{where}: ignore_changes names {root!r}, which the type does not have")


def check_module(path: Path, doc: dict, schema: dict, module_outputs: dict[str, set[str]], problems: list[str]) -> None:
    declared = {("resource", t, n) for t, named in doc["resource"].items() for n in named}
    declared |= {("data", t, n) for t, named in doc["data"].items() for n in named}

    for kind in ("resource", "data"):
        for rtype, named in doc[kind].items():
            for name, body in named.items():
                where = f"{path.name}: {'data.' if kind == 'data' else ''}{rtype}.{name}"
                if not rtype.startswith("aws_"):
                    continue
                type_schema = schema[kind].get(rtype)
                if type_schema is None:
                    problems.append(f"{where}: no {kind} type {rtype} in hashicorp/aws {schema['provider_version']}")
                    continue
                check_body(body, type_schema, where, problems, top=True)
                check_lifecycle(body, type_schema, where, problems)

    text = json.dumps(doc)
    for match in REF.finditer(text):
        is_data, rtype, name, _, attr = match.groups()
        kind = "data" if is_data else "resource"
        if (kind, rtype, name) not in declared:
            problems.append(f"{path.name}: reference {match.group(0)} to an undeclared {kind}")
            continue
        if attr and rtype.startswith("aws_"):
            attrs = schema[kind].get(rtype, {}).get("attrs", [])
            if attr not in attrs:
                problems.append(f"{path.name}: reference {match.group(0)}: {rtype} has no attribute {attr!r}")
    for match in NAMED_REF.finditer(text):
        scope, name, attr = match.groups()
        if scope == "var" and name not in doc["variable"]:
            problems.append(f"{path.name}: var.{name} is not declared")
        elif scope == "local" and name not in doc["locals"]:
            problems.append(f"{path.name}: local.{name} is not declared")
        elif scope == "module":
            if name not in doc["module"]:
                problems.append(f"{path.name}: module.{name} is not declared")
            elif attr and attr not in module_outputs.get(doc["module"][name]["source"], set()):
                problems.append(f"{path.name}: module.{name}.{attr} is not an output of {doc['module'][name]['source']}")


def check_configuration(terraform_dir: Path, *schemas: dict) -> list[str]:
    """Problems of the configuration under each schema (each prefixed by its provider version when
    more than one is given). The .tf files are parsed once."""
    modules = sorted(p for p in (terraform_dir / "modules").iterdir() if p.is_dir())
    docs = {p.resolve(): parse_dir(p) for p in [terraform_dir] + modules}
    outputs = {f"./modules/{m.name}": set(docs[m.resolve()]["output"]) for m in modules}
    problems: list[str] = []
    for call_name, call in docs[terraform_dir.resolve()]["module"].items():
        source = call["source"]
        module_vars = docs[(terraform_dir / source).resolve()]["variable"]
        for arg in call:
            if arg not in ("source", "providers", "depends_on", "count", "for_each") and arg not in module_vars:
                problems.append(f"module {call_name}: argument {arg!r} is not a variable of {source}")
        for var_name, var in module_vars.items():
            if "default" not in var and var_name not in call:
                problems.append(f"module {call_name}: required variable {var_name!r} of {source} is not set")
    for schema in schemas:
        found: list[str] = []
        for path, doc in docs.items():
            check_module(path, doc, schema, outputs, found)
        prefix = f"{schema['provider_version']}: " if len(schemas) > 1 else ""
        problems += [prefix + p for p in found]
    return problems
