#!/usr/bin/env bash
# Browser layer: the web client (frontend/) in real headless Chromium (Debian's chromium,
# driven by playwright-core) against real chat-server processes that the tests start and stop
# themselves on free loopback ports, after a type check of the client's modules (tsc --noEmit
# over their JSDoc) and the unit tests of its pure logic. Run by scripts/test.sh; alone:
#   source scripts/test-env.sh && bash scripts/test-browser.layer.sh
# Screenshots of each main state land in frontend/tests/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."

for pkg in playwright-core typescript axe-core jsqr; do
  if [ ! -d "frontend/tests/node_modules/$pkg" ]; then
    echo "test-browser: npm package $pkg missing: source scripts/test-env.sh first (it runs npm ci in frontend/tests)" >&2
    exit 1
  fi
done
export CHROMIUM="${CHROMIUM:-$(command -v chromium || true)}"
if [ -z "$CHROMIUM" ]; then
  echo "test-browser: chromium not found: source scripts/test-env.sh first (it installs Debian's chromium)" >&2
  exit 1
fi

# Avatars are SVG drawings, but messages may carry emoji and the page speaks Korean: without a
# colour emoji font and a CJK font the screenshots show those as empty boxes. Cosmetic only
# (the tests read text, not pixels), so a failed install is a warning.
if ! fc-list 2>/dev/null | grep -qi "color emoji"; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-noto-color-emoji >&2 \
    || echo "test-browser: warning: fonts-noto-color-emoji not installed; emoji in screenshots will be boxes" >&2
fi
if ! fc-list :lang=ko 2>/dev/null | grep -q .; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-noto-cjk >&2 \
    || echo "test-browser: warning: fonts-noto-cjk not installed; Korean in screenshots will be boxes" >&2
fi

# A private copy of the binary this checkout built. With a shared CARGO_TARGET_DIR another
# checkout may relink target/debug/chat-server at any time, and a debug build serves frontend/
# from the folder of the checkout that built it (a path compiled into the binary, checked here).
root="$PWD"
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
bin_dir="$(mktemp -d)"
trap 'rm -rf "$bin_dir"' EXIT
export CHAT_SERVER_BIN="$bin_dir/chat-server"
for attempt in 1 2 3; do
  cargo build -p chat-server --locked
  cp "$target_dir/debug/chat-server" "$CHAT_SERVER_BIN"
  if grep -a -q -F "$root/server/../frontend" "$CHAT_SERVER_BIN"; then break; fi
  if [ "$attempt" = 3 ]; then
    echo "test-browser: $target_dir/debug/chat-server keeps being replaced by another checkout's build" >&2
    exit 1
  fi
  echo "test-browser: another checkout relinked chat-server meanwhile; building again" >&2
  touch server/src/main.rs
done
echo "test-browser: chat-server binary $CHAT_SERVER_BIN" >&2

cd frontend/tests
echo "test-browser: tsc --noEmit (the client's // @ts-check modules)" >&2
node node_modules/typescript/bin/tsc -p tsconfig.json
rm -rf artifacts
node --test --test-concurrency=1 --test-timeout=180000 ./*.test.js
