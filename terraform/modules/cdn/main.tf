# CloudFront in front of everything. The ALB is the origin of all but the shared images:
# chat-server serves the web client itself (each colour the client it was built with), so there
# is no shared bucket that blue and green would have to agree on. Images people upload live in
# their own bucket (uploads module), read through origin access control.
#
#   /assets/*                  the web client, cached (paths carry colour and build, never reused)
#   /uploads/*                 shared images from the uploads bucket, cached (random names, written once)
#   /ws /api/* /version        never cached, viewer headers forwarded (the WebSocket upgrade passes)
#   /room/* and the rest       the page: never cached, may be framed by frame_ancestors
#
# Every origin request to the ALB carries the secret origin header the ALB checks; the optional
# WAF web ACL rate-limits per viewer address where CloudFront still knows it.

locals {
  alb_origin_id     = "alb"
  uploads_origin_id = "uploads"
  custom_cert       = var.acm_certificate_arn != null

  # Served by chat-server and never cached; framing denied.
  api_paths = ["/ws", "/api/*", "/version"]

  # AWS managed policies (stable IDs, the same in every account).
  cache_optimized = "658327ea-f89d-4fab-a63d-7e88639e58f6" # Managed-CachingOptimized
  cache_disabled  = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad" # Managed-CachingDisabled
  # Every viewer header, cookie and query string except Host: the ALB's certificate names the ALB,
  # not the distribution, and chat-server admits the distribution's origin by CHAT_ALLOWED_ORIGINS.
  all_viewer_except_host = "b689b0a8-53d0-40ab-baf2-68738e2966ac" # Managed-AllViewerExceptHostHeader

  # frame-ancestors: the chat itself and the configured embedding origins.
  frame_ancestors = join(" ", concat(["'self'"], var.frame_ancestors))
  page_csp        = "frame-ancestors ${local.frame_ancestors}"
}

################################################################################
# Response headers
################################################################################

# The page (/ and /room/*): embeddable by the chat itself and frame_ancestors. chat-server sends
# the same Content-Security-Policy; override = false keeps the origin's header and adds this one
# only where the origin sent none. No X-Frame-Options: it cannot list origins, and DENY would
# blank every embedded room.
resource "aws_cloudfront_response_headers_policy" "page" {
  name    = "${var.name}-page"
  comment = "HSTS, nosniff, strict referrer, CSP frame-ancestors for embedding"

  security_headers_config {
    strict_transport_security {
      access_control_max_age_sec = 31536000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }

    content_type_options {
      override = true
    }

    content_security_policy {
      content_security_policy = local.page_csp
      override                = false
    }

    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = true
    }
  }
}

# The API and the web client's files: nothing there is meant to be framed.
resource "aws_cloudfront_response_headers_policy" "static" {
  name    = "${var.name}-static"
  comment = "HSTS, nosniff, frame-deny, strict referrer"

  security_headers_config {
    strict_transport_security {
      access_control_max_age_sec = 31536000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }

    content_type_options {
      override = true
    }

    frame_options {
      frame_option = "DENY"
      override     = true
    }

    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = true
    }
  }
}

################################################################################
# Shared images: the uploads bucket, read by this distribution only
################################################################################

