"""The hashicorp/aws provider schema, as the tests need it, from the `.jsii` manifest of the npm
package `@cdktf/provider-aws` (generated from `terraform providers schema -json` of one provider
version; the package README names it). No terraform binary or provider download is needed.

`python provider_schema.py PACKAGE_DIR OUT.json` writes a compact schema:
    {"provider_version": "6.25.0",
     "resource"|"data": {type: {"args": [...], "blocks": {name: nested}, "attrs": [...]}}}
where `args` are the argument names, `blocks` the nested block schemas (same shape, recursively)
and `attrs` every attribute a reference may read (arguments and computed ones), in snake_case.
scripts/test-terraform.layer.sh runs it once per version and caches the result.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ANCHOR = re.compile(r"/docs/(?:resources|data-sources)/[a-z0-9_]+#([a-z0-9_]+) ")
REPRESENTS = re.compile(r"Represents a \{@link https://registry\.terraform\.io/providers/hashicorp/aws/([0-9.]+)/docs/(resources|data-sources)/[a-z0-9_]+ ([a-z0-9_]+)\}")
VERSION_LINE = re.compile(r"prebuilt bindings for hashicorp/aws provider version ([0-9.]+)")
SKIP_CLASS_PROPS = {"tfResourceType"}


def camel_to_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def struct_fqn(type_ref: dict, assembly: str) -> str | None:
    """The nested-block struct a property's type refers to, if it is a block."""
    if "fqn" in type_ref:
        return type_ref["fqn"] if type_ref["fqn"].startswith(assembly + ".") else None
    if "collection" in type_ref:
        return struct_fqn(type_ref["collection"]["elementtype"], assembly)
    if "union" in type_ref:
        for t in type_ref["union"]["types"]:
            found = struct_fqn(t, assembly)
            if found:
                return found
    return None


def property_name(prop: dict) -> str:
    docs = prop.get("docs", {})
    text = " ".join(str(docs.get(k, "")) for k in ("summary", "remarks"))
    match = ANCHOR.search(text)
    if not match:
        raise ValueError(f"no registry anchor for property {prop['name']}: {text[:200]}")
    return match.group(1)


def block_schema(types: dict, fqn: str, assembly: str, depth: int = 0) -> dict:
    if depth > 12:
        raise ValueError(f"nesting too deep at {fqn}")
    spec = types[fqn]
    args, blocks = [], {}
    for prop in spec.get("properties", []):
        name = property_name(prop)
        nested = struct_fqn(prop["type"], assembly)
        if nested and types.get(nested, {}).get("kind") == "interface":
            blocks[name] = block_schema(types, nested, assembly, depth + 1)
        else:
            args.append(name)
    return {"args": sorted(args), "blocks": blocks}


def extract(package_dir: Path) -> dict:
    readme = (package_dir / "README.md").read_text()
    version = VERSION_LINE.search(readme)
    if not version:
        raise ValueError(f"{package_dir}/README.md does not name the provider version")
    manifest = json.loads((package_dir / ".jsii").read_text())
    assembly = manifest["name"]
    types = manifest["types"]
    out = {"provider_version": version.group(1), "package_version": manifest["version"], "resource": {}, "data": {}}
    for fqn, spec in types.items():
        if spec.get("kind") != "class":
            continue
        match = REPRESENTS.search(spec.get("docs", {}).get("summary", ""))
        if not match:
            continue
        if match.group(1) != version.group(1):
            raise ValueError(f"{fqn} documents provider {match.group(1)}, README says {version.group(1)}")
        kind = "resource" if match.group(2) == "resources" else "data"
        tf_type = match.group(3)
        # The constructor's `config` parameter names the Config interface.
        params = spec.get("initializer", {}).get("parameters", [])
        config = [p["type"]["fqn"] for p in params if p["name"] == "config" and "fqn" in p["type"]]
        if len(config) != 1:
            raise ValueError(f"{fqn} has no config parameter")
        schema = block_schema(types, config[0], assembly)
        attrs = {
            camel_to_snake(p["name"])
            for p in spec.get("properties", [])
            if p["name"] not in SKIP_CLASS_PROPS and not p["name"].endswith("Input") and not p.get("static")
        }
        schema["attrs"] = sorted(attrs | set(schema["args"]) | set(schema["blocks"]))
        out[kind][tf_type] = schema
    if len(out["resource"]) < 1000 or len(out["data"]) < 400:
        raise ValueError(f"only {len(out['resource'])} resources and {len(out['data'])} data sources found")
    return out


if __name__ == "__main__":
    package, target = Path(sys.argv[1]), Path(sys.argv[2])
    schema = extract(package)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(schema, sort_keys=True))
    tmp.rename(target)
    print(f"provider_schema: hashicorp/aws {schema['provider_version']}: {len(schema['resource'])} resources, {len(schema['data'])} data sources -> {target}")
