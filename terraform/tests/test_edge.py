"""What a browser and an attacker meet at the edge, read from the Terraform: the headers CloudFront
sends for the page (/, /room/*), the web client's files and the API; the secret origin header
CloudFront adds and the ALB requires; direct ALB access as an opt-in; the optional WAF."""

from __future__ import annotations

import fnmatch

import pytest

from conftest import COLORS, MODULES, TERRAFORM, parse_dir
from hclexpr import evaluate, validation_passes

EMBEDDER = "https://conf.example.com"


@pytest.fixture(scope="module")
def cdn():
    return parse_dir(MODULES / "cdn")


@pytest.fixture(scope="module")
def alb():
    return parse_dir(MODULES / "alb")


@pytest.fixture(scope="module")
def root_doc():
    return parse_dir(TERRAFORM)


def behaviours(cdn) -> list[dict]:
    """Ordered cache behaviours as CloudFront evaluates them (first match wins), then the default."""
    dist = cdn["resource"]["aws_cloudfront_distribution"]["this"]
    assets_path = cdn["variable"]["assets_path"]["default"]
    ordered = []
    for b in dist["ordered_cache_behavior"]:
        b = dict(b)
        b["path_pattern"] = b["path_pattern"].replace("${var.assets_path}", assets_path)
        b["path_pattern"] = b["path_pattern"].replace("${var.uploads_prefix}", cdn["variable"]["uploads_prefix"]["default"])
        ordered.append(b)
    (dynamic,) = [d["ordered_cache_behavior"] for d in dist["dynamic"] if "ordered_cache_behavior" in d]
    assert dynamic["for_each"] == "${local.api_paths}"
    for path in cdn["locals"]["api_paths"]:
        b = {k: v for k, v in dynamic["content"][0].items()}
        b["path_pattern"] = path
        ordered.append(b)
    # Terraform keeps static blocks before dynamic ones of the same type; order across the
    # patterns does not matter here because no two patterns overlap (checked below).
    return ordered + [dict(dist["default_cache_behavior"][0], path_pattern="*")]


def behaviour_for(cdn, path: str) -> dict:
    for b in behaviours(cdn):
        if fnmatch.fnmatchcase(path, b["path_pattern"]):
            return b
    raise AssertionError(f"no behaviour for {path}")


def headers_policy(cdn, behaviour) -> dict:
    ref = behaviour["response_headers_policy_id"]
    assert ref.startswith("${aws_cloudfront_response_headers_policy.") and ref.endswith(".id}"), ref
    name = ref.split(".")[1]
    return cdn["resource"]["aws_cloudfront_response_headers_policy"][name]["security_headers_config"][0]


def headers_sent(cdn, path: str, frame_ancestors: list[str], origin_headers: dict[str, str]) -> dict[str, str]:
    """The security headers a viewer gets for `path`, given what chat-server answered."""
    config = headers_policy(cdn, behaviour_for(cdn, path))
    out = dict(origin_headers)

    def put(name, value, override):
        if override or name not in out:
            out[name] = value

    if "strict_transport_security" in config:
        hsts = config["strict_transport_security"][0]
        value = f"max-age={hsts['access_control_max_age_sec']}" + ("; includeSubDomains" if hsts["include_subdomains"] else "") + ("; preload" if hsts["preload"] else "")
        put("Strict-Transport-Security", value, hsts["override"])
    if "content_type_options" in config:
        put("X-Content-Type-Options", "nosniff", config["content_type_options"][0]["override"])
    if "frame_options" in config:
        fo = config["frame_options"][0]
        put("X-Frame-Options", fo["frame_option"], fo["override"])
    if "referrer_policy" in config:
        rp = config["referrer_policy"][0]
        put("Referrer-Policy", rp["referrer_policy"], rp["override"])
    if "content_security_policy" in config:
        csp = config["content_security_policy"][0]
        assert csp["content_security_policy"] == "${local.page_csp}"
        assert cdn["locals"]["page_csp"] == "frame-ancestors ${local.frame_ancestors}"
        assert cdn["locals"]["frame_ancestors"] == """${join(" ", concat(["'self'"], var.frame_ancestors))}"""
        value = "frame-ancestors " + " ".join(["'self'"] + frame_ancestors)
        put("Content-Security-Policy", value, csp["override"])
    return out


