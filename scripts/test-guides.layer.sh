#!/usr/bin/env bash
# Runs the locally runnable commands of DEMO_GUIDE.md and TEST_GUIDE.md so the guides cannot
# rot: every ```sh block preceded by a `<!-- test: local -->` line; every opsctl and curl command
# line of DEMO_GUIDE's "On stage" table must be one of those blocks' lines, verbatim. The blocks of one guide run
# in order in ONE bash process (`set -euo pipefail`, so later blocks see earlier variables and
# background processes), from the repository root, with a private TMPDIR and rehearsal ports,
# under a deadline. Any non-zero exit fails the guide. Prints `# pass N` / `# fail M` (one per
# guide) for scripts/test.sh's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
[ -n "${MOTO_SERVER:-}" ] || source scripts/test-env.sh

deadline="${GUIDE_DEADLINE_SECS:-900}"
passed=0 failed=0

# Writes the marked blocks of guide $1 as one bash script on stdout.
extract() {
  python3 - "$1" <<'PY'
import re, sys
path = sys.argv[1]
lines = open(path).read().splitlines()
out, n, i = [], 0, 0
while i < len(lines):
    if lines[i].strip() == "<!-- test: local -->":
        j = i + 1
        if j >= len(lines) or not re.match(r"^```(sh|bash)\b", lines[j].strip()):
            sys.exit(f"{path}:{i + 1}: a test marker must be followed by a ```sh block")
        k = j + 1
        while k < len(lines) and lines[k].strip() != "```":
            k += 1
        if k >= len(lines):
            sys.exit(f"{path}:{j + 1}: unterminated block")
        n += 1
        out.append(f"echo '--- {path}: block {n} (line {j + 1})' >&2")
        out.append(f"_guide_block='{path}:{j + 1}'")
        out.extend(lines[j + 1:k])
        i = k
    i += 1
if n == 0:
    sys.exit(f"{path}: no <!-- test: local --> blocks")
# The on-stage table's command lines (opsctl and curl; `opsctl watch` runs until Ctrl-C) must be
# in the tested blocks verbatim, so what the operator types on stage is what was rehearsed.
tested = set(out)
stage, missing = False, []
for line in lines:
    if line.startswith("## "):
        stage = line.strip() == "## On stage"
    elif stage and line.startswith("|"):
        for span in re.findall(r"`([^`]+)`", line):
            if span.startswith(("opsctl ", "curl ")) and span != "opsctl watch" and span not in tested:
                missing.append(span)
if missing:
    sys.exit(f"{path}: on-stage command lines no tested block runs verbatim: " + "; ".join(missing))
print("\n".join(out))
PY
}

for guide in DEMO_GUIDE.md TEST_GUIDE.md; do
  work="$(mktemp -d)"
  script="$work/guide.sh"
  {
    echo "set -euo pipefail"
    echo "cd '$root'"
    echo "trap 'echo \"guide block \$_guide_block failed (line \$LINENO of $script)\" >&2' ERR"
    # Background jobs a block started (a server) end with the guide, even on failure.
    echo "trap 'kill \$(jobs -p) 2>/dev/null || true' EXIT"
    extract "$guide"
  } >"$script"
  echo "==> $guide ($(grep -c '^_guide_block=' "$script") blocks)"
  # The rehearsal's state and ports are private to this run; `down` cleans up whatever the
  # blocks left running, even on failure. Ports below the kernel's ephemeral range (32768+),
  # where no outgoing connection can take one before its server binds it.
  export REHEARSAL_DIR="$work/rehearsal" REHEARSAL_PORT_BASE=$((20000 + RANDOM % 11900))
  status=0
  # Rust tests run inside a guide must not be counted twice in test.sh's summary.
  TMPDIR="$work" timeout --kill-after=10 "$deadline" bash "$script" 2>&1 |
    sed -u 's/^test result: /guide: cargo result: /' || status=$?
  bash scripts/rehearsal.sh down >/dev/null 2>&1 || true
  if [ "$status" = 0 ]; then
    passed=$((passed + 1))
    echo "ok: $guide"
    rm -rf "$work"
  else
    failed=$((failed + 1))
    echo "FAILED: $guide (exit $status; script $script)"
  fi
done

echo "# pass $passed"
echo "# fail $failed"
[ "$failed" = 0 ]
