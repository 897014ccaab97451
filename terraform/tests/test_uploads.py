"""Shared images on AWS (issue 15), read from the Terraform: a private bucket of their own that
the browser PUTs into through chat-server's presigned URL (CORS from the chat's origins), served by
CloudFront under /uploads/* through origin access control, expired after `uploads_expiry_days`,
removed by `terraform destroy`; the task role reaches only that prefix; the task definition gives
chat-server the CHAT_UPLOADS_* values it requires. What chat-server itself says (its flags, its
presigned URL and the headers the browser must send) is checked in test_uploads_live.py."""

from __future__ import annotations

import pytest

from conftest import MODULES, TERRAFORM, help_default, parse_dir
from hclexpr import evaluate, validation_passes
from test_edge import behaviour_for

OBJECT_PATH = "/uploads/q1w2e3r4.png"


@pytest.fixture(scope="module")
def up(modules):
    return modules["uploads"]


@pytest.fixture(scope="module")
def cdn(modules):
    return modules["cdn"]


@pytest.fixture(scope="module")
def root_doc(root):
    return root


def resource(doc, rtype, name="this"):
    return doc["resource"][rtype][name]


def test_bucket_is_private_encrypted_owner_enforced_and_destroyable(up, root_doc):
    bucket = resource(up, "aws_s3_bucket")
    assert bucket["force_destroy"] is True, "terraform destroy must remove the bucket with its images"
    assert bucket["bucket_prefix"] == "${var.name}-uploads-"
    block = resource(up, "aws_s3_bucket_public_access_block")
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
    assert resource(up, "aws_s3_bucket_ownership_controls")["rule"][0]["object_ownership"] == "BucketOwnerEnforced"
    sse = resource(up, "aws_s3_bucket_server_side_encryption_configuration")["rule"][0]
    assert sse["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "AES256"
    logging = resource(up, "aws_s3_bucket_logging")
    assert logging["target_bucket"] == "${var.access_log_bucket}" and logging["target_prefix"].startswith("s3/")
    assert root_doc["module"]["uploads"]["access_log_bucket"] == "${module.alb.log_bucket_id}"


@pytest.mark.parametrize("name, ok", [("chat", True), ("chat.events", False), ("Chat", False)])
def test_bucket_name_has_no_dot_for_virtual_hosted_presigned_urls(root_doc, name, ok):
    """The presigned URL's host is <bucket>.s3.<region>.amazonaws.com: a dot in the bucket name
    breaks S3's wildcard certificate, and the browser's PUT with it. The bucket name comes from
    var.name, whose validation admits no dot."""
    assert root_doc["module"]["uploads"]["name"] == "${var.name}"
    assert validation_passes(root_doc["variable"]["name"], "name", name) is ok


def test_uploads_expire_after_the_variable_and_nothing_half_uploaded_stays(up, root_doc):
    (rule,) = resource(up, "aws_s3_bucket_lifecycle_configuration")["rule"]
    assert rule["status"] == "Enabled"
    assert rule["filter"] == [{"prefix": ""}], "the whole bucket: it holds only uploads"
    assert rule["expiration"] == [{"days": "${var.expiry_days}"}]
    assert rule["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 1}]
    assert root_doc["module"]["uploads"]["expiry_days"] == "${var.uploads_expiry_days}"
    assert root_doc["variable"]["uploads_expiry_days"]["default"] == 30


@pytest.mark.parametrize("days, ok", [(1, True), (30, True), (3650, True), (0, False), (-1, False), (1.5, False), (3651, False)])
def test_expiry_days_validation(root_doc, days, ok):
    assert validation_passes(root_doc["variable"]["uploads_expiry_days"], "uploads_expiry_days", days) is ok


def test_cors_admits_a_browser_put_from_exactly_the_chat_origins(up, root_doc):
    (rule,) = resource(up, "aws_s3_bucket_cors_configuration")["cors_rule"]
    assert rule["allowed_methods"] == ["PUT"], "the browser only PUTs; images are read from CloudFront"
    assert rule["allowed_origins"] == "${var.allowed_origins}"
    assert rule["allowed_headers"] == "${var.upload_headers}"
    assert sorted(up["variable"]["upload_headers"]["default"]) == ["cache-control", "content-type", "if-none-match"]
    # The origins chat-server admits: CloudFront's name, the aliases, the ALB with public access.
    assert root_doc["module"]["uploads"]["allowed_origins"] == "${local.chat_origins}"
    assert root_doc["module"]["ecs"]["allowed_origins"] == "${local.chat_origins}"
    assert '"https://${module.cdn.domain_name}"' in root_doc["locals"]["chat_origins"]
    assert not validation_passes(up["variable"]["allowed_origins"], "allowed_origins", [])


def test_cloudfront_serves_the_prefix_from_the_bucket_through_origin_access_control(cdn, root_doc):
    dist = resource(cdn, "aws_cloudfront_distribution")
    behaviour = behaviour_for(cdn, OBJECT_PATH)
    assert behaviour["target_origin_id"] == "${local.uploads_origin_id}"
    (origin,) = [o for o in dist["origin"] if o["origin_id"] == behaviour["target_origin_id"]]
    assert origin["domain_name"] == "${var.uploads_bucket_domain_name}"
    assert origin["origin_access_control_id"] == "${aws_cloudfront_origin_access_control.uploads.id}"
    assert "custom_header" not in origin, "the origin secret is for the ALB only"
    oac = resource(cdn, "aws_cloudfront_origin_access_control", "uploads")
    assert (oac["origin_access_control_origin_type"], oac["signing_behavior"], oac["signing_protocol"]) == ("s3", "always", "sigv4")
    assert behaviour["allowed_methods"] == ["GET", "HEAD"]
    assert behaviour["viewer_protocol_policy"] == "redirect-to-https"
    assert behaviour["response_headers_policy_id"] == "${aws_cloudfront_response_headers_policy.static.id}", "nosniff on user content"
    assert root_doc["module"]["cdn"]["uploads_bucket_domain_name"] == "${module.uploads.bucket_regional_domain_name}"
    # One prefix names both the keys chat-server writes and the path CloudFront routes.
    assert root_doc["module"]["cdn"]["uploads_prefix"] == "${module.uploads.prefix}"
    assert root_doc["module"]["ecs"]["uploads_prefix"] == "${module.uploads.prefix}"


def test_cache_policy_suits_immutable_objects(cdn, root_doc):
    behaviour = behaviour_for(cdn, OBJECT_PATH)
    assert behaviour["cache_policy_id"] == "${aws_cloudfront_cache_policy.uploads.id}"
    assert behaviour["compress"] is False, "JPEG, PNG, GIF and WebP are compressed already"
    policy = resource(cdn, "aws_cloudfront_cache_policy", "uploads")
    assert policy["default_ttl"] == policy["max_ttl"] == "${var.uploads_ttl_seconds}"
    key = policy["parameters_in_cache_key_and_forwarded_to_origin"][0]
    assert key["cookies_config"][0]["cookie_behavior"] == "none"
    assert key["headers_config"][0]["header_behavior"] == "none"
    assert key["query_strings_config"][0]["query_string_behavior"] == "none", "the path alone names the image"
    # Edges keep an image no longer than the bucket does (CloudFront's ceiling: one year).
    ttl = root_doc["module"]["cdn"]["uploads_ttl_seconds"]
    assert evaluate(ttl, {"uploads_expiry_days": 30}) == 30 * 86400
    assert evaluate(ttl, {"uploads_expiry_days": 3650}) == 31536000
    assert validation_passes(cdn["variable"]["uploads_ttl_seconds"], "uploads_ttl_seconds", 30 * 86400)


def test_bucket_policy_lets_only_this_distribution_read_the_prefix(up, root_doc):
    assert resource(up, "aws_s3_bucket_policy")["policy"] == "${data.aws_iam_policy_document.this.json}"
    statements = {s["sid"]: s for s in up["data"]["aws_iam_policy_document"]["this"]["statement"]}
    read = statements["CloudFrontReadsUploads"]
    assert read.get("effect", "Allow") == "Allow" and read["actions"] == ["s3:GetObject"]
    assert read["resources"] == ["${aws_s3_bucket.this.arn}/${var.prefix}*"]
    assert read["principals"] == [{"type": "Service", "identifiers": ["cloudfront.amazonaws.com"]}]
    assert read["condition"] == [{"test": "StringEquals", "variable": "AWS:SourceArn", "values": ["${var.cloudfront_distribution_arn}"]}]
    assert root_doc["module"]["uploads"]["cloudfront_distribution_arn"] == "${module.cdn.arn}"
    deny = statements["DenyInsecureTransport"]
    assert deny["effect"] == "Deny" and deny["condition"][0]["variable"] == "aws:SecureTransport"
    assert set(statements) == {"CloudFrontReadsUploads", "DenyInsecureTransport"}, "nobody else is granted anything"


def test_task_role_reaches_only_the_uploads_prefix():
    iam = parse_dir(MODULES / "iam")
    statements = iam["data"]["aws_iam_policy_document"]["task"]["statement"]
    s3 = [s for s in statements if any(a.startswith("s3:") for a in s["actions"])]
    by_sid = {s["sid"]: s for s in s3}
    assert set(by_sid) == {"UploadedImages", "UploadsNotFound"}
    # Presign the browser's PUT, read the object back to check it, delete what fails the check.
    assert sorted(by_sid["UploadedImages"]["actions"]) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert by_sid["UploadedImages"]["resources"] == ["${var.uploads_objects_arn}"]
    # A missing object answers 404 (not 403) only with ListBucket: chat-server's "PUT the bytes first".
    assert by_sid["UploadsNotFound"]["actions"] == ["s3:ListBucket"]
    assert by_sid["UploadsNotFound"]["resources"] == ["${var.uploads_bucket_arn}"]
    up = parse_dir(MODULES / "uploads")
    assert up["output"]["objects_arn"]["value"] == "${aws_s3_bucket.this.arn}/${var.prefix}*"
    assert up["output"]["bucket_arn"]["value"] == "${aws_s3_bucket.this.arn}"
    root = parse_dir(TERRAFORM)
    assert root["module"]["iam"]["uploads_objects_arn"] == "${module.uploads.objects_arn}"
    assert root["module"]["iam"]["uploads_bucket_arn"] == "${module.uploads.bucket_arn}"


def test_both_colours_get_the_uploads_environment(root_doc):
    ecs = parse_dir(MODULES / "ecs")
    env = ecs["locals"]["uploads_environment"]
    for name, var in (("CHAT_UPLOADS_BUCKET", "uploads_bucket"), ("CHAT_UPLOADS_PREFIX", "uploads_prefix"), ("CHAT_UPLOADS_PUBLIC_URL", "uploads_public_url")):
        assert f'name = "{name}", value = var.{var}' in env, name
    assert env.startswith("${var.uploads_bucket != null ?")
    assert "local.uploads_environment" in ecs["locals"]["chat_environment"]
    task = resource(ecs, "aws_ecs_task_definition")
    assert task["for_each"] == "${local.colors}"
    assert "environment = concat(local.chat_environment," in task["container_definitions"], "one list for both colours"
    assert root_doc["module"]["ecs"]["uploads_bucket"] == "${module.uploads.bucket_name}"
    assert root_doc["module"]["ecs"]["uploads_public_url"] == "${local.uploads_public_url}"


def test_public_url_is_cloudfronts_name_or_the_first_exact_alias(root_doc):
    locals_ = root_doc["locals"]
    assert locals_["uploads_public_url"] == "https://${local.public_host}/${module.uploads.prefix}"
    assert locals_["public_host"] == "${length(local.public_aliases) > 0 ? local.public_aliases[0] : module.cdn.domain_name}"
    aliases = locals_["public_aliases"]
    assert aliases == '${[for alias in var.cdn_aliases : alias if !startswith(alias, "*.")]}'
    assert root_doc["output"]["uploads_public_url"]["value"] == "${local.uploads_public_url}"
    assert root_doc["output"]["uploads_bucket"]["value"] == "${module.uploads.bucket_name}"


@pytest.mark.parametrize(
    "bucket, url, ok",
    [
        (None, None, True),
        ("chat-uploads-x", "https://d111111abcdef8.cloudfront.net/uploads/", True),
        ("chat-uploads-x", None, False),
        ("chat-uploads-x", "d111111abcdef8.cloudfront.net/uploads/", False),
    ],
)
def test_a_bucket_without_public_url_is_refused_at_plan(bucket, url, ok):
    """chat-server exits at start with CHAT_UPLOADS_BUCKET and no http(s) CHAT_UPLOADS_PUBLIC_URL:
    the plan refuses that pair first."""
    task = resource(parse_dir(MODULES / "ecs"), "aws_ecs_task_definition")
    (rule,) = [p["condition"] for p in task["lifecycle"][0]["precondition"] if "uploads_bucket" in p["condition"]]
    assert evaluate(rule, {"uploads_bucket": bucket, "uploads_public_url": url}) is ok


def test_prefix_is_one_chat_server_accepts(up, server_help):
    prefix = up["variable"]["prefix"]["default"]
    assert prefix == help_default(server_help, "CHAT_UPLOADS_PREFIX"), "Terraform's prefix differs from chat-server's default"
    for value, ok in (("uploads/", True), ("event/uploads/", True), ("", False), ("uploads", False), ("up loads/", False)):
        assert validation_passes(up["variable"]["prefix"], "prefix", value) is ok, value


def test_tasks_reach_s3_through_a_gateway_endpoint(modules):
    """chat-server reads each upload back (up to 5 MiB): through the free gateway endpoint, not the
    NAT gateway's per-GB processing. The DynamoDB endpoint moved into the same resource."""
    from conftest import parse_file

    endpoint = resource(modules["vpc"], "aws_vpc_endpoint", "gateway")
    assert endpoint["for_each"] == '${toset(["dynamodb", "s3"])}'
    assert endpoint["vpc_endpoint_type"] == "Gateway"
    assert endpoint["service_name"].endswith(".${each.key}")
    assert endpoint["route_table_ids"] == ["${aws_route_table.public.id}", "${aws_route_table.private.id}"], "both tiers"
    moved = parse_file(MODULES / "vpc" / "main.tf").get("moved", [])
    assert moved == [{"from": "${aws_vpc_endpoint.dynamodb}", "to": '${aws_vpc_endpoint.gateway["dynamodb"]}'}]
