"""The health checks Terraform and the Dockerfile configure work against a real chat-server:
the container check (`/chat-server healthcheck --url …`) exits 0 while the server serves and
non-zero once it is gone, and the target groups' path answers 200. The server runs on loopback
with the task definition's colour and drain window (the embedded store stands in for DynamoDB:
the table layout is checked in test_dynamodb.py)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import chat_server_bin, clean_env, resolve, task_containers

DEADLINE_SECS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def healthcheck(command: list[str], port: int) -> int:
    """Runs the container health check as ECS would, aimed at this test's port."""
    args = [str(chat_server_bin()) if a == "/chat-server" else a for a in command]
    args = [a.replace("127.0.0.1:8080/", f"127.0.0.1:{port}/") for a in args]
    return subprocess.run(args, env=clean_env(), capture_output=True, timeout=15).returncode


@pytest.fixture
def server(root, modules):
    health_path = resolve("${var.health_check_path}", "ecs", root, modules["ecs"])
    drain = resolve("${var.drain_secs}", "ecs", root, modules["ecs"])
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        admin_port = free_port()
        env = clean_env() | {
            "CHAT_LISTEN": f"127.0.0.1:{port}",
            "CHAT_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
            "CHAT_DATA_DIR": data_dir,
            "CHAT_COLOR": "green",
            "CHAT_DRAIN_SECS": str(drain),
        }
        proc = subprocess.Popen([str(chat_server_bin())], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + DEADLINE_SECS
            while True:
                assert proc.poll() is None, f"chat-server exited: {proc.stderr.read().decode(errors='replace')}"
                try:
                    if get(f"http://127.0.0.1:{port}{health_path}")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, f"chat-server did not serve {health_path} within {DEADLINE_SECS}s"
                time.sleep(0.1)
            yield proc, port, health_path, admin_port
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def test_container_health_check_passes_while_serving_and_fails_after(server, modules):
    proc, port, health_path, _ = server
    command = [a.replace("/healthz", health_path) for a in task_containers()[0]["healthCheck"]["command"][1:]]
    assert healthcheck(command, port) == 0, "the task definition's health check fails against a healthy server"

    status, body = get(f"http://127.0.0.1:{port}{health_path}")
    assert status == 200, "the target groups' health check path does not answer 200"
    status, body = get(f"http://127.0.0.1:{port}/version")
    assert status == 200 and json.loads(body)["color"] == "green"

    proc.kill()
    proc.wait(timeout=10)
    assert healthcheck(command, port) != 0, "the health check passes with no server listening"



def test_every_metric_cloudwatch_gets_is_one_chat_server_exports(server, modules):
    """The collector scrapes the admin listener; each name its awsemf declaration selects (and the
    dashboard and alarms read) must be in what chat-server actually writes on /metrics."""
    _, _, _, admin_port = server
    status, body = get(f"http://127.0.0.1:{admin_port}/metrics")
    assert status == 200
    text = body.decode()
    families = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            families[name] = kind
    exported = modules["monitoring"]["locals"]["exported_metrics"]
    assert exported
    for name in exported:
        # prometheus_client names a counter family `x` and its sample `x_total`.
        family = name.removesuffix("_total")
        assert family in families, f"{name} is not on chat-server's /metrics:\n{text}"
        if name.endswith("_total"):
            assert families[family] == "counter", name
            assert re.search(rf"^{name} ", text, re.M), f"no sample {name}"
