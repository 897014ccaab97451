#!/usr/bin/env bash
# Terraform and container checks (no terraform binary or provider can be downloaded here):
#   - pytest terraform/tests: every .tf parses with python-hcl2; tables, CHAT_* variables, ports,
#     health check and Dockerfile match what the chat-server binary says about itself; the edge
#     headers, metrics, dashboard and alarms; every resource, block, argument and reference valid
#     for the lowest and highest hashicorp/aws versions allowed (schemas fetched once, below);
#   - checkov over terraform/: 0 failed checks, every skip inline with its reason.
# Run alone: bash scripts/test-terraform.layer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/test-env.sh

# The tests ask the real binary for its flags and table schema.
target_dir="$(cargo metadata --format-version 1 --no-deps | "$TEST_VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
cargo build --locked -p chat-server >&2
export CHAT_SERVER_BIN="$target_dir/debug/chat-server"

# checkov depends on bc-python-hcl2, which installs over python-hcl2's `hcl2` module in the shared
# venv; the parse tests load the genuine python-hcl2 from a directory of its own.
hcl2_version="$(grep -E '^python-hcl2==' scripts/requirements-test.txt | cut -d= -f3)"
hcl2_dir="${CHAT_TEST_CACHE:-$HOME/.cache/chat-test}/python-hcl2-$hcl2_version"
if [ ! -f "$hcl2_dir/hcl2/__init__.py" ]; then
  echo "test-terraform: installing python-hcl2 $hcl2_version into $hcl2_dir" >&2
  rm -rf "$hcl2_dir"
  "$TEST_VENV/bin/pip" install -q --disable-pip-version-check --no-deps --target "$hcl2_dir" "python-hcl2==$hcl2_version" >&2
fi

# The hashicorp/aws schemas of the constraint's bounds, from the npm packages generated from them
# (terraform/tests/provider_schema.py; test_schema.py checks the versions match versions.tf).
schema_dir="${CHAT_TEST_CACHE:-$HOME/.cache/chat-test}/provider-schema"
mkdir -p "$schema_dir"
for pair in 5.100.0:20.1.0 6.25.0:21.22.1; do # hashicorp/aws version : @cdktf/provider-aws version
  provider="${pair%%:*}" package="${pair#*:}"
  if [ ! -f "$schema_dir/aws-$provider.json" ]; then
    tarball="$schema_dir/cdktf-provider-aws-$package.tgz"
    if [ ! -f "$tarball" ]; then
      echo "test-terraform: npm pack @cdktf/provider-aws@$package (hashicorp/aws $provider schema)" >&2
      (cd "$schema_dir" && npm pack --silent "@cdktf/provider-aws@$package" >/dev/null)
    fi
    unpacked="$(mktemp -d)"
    tar -xzf "$tarball" -C "$unpacked" package/.jsii package/README.md
    "$TEST_VENV/bin/python" terraform/tests/provider_schema.py "$unpacked/package" "$schema_dir/aws-$provider.json" >&2
    rm -rf "$unpacked"
  fi
done
export PROVIDER_SCHEMA_DIR="$schema_dir"

PYTHONPATH="$hcl2_dir" "$TEST_VENV/bin/pytest" -p no:cacheprovider terraform/tests

echo "checkov -d terraform"
checkov_out="$(mktemp)"
trap 'rm -f "$checkov_out"' EXIT
rc=0
# checkov gives each file 10 s to parse by default; the first parse builds the HCL grammar, which on
# a loaded machine can take longer, and a file that times out is silently left unscanned.
HCL_PARSE_TIMEOUT_SEC=120 "$TEST_VENV/bin/checkov" -d terraform --quiet --compact --skip-download >"$checkov_out" 2>&1 || rc=$?
cat "$checkov_out"
# --quiet prints only failures; a scan that passed nothing, or left a file unparsed, fails too.
if [ "$rc" -ne 0 ] || ! grep -qE 'Passed checks: [1-9][0-9]*, Failed checks: 0,' "$checkov_out" || grep -q 'Parsing errors' "$checkov_out"; then
  echo "test-terraform: checkov failed (exit $rc): every check must pass or carry an inline skip with a reason" >&2
  exit 1
fi
