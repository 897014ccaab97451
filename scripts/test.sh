#!/usr/bin/env bash
# Every test of the project, on a fresh machine: installs what it needs (scripts/test-env.sh),
# then runs each layer; each layer starts and stops its own servers (redis-server, moto,
# chat-server, Chromium). Exit status is non-zero when any layer fails.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/test-env.sh

step() { printf '\n==> %s\n' "$*"; }

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Rust unit and integration tests (real redis-server and moto)"
cargo test --workspace --locked

for layer in scripts/test-*.layer.sh; do
  [ -e "$layer" ] || continue
  step "$layer"
  bash "$layer"
done

echo
echo "all test layers passed"
