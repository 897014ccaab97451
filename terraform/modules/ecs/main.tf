# The ECS cluster and one Fargate service per colour. Each task runs chat-server and an AWS
# Distro for OpenTelemetry collector sidecar: traces (OTLP) to X-Ray, and chat-server's
# Prometheus metrics (scraped from its loopback admin listener) to CloudWatch as EMF. Terraform
# creates the first task definition revision; `opsctl deploy` registers the next ones, so
# services ignore later changes.

data "aws_region" "current" {}

locals {
  colors = toset(["blue", "green"])

  # chat-server's admin listener (metrics) stays on loopback; only CHAT_LISTEN faces the ALB.
  base_environment = [
    { name = "CHAT_LISTEN", value = "0.0.0.0:${var.container_port}" },
    { name = "CHAT_ADMIN_LISTEN", value = "127.0.0.1:${var.admin_port}" },
    { name = "CHAT_DYNAMODB_TABLE_PREFIX", value = var.table_prefix },
    { name = "CHAT_DRAIN_SECS", value = tostring(var.drain_secs) },
    # Browsers reach the task through CloudFront then the ALB, each appending to
    # X-Forwarded-For: the client's address (for the per-address limits) is two hops back.
    { name = "CHAT_TRUSTED_PROXIES", value = "2" },
    { name = "AWS_REGION", value = data.aws_region.current.id },
    { name = "OTEL_EXPORTER_OTLP_ENDPOINT", value = "http://localhost:4318" },
    { name = "OTEL_SERVICE_NAME", value = "chat-server" },
  ]
  origins_environment = length(var.allowed_origins) > 0 ? [
    { name = "CHAT_ALLOWED_ORIGINS", value = join(",", var.allowed_origins) },
  ] : []
  # The page's Content-Security-Policy frame-ancestors; CloudFront keeps what chat-server sends.
  framing_environment = length(var.frame_ancestors) > 0 ? [
    { name = "CHAT_FRAME_ANCESTORS", value = join(",", var.frame_ancestors) },
  ] : []
  # Shared images in S3: chat-server presigns the browser's PUT and links the image at the public
  # URL (CloudFront's /uploads/); without a bucket it keeps them under its data directory.
  uploads_environment = var.uploads_bucket != null ? [
    { name = "CHAT_UPLOADS_BUCKET", value = var.uploads_bucket },
    { name = "CHAT_UPLOADS_PREFIX", value = var.uploads_prefix },
    { name = "CHAT_UPLOADS_PUBLIC_URL", value = var.uploads_public_url },
  ] : []

  # Secrets reach the container as environment variables, read by the execution role at start.
  secrets = [
    { name = "CHAT_TOKEN_SECRET", valueFrom = var.token_secret_parameter_arn },
    { name = "CHAT_REDIS_URL", valueFrom = var.redis_url_parameter_arn },
  ]

  chat_environment = concat(local.base_environment, local.origins_environment, local.framing_environment, local.uploads_environment)

  capacity_provider = var.use_fargate_spot ? "FARGATE_SPOT" : "FARGATE"

  # The two containers of a task (chat, and the aws-otel-collector sidecar) are laid out in
  # containers.json.tftpl, which the laptop rehearsal (scripts/rehearsal_stack.py) renders too
  # with the same variables: the shape opsctl and the tests meet is the one ECS runs.
  # terraform/tests/test_shapes.py fails when the two sets of variables diverge.
  container_template = "${path.module}/containers.json.tftpl"
}

# The collector's configuration per colour (AOT_CONFIG_CONTENT replaces the image's default).
#   traces:  OTLP on localhost -> X-Ray
#   metrics: Prometheus scrape of chat-server's admin /metrics (loopback, never exposed) ->
#            awsemf: CloudWatch Embedded Metric Format lines in the metrics log group, which
#            CloudWatch turns into metrics of namespace var.metrics_namespace with dimension
#            `color`. Only metric_declarations' names become metrics (each costs as a custom
#            metric); the rest stays in the log group for Logs Insights.
locals {
  collector_config = {
    for color in local.colors : color => {
      receivers = {
        otlp = {
          protocols = {
            grpc = { endpoint = "127.0.0.1:4317" }
            http = { endpoint = "127.0.0.1:4318" }
          }
        }
        prometheus = {
          config = {
            scrape_configs = [{
              job_name        = "chat-server"
              scrape_interval = "${var.metrics_interval_secs}s"
              metrics_path    = "/metrics"
              static_configs = [{
                targets = ["127.0.0.1:${var.admin_port}"]
                labels  = { color = color }
              }]
            }]
          }
        }
      }
      processors = {
        # The ECS task metadata (task ARN, cluster, family): awsemf's {TaskId} in the log stream
        # name is filled from it; without it every task of a colour writes one stream.
        resourcedetection = {
          detectors = ["env", "ecs"]
          timeout   = "2s"
          override  = false
        }
        batch = {}
      }
      exporters = {
        awsxray = {}
        awsemf = {
          namespace               = var.metrics_namespace
          log_group_name          = var.metrics_log_group_name
          log_stream_name         = "${color}/{TaskId}"
          dimension_rollup_option = "NoDimensionRollup"
          metric_declarations = [{
            dimensions            = [["color"]]
            metric_name_selectors = [for m in var.exported_metrics : "^${m}$"]
          }]
        }
      }
      service = {
        pipelines = {
          traces  = { receivers = ["otlp"], processors = ["resourcedetection", "batch"], exporters = ["awsxray"] }
          metrics = { receivers = ["prometheus"], processors = ["resourcedetection", "batch"], exporters = ["awsemf"] }
        }
      }
    }
  }
}

