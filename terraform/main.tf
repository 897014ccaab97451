# The whole chat on AWS: CloudFront -> ALB (blue/green target groups) -> two Fargate services,
# with DynamoDB, ElastiCache, X-Ray and CloudWatch (metrics, dashboard, alarms, budget) behind them,
# and shared images in an S3 bucket CloudFront serves under /uploads/*. `terraform apply` creates it
# and `terraform destroy` removes all of it (buckets with their objects, repository and tables included).

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }

  # opsctl keeps its memory (the stable colour, the weights an undo restores) in `opsctl:` tags
  # on the production listener: a later apply (a rotated origin secret mid-event) leaves them.
  ignore_tags {
    key_prefixes = ["opsctl:"]
  }
}

# CloudFront's web ACL (optional WAF) must be created in us-east-1.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"

  default_tags {
    tags = var.tags
  }

  # opsctl keeps its memory (the stable colour, the weights an undo restores) in `opsctl:` tags
  # on the production listener: a later apply (a rotated origin secret mid-event) leaves them.
  ignore_tags {
    key_prefixes = ["opsctl:"]
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  tags         = merge(var.tags, { Project = var.name })
  table_prefix = coalesce(var.table_prefix, "${var.name}-")
  image        = coalesce(var.image, "${module.ecr.repository_url}:${var.image_tag}")
  https        = var.alb_certificate_arn != null
  account_id   = data.aws_caller_identity.current.account_id
  partition    = data.aws_partition.current.partition
  # Browser origins chat-server admits: CloudFront forwards every viewer header but Host (the
  # ALB's certificate names the ALB), so the distribution's own names are listed explicitly.
  chat_origins = distinct(concat(
    var.allowed_origins,
    ["https://${module.cdn.domain_name}"],
    [for alias in var.cdn_aliases : "https://${alias}"],
    var.alb_public_access ? [module.alb.url] : [],
    # The green preview: its page, loaded through the test listener, opens its WebSocket and
    # uploads images from that origin.
    [module.alb.test_listener_url],
  ))
  # Two rotation slots for the origin secret: each rotation renews the older slot, CloudFront
  # sends the newer one, and the ALB accepts both while CloudFront's edges pick up the change.
  origin_secret_current = var.origin_secret_rotation % 2 == 1 ? random_password.origin_verify["a"].result : random_password.origin_verify["b"].result
  # Images are linked on the chat's own public name (its first exact alias, else CloudFront's),
  # under the path CloudFront serves from the uploads bucket's keys of the same prefix.
  public_aliases     = [for alias in var.cdn_aliases : alias if !startswith(alias, "*.")]
  public_host        = length(local.public_aliases) > 0 ? local.public_aliases[0] : module.cdn.domain_name
  uploads_public_url = "https://${local.public_host}/${module.uploads.prefix}"
}

################################################################################
# One customer managed key for tables, Redis, logs, images and parameters
################################################################################

resource "aws_kms_key" "this" {
  description             = "${var.name}: DynamoDB, ElastiCache, CloudWatch Logs, ECR and SSM parameters"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncrypts"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.${data.aws_partition.current.dns_suffix}" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"
          }
        }
      },
    ]
  })

  tags = local.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

# HMAC key of guest tokens, shared by every task of both colours.
resource "random_password" "token_secret" {
  length  = 48
  special = false
}

resource "aws_ssm_parameter" "token_secret" {
  name        = "/${var.name}/token-secret"
  description = "CHAT_TOKEN_SECRET for chat-server"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = random_password.token_secret.result

  tags = local.tags
}

# The secret header CloudFront adds to every origin request and the ALB requires (issue 14):
# any other CloudFront distribution reaches the ALB's addresses too, but not with this value.
# Rotate: increase origin_secret_rotation and apply (README: "Rotating the origin secret").
resource "random_password" "origin_verify" {
  for_each = {
    a = floor((var.origin_secret_rotation + 1) / 2)
    b = floor(var.origin_secret_rotation / 2)
  }

  length  = 40
  special = false

  keepers = {
    generation = each.value
  }
}

resource "aws_ssm_parameter" "origin_verify" {
  name        = "/${var.name}/origin-verify"
  description = "Value of the X-Origin-Verify header CloudFront sends and the ALB requires (current rotation slot)"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = local.origin_secret_current

  tags = local.tags
}

################################################################################
# Modules
################################################################################

module "vpc" {
  source = "./modules/vpc"

  name               = var.name
  cidr               = var.vpc_cidr
  availability_zones = var.availability_zones
  enable_nat_gateway = var.enable_nat_gateway

  tags = local.tags
}

module "ecr" {
  source = "./modules/ecr"

  name        = var.name
  kms_key_arn = aws_kms_key.this.arn

  tags = local.tags
}

module "dynamodb" {
  source = "./modules/dynamodb"

  table_prefix        = local.table_prefix
  kms_key_arn         = aws_kms_key.this.arn
  deletion_protection = var.deletion_protection

  tags = local.tags
}

module "alb" {
  source = "./modules/alb"

