################################################################################
# General
################################################################################

variable "name" {
  description = "Name of the deployment: prefix of every resource (keep it short: ALB and target group names allow 32 characters)."
  type        = string
  default     = "chat"

  # What the ALB, target groups and the ElastiCache replication group all accept: lowercase
  # letters, digits and single hyphens, starting with a letter, never ending with a hyphen, and
  # (ALB) not starting with "internal-".
  validation {
    condition     = length(var.name) >= 2 && length(var.name) <= 20 && can(regex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$", var.name)) && !startswith(var.name, "internal-")
    error_message = "name must be 2-20 characters: lowercase letters, digits and single hyphens, starting with a letter, not ending with a hyphen, not starting with \"internal-\"."
  }
}

variable "region" {
  description = "AWS region of the deployment."
  type        = string
  default     = "us-east-1"
}

variable "tags" {
  description = "Tags added to every resource (Project = name is added)."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Protect the ALB and tables from deletion. Off by default so terraform destroy removes everything after the event."
  type        = bool
  default     = false
}

################################################################################
# Network
################################################################################

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Two zone names of var.region for the subnets; null = the region's zones a and b (checked to exist at plan)."
  type        = list(string)
  default     = null

  validation {
    condition = var.availability_zones == null ? true : (
      length(var.availability_zones) == 2 &&
      length(distinct(var.availability_zones)) == 2 &&
      alltrue([for z in var.availability_zones : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$", z))])
    )
    error_message = "availability_zones must name two different zones, e.g. [\"us-east-1a\", \"us-east-1b\"]."
  }
}

variable "enable_nat_gateway" {
  description = "true: tasks in private subnets behind one NAT gateway. false: tasks in public subnets with public IPs (their security group still admits only the ALB) and no NAT cost."
  type        = bool
  default     = true
}

################################################################################
# Load balancer and CDN
################################################################################

variable "container_port" {
  description = "Port chat-server listens on in the task (CHAT_LISTEN=0.0.0.0:PORT) and the target groups use."
  type        = number
  default     = 8080
}

variable "health_check_path" {
  description = "chat-server's liveness path, probed by the target groups and the container health check."
  type        = string
  default     = "/healthz"
}

variable "alb_idle_timeout" {
  description = "ALB idle timeout in seconds; above the server's 30 s WebSocket ping interval."
  type        = number
  default     = 120
}

variable "deregistration_delay" {
  description = "Seconds a stopping task's target keeps its connections; above drain_secs."
  type        = number
  default     = 20
}

variable "alb_certificate_arn" {
  description = "ACM certificate (in region) for an HTTPS listener on 443, so CloudFront reaches the ALB encrypted; null = HTTP listener on 80 (needs allow_http_origin)."
  type        = string
  default     = null

  validation {
    condition     = var.alb_certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/", var.alb_certificate_arn))
    error_message = "alb_certificate_arn must be an ACM certificate ARN."
  }
}

variable "alb_domain_name" {
  description = "DNS name covered by alb_certificate_arn and pointed (CNAME/alias) at the ALB; CloudFront's origin host (required with alb_certificate_arn)."
  type        = string
  default     = null
}

variable "allow_http_origin" {
  description = "Accept plaintext HTTP between CloudFront and the ALB when no alb_certificate_arn is given (requests and the origin secret then cross the internet unencrypted)."
  type        = bool
  default     = false
}

variable "alb_public_access" {
  description = "Open the ALB's production listener to browsers directly (HTTPS with alb_certificate_arn, else HTTP). false = only our CloudFront distribution (its secret origin header is required)."
  type        = bool
  default     = false
}

variable "origin_secret_rotation" {
  description = "Generation of the secret origin header CloudFront sends and the ALB checks; increase by one and apply to rotate (the previous value stays accepted until the next rotation)."
  type        = number
  default     = 1

  validation {
    condition     = var.origin_secret_rotation >= 1 && floor(var.origin_secret_rotation) == var.origin_secret_rotation
    error_message = "origin_secret_rotation must be a whole number from 1."
  }
}

variable "frame_ancestors" {
  description = "Origins allowed to embed the chat (CSP frame-ancestors on / and /room/*, e.g. [\"https://conf.example.com\"]); the chat itself is always allowed. Empty = no other site may frame it."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.frame_ancestors : can(regex("^https?://(\\*\\.)?[a-z0-9.-]+(:[0-9]{1,5})?$", o))]) && length(join(" ", var.frame_ancestors)) <= 1500
    error_message = "frame_ancestors takes origins like https://conf.example.com or https://*.example.com (scheme, host, optional port; no path, space or semicolon), 1500 characters in all."
  }
}

variable "waf_rate_limit" {
  description = "Optional WAF on CloudFront: requests per 5 minutes one viewer address may send before it is blocked (10 to 2000000000); null = no web ACL (it costs about $6/month plus $0.60 per million requests)."
  type        = number
  default     = null

  validation {
    condition     = var.waf_rate_limit == null ? true : (var.waf_rate_limit >= 10 && var.waf_rate_limit <= 2000000000)
    error_message = "waf_rate_limit must be null or between 10 and 2000000000 requests per 5 minutes."
  }
}

variable "test_listener_port" {
  description = "Port of the ALB test listener that forwards to green only (previews before a shift)."
  type        = number
  default     = 9000
}

