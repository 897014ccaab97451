"""An image upload as a browser on the CloudFront page would make it, against a real chat-server
configured with exactly the CHAT_UPLOADS_* values the task definition gives it, and a real S3 API
(moto) whose bucket carries the CORS rule the Terraform declares. chat-server hands out the
presigned PUT and the headers the browser must repeat; the preflight for them, from the chat's
origin, must pass the bucket's CORS rule (judged with S3's matching rules, and by moto); the PUT
lands under the key CloudFront's /uploads/* behaviour maps the attachment's public URL to.

On AWS the presigned URL's host is <bucket>.s3.<region>.amazonaws.com (virtual-hosted; here,
with AWS_ENDPOINT_URL, path-style on moto): S3 answers CORS from the bucket's rule whatever the
host, so what must match is the page's origin, the method and the signed headers checked here."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

import pytest

from conftest import MODULES, TERRAFORM, chat_server_bin, clean_env, parse_dir
from test_edge import behaviour_for

DEADLINE_SECS = 30
REGION = "us-east-1"
# What the distribution's domain_name looks like; chat_origins and the public URL derive from it.
DISTRIBUTION = "d111111abcdef8.cloudfront.net"
# module.alb.test_listener_url with the default variables (no certificate: HTTP on port 9000).
TEST_LISTENER = "http://chat-1234567890.us-east-1.elb.amazonaws.com:9000"
BUCKET = "chat-uploads-20261129000000000000000001"  # bucket_prefix "${var.name}-uploads-" + suffix


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@contextlib.contextmanager
def serving(what: str, args: list[str], env: dict | None, ready_url: str):
    """Runs `args` until the block ends, once `ready_url` answers 200 (within DEADLINE_SECS)."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + DEADLINE_SECS
        while True:
            assert proc.poll() is None, f"{what} exited: {proc.stderr.read().decode(errors='replace')}"
            try:
                if call(ready_url)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"{what} did not answer within {DEADLINE_SECS}s"
            time.sleep(0.1)
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def png(width: int, height: int) -> bytes:
    """A PNG's signature and IHDR (chat-server reads type and size from the bytes)."""
    ihdr = struct.pack(">II", width, height) + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0" * 4 + b"\0\0\0\0IEND\xaeB`\x82"


# --- what Terraform resolves to for a deployment with default variables -------------------------


def chat_origins(root_doc: dict, domain: str) -> list[str]:
    """local.chat_origins with the default variables (no allowed_origins, aliases or public ALB):
    the distribution's name and the test listener (the green preview's page)."""
    expr = root_doc["locals"]["chat_origins"]
    assert expr == (
        '${distinct(concat(var.allowed_origins, ["https://${module.cdn.domain_name}"], '
        '[for alias in var.cdn_aliases : "https://${alias}"], var.alb_public_access ? [module.alb.url] : [], '
        '[module.alb.test_listener_url]))}'
    ), "chat_origins changed: update this test's reading of it"
    defaults = root_doc["variable"]
    assert defaults["allowed_origins"]["default"] == [] and defaults["cdn_aliases"]["default"] == []
    assert defaults["alb_public_access"]["default"] is False
    return [f"https://{domain}", TEST_LISTENER]


def cors_rules(uploads: dict, origins: list[str]) -> list[dict]:
    """The bucket's CORS configuration as S3 holds it (PutBucketCors shape)."""
    (rule,) = uploads["resource"]["aws_s3_bucket_cors_configuration"]["this"]["cors_rule"]
    assert rule["allowed_origins"] == "${var.allowed_origins}" and rule["allowed_headers"] == "${var.upload_headers}"
    return [{
        "AllowedMethods": rule["allowed_methods"],
        "AllowedOrigins": origins,
        "AllowedHeaders": uploads["variable"]["upload_headers"]["default"],
        "ExposeHeaders": rule["expose_headers"],
        "MaxAgeSeconds": rule["max_age_seconds"],
    }]


def uploads_environment(root_doc: dict, uploads: dict, ecs: dict, domain: str) -> dict[str, str]:
    """CHAT_UPLOADS_* as the task definition sets them (ecs locals.uploads_environment)."""
    env_expr = ecs["locals"]["uploads_environment"]
    names = dict(re.findall(r'name = "(CHAT_UPLOADS_[A-Z_]+)", value = var\.([a-z_]+)', env_expr))
    assert set(names) == {"CHAT_UPLOADS_BUCKET", "CHAT_UPLOADS_PREFIX", "CHAT_UPLOADS_PUBLIC_URL"}
    prefix = uploads["variable"]["prefix"]["default"]
    assert root_doc["locals"]["uploads_public_url"] == "https://${local.public_host}/${module.uploads.prefix}"
    values = {
        "uploads_bucket": BUCKET,
        "uploads_prefix": prefix,
        "uploads_public_url": f"https://{domain}/{prefix}",  # public_host: no alias -> the distribution
    }
    return {name: values[var] for name, var in names.items()}


# --- S3's CORS rule matching ------------------------------------------------------------------


def _wildcard(pattern: str, value: str) -> bool:
    """S3 allows one `*` in an allowed origin or header; headers compare case-insensitively."""
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), value) is not None


def s3_cors_allows(rules: list[dict], origin: str, method: str, request_headers: list[str]) -> bool:
    """S3's preflight decision: the first rule whose origins, methods and headers all admit the
    request (docs: "How Amazon S3 evaluates the CORS configuration on a bucket")."""
    for rule in rules:
        if not any(_wildcard(o, origin) for o in rule["AllowedOrigins"]):
            continue
        if method not in rule["AllowedMethods"]:
            continue
        allowed = [h.lower() for h in rule.get("AllowedHeaders", [])]
        if all(any(_wildcard(a, h.lower()) for a in allowed) for h in request_headers):
            return True
    return False


def test_s3_cors_matching_refuses_what_s3_refuses():
    rules = [{"AllowedMethods": ["PUT"], "AllowedOrigins": ["https://chat.example"], "AllowedHeaders": ["content-type"]}]
    assert s3_cors_allows(rules, "https://chat.example", "PUT", ["Content-Type"])
    assert not s3_cors_allows(rules, "https://chat.example", "PUT", ["content-type", "cache-control"])
    assert not s3_cors_allows(rules, "https://other.example", "PUT", ["content-type"])
    assert not s3_cors_allows(rules, "https://chat.example", "DELETE", [])
    assert s3_cors_allows([dict(rules[0], AllowedOrigins=["https://*.example"])], "https://a.example", "PUT", [])


# --- the real servers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto():
    server = os.environ.get("MOTO_SERVER")
    if not server:
        pytest.fail("MOTO_SERVER is unset: run through scripts/test-terraform.layer.sh (it sources scripts/test-env.sh)")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with serving("moto_server", [server, "-H", "127.0.0.1", "-p", str(port)], None, f"{endpoint}/moto-api/"):
        yield endpoint


@pytest.fixture(scope="module")
def s3(moto):
    import boto3

    return boto3.client(
        "s3", endpoint_url=moto, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@contextlib.contextmanager
def chat_server(env_extra: dict[str, str]):
    """A chat-server on loopback with the embedded store and `env_extra`; yields its base URL."""
    with tempfile.TemporaryDirectory() as data_dir:
        port = free_port()
        env = clean_env() | env_extra | {
            "CHAT_LISTEN": f"127.0.0.1:{port}",
            "CHAT_ADMIN_LISTEN": f"127.0.0.1:{free_port()}",
            "CHAT_DATA_DIR": data_dir,
            "CHAT_TOKEN_SECRET": "terraform-tests-secret-0123456789",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        base = f"http://127.0.0.1:{port}"
        with serving("chat-server", [str(chat_server_bin())], env, f"{base}/healthz"):
            yield base


@pytest.fixture(scope="module")
def deployment(moto, s3):
    """The bucket as Terraform makes it (CORS rule) and chat-server as the task definition runs it."""
    root_doc, uploads, ecs = parse_dir(TERRAFORM), parse_dir(MODULES / "uploads"), parse_dir(MODULES / "ecs")
    origins = chat_origins(root_doc, DISTRIBUTION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": cors_rules(uploads, origins)})
    env_uploads = uploads_environment(root_doc, uploads, ecs, DISTRIBUTION)
    aws = {"AWS_ENDPOINT_URL": moto, "AWS_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with chat_server(env_uploads | aws) as base:
        yield {"base": base, "origins": origins, "rules": cors_rules(uploads, origins), "env": env_uploads}


def api(base: str, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    headers = {"content-type": "application/json"} | ({"authorization": f"Bearer {token}"} if token else {})
    status, _, raw = call(f"{base}{path}", "POST", json.dumps(body).encode(), headers)
    return status, json.loads(raw or b"null")


def test_a_browser_on_the_cloudfront_page_uploads_and_the_image_is_served_from_the_bucket(deployment, s3):
    base, origin = deployment["base"], f"https://{DISTRIBUTION}"
    assert origin in deployment["origins"]
    status, session = api(base, "/api/session", {"nickname": "Terraform"})
    assert status == 200, session
    token = session["token"]
    image = png(320, 240)
    status, slot = api(base, "/api/uploads", {"content_type": "image/png", "bytes": len(image)}, token)
    assert status == 200, slot
    target = slot["upload"]
    assert target["method"] == "PUT" and "X-Amz-Signature=" in target["url"], target
    signed = list(target["headers"])
    assert signed, "chat-server names the headers the PUT must repeat"

    # The preflight the browser sends before a PUT with those headers (not CORS-safelisted).
    assert s3_cors_allows(deployment["rules"], origin, "PUT", signed), (
        f"the bucket's CORS rule refuses PUT with {signed} from {origin}: {deployment['rules']}"
    )
    preflight = {"Origin": origin, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": ",".join(signed)}
    status, headers, body = call(target["url"], "OPTIONS", headers=preflight)
    assert status == 200 and headers.get("Access-Control-Allow-Origin") == origin, (status, headers, body)

    status, headers, body = call(target["url"], "PUT", image, dict(target["headers"]) | {"Origin": origin})
    assert status == 200, body
    assert headers.get("Access-Control-Allow-Origin") == origin, "the page could not read the PUT's answer"

    status, done = api(base, f"/api/uploads/{slot['id']}/complete", {}, token)
    assert status == 200, done
    url = urlparse(done["attachment"]["url"])
    assert (url.scheme, url.netloc) == ("https", DISTRIBUTION), done["attachment"]["url"]
    assert done["attachment"]["url"].startswith(deployment["env"]["CHAT_UPLOADS_PUBLIC_URL"])

    # CloudFront routes the URL's path to the bucket, and the path (without its /) is the key.
    cdn = parse_dir(MODULES / "cdn")
    assert behaviour_for(cdn, url.path)["target_origin_id"] == "${local.uploads_origin_id}"
    head = s3.head_object(Bucket=BUCKET, Key=url.path.removeprefix("/"))
    assert head["ContentType"] == "image/png" and head["ContentLength"] == len(image)
    assert "immutable" in head.get("CacheControl", ""), "CloudFront's cache policy relies on immutable objects"


@pytest.mark.parametrize("origin", ["https://evil.example", "http://d111111abcdef8.cloudfront.net"])
def test_a_page_elsewhere_cannot_use_a_presigned_url(deployment, origin):
    base = deployment["base"]
    _, session = api(base, "/api/session", {"nickname": "Elsewhere"})
    _, slot = api(base, "/api/uploads", {"content_type": "image/png", "bytes": 100}, session["token"])
    signed = list(slot["upload"]["headers"])
    assert not s3_cors_allows(deployment["rules"], origin, "PUT", signed)
    preflight = {"Origin": origin, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": ",".join(signed)}
    status, headers, _ = call(slot["upload"]["url"], "OPTIONS", headers=preflight)
    assert status == 403, (status, headers)  # S3 (and moto) refuse the preflight


def test_the_green_preview_may_use_a_presigned_url(deployment):
    """The preview page, loaded through the test listener, uploads from that origin: the
    bucket's CORS must admit it as it admits the chat's own page."""
    base = deployment["base"]
    _, session = api(base, "/api/session", {"nickname": "Preview"})
    _, slot = api(base, "/api/uploads", {"content_type": "image/png", "bytes": 100}, session["token"])
    signed = list(slot["upload"]["headers"])
    assert s3_cors_allows(deployment["rules"], TEST_LISTENER, "PUT", signed)
    preflight = {"Origin": TEST_LISTENER, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": ",".join(signed)}
    status, headers, _ = call(slot["upload"]["url"], "OPTIONS", headers=preflight)
    assert status == 200, (status, headers)


def test_chat_server_refuses_a_bucket_without_public_url():
    """What the plan-time precondition (test_uploads.py) protects against: chat-server exits."""
    env = clean_env() | {"CHAT_UPLOADS_BUCKET": BUCKET, "CHAT_LISTEN": f"127.0.0.1:{free_port()}"}
    with tempfile.TemporaryDirectory() as data_dir:
        env["CHAT_DATA_DIR"] = data_dir
        proc = subprocess.run([str(chat_server_bin())], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert "CHAT_UPLOADS_PUBLIC_URL" in proc.stderr, proc.stderr



def test_on_aws_the_presigned_url_is_the_buckets_regional_virtual_host():
    """Without AWS_ENDPOINT_URL (as on ECS) the browser PUTs to https://<bucket>.s3.<region>.amazonaws.com:
    the region is the task definition's AWS_REGION (the deployment's, where the bucket is, so no
    redirect, which a preflight cannot follow), and the bucket name has no dot (S3's wildcard
    certificate covers one label). Presigning is local: no AWS call is made."""
    ecs = parse_dir(MODULES / "ecs")
    env = {e["name"]: e["value"] for e in ecs["locals"]["base_environment"]}
    assert env["AWS_REGION"] == "${data.aws_region.current.id}", "chat-server presigns for the deployment's region"
    region = "eu-west-1"
    uploads = uploads_environment(parse_dir(TERRAFORM), parse_dir(MODULES / "uploads"), ecs, DISTRIBUTION)
    aws = {"AWS_REGION": region, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-a-secret"}
    with chat_server(uploads | aws) as base:
        _, session = api(base, "/api/session", {"nickname": "Regional"})
        status, slot = api(base, "/api/uploads", {"content_type": "image/webp", "bytes": 2048}, session["token"])
    assert status == 200, slot
    url = urlparse(slot["upload"]["url"])
    assert (url.scheme, url.netloc) == ("https", f"{BUCKET}.s3.{region}.amazonaws.com"), slot["upload"]["url"]
    assert url.path.startswith(f"/{uploads['CHAT_UPLOADS_PREFIX']}")
