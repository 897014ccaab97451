#!/usr/bin/env bash
# Soak: runs the randomized delivery checker (server/tests/checker.rs) for SECONDS of faults
# in all, in rounds of up to 300 s, each round with its own seed (SEED, SEED+1, ...; SEED
# defaults to a random one), at soak size: 300 clients in 10 rooms across 3 tasks
# (CHECKER_CLIENTS, CHECKER_ROOMS, CHECKER_TASKS, CHECKER_RATE, CHECKER_STAY override it). Every round
# prints its seed, the faults injected by kind, the verdict per room and the machine load;
# the script stops at the first failing round and prints the command that reproduces it.
# The end sums every round: faults by kind, messages acked, lost, duplicated, out of order.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: scripts/soak.sh SECONDS [SEED]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
total="$1"; [[ "$total" =~ ^[0-9]+$ && "$total" -gt 0 ]] || usage
seed="${2:-$((RANDOM * 32768 + RANDOM))}"; [[ "$seed" =~ ^[0-9]+$ ]] || usage
export CHECKER_CLIENTS="${CHECKER_CLIENTS:-300}" CHECKER_ROOMS="${CHECKER_ROOMS:-10}"
export CHECKER_TASKS="${CHECKER_TASKS:-3}" CHECKER_RATE="${CHECKER_RATE:-4}" CHECKER_STAY="${CHECKER_STAY:-180}"
source scripts/test-env.sh >/dev/null
cargo test -p chat-server --test checker --no-run --locked 2>&1 | tail -1
left="$total"; rounds=0; seeds=()
log="$(mktemp)"; all="$(mktemp)"
trap 'rm -f "$log" "$all"' EXIT
while [ "$left" -gt 0 ]; do
  round=$(( left < 300 ? left : 300 ))
  rounds=$((rounds + 1)); seeds+=("$seed")
  echo "==> round $rounds: seed $seed, $round s of faults, $CHECKER_CLIENTS clients, $CHECKER_ROOMS rooms, $CHECKER_TASKS tasks; load: $(uptime | sed 's/.*load average: //')"
  status=0
  CHECKER_SEED="$seed" CHECKER_SECONDS="$round" \
    cargo test -p chat-server --test checker --locked -- --nocapture >"$log" 2>&1 || status=$?
  grep '^checker' "$log" | tee -a "$all" || true
  echo "    load after round $rounds: $(uptime | sed 's/.*load average: //')"
  if [ "$status" -ne 0 ] || ! grep -q 'test result: ok' "$log"; then
    tail -40 "$log"
    echo "soak FAILED in round $rounds (seed $seed); reproduce with:"
    echo "  CHECKER_SEED=$seed CHECKER_SECONDS=$round CHECKER_CLIENTS=$CHECKER_CLIENTS CHECKER_ROOMS=$CHECKER_ROOMS CHECKER_TASKS=$CHECKER_TASKS CHECKER_RATE=$CHECKER_RATE CHECKER_STAY=$CHECKER_STAY cargo test -p chat-server --test checker -- --nocapture"
    exit 1
  fi
  left=$((left - round)); seed=$((seed + 1))
done
# Sums over the rounds, from each round's "faults injected" and "all rooms" lines.
python3 - "$all" <<'PY'
import re, sys
faults, sums = {}, {}
for line in open(sys.argv[1]):
    m = re.search(r"faults injected \d+: (.*)$", line)
    if m:
        for part in m.group(1).split(", "):
            k, n = part.rsplit(" ", 1)
            faults[k] = faults.get(k, 0) + int(n)
    m = re.search(r"all rooms: (.*?);", line)
    if m:
        for part in m.group(1).split(", "):
            k, n = part.rsplit(" ", 1)
            sums[k] = sums.get(k, 0) + int(n)
print("soak faults injected by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(faults.items())))
print("soak totals: " + ", ".join(f"{k} {n}" for k, n in sums.items()))
PY
echo "soak passed: $rounds rounds, $total s of faults, seeds ${seeds[*]}"
