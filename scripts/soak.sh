#!/usr/bin/env bash
# Soak: runs the randomized delivery checker (server/tests/checker.rs) for SECONDS of faults
# in all, in rounds of up to 300 s, each round with its own seed (SEED, SEED+1, ...; SEED
# defaults to a random one). Every round prints its seed, the faults injected by kind and
# the figures; the script stops at the first failing round and prints the seed that
# reproduces it:  CHECKER_SEED=N CHECKER_SECONDS=S cargo test -p chat-server --test checker -- --nocapture
# Other CHECKER_* variables (CLIENTS, ROOMS, TASKS, RATE) pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: scripts/soak.sh SECONDS [SEED]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
total="$1"; [[ "$total" =~ ^[0-9]+$ && "$total" -gt 0 ]] || usage
seed="${2:-$((RANDOM * 32768 + RANDOM))}"; [[ "$seed" =~ ^[0-9]+$ ]] || usage
source scripts/test-env.sh >/dev/null
cargo test -p chat-server --test checker --no-run --locked 2>&1 | tail -1
left="$total"; rounds=0; log="$(mktemp)"
trap 'rm -f "$log"' EXIT
while [ "$left" -gt 0 ]; do
  round=$(( left < 300 ? left : 300 ))
  rounds=$((rounds + 1))
  echo "==> round $rounds: seed $seed, $round s of faults"
  if ! CHECKER_SEED="$seed" CHECKER_SECONDS="$round" \
      cargo test -p chat-server --test checker --locked -- --nocapture 2>&1 | tee "$log" | grep '^checker'; then
    tail -30 "$log"
    echo "soak FAILED in round $rounds; reproduce with: CHECKER_SEED=$seed CHECKER_SECONDS=$round cargo test -p chat-server --test checker -- --nocapture"
    exit 1
  fi
  grep -q 'test result: ok' "$log" || { tail -30 "$log"; echo "soak FAILED in round $rounds (seed $seed)"; exit 1; }
  left=$((left - round)); seed=$((seed + 1))
done
echo "soak passed: $rounds rounds, $total s of faults"
