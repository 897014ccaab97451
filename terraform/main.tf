# The whole chat on AWS: CloudFront -> ALB (blue/green target groups) -> two Fargate services,
# with DynamoDB, ElastiCache and X-Ray behind them. `terraform apply` creates it and
# `terraform destroy` removes all of it (buckets, repository and tables included).

provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
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
  # The web client in the repository; an absent directory uploads nothing.
  frontend_dir = coalesce(var.frontend_dir, "${path.module}/../frontend")
}

check "alb_https_origin" {
  assert {
    condition     = var.alb_certificate_arn == null || var.alb_domain_name != null
    error_message = "alb_certificate_arn needs alb_domain_name: the name the certificate covers, pointed at the ALB, for CloudFront to reach it over HTTPS."
  }
}

check "drain_fits_deregistration" {
  assert {
    condition     = var.deregistration_delay > var.drain_secs
    error_message = "deregistration_delay must exceed drain_secs so draining sockets are not cut by the ALB first."
  }
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
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncrypts"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${data.aws_partition.current.partition}:logs:${var.region}:${local.account_id}:log-group:*"
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
  allowed_origins            = var.allowed_origins

  tags = local.tags
}

module "cdn" {
  source = "./modules/cdn"

  name                = var.name
  alb_domain_name     = local.https ? coalesce(var.alb_domain_name, module.alb.dns_name) : module.alb.dns_name
  alb_origin_protocol = module.alb.listener_protocol
  frontend_dir        = local.frontend_dir
  log_bucket_id       = module.alb.log_bucket_id
  aliases             = var.cdn_aliases
  acm_certificate_arn = var.cdn_certificate_arn

  tags = local.tags
}
