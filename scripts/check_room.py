"""Checks a room's whole history through the public API: pages with `after=` from the start,
and fails unless seqs strictly increase, the last one is the room's `last_seq`, and (with
--expect-prefix P --expect N) the messages whose text starts with P are exactly N, numbered
P1..PN once each. The demo's "nobody lost a message" check; standard library only.

Usage: python3 scripts/check_room.py URL ROOM [--expect-prefix P --expect N]
"""

import argparse
import json
import sys
import urllib.request


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("room")
    ap.add_argument("--expect-prefix")
    ap.add_argument("--expect", type=int)
    a = ap.parse_args()
    base = a.url.rstrip("/")
    last_seq = get(f"{base}/api/rooms/{a.room}")["last_seq"]
    seqs, texts, after = [], [], 0
    while True:
        page = get(f"{base}/api/rooms/{a.room}/messages?after={after}&limit=200")
        for m in page["messages"]:
            seqs.append(m["seq"])
            texts.append(m["text"])
        if not page["has_more"] or not page["messages"]:
            break
        after = page["messages"][-1]["seq"]
    problems = []
    if any(b <= a_ for a_, b in zip(seqs, seqs[1:])):
        problems.append("seqs do not strictly increase")
    if (seqs[-1] if seqs else 0) != last_seq:
        problems.append(f"history ends at {seqs[-1] if seqs else 0}, the room's last_seq is {last_seq}")
    if a.expect_prefix is not None:
        numbered = [t for t in texts if t.startswith(a.expect_prefix)]
        want = [f"{a.expect_prefix}{i}" for i in range(1, (a.expect or 0) + 1)]
        if sorted(numbered) != sorted(want):
            missing = sorted(set(want) - set(numbered))
            extra = len(numbered) - len(set(numbered))
            problems.append(f"missing {missing[:10]} ({len(missing)}), duplicates {extra}")
    print(f"room {a.room}: {len(seqs)} messages, last seq {last_seq}" + ("" if problems else ", none lost"))
    for p in problems:
        print(f"check_room: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