# alb locals.listeners: one listener per port, 443 only with a certificate.
LISTENERS = (
    '${{for name, listener in {http = {port = 80, protocol = "HTTP", action = local.http_action}, '
    'https = {port = 443, protocol = "HTTPS", action = local.production_action}} : '
    'name => listener if name == "http" || local.https}}'
)


def listener_actions(alb, https: bool, public_access: bool) -> dict[str, dict]:
    """The listeners `aws_lb_listener.this` creates and what each does by default, for a deployment
    with or without a certificate and public_access: {name: {port, protocol, action}}."""
    locals_ = alb["locals"]
    assert locals_["listeners"] == LISTENERS, "locals.listeners changed: update how this test reads it"
    verify = evaluate(locals_["verify_origin"], {"public_access": public_access})
    production = evaluate(locals_["production_action"].replace("local.", "var."), {"verify_origin": verify})
    http = evaluate(locals_["http_action"].replace("local.", "var."), {"https": https, "production_action": production})
    listeners = {"http": {"port": 80, "protocol": "HTTP", "action": http}}
    if https:
        listeners["https"] = {"port": 443, "protocol": "HTTPS", "action": production}
    return listeners


def default_action(alb, action: str) -> dict:
    """The block `aws_lb_listener.this`'s default action carries when its type is `action`."""
    (body,) = alb["resource"]["aws_lb_listener"]["this"]["default_action"]
    assert body["type"] == "${each.value.action}"
    found = [
        (name, spec["content"][0])
        for entry in body["dynamic"]
        for name, spec in entry.items()
        if spec["for_each"] == f'${{each.value.action == "{action}" ? [1] : []}}'
    ]
    assert len(found) == 1, f"{len(found)} blocks for default action {action}"
    name, content = found[0]
    assert name == action.replace("-", "_"), f"default action {action} carries a {name} block"
    return content


def target_groups(forward: dict) -> list[dict]:
    """A forward's target groups, one per colour (the dynamic block over local.colors, expanded)."""
    (dynamic,) = [d["target_group"] for d in forward["dynamic"] if "target_group" in d]
    assert dynamic["for_each"] == "${local.colors}"
    (content,) = dynamic["content"]
    return [
        {k: v.replace("[target_group.value]", f'["{c}"]') for k, v in content.items()}
        for c in COLORS
    ]


def test_no_two_path_patterns_overlap(cdn):
    patterns = [b["path_pattern"] for b in behaviours(cdn)[:-1]]
    for p in patterns:
        probe = p.replace("*", "x")
        assert [q for q in patterns if fnmatch.fnmatchcase(probe, q)] == [p], p


@pytest.mark.parametrize("path", ["/room/lobby", "/", "/room/keynote-q-and-a"])
def test_room_pages_are_embeddable_by_the_configured_origins(cdn, path):
    """The issue's blank frame: X-Frame-Options DENY with override on /room/*."""
    sent = headers_sent(cdn, path, [EMBEDDER], origin_headers={})
    assert "X-Frame-Options" not in sent, f"{path}: X-Frame-Options blanks every embedded room"
    assert sent["Content-Security-Policy"] == f"frame-ancestors 'self' {EMBEDDER}"
    assert sent["X-Content-Type-Options"] == "nosniff"
    assert sent["Strict-Transport-Security"].startswith("max-age=31536000")


def test_chat_server_and_cloudfront_get_the_same_list(root_doc):
    """chat-server sends the policy itself (CHAT_FRAME_ANCESTORS), from the variable CloudFront's
    page policy is built from: the header is the same whichever of them writes it."""
    ecs = parse_dir(MODULES / "ecs")
    assert root_doc["module"]["ecs"]["frame_ancestors"] == "${var.frame_ancestors}"
    assert root_doc["module"]["cdn"]["frame_ancestors"] == "${var.frame_ancestors}"
    framing = ecs["locals"]["framing_environment"]
    assert 'name = "CHAT_FRAME_ANCESTORS", value = join(",", var.frame_ancestors)' in framing
    assert "local.framing_environment" in ecs["locals"]["chat_environment"]


