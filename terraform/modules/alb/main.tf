# The public Application Load Balancer: one target group per colour, a production listener whose
# weights belong to opsctl after creation, a test listener that always reaches green, and access
# logs in S3. Only CloudFront's origin-facing addresses reach the production listener.

data "aws_elb_service_account" "this" {}

data "aws_caller_identity" "current" {}

data "aws_ec2_managed_prefix_list" "cloudfront" {
  name = "com.amazonaws.global.cloudfront.origin-facing"
}

locals {
  colors = toset(["blue", "green"])
  https  = var.certificate_arn != null
  # CloudFront reaches the ALB on the production listener's port.
  listener_port      = local.https ? 443 : 80
  test_protocol      = local.https ? "HTTPS" : "HTTP"
  access_logs_prefix = "alb"
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

    filter {}

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
  description = "Chat ALB: production listener from CloudFront only, test listener from operators."
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-alb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "cloudfront" {
  security_group_id = aws_security_group.this.id
  description       = "Production listener, from CloudFront origin-facing addresses only"
  prefix_list_id    = data.aws_ec2_managed_prefix_list.cloudfront.id
  ip_protocol       = "tcp"
  from_port         = local.listener_port
  to_port           = local.listener_port

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
  #checkov:skip=CKV2_AWS_20:Port 80 redirects to HTTPS when certificate_arn is set; without one it forwards, but only CloudFront (HTTPS to viewers) can reach it.
  #checkov:skip=CKV2_AWS_28:Only CloudFront reaches the ALB (security group on CloudFront's prefix list); a WAF web ACL costs more than the whole compute budget.
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
}

# Production listener. Its weights belong to opsctl after creation: terraform never resets them.
resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:Without a certificate, port 80 is reachable only from CloudFront, which serves viewers over HTTPS; with certificate_arn it redirects to 443.
  #checkov:skip=CKV_AWS_103:Port 80 carries no TLS to configure; the TLS 1.2+ policy is set on the 443 listener.
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  dynamic "default_action" {
    for_each = local.https ? [] : [1]
    content {
      type = "forward"
      forward {
        target_group {
          arn    = aws_lb_target_group.this["blue"].arn
          weight = var.initial_weights["blue"]
        }
        target_group {
          arn    = aws_lb_target_group.this["green"].arn
          weight = var.initial_weights["green"]
        }
      }
    }
  }

  dynamic "default_action" {
    for_each = local.https ? [1] : []
    content {
      type = "redirect"
      redirect {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }

  tags = var.tags

  lifecycle {
    ignore_changes = [default_action]
  }
}

resource "aws_lb_listener" "https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type = "forward"
    forward {
      target_group {
        arn    = aws_lb_target_group.this["blue"].arn
        weight = var.initial_weights["blue"]
      }
      target_group {
        arn    = aws_lb_target_group.this["green"].arn
        weight = var.initial_weights["green"]
      }
    }
  }

  tags = var.tags

  lifecycle {
    ignore_changes = [default_action]
  }
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