# CloudFront signs (SigV4) every request to the bucket; its policy admits this distribution only.
resource "aws_cloudfront_origin_access_control" "uploads" {
  name                              = "${var.name}-uploads"
  description                       = "CloudFront reads the chat's uploaded images"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# An image never changes under its (random) name: the path alone is the cache key, nothing is
# forwarded, and edges keep a copy up to uploads_ttl_seconds (at most the bucket's expiry, so an
# expired image leaves the edges within as long again). No compression: the formats are compressed.
resource "aws_cloudfront_cache_policy" "uploads" {
  name        = "${var.name}-uploads"
  comment     = "Uploaded images: immutable, keyed on the path only"
  min_ttl     = 0
  default_ttl = var.uploads_ttl_seconds
  max_ttl     = var.uploads_ttl_seconds

  parameters_in_cache_key_and_forwarded_to_origin {
    cookies_config {
      cookie_behavior = "none"
    }

    headers_config {
      header_behavior = "none"
    }

    query_strings_config {
      query_string_behavior = "none"
    }

    enable_accept_encoding_gzip   = false
    enable_accept_encoding_brotli = false
  }
}

################################################################################
# Optional WAF: a rate-based rule per viewer address
################################################################################

resource "aws_wafv2_web_acl" "this" {
  #checkov:skip=CKV2_AWS_31:WAF logging needs a Firehose or log group per request; the rule's CloudWatch metrics and sampled requests show what it blocks.
  #checkov:skip=CKV_AWS_192:chat-server is Rust and logs no user input through a JNDI-capable logger; the web ACL exists only for the rate-based rule.
  count    = var.waf_rate_limit == null ? 0 : 1
  provider = aws.us_east_1

  name        = "${var.name}-rate"
  description = "Blocks a viewer address above waf_rate_limit requests per 5 minutes"
  scope       = "CLOUDFRONT"

  default_action {
    allow {}
  }

  rule {
    name     = "rate-per-ip"
    priority = 1

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit
        aggregate_key_type = "IP"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-rate-per-ip"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-waf"
    sampled_requests_enabled   = true
  }

  tags = var.tags
}

################################################################################
# Distribution
################################################################################

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV_AWS_68:The WAF web ACL is optional (waf_rate_limit): about $6/month plus requests, against chat-server's own per-connection and per-address limits.
  #checkov:skip=CKV2_AWS_47:The optional web ACL carries only a rate rule; chat-server is Rust and logs no user input through a JNDI-capable logger.
  #checkov:skip=CKV_AWS_86:Standard logging needs ACL-enabled buckets; ALB access logs already record every request that reaches the origin.
  #checkov:skip=CKV_AWS_310:Every path has one origin (the ALB, which balances two colours itself, or the uploads bucket); there is no second copy to fail over to.
  #checkov:skip=CKV_AWS_374:The chat is open to a worldwide audience; no geographic restriction is wanted.
  #checkov:skip=CKV_AWS_174:With the default *.cloudfront.net certificate CloudFront fixes the minimum protocol; with acm_certificate_arn set the distribution enforces TLSv1.2_2021.
  #checkov:skip=CKV_AWS_305:No default root object: chat-server answers / itself (the landing page of the build behind the ALB).
  enabled         = true
  is_ipv6_enabled = true
  comment         = "${var.name}: the ALB, and /uploads/* from the uploads bucket; /assets/* and /uploads/* cached"
  price_class     = var.price_class
  aliases         = var.aliases
  http_version    = "http2and3"
  web_acl_id      = var.waf_rate_limit == null ? null : aws_wafv2_web_acl.this[0].arn

  origin {
    origin_id   = local.alb_origin_id
    domain_name = var.alb_domain_name

    custom_origin_config {
      http_port                = 80
      https_port               = 443
      origin_protocol_policy   = var.alb_origin_protocol == "https" ? "https-only" : "http-only"
      origin_ssl_protocols     = ["TLSv1.2"]
      origin_keepalive_timeout = 60
      origin_read_timeout      = 60
    }

    # The ALB forwards only requests carrying this value (see the alb module).
    custom_header {
      name  = var.origin_verify_header_name
      value = var.origin_verify_value
    }
  }

  # Shared images: the bucket, signed by origin access control (no custom header: S3 needs none).
  origin {
    origin_id                = local.uploads_origin_id
    domain_name              = var.uploads_bucket_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.uploads.id
  }

  # The page: /, /room/* and anything not listed below.
  default_cache_behavior {
    target_origin_id           = local.alb_origin_id
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = local.cache_disabled
    origin_request_policy_id   = local.all_viewer_except_host
    response_headers_policy_id = aws_cloudfront_response_headers_policy.page.id
  }

  # Paths carry the colour and build, so a cached file is never stale.
  ordered_cache_behavior {
    path_pattern               = "${var.assets_path}/*"
    target_origin_id           = local.alb_origin_id
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = local.cache_optimized
    response_headers_policy_id = aws_cloudfront_response_headers_policy.static.id
  }

  # Images: the path is the object key (/uploads/x.png = uploads/x.png). nosniff on a checked
  # image type keeps a forged file from rendering as anything else.
  ordered_cache_behavior {
    path_pattern               = "/${var.uploads_prefix}*"
    target_origin_id           = local.uploads_origin_id
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = false
    cache_policy_id            = aws_cloudfront_cache_policy.uploads.id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.static.id
  }

  dynamic "ordered_cache_behavior" {
    for_each = local.api_paths
    content {
      path_pattern               = ordered_cache_behavior.value
      target_origin_id           = local.alb_origin_id
      viewer_protocol_policy     = "redirect-to-https"
      allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
      cached_methods             = ["GET", "HEAD"]
      compress                   = false
      cache_policy_id            = local.cache_disabled
      origin_request_policy_id   = local.all_viewer_except_host
      response_headers_policy_id = aws_cloudfront_response_headers_policy.static.id
    }
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = !local.custom_cert
    acm_certificate_arn            = var.acm_certificate_arn
    ssl_support_method             = local.custom_cert ? "sni-only" : null
    minimum_protocol_version       = local.custom_cert ? "TLSv1.2_2021" : "TLSv1"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = var.alb_origin_protocol == "https" || var.allow_http_origin
      error_message = "CloudFront reaches the ALB over HTTPS by default: set alb_certificate_arn and alb_domain_name (a name you own, pointed at the ALB), or allow_http_origin = true to accept plaintext between CloudFront and the ALB."
    }

    precondition {
      condition     = length(var.aliases) == 0 || local.custom_cert
      error_message = "aliases (cdn_aliases) need acm_certificate_arn (cdn_certificate_arn): CloudFront refuses a custom name served with its *.cloudfront.net certificate."
    }
  }
}
