"""Sends N numbered messages (PREFIX1..PREFIXN) to a room, one at a time, each retried with the
same client_msg_id until acked, reconnecting (with `after` = the last seq seen) whenever the
server drains or the socket drops. Run it while shifting traffic; then check_room.py proves every
message is in the history once. With several URLs it moves to the next one on each reconnect
(a laptop stand-in for the load balancer). Prints one line per connection, never the token.

Usage: python scripts/numbered_sender.py ROOM N --url URL [--url URL2] [--prefix P] [--interval S]
       [--origin ORIGIN]
"""

import argparse
import json
import sys
import time
import urllib.request
import uuid

import websocket  # websocket-client


def session(base: str) -> str:
    req = urllib.request.Request(
        f"{base}/api/session",
        data=json.dumps({"nickname": "Counter"}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["token"]


def ws_url(base: str) -> str:
    return base.replace("https://", "wss://", 1).replace("http://", "ws://", 1).rstrip("/") + "/ws"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("room")
    ap.add_argument("count", type=int)
    ap.add_argument("--url", action="append", required=True)
    ap.add_argument("--prefix", default="n")
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--deadline", type=float, default=300, help="give up after this many seconds")
    ap.add_argument(
        "--origin",
        help="the page's origin the WebSocket says it comes from (default: each URL's own, as a page served there)",
    )
    a = ap.parse_args()
    urls = [u.rstrip("/") for u in a.url]
    token = session(urls[0])
    ids = [str(uuid.uuid4()) for _ in range(a.count)]
    end = time.monotonic() + a.deadline
    next_i, last_seq, attempt = 0, 0, 0
    while next_i < a.count:
        if time.monotonic() > end:
            print(f"numbered_sender: gave up at {a.prefix}{next_i + 1}", file=sys.stderr)
            return 1
        base = urls[attempt % len(urls)]
        attempt += 1
        try:
            origin = {"origin": a.origin} if a.origin else {}
            ws = websocket.create_connection(ws_url(base), timeout=10, **origin)
        except (OSError, websocket.WebSocketException) as e:
            print(f"numbered_sender: connect {base}: {e}; retrying", file=sys.stderr)
            time.sleep(0.5)
            continue
        try:
            ws.send(json.dumps({"type": "hello", "token": token}))
            welcome = json.loads(ws.recv())
            if welcome.get("type") != "welcome":
                # A refused token will not be accepted on retry (tasks must share CHAT_TOKEN_SECRET).
                print(f"numbered_sender: {base} refused hello: {welcome.get('message', welcome)}", file=sys.stderr)
                return 1
            server = welcome["server"]
            ws.send(json.dumps({"type": "join", "room": a.room, "after": last_seq}))
            print(f"connected to {server['color']} ({server['task']}) at {a.prefix}{next_i + 1}")
            while next_i < a.count:
                frame = {"type": "send", "room": a.room, "client_msg_id": ids[next_i], "text": f"{a.prefix}{next_i + 1}"}
                ws.send(json.dumps(frame))
                while True:
                    msg = json.loads(ws.recv())
                    if msg["type"] == "message" and msg["room"] == a.room:
                        last_seq = max(last_seq, msg["seq"])
                    elif msg["type"] == "ack" and msg["client_msg_id"] == ids[next_i]:
                        next_i += 1
                        break
                    elif msg["type"] == "error" and msg.get("client_msg_id") == ids[next_i]:
                        time.sleep(0.2)  # unavailable or rate limited: resend the same id
                        break
                    elif msg["type"] == "reconnect":
                        raise ConnectionResetError("server draining")
                time.sleep(a.interval)
        except (OSError, ValueError, KeyError, websocket.WebSocketException) as e:
            print(f"numbered_sender: {base}: {type(e).__name__}; reconnecting", file=sys.stderr)
            time.sleep(0.2)
        finally:
            ws.close()
    print(f"sent {a.count} messages, each acked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