################################################################################
# The log group Container Insights writes, owned by Terraform
################################################################################

# Container Insights writes here; left to ECS, the group would be created unencrypted with no
# retention and outlive terraform destroy.
resource "aws_cloudwatch_log_group" "container_insights" {
  name              = "/aws/ecs/containerinsights/${var.name}/performance"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}


resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  tags = var.tags

  # The log group exists before Container Insights could create its own.
  depends_on = [aws_cloudwatch_log_group.container_insights]
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = local.capacity_provider
    weight            = 1
  }
}

################################################################################
# Security group of the tasks
################################################################################

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-tasks-"
  description = "chat-server tasks: traffic from the ALB only; egress to AWS APIs and Redis."
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-tasks" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "alb" {
  security_group_id            = aws_security_group.this.id
  description                  = "HTTP, WebSocket and health checks from the ALB"
  referenced_security_group_id = var.alb_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = var.container_port
  to_port                      = var.container_port

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.this.id
  description       = "AWS APIs (DynamoDB, X-Ray, SSM, ECR, CloudWatch Logs) over HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443

  tags = var.tags
}

resource "aws_vpc_security_group_egress_rule" "redis" {
  security_group_id = aws_security_group.this.id
  description       = "ElastiCache (TLS) inside the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = var.redis_port
  to_port           = var.redis_port

  tags = var.tags
}

################################################################################
# Task definitions and services, one per colour
################################################################################

resource "aws_ecs_task_definition" "this" {
  for_each = local.colors

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = var.execution_role_arn
  task_role_arn            = var.task_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # The chat container's colour and log stream are per service; the rest is shared.
  container_definitions = templatefile(local.container_template, {
    image                = var.image
    container_port       = var.container_port
    health_check_path    = var.health_check_path
    stop_timeout         = var.stop_timeout
    environment          = concat(local.chat_environment, [{ name = "CHAT_COLOR", value = each.key }])
    secrets              = local.secrets
    color                = each.key
    region               = data.aws_region.current.id
    log_group            = var.log_group_name
    otel_collector_image = var.otel_collector_image
    collector_config     = yamlencode(local.collector_config[each.key])
  })

  tags = merge(var.tags, { Color = each.key })

  lifecycle {
    precondition {
      condition     = var.stop_timeout > var.drain_secs
      error_message = "stop_timeout must exceed drain_secs, or ECS kills tasks before they finish draining."
    }

    # chat-server refuses to start with CHAT_UPLOADS_BUCKET but no http(s) CHAT_UPLOADS_PUBLIC_URL.
    precondition {
      condition     = var.uploads_bucket == null || can(regex("^https://[a-z0-9.-]+/", var.uploads_public_url))
      error_message = "uploads_bucket needs uploads_public_url: the https:// URL viewers fetch the images from (CloudFront's /uploads/)."
    }
  }
}

resource "aws_ecs_service" "this" {
  for_each = local.colors

  name             = "${var.name}-${each.key}"
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.this[each.key].arn
  desired_count    = var.desired_counts[each.key]
  platform_version = "LATEST"

  capacity_provider_strategy {
    capacity_provider = local.capacity_provider
    weight            = 1
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.this.id]
    assign_public_ip = var.assign_public_ip
  }

  load_balancer {
    target_group_arn = var.target_group_arns[each.key]
    container_name   = "chat"
    container_port   = var.container_port
  }

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 30

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # Switching use_fargate_spot changes the capacity provider strategy: with this the provider
  # rolls the service onto the new capacity in place instead of replacing it (an outage). It
  # applies to updates of the service only, and with the ignore_changes below a later apply has
  # nothing to update (counts and revisions are opsctl's): no colour is redeployed by an apply
  # that, say, rotates the origin secret.
  force_new_deployment = true

  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"
  wait_for_steady_state   = false

  tags = merge(var.tags, { Color = each.key })

  lifecycle {
    # opsctl deploy registers new revisions; terraform must not roll them back. The counts are
    # set at creation (desired_counts) and then belong to the operator (the demo scales blue to
    # 0, rollback scales it back): an apply correcting them would, with force_new_deployment,
    # replace every task of that colour and drop its sockets.
    ignore_changes = [task_definition, desired_count]
  }

  depends_on = [aws_ecs_cluster_capacity_providers.this]
}
