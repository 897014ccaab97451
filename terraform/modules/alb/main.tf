# The public Application Load Balancer: one target group per colour, a production listener whose
# weights belong to opsctl after creation, a test listener that always reaches green, and access
# logs in S3. By default only our CloudFront distribution reaches the production listener: the
# security group admits CloudFront's origin-facing addresses and a listener rule forwards only
# requests carrying the distribution's secret origin header (any other distribution gets 403).
# With public_access the listener is open to browsers directly instead.

data "aws_elb_service_account" "this" {}

data "aws_caller_identity" "current" {}

data "aws_ec2_managed_prefix_list" "cloudfront" {
  name = "com.amazonaws.global.cloudfront.origin-facing"
}

locals {
  colors = toset(["blue", "green"])
  https  = var.certificate_arn != null
  # CloudFront (and, with public_access, browsers) reach the ALB on the production listener's port.
  listener_port      = local.https ? 443 : 80
  test_protocol      = local.https ? "HTTPS" : "HTTP"
  access_logs_prefix = "alb"
  # Requests must carry the distribution's secret header unless the ALB is open to browsers.
  verify_origin = !var.public_access
  # Ports browsers reach directly with public_access: the production listener, and 80 when it
  # only redirects to 443.
  public_ports = var.public_access ? toset(local.https ? [80, 443] : [80]) : toset([])
  # What the listeners facing CloudFront (or browsers) do by default. Without public_access the
  # production listener answers 403 and the weighted forward sits in the `production` rule behind
  # the origin secret; with it the weighted forward is the default action. Port 80 only redirects
  # to 443 when there is a certificate, and is the production listener when there is none.
  production_action = local.verify_origin ? "fixed-response" : "forward"
  http_action       = local.https ? "redirect" : local.production_action
  listeners = {
    for name, listener in {
      http  = { port = 80, protocol = "HTTP", action = local.http_action }
      https = { port = 443, protocol = "HTTPS", action = local.production_action }
    } : name => listener if name == "http" || local.https
  }
  # The production listener (443 with a certificate, else 80).
  production_listener_arn = aws_lb_listener.this[local.https ? "https" : "http"].arn
  # Each colour's web-client files live under /assets/<colour>-<build>/: always that colour's tasks.
  asset_rules = { for i, c in sort(tolist(local.colors)) : c => 10 + i }
}

