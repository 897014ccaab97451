"""The Dockerfile builds the binary the code defines, runs it as non-root on the port the task
definition uses, and health-checks it with its own `healthcheck` subcommand. No Docker engine
runs here, so these check what the image relies on."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from urllib.parse import urlparse

import pytest

from conftest import ROOT, help_default, resolve, task_containers

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def global_args() -> dict[str, str]:
    """ARGs declared before the first FROM, with their defaults."""
    out = {}
    for word, args in instructions():
        if word == "FROM":
            break
        if word == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            out[name] = value
    return out


def base_image(stage) -> str:
    """The image a stage starts from, ARGs expanded, without `AS name`."""
    ref = stage[0][1].split(" AS ")[0].strip()
    for name, value in global_args().items():
        ref = ref.replace("${" + name + "}", value)
    return ref


PINNED = re.compile(r"^[a-z0-9./-]+(:[A-Za-z0-9._-]+)?@sha256:[0-9a-f]{64}$")


def only(stage, word) -> str:
    found = [args for w, args in stage if w == word]
    assert len(found) == 1, f"expected one {word} in the final stage, found {found}"
    return found[0]


def package_name() -> str:
    return tomllib.loads((ROOT / "server" / "Cargo.toml").read_text())["package"]["name"]


def binary_path() -> str:
    """Where the final stage puts the binary: `COPY --from=… SRC DEST`."""
    copies = [shlex.split(args) for w, args in final_stage() if w == "COPY"]
    assert len(copies) == 1, f"the runtime stage must copy exactly one thing (the binary): {copies}"
    return copies[0][-1]


def test_builds_only_the_server_package_in_release():
    name = package_name()
    assert name == "chat-server"
    runs = " ".join(args for w, args in instructions() if w == "RUN")
    assert re.search(rf"cargo chef cook --release --locked -p {name}\b", runs), "dependencies are not cached"
    assert re.search(rf"cargo build --release --locked -p {name}\b", runs)
    assert f"target/release/{name}" in runs


def test_runtime_binary_is_stripped_and_debug_info_kept_apart():
    """About 21 MB instead of 100 MB to pull on every task start; debug info in its own stage."""
    runs = " ".join(args for w, args in instructions() if w == "RUN")
    name = package_name()
    assert f"objcopy --only-keep-debug target/release/{name} /{name}.debug" in runs
    assert re.search(rf"objcopy --strip-all (--add-gnu-debuglink=/{name}\.debug )?target/release/{name} /{name}", runs)
    (copy,) = [shlex.split(args) for w, args in final_stage() if w == "COPY"]
    assert copy == ["--from=builder", f"/{name}", f"/{name}"], "the runtime must take the stripped copy"
    (debug,) = [s for s in stages() if "AS debuginfo" in s[0][1]]
    assert debug[0][1].startswith("scratch")
    assert [shlex.split(a) for w, a in debug if w == "COPY"] == [["--from=builder", f"/{name}.debug", f"/{name}.debug"]]


def test_base_images_are_pinned_by_digest():
    all_stages = stages()
    external = []
    for index, stage in enumerate(all_stages):
        ref = base_image(stage)
        names = {s[0][1].split(" AS ")[-1].strip() for s in all_stages[:index] if " AS " in s[0][1]}
        if ref in names or ref == "scratch":
            continue  # an earlier stage of this file, or the empty image
        external.append(ref)
        assert PINNED.match(ref), f"FROM {ref} is not pinned by digest"
    assert len(external) == 2, f"expected the Rust builder and the distroless runtime, got {external}"


def test_digest_refresh_is_documented():
    text = DOCKERFILE.read_text()
    assert "docker buildx imagetools inspect" in text
    for name in ("RUST_IMAGE", "RUNTIME_IMAGE"):
        assert name in global_args()


def test_builder_rust_is_new_enough():
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())
    needed = tuple(int(x) for x in workspace["workspace"]["package"]["rust-version"].split("."))
    arg = re.search(r"^ARG RUST_IMAGE=rust:(\d+)\.(\d+)", DOCKERFILE.read_text(), re.M)
    assert arg, "the builder's Rust image is not an ARG"
    assert (int(arg.group(1)), int(arg.group(2))) >= needed[:2]


def test_runtime_is_minimal_and_holds_only_the_binary():
    image = base_image(final_stage())
    assert image.startswith(("gcr.io/distroless/cc", "debian:")) and ("distroless" in image or "slim" in image), image
    assert binary_path() == f"/{package_name()}"
    assert not [w for w, _ in final_stage() if w in ("RUN", "ADD")], "the runtime stage runs nothing"


def test_runs_as_numeric_non_root_user():
    user = only(final_stage(), "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {user} must be a numeric, non-zero uid"
    assert not gid or (gid.isdigit() and int(gid) != 0)


def test_port_matches_server_and_task_definition(root, modules, server_help):
    expose = only(final_stage(), "EXPOSE")
    env = only(final_stage(), "ENV")
    key, _, value = env.partition("=")
    assert key == "CHAT_LISTEN", "the image must listen beyond loopback"
    host, _, port = value.rpartition(":")
    assert host == "0.0.0.0"
    assert expose == port
    assert int(port) == int(help_default(server_help, "CHAT_LISTEN").rsplit(":", 1)[1])
    assert int(port) == resolve("${var.container_port}", "ecs", root, modules["ecs"])


def test_entrypoint_and_healthcheck_use_the_binary(server_help, healthcheck_default_url):
    binary = binary_path()
    assert json.loads(only(final_stage(), "ENTRYPOINT")) == [binary]
    health = only(final_stage(), "HEALTHCHECK")
    _, _, cmd = health.partition("CMD ")
    assert json.loads(cmd) == [binary, "healthcheck"]
    assert re.search(r"^\s+healthcheck\b", server_help, re.M)
    # Without --url the check probes the default URL: it must be the port the image listens on.
    assert urlparse(healthcheck_default_url).port == int(only(final_stage(), "EXPOSE"))


def test_task_definition_health_check_uses_the_same_binary(modules):
    command = task_containers()[0]["healthCheck"]["command"]
    assert command[1] == binary_path()


def dockerignore_patterns() -> list[str]:
    return [l.strip() for l in DOCKERIGNORE.read_text().splitlines() if l.strip() and not l.startswith("#")]


def ignored(path: str) -> bool:
    state = False
    for pattern in dockerignore_patterns():
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.removeprefix("**/")) for p in prefixes):
            state = not negate
    return state


@pytest.mark.parametrize(
    "path",
    ["Cargo.toml", "Cargo.lock", "server/Cargo.toml", "server/src/main.rs", "opsctl/Cargo.toml", "frontend/index.html"],
)
def test_build_context_keeps_what_the_build_needs(path):
    assert not ignored(path), f".dockerignore drops {path}, which the build needs"


@pytest.mark.parametrize("path", ["target/debug/chat-server", ".git/HEAD", "terraform/main.tf", "frontend/tests/node_modules/x.js"])
def test_build_context_drops_the_rest(path):
    assert ignored(path), f".dockerignore keeps {path} in the build context"
