# CloudFront in front of everything: the web client from a private S3 bucket (origin access
# control), and the ALB as a second origin for the dynamic paths. Those paths are never cached and
# forward every viewer header (Host, Origin, Upgrade, Sec-WebSocket-*) and query string, which is
# what lets a WebSocket upgrade pass through CloudFront to chat-server.

locals {
  s3_origin_id  = "frontend"
  alb_origin_id = "alb"
  custom_cert   = var.acm_certificate_arn != null

  # Served by chat-server through the ALB; everything else is a static file from S3.
  dynamic_paths = ["/ws", "/api/*", "/version", "/room/*"]

  # AWS managed policies (stable IDs, the same in every account).
  cache_optimized = "658327ea-f89d-4fab-a63d-7e88639e58f6" # Managed-CachingOptimized
  cache_disabled  = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad" # Managed-CachingDisabled
  all_viewer      = "216adef6-5c7f-47e4-b989-5492eafa07d3" # Managed-AllViewer

  # The web client only: its browser tests and their node_modules stay out of the bucket.
  frontend_files = var.frontend_dir == null ? toset([]) : toset([
    for f in fileset(var.frontend_dir, "**") : f
    if !startswith(f, "tests/") && !strcontains(f, "node_modules/") && !startswith(basename(f), ".")
  ])

  content_types = {
    html        = "text/html; charset=utf-8"
    js          = "text/javascript; charset=utf-8"
    mjs         = "text/javascript; charset=utf-8"
    css         = "text/css; charset=utf-8"
    json        = "application/json"
    svg         = "image/svg+xml"
    png         = "image/png"
    ico         = "image/x-icon"
    webp        = "image/webp"
    woff2       = "font/woff2"
    txt         = "text/plain; charset=utf-8"
    webmanifest = "application/manifest+json"
  }
}

################################################################################
# Bucket with the web client
################################################################################

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_144:Public web-client files rebuilt from git on every apply; a replica in a second region adds cost and nothing to restore.
  #checkov:skip=CKV_AWS_145:The bucket holds only the public web client that CloudFront serves to anyone; SSE-S3 encrypts at rest without per-request KMS charges.
  #checkov:skip=CKV2_AWS_62:Nothing reacts to uploads of the web client; notifications would have no consumer.
  bucket_prefix = "${var.name}-web-"
  force_destroy = true

  tags = var.tags
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # Shared images (uploads.tf): gone after the event; their old versions follow after 7 days.
  rule {
    id     = "expire-uploads"
    status = "Enabled"

    filter {
      prefix = local.uploads_prefix
    }

    expiration {
      days = var.uploads_expire_days
    }
  }
}

resource "aws_s3_bucket_logging" "this" {
  bucket        = aws_s3_bucket.this.id
  target_bucket = var.log_bucket_id
  target_prefix = "s3/${var.name}-web/"
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "CloudFrontReadsThroughOAC"
        Effect    = "Allow"
        Principal = { Service = "cloudfront.amazonaws.com" }
        Action    = "s3:GetObject"
        Resource  = "${aws_s3_bucket.this.arn}/*"
        Condition = { StringEquals = { "AWS:SourceArn" = aws_cloudfront_distribution.this.arn } }
      },
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })

  depends_on = [aws_s3_bucket_public_access_block.this]
}

# The files of frontend/, uploaded as they are (no build step).
resource "aws_s3_object" "this" {
  for_each = local.frontend_files

  bucket        = aws_s3_bucket.this.id
  key           = each.value
  source        = "${var.frontend_dir}/${each.value}"
  etag          = filemd5("${var.frontend_dir}/${each.value}")
  content_type  = lookup(local.content_types, lower(reverse(split(".", each.value))[0]), "application/octet-stream")
  cache_control = endswith(each.value, ".html") ? "no-cache" : "public, max-age=300"

  tags = var.tags
}

################################################################################
# Distribution
################################################################################

resource "aws_cloudfront_origin_access_control" "this" {
  name                              = "${var.name}-web"
  description                       = "CloudFront signs its requests to the web-client bucket"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# Security headers on every response, static or dynamic.
resource "aws_cloudfront_response_headers_policy" "this" {
  name    = "${var.name}-security-headers"
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

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV_AWS_68:A WAF web ACL costs about $5-10/month plus per-request fees, more than the compute; chat-server enforces its own rate limits per connection.
  #checkov:skip=CKV2_AWS_47:No WAF (see CKV_AWS_68); chat-server is Rust and logs no user input through a JNDI-capable logger.
  #checkov:skip=CKV_AWS_86:Standard logging needs ACL-enabled buckets; ALB access logs already record every dynamic request and static hits are not needed for an event.
  #checkov:skip=CKV_AWS_310:Each path has exactly one origin; there is no second copy of the web client or the chat to fail over to.
  #checkov:skip=CKV_AWS_374:The chat is open to a worldwide audience; no geographic restriction is wanted.
  #checkov:skip=CKV_AWS_174:With the default *.cloudfront.net certificate CloudFront fixes the minimum protocol; with acm_certificate_arn set the distribution enforces TLSv1.2_2021.
  enabled             = true
  is_ipv6_enabled     = true
  comment             = "${var.name}: web client from S3, /ws and /api/* from the ALB"
  default_root_object = "index.html"
  price_class         = var.price_class
  aliases             = var.aliases
  http_version        = "http2and3"

  origin {
    origin_id                = local.s3_origin_id
    domain_name              = aws_s3_bucket.this.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.this.id
  }

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
  }

  default_cache_behavior {
    target_origin_id           = local.s3_origin_id
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = local.cache_optimized
    response_headers_policy_id = aws_cloudfront_response_headers_policy.this.id
  }

  dynamic "ordered_cache_behavior" {
    for_each = local.dynamic_paths
    content {
      path_pattern               = ordered_cache_behavior.value
      target_origin_id           = local.alb_origin_id
      viewer_protocol_policy     = "redirect-to-https"
      allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
      cached_methods             = ["GET", "HEAD"]
      compress                   = false
      cache_policy_id            = local.cache_disabled
      origin_request_policy_id   = local.all_viewer
      response_headers_policy_id = aws_cloudfront_response_headers_policy.this.id
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
}