################################################################################
# Access logs
################################################################################

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:This is the access-log bucket itself; logging it into itself would loop.
  #checkov:skip=CKV_AWS_144:Event-scoped logs, deleted by terraform destroy; a second region doubles storage for nothing.
  #checkov:skip=CKV_AWS_145:ALB access log delivery supports only SSE-S3 (AES256), not SSE-KMS.
  #checkov:skip=CKV2_AWS_62:No consumer reacts to new log objects; notifications would have no target.
  bucket_prefix = "${var.name}-logs-"
  # terraform destroy removes the bucket with its logs, no manual emptying.
  force_destroy = true

  tags = var.tags
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket = aws_s3_bucket.logs.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "expire"
    status = "Enabled"

    # The whole bucket: an empty filter {} warns "will be an error in a future version" since 5.90.
    filter {
      prefix = ""
    }

    expiration {
      days = var.log_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AlbAccessLogs"
        Effect    = "Allow"
        Principal = { AWS = data.aws_elb_service_account.this.arn }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.logs.arn}/${local.access_logs_prefix}/AWSLogs/${data.aws_caller_identity.current.account_id}/*"
      },
      {
        Sid       = "AlbAccessLogsDelivery"
        Effect    = "Allow"
        Principal = { Service = "logdelivery.elasticloadbalancing.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.logs.arn}/${local.access_logs_prefix}/AWSLogs/${data.aws_caller_identity.current.account_id}/*"
      },
      {
        Sid       = "S3ServerAccessLogs"
        Effect    = "Allow"
        Principal = { Service = "logging.s3.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.logs.arn}/s3/*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = data.aws_caller_identity.current.account_id }
        }
      },
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
    ]
  })

  depends_on = [aws_s3_bucket_public_access_block.logs]
}

################################################################################
# Security group
################################################################################

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-alb-"
  description = "Chat ALB: production listener from CloudFront (or browsers), test listener from operators."
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-alb" })

  lifecycle {
    create_before_destroy = true
  }
}

# The managed prefix list counts as 55 rules against the 60-rule quota of a security group, which
# is why test_listener_cidr_blocks takes at most 5 entries.
resource "aws_vpc_security_group_ingress_rule" "cloudfront" {
  count = var.public_access ? 0 : 1

  security_group_id = aws_security_group.this.id
  description       = "Production listener, from CloudFront origin-facing addresses only"
  prefix_list_id    = data.aws_ec2_managed_prefix_list.cloudfront.id
  ip_protocol       = "tcp"
  from_port         = local.listener_port
  to_port           = local.listener_port

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "public" {
  #checkov:skip=CKV_AWS_260:public_access opens the chat's own listener to browsers on purpose (80 only redirects when a certificate is set); it is off by default.
  for_each = local.public_ports

  security_group_id = aws_security_group.this.id
  description       = "Browsers directly (public_access)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value

  tags = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "test" {
  for_each = toset(var.test_listener_cidr_blocks)

  security_group_id = aws_security_group.this.id
  description       = "Test listener (green preview), from operators"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = var.test_listener_port
  to_port           = var.test_listener_port

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "targets" {
  security_group_id = aws_security_group.this.id
  description       = "Traffic and health checks to chat-server tasks"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = var.target_port
  to_port           = var.target_port

  tags = var.tags
}

################################################################################
# Load balancer
################################################################################

resource "aws_lb" "this" {
  #checkov:skip=CKV_AWS_150:terraform destroy must remove the ALB after the event without a manual step; set enable_deletion_protection to protect it.
  #checkov:skip=CKV2_AWS_20:Port 80 redirects to HTTPS when certificate_arn is set; without one it is the CloudFront-only origin (HTTPS to viewers) unless public_access is chosen.
  #checkov:skip=CKV2_AWS_28:The optional WAF (waf_rate_limit) sits on CloudFront, where the viewer's address is known; behind it the ALB admits only our distribution.
  name               = var.name
  load_balancer_type = "application"
  internal           = false
  security_groups    = [aws_security_group.this.id]
  subnets            = var.public_subnet_ids

  # WebSockets: the server pings every 30 s, so 120 s survives three lost pings yet still reaps
  # half-open sockets (mobile clients that vanished) within two minutes.
  idle_timeout               = var.idle_timeout
  drop_invalid_header_fields = true
  enable_deletion_protection = var.enable_deletion_protection

  access_logs {
    bucket  = aws_s3_bucket.logs.id
    prefix  = local.access_logs_prefix
    enabled = true
  }

  tags = var.tags

  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:TLS ends at CloudFront/the ALB; the hop to tasks stays inside the VPC and chat-server speaks plain HTTP.
  for_each = local.colors

  name        = "${var.name}-${each.key}"
  target_type = "ip"
  protocol    = "HTTP"
  port        = var.target_port
  vpc_id      = var.vpc_id

  # Longer than CHAT_DRAIN_SECS: the task sends `reconnect` frames over its drain window before
  # the ALB cuts what is left.
  deregistration_delay = var.deregistration_delay

  health_check {
    enabled             = true
    path                = var.health_check_path
    port                = "traffic-port"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = merge(var.tags, { Color = each.key })

  lifecycle {
    precondition {
      condition     = var.deregistration_delay > var.drain_secs
      error_message = "deregistration_delay must exceed drain_secs, or the ALB cuts draining sockets before the task has sent them `reconnect`."
    }
  }
}

# The listeners on 80 and (with a certificate) 443; their weights belong to opsctl after
# creation: terraform never resets them. Each colour's target group takes its initial weight.
resource "aws_lb_listener" "this" {
  #checkov:skip=CKV_AWS_2:Without a certificate port 80 is the CloudFront-only origin (viewers get HTTPS from CloudFront); with certificate_arn it only redirects to 443.
  #checkov:skip=CKV_AWS_103:Port 80 carries no TLS to configure; the TLS 1.2+ policy is set on the 443 listener.
  for_each = local.listeners

  load_balancer_arn = aws_lb.this.arn
  port              = each.value.port
  protocol          = each.value.protocol
  ssl_policy        = each.value.protocol == "HTTPS" ? var.ssl_policy : null
  certificate_arn   = each.value.protocol == "HTTPS" ? var.certificate_arn : null

  default_action {
    type = each.value.action

    dynamic "forward" {
      for_each = each.value.action == "forward" ? [1] : []
      content {
        dynamic "target_group" {
          for_each = local.colors
          content {
            arn    = aws_lb_target_group.this[target_group.value].arn
            weight = var.initial_weights[target_group.value]
          }
        }
      }
    }

    dynamic "fixed_response" {
      for_each = each.value.action == "fixed-response" ? [1] : []
      content {
        content_type = "text/plain"
        message_body = "Forbidden"
        status_code  = "403"
      }
    }

    dynamic "redirect" {
      for_each = each.value.action == "redirect" ? [1] : []
      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }

  tags = var.tags

  lifecycle {
    ignore_changes = [default_action]

    precondition {
      condition     = each.value.protocol != "HTTPS" || var.domain_name != null
      error_message = "certificate_arn needs domain_name: the name the certificate covers, pointed at the ALB; CloudFront reaching the ALB by its *.elb.amazonaws.com name over HTTPS gets 502 on every dynamic path."
    }
  }
}

# The listeners were two resources (http, and https with count) before they became one per port:
# the same listeners, moved in the state, never replaced.
moved {
  from = aws_lb_listener.http
  to   = aws_lb_listener.this["http"]
}

moved {
  from = aws_lb_listener.https[0]
  to   = aws_lb_listener.this["https"]
}

# CloudFront-only (the default): requests with the distribution's secret header get the weighted
# forward, the rest the listener's 403. The header accepts both rotation slots, so a rotation
# never refuses requests from edges that still send the previous value.
resource "aws_lb_listener_rule" "production" {
  count = local.verify_origin ? 1 : 0

  listener_arn = local.production_listener_arn
  priority     = 100

  action {
    type = "forward"
    forward {
      dynamic "target_group" {
        for_each = local.colors
        content {
          arn    = aws_lb_target_group.this[target_group.value].arn
          weight = var.initial_weights[target_group.value]
        }
      }
    }
  }

  condition {
    http_header {
      http_header_name = var.origin_verify_header_name
      values           = var.origin_verify_values
    }
  }

  tags = merge(var.tags, { "chat:traffic" = "production" })

  lifecycle {
    # opsctl shift owns the weights after creation.
    ignore_changes = [action]
  }
}

# /assets/<colour>-<build>/… always reaches the colour whose build wrote the page that links it,
# whatever the weights: a page and its scripts never come from two builds.
resource "aws_lb_listener_rule" "assets" {
  for_each = local.asset_rules

  listener_arn = local.production_listener_arn
  priority     = each.value

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[each.key].arn
  }

  condition {
    path_pattern {
      values = ["${var.assets_path}/${each.key}-*"]
    }
  }

  dynamic "condition" {
    for_each = local.verify_origin ? [1] : []
    content {
      http_header {
        http_header_name = var.origin_verify_header_name
        values           = var.origin_verify_values
      }
    }
  }

  tags = merge(var.tags, { Color = each.key })
}

# Preview: always green, whatever the production weights are.
resource "aws_lb_listener" "test" {
  load_balancer_arn = aws_lb.this.arn
  port              = var.test_listener_port
  protocol          = local.test_protocol
  ssl_policy        = local.https ? var.ssl_policy : null
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this["green"].arn
  }

  tags = var.tags
}