  name                       = var.name
  vpc_id                     = module.vpc.vpc_id
  vpc_cidr                   = module.vpc.vpc_cidr
  public_subnet_ids          = module.vpc.public_subnet_ids
  target_port                = var.container_port
  health_check_path          = var.health_check_path
  idle_timeout               = var.alb_idle_timeout
  deregistration_delay       = var.deregistration_delay
  certificate_arn            = var.alb_certificate_arn
  domain_name                = var.alb_domain_name
  drain_secs                 = var.drain_secs
  public_access              = var.alb_public_access
  origin_verify_values       = [for slot in ["a", "b"] : random_password.origin_verify[slot].result]
  test_listener_port         = var.test_listener_port
  test_listener_cidr_blocks  = var.test_listener_cidr_blocks
  enable_deletion_protection = var.deletion_protection

  tags = local.tags
}

module "monitoring" {
  source = "./modules/monitoring"

  name                      = var.name
  kms_key_arn               = aws_kms_key.this.arn
  log_retention_days        = var.log_retention_days
  alb_arn_suffix            = module.alb.arn_suffix
  target_group_arn_suffixes = module.alb.target_group_arn_suffixes
  alarm_actions             = var.alarm_actions
  region                    = var.region
  table_names               = values(module.dynamodb.table_names)
  client_error_threshold    = var.client_error_threshold
  budget_emails             = var.budget_emails
  monthly_budget_usd        = var.monthly_budget_usd

  tags = local.tags
}

module "elasticache" {
  source = "./modules/elasticache"

  name                       = var.name
  vpc_id                     = module.vpc.vpc_id
  subnet_ids                 = module.vpc.private_subnet_ids
  allowed_security_group_ids = [module.ecs.security_group_id]
  engine                     = var.redis_engine
  engine_version             = var.redis_engine_version
  parameter_group_name       = var.redis_parameter_group_name
  node_type                  = var.redis_node_type
  shards                     = var.redis_shards
  kms_key_arn                = aws_kms_key.this.arn

  tags = local.tags
}

module "iam" {
  source = "./modules/iam"

  name                  = var.name
  table_arns            = module.dynamodb.table_arns
  secret_parameter_arns = [aws_ssm_parameter.token_secret.arn, module.elasticache.url_parameter_arn]
  kms_key_arn           = aws_kms_key.this.arn
  metrics_log_group_arn = module.monitoring.metrics_log_group_arn
  uploads_bucket_arn    = module.uploads.bucket_arn
  uploads_objects_arn   = module.uploads.objects_arn

  tags = local.tags
}

module "ecs" {
  source = "./modules/ecs"

  name                       = var.name
  vpc_id                     = module.vpc.vpc_id
  vpc_cidr                   = module.vpc.vpc_cidr
  subnet_ids                 = var.enable_nat_gateway ? module.vpc.private_subnet_ids : module.vpc.public_subnet_ids
  assign_public_ip           = !var.enable_nat_gateway
  alb_security_group_id      = module.alb.security_group_id
  target_group_arns          = module.alb.target_group_arns
  image                      = local.image
  cpu                        = var.task_cpu
  memory                     = var.task_memory
  cpu_architecture           = var.cpu_architecture
  desired_counts             = var.desired_counts
  use_fargate_spot           = var.use_fargate_spot
  container_port             = var.container_port
  health_check_path          = var.health_check_path
  execution_role_arn         = module.iam.execution_role_arn
  task_role_arn              = module.iam.task_role_arn
  log_group_name             = module.monitoring.log_group_name
  table_prefix               = local.table_prefix
  token_secret_parameter_arn = aws_ssm_parameter.token_secret.arn
  redis_url_parameter_arn    = module.elasticache.url_parameter_arn
  drain_secs                 = var.drain_secs
  stop_timeout               = var.stop_timeout
  allowed_origins            = local.chat_origins
  frame_ancestors            = var.frame_ancestors
  kms_key_arn                = aws_kms_key.this.arn
  log_retention_days         = var.log_retention_days
  metrics_log_group_name     = module.monitoring.metrics_log_group_name
  exported_metrics           = module.monitoring.exported_metrics
  uploads_bucket             = module.uploads.bucket_name
  uploads_prefix             = module.uploads.prefix
  uploads_public_url         = local.uploads_public_url

  tags = local.tags
}

module "cdn" {
  source = "./modules/cdn"

  providers = {
    aws           = aws
    aws.us_east_1 = aws.us_east_1
  }

  name                = var.name
  alb_domain_name     = local.https ? coalesce(var.alb_domain_name, module.alb.dns_name) : module.alb.dns_name
  alb_origin_protocol = module.alb.listener_protocol
  allow_http_origin   = var.allow_http_origin
  origin_verify_value = local.origin_secret_current
  frame_ancestors     = var.frame_ancestors
  waf_rate_limit      = var.waf_rate_limit
  aliases             = var.cdn_aliases
  acm_certificate_arn = var.cdn_certificate_arn
  # Shared images: an edge keeps a copy no longer than the bucket keeps the image.
  uploads_bucket_domain_name = module.uploads.bucket_regional_domain_name
  uploads_prefix             = module.uploads.prefix
  uploads_ttl_seconds        = min(var.uploads_expiry_days * 86400, 31536000)

  tags = local.tags
}

# Shared images (issue 15): the browser PUTs into the bucket through chat-server's presigned URL
# from the chat's pages (CORS for exactly the origins chat-server admits), CloudFront serves them.
module "uploads" {
  source = "./modules/uploads"

  name                        = var.name
  expiry_days                 = var.uploads_expiry_days
  allowed_origins             = local.chat_origins
  cloudfront_distribution_arn = module.cdn.arn
  access_log_bucket           = module.alb.log_bucket_id

  tags = local.tags
}