def test_cloudfront_keeps_the_frame_ancestors_chat_server_sends(cdn):
    """override = false: chat-server's own header (the same list) reaches the browser unchanged."""
    from_server = {"Content-Security-Policy": f"frame-ancestors 'self' {EMBEDDER}"}
    sent = headers_sent(cdn, "/room/lobby", [], origin_headers=from_server)
    assert sent["Content-Security-Policy"] == from_server["Content-Security-Policy"]


def test_default_frame_ancestors_is_the_chat_itself(cdn, root_doc):
    assert root_doc["variable"]["frame_ancestors"]["default"] == []
    assert root_doc["module"]["cdn"]["frame_ancestors"] == "${var.frame_ancestors}"
    sent = headers_sent(cdn, "/room/lobby", [], origin_headers={})
    assert sent["Content-Security-Policy"] == "frame-ancestors 'self'"


@pytest.mark.parametrize("value", [["https://x.example; script-src *"], ["https://x.example/path"], ["javascript:alert(1)"], ["'none'"]])
def test_frame_ancestors_refuses_header_injection(root_doc, value):
    assert not validation_passes(root_doc["variable"]["frame_ancestors"], "frame_ancestors", value)


@pytest.mark.parametrize("path", ["/assets/blue-0123abc/app.js", "/assets/green-0123abc/style.css", "/api/session", "/ws", "/version", "/uploads/q1w2e3.png"])
def test_static_files_and_api_deny_framing(cdn, path):
    sent = headers_sent(cdn, path, [EMBEDDER], origin_headers={})
    assert sent["X-Frame-Options"] == "DENY"
    assert sent["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" not in sent


def test_web_client_files_come_from_the_alb_and_are_cached(cdn):
    """No shared bucket for the client: each colour's image serves its own under
    /assets/<colour>-<build>/. The only other origin is the uploads bucket, for /uploads/* alone."""
    dist = cdn["resource"]["aws_cloudfront_distribution"]["this"]
    assert [o["origin_id"] for o in dist["origin"]] == ["${local.alb_origin_id}", "${local.uploads_origin_id}"]
    assert "aws_s3_bucket" not in cdn["resource"]
    uploads = [b["path_pattern"] for b in behaviours(cdn) if b["target_origin_id"] == "${local.uploads_origin_id}"]
    assert uploads == ["/uploads/*"], uploads
    assets = behaviour_for(cdn, "/assets/green-0123abc/app.js")
    assert assets["cache_policy_id"] == "${local.cache_optimized}"
    assert cdn["locals"]["cache_optimized"] == "658327ea-f89d-4fab-a63d-7e88639e58f6"
    for path in ("/room/lobby", "/", "/ws", "/api/session"):
        b = behaviour_for(cdn, path)
        assert b["target_origin_id"] == "${local.alb_origin_id}"
        assert b["cache_policy_id"] == "${local.cache_disabled}", f"{path} must never be cached"
        assert b["origin_request_policy_id"] == "${local.all_viewer_except_host}"
    assert cdn["locals"]["all_viewer_except_host"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"


def test_each_colour_serves_its_own_assets(alb):
    """/assets/<colour>-* goes to that colour's target group whatever the weights."""
    rules = alb["resource"]["aws_lb_listener_rule"]["assets"]
    assert rules["for_each"] == "${local.asset_rules}"
    assert rules["action"][0]["target_group_arn"] == "${aws_lb_target_group.this[each.key].arn}"
    assert rules["condition"][0]["path_pattern"][0]["values"] == ["${var.assets_path}/${each.key}-*"]
    assert alb["locals"]["asset_rules"] == "${{for i, c in sort(tolist(local.colors)) : c => 10 + i}}"
    assert alb["variable"]["assets_path"]["default"] == "/assets"


def test_cloudfront_sends_the_secret_the_alb_requires(cdn, alb, root_doc):
    origin = cdn["resource"]["aws_cloudfront_distribution"]["this"]["origin"][0]
    header = origin["custom_header"][0]
    assert header == {"name": "${var.origin_verify_header_name}", "value": "${var.origin_verify_value}"}
    assert cdn["variable"]["origin_verify_header_name"]["default"] == alb["variable"]["origin_verify_header_name"]["default"]
    assert cdn["variable"]["origin_verify_value"]["sensitive"] is True
    rule = alb["resource"]["aws_lb_listener_rule"]["production"]
    assert rule["count"] == "${local.verify_origin ? 1 : 0}"
    condition = rule["condition"][0]["http_header"][0]
    assert condition == {"http_header_name": "${var.origin_verify_header_name}", "values": "${var.origin_verify_values}"}
    forward = target_groups(rule["action"][0]["forward"][0])
    assert [g["arn"] for g in forward] == [f'${{aws_lb_target_group.this["{c}"].arn}}' for c in COLORS]
    assert "action" in rule["lifecycle"][0]["ignore_changes"], "opsctl owns the weights"
    # Without the header: 403 from the production listener itself (443 with a certificate, else 80).
    assert alb["locals"]["verify_origin"] == "${!var.public_access}"
    for https in (False, True):
        listeners = listener_actions(alb, https=https, public_access=False)
        assert listeners["https" if https else "http"]["action"] == "fixed-response", f"https={https}"
    assert default_action(alb, "fixed-response")["status_code"] == "403"
    # The same random values on both sides, kept in SSM.
    assert root_doc["module"]["alb"]["origin_verify_values"] == '${[for slot in ["a", "b"] : random_password.origin_verify[slot].result]}'
    assert root_doc["module"]["cdn"]["origin_verify_value"] == "${local.origin_secret_current}"
    parameter = root_doc["resource"]["aws_ssm_parameter"]["origin_verify"]
    assert parameter["type"] == "SecureString" and parameter["value"] == "${local.origin_secret_current}"


@pytest.mark.parametrize("rotation", range(1, 7))
def test_rotation_keeps_the_previous_secret_accepted(root_doc, rotation):
    """Rotation n renews one slot; the value CloudFront sent before stays accepted by the ALB."""
    slots = root_doc["resource"]["random_password"]["origin_verify"]["for_each"]

    def generations(n):
        return {k: evaluate(v, {"origin_secret_rotation": n}) for k, v in slots.items()}

    current = root_doc["locals"]["origin_secret_current"]
    assert current.startswith("${var.origin_secret_rotation % 2 == 1 ? random_password.origin_verify[\"a\"]")

    def sent(n):
        return ("a" if n % 2 == 1 else "b", generations(n)["a" if n % 2 == 1 else "b"])

    before, after = generations(rotation), generations(rotation + 1)
    renewed = [k for k in before if before[k] != after[k]]
    assert len(renewed) == 1, f"rotation {rotation}->{rotation + 1} renews {renewed}"
    slot, generation = sent(rotation)
    assert after[slot] == generation, "the value CloudFront sent until now is no longer accepted"
    assert sent(rotation + 1)[0] == renewed[0], "CloudFront must send the new value"


def test_direct_alb_access_is_an_opt_in(alb, root_doc):
    assert root_doc["variable"]["alb_public_access"]["default"] is False
    assert root_doc["module"]["alb"]["public_access"] == "${var.alb_public_access}"
    sg = alb["resource"]["aws_vpc_security_group_ingress_rule"]
    assert sg["cloudfront"]["count"] == "${var.public_access ? 0 : 1}"
    assert sg["public"]["for_each"] == "${local.public_ports}"
    assert sg["public"]["cidr_ipv4"] == "0.0.0.0/0"
    assert alb["locals"]["public_ports"] == "${var.public_access ? toset(local.https ? [80, 443] : [80]) : toset([])}"
    # Browsers on the ALB's own name must pass chat-server's origin check.
    assert "var.alb_public_access ? [module.alb.url] : []" in root_doc["locals"]["chat_origins"]
    assert root_doc["module"]["ecs"]["allowed_origins"] == "${local.chat_origins}"


def test_origin_is_encrypted_unless_plaintext_is_accepted(cdn, root_doc):
    dist = cdn["resource"]["aws_cloudfront_distribution"]["this"]
    conditions = [p["condition"] for p in dist["lifecycle"][0]["precondition"]]
    rule = '${var.alb_origin_protocol == "https" || var.allow_http_origin}'
    assert rule in conditions
    assert evaluate(rule, {"alb_origin_protocol": "http", "allow_http_origin": False}) is False
    assert evaluate(rule, {"alb_origin_protocol": "https", "allow_http_origin": False}) is True
    assert root_doc["variable"]["allow_http_origin"]["default"] is False
    config = dist["origin"][0]["custom_origin_config"][0]
    assert config["origin_protocol_policy"] == '${var.alb_origin_protocol == "https" ? "https-only" : "http-only"}'
    assert config["origin_ssl_protocols"] == ["TLSv1.2"]


def test_waf_rate_rule_is_optional(cdn, root_doc):
    acl = cdn["resource"]["aws_wafv2_web_acl"]["this"]
    assert acl["count"] == "${var.waf_rate_limit == null ? 0 : 1}"
    assert acl["scope"] == "CLOUDFRONT" and acl["provider"] == "${aws.us_east_1}"
    rate = acl["rule"][0]["statement"][0]["rate_based_statement"][0]
    assert rate == {"limit": "${var.waf_rate_limit}", "aggregate_key_type": "IP"}
    assert "block" in acl["rule"][0]["action"][0]
    dist = cdn["resource"]["aws_cloudfront_distribution"]["this"]
    assert dist["web_acl_id"] == "${var.waf_rate_limit == null ? null : aws_wafv2_web_acl.this[0].arn}"
    assert root_doc["variable"]["waf_rate_limit"]["default"] is None
    # python-hcl2 renders `aws.us_east_1 = aws.us_east_1` as an interpolation on both sides.
    providers = {k.strip("${}"): v.strip("${}") for k, v in root_doc["module"]["cdn"]["providers"].items()}
    assert providers == {"aws": "aws", "aws.us_east_1": "aws.us_east_1"}
    us_east = [p for p in root_doc_providers() if p.get("alias") == "us_east_1"]
    assert us_east and us_east[0]["region"] == "us-east-1", "CloudFront web ACLs live in us-east-1"
    assert not validation_passes(root_doc["variable"]["waf_rate_limit"], "waf_rate_limit", 5)
    assert validation_passes(root_doc["variable"]["waf_rate_limit"], "waf_rate_limit", 2000)


def root_doc_providers():
    from conftest import parse_file

    return [p["aws"] for p in parse_file(TERRAFORM / "main.tf").get("provider", []) if "aws" in p]


@pytest.mark.parametrize(
    "https, public_access, expected",
    [
        (False, False, {"http": "fixed-response"}),
        (False, True, {"http": "forward"}),
        (True, False, {"http": "redirect", "https": "fixed-response"}),
        (True, True, {"http": "redirect", "https": "forward"}),
    ],
)
def test_listeners_per_certificate_and_access(alb, https, public_access, expected):
    """What the two listener resources (http, https with count) did before they became one per port."""
    listeners = listener_actions(alb, https=https, public_access=public_access)
    assert {name: spec["action"] for name, spec in listeners.items()} == expected
    assert {name: (spec["port"], spec["protocol"]) for name, spec in listeners.items()} == {
        name: {"http": (80, "HTTP"), "https": (443, "HTTPS")}[name] for name in expected
    }
    assert default_action(alb, "redirect") == {"port": "443", "protocol": "HTTPS", "status_code": "HTTP_301"}
    forward = default_action(alb, "forward")
    assert [g["weight"] for g in target_groups(forward)] == [f'${{var.initial_weights["{c}"]}}' for c in COLORS]
    listener = alb["resource"]["aws_lb_listener"]["this"]
    assert listener["for_each"] == "${local.listeners}"
    assert listener["certificate_arn"] == '${each.value.protocol == "HTTPS" ? var.certificate_arn : null}'
    assert listener["ssl_policy"] == '${each.value.protocol == "HTTPS" ? var.ssl_policy : null}'


def test_folded_listeners_move_in_the_state_instead_of_being_replaced():
    """Renaming a resource address destroys and recreates it (a listener gone for a moment, and
    opsctl's weights reset); the `moved` blocks carry the old addresses to the new ones."""
    from conftest import parse_file

    moved = {m["from"]: m["to"] for m in parse_file(MODULES / "alb" / "main.tf").get("moved", [])}
    assert moved == {
        "${aws_lb_listener.http}": '${aws_lb_listener.this["http"]}',
        "${aws_lb_listener.https[0]}": '${aws_lb_listener.this["https"]}',
    }
    # The old `https` had count = 1 exactly when there is a certificate: then the key exists.
    assert set(listener_actions(parse_dir(MODULES / "alb"), https=True, public_access=False)) == {"http", "https"}