variable "test_listener_cidr_blocks" {
  description = "IPv4 CIDRs allowed to reach the test listener, e.g. [\"203.0.113.7/32\"]; empty = nobody. At most 5: CloudFront's prefix list takes 55 of the security group's 60 inbound rules."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.test_listener_cidr_blocks) <= 5 && alltrue([for c in var.test_listener_cidr_blocks : can(cidrhost(c, 0)) && strcontains(c, ".")])
    error_message = "test_listener_cidr_blocks takes at most 5 IPv4 CIDRs (the CloudFront prefix list counts as 55 of the security group's 60 inbound rules)."
  }
}

variable "cdn_aliases" {
  description = "Custom domain names for CloudFront (need cdn_certificate_arn, refused at plan without it)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.cdn_aliases) <= 100 && alltrue([for a in var.cdn_aliases : can(regex("^(\\*\\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", a))])
    error_message = "cdn_aliases takes up to 100 lowercase DNS names (a leading *. allowed)."
  }
}

variable "cdn_certificate_arn" {
  description = "ACM certificate in us-east-1 for cdn_aliases; null = the *.cloudfront.net certificate."
  type        = string
  default     = null
}

################################################################################
# Tasks
################################################################################

variable "image" {
  description = "Full chat-server image URI for the first task definitions; null = the ECR repository with image_tag."
  type        = string
  default     = null
}

variable "image_tag" {
  description = "Tag in the ECR repository used when image is null (tags are immutable: use a git SHA)."
  type        = string
  default     = "v0.1.0"
}

variable "task_cpu" {
  description = "CPU units per task (256 = 0.25 vCPU)."
  type        = number
  default     = 256
}

variable "task_memory" {
  description = "Memory per task in MiB (chat-server plus the collector sidecar)."
  type        = number
  default     = 512
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64 (Graviton: about 20 % cheaper; build the image with --platform linux/arm64)."
  type        = string
  default     = "X86_64"
}

variable "desired_counts" {
  description = "Running tasks per colour when the services are created; afterwards the counts are the operator's (opsctl, aws ecs update-service) and terraform apply leaves them."
  type        = map(number)
  default     = { blue = 1, green = 1 }
}

variable "use_fargate_spot" {
  description = "Run tasks on FARGATE_SPOT (about 70 % cheaper, may be reclaimed with a 2-minute warning)."
  type        = bool
  default     = false
}

variable "drain_secs" {
  description = "CHAT_DRAIN_SECS: seconds over which a stopping task spreads its reconnect frames."
  type        = number
  default     = 10
}

variable "stop_timeout" {
  description = "Container stopTimeout in seconds (SIGTERM to SIGKILL); above drain_secs, at most 120."
  type        = number
  default     = 30
}

variable "allowed_origins" {
  description = "CHAT_ALLOWED_ORIGINS, e.g. [\"https://chat.example.com\"]; empty = chat-server's same-host default."
  type        = list(string)
  default     = []
}

variable "table_prefix" {
  description = "CHAT_DYNAMODB_TABLE_PREFIX; null = \"<name>-\"."
  type        = string
  default     = null
}

variable "uploads_expiry_days" {
  description = "Days the uploads bucket keeps a shared image before deleting it (set it past the event; edges keep a copy at most as long again, up to a year)."
  type        = number
  default     = 30

  validation {
    condition     = var.uploads_expiry_days >= 1 && var.uploads_expiry_days <= 3650 && floor(var.uploads_expiry_days) == var.uploads_expiry_days
    error_message = "uploads_expiry_days must be a whole number of days from 1 to 3650."
  }
}

################################################################################
# Redis
################################################################################

variable "redis_engine" {
  description = "ElastiCache engine: valkey (Redis-compatible, cheaper) or redis."
  type        = string
  default     = "valkey"
}

variable "redis_engine_version" {
  description = "ElastiCache engine version."
  type        = string
  default     = "8.0"
}

variable "redis_parameter_group_name" {
  description = "ElastiCache parameter group matching engine and version."
  type        = string
  default     = "default.valkey8"
}

variable "redis_node_type" {
  description = "ElastiCache node type (two nodes: primary and replica; in cluster mode two per shard)."
  type        = string
  default     = "cache.t4g.micro"
}

variable "redis_shards" {
  description = "ElastiCache cluster mode: 0 = off (one primary and a replica); N > 0 = N shards of a primary and a replica each, rooms spread over them (CHAT_REDIS_URL becomes rediss+cluster://)."
  type        = number
  default     = 0
}

################################################################################
# Monitoring
################################################################################

variable "log_retention_days" {
  description = "Days CloudWatch keeps task logs (the log group is deleted by terraform destroy regardless)."
  type        = number
  default     = 365
}

variable "alarm_actions" {
  description = "ARNs (e.g. an SNS topic) notified on alarm state changes; empty = none."
  type        = list(string)
  default     = []
}

variable "client_error_threshold" {
  description = "4xx answers in 5 minutes (chat-server's and the ALB's own) that raise the 4xx-surge alarm."
  type        = number
  default     = 500
}

variable "budget_emails" {
  description = "E-mail addresses AWS Budgets writes to when the account's monthly cost passes 80 % of monthly_budget_usd or is forecast to pass it; empty = no budget."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.budget_emails) <= 10 && alltrue([for e in var.budget_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "budget_emails takes up to 10 e-mail addresses (AWS Budgets' limit per notification)."
  }
}

variable "monthly_budget_usd" {
  description = "Monthly cost budget in USD for the account (the event profile costs about $75)."
  type        = number
  default     = 150

  validation {
    condition     = var.monthly_budget_usd > 0
    error_message = "monthly_budget_usd must be positive."
  }
}
