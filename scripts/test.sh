#!/usr/bin/env bash
# Every test of the project, on a fresh machine: installs what it needs (scripts/test-env.sh),
# then runs each layer; each layer starts and stops its own servers (redis-server, moto,
# chat-server, Chromium). Exit status is non-zero when any layer fails. The last line sums
# the tests every runner reported.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/test-env.sh

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
step() { printf '\n==> %s\n' "$*"; }

# A full disk fails far from its cause (a Redis Cluster node that cannot write its config
# exits before it listens): say so first.
step "disk"
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"
free_gib=$(($(df -Pk "$target" | awk 'NR == 2 { print $4 }') / 1048576))
echo "$free_gib GiB free for $target and the tests' temporary files"
if [ "$free_gib" -lt 10 ]; then
  echo "warning: under 10 GiB free: a cold build and the tests' servers may run out of disk" >&2
fi

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Rust unit and integration tests (real redis-server and moto)"
cargo test --workspace --locked 2>&1 | tee -a "$log"

for layer in scripts/test-*.layer.sh; do
  [ -e "$layer" ] || continue
  step "$layer"
  bash "$layer" 2>&1 | tee -a "$log"
done

# cargo: "test result: ok. N passed; M failed"; pytest: "N passed"/"M failed" on its summary
# line; node --test: "# pass N" / "# fail M".
python3 - "$log" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
passed = failed = 0
for p, f in re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed", text):
    passed += int(p); failed += int(f)
for line in re.findall(r"^=+ (.*) in [\d.]+s.* =+$", text, re.M):
    m = re.search(r"(\d+) passed", line); passed += int(m.group(1)) if m else 0
    m = re.search(r"(\d+) failed", line); failed += int(m.group(1)) if m else 0
for n in re.findall(r"^# pass (\d+)$", text, re.M): passed += int(n)
for n in re.findall(r"^# fail (\d+)$", text, re.M): failed += int(n)
print(f"\n{passed} passed, {failed} failed")
sys.exit(1 if failed or passed == 0 else 0)
PY
