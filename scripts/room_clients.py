"""Holds N WebSocket clients in one room through the local ALB, each following `reconnect`
(re-joining with `after` = the last seq it saw), and prints live connections per colour every
second. On SIGINT/SIGTERM or after --seconds it checks that every client saw every message
from its first join on exactly once and in order, and exits 1 otherwise. Loopback only.

Usage: python scripts/room_clients.py URL ROOM N [--seconds S] [--log FILE]
"""

import argparse
import json
import sys
import threading
import time
import urllib.request

import websocket  # websocket-client

lock = threading.Lock()
colors: dict[int, str] = {}
problems: list[str] = []
stop = threading.Event()


def client(i: int, base: str, room: str, token: str) -> None:
    ws_url = base.replace("http://", "ws://", 1).rstrip("/") + "/ws"
    last = None
    while not stop.is_set():
        try:
            ws = websocket.create_connection(ws_url, timeout=10)
        except Exception:
            time.sleep(0.2)
            continue
        try:
            ws.send(json.dumps({"type": "hello", "token": token}))
            join = {"type": "join", "room": room}
            if last is not None:
                join["after"] = last
            ws.send(json.dumps(join))
            ws.settimeout(1)
            while not stop.is_set():
                try:
                    raw = ws.recv()
                except websocket.WebSocketTimeoutException:
                    continue
                if not raw:
                    break
                f = json.loads(raw)
                t = f.get("type")
                if t == "welcome":
                    with lock:
                        colors[i] = f["server"]["color"]
                elif t == "joined":
                    msgs = f.get("messages", [])
                    if last is None:
                        last = f["last_seq"]
                    else:
                        for m in msgs:
                            last = check(i, last, m["seq"])
                elif t == "message":
                    last = check(i, last, f["seq"])
                elif t == "reconnect":
                    time.sleep(f.get("retry_after_ms", 100) / 1000)
                    break
        except Exception:
            pass
        finally:
            with lock:
                colors.pop(i, None)
            try:
                ws.close()
            except Exception:
                pass


def check(i: int, last, seq: int):
    if last is not None and seq != last + 1:
        with lock:
            problems.append(f"client {i}: seq {seq} after {last}")
    return seq if last is None or seq > last else last


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("room")
    ap.add_argument("n", type=int)
    ap.add_argument("--seconds", type=float, default=600)
    a = ap.parse_args()
    base = a.url.rstrip("/")
    threads = []
    for i in range(a.n):
        req = urllib.request.Request(f"{base}/api/session", data=b'{"nickname":"Reader"}',
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            token = json.load(r)["token"]
        t = threading.Thread(target=client, args=(i, base, a.room, token), daemon=True)
        t.start()
        threads.append(t)
    end = time.time() + a.seconds
    try:
        while time.time() < end:
            with lock:
                counts = {c: list(colors.values()).count(c) for c in ("blue", "green")}
            print(f"{time.strftime('%H:%M:%S')} blue {counts['blue']} green {counts['green']}", flush=True)
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    stop.set()
    for t in threads:
        t.join(timeout=3)
    print(f"gaps or repeats: {len(problems)}")
    for p in problems[:20]:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
