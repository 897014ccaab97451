################################################################################
# General
################################################################################

variable "name" {
  description = "Name of the deployment: prefix of every resource (keep it short: ALB and target group names allow 32 characters)."
  type        = string
  default     = "chat"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "name must be 2-20 lowercase letters, digits or hyphens, starting with a letter."
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
  description = "Two zone names for the subnets; null = the region's zones a and b."
  type        = list(string)
  default     = null
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
  description = "ACM certificate (in region) for an HTTPS listener on 443; null = HTTP listener on 80 reachable only from CloudFront."
  type        = string
  default     = null
}

variable "alb_domain_name" {
  description = "DNS name covered by alb_certificate_arn and pointed (CNAME/alias) at the ALB; CloudFront's origin host when HTTPS is used."
  type        = string
  default     = null
}

variable "test_listener_port" {
  description = "Port of the ALB test listener that forwards to green only (previews before a shift)."
  type        = number
  default     = 9000
}

variable "test_listener_cidr_blocks" {
  description = "IPv4 CIDRs allowed to reach the test listener, e.g. [\"203.0.113.7/32\"]; empty = nobody."
  type        = list(string)
  default     = []
}

variable "cdn_aliases" {
  description = "Custom domain names for CloudFront (need cdn_certificate_arn)."
  type        = list(string)
  default     = []
}

variable "cdn_certificate_arn" {
  description = "ACM certificate in us-east-1 for cdn_aliases; null = the *.cloudfront.net certificate."
  type        = string
  default     = null
}

variable "frontend_dir" {
  description = "Directory of the web client uploaded to S3; null = the repository's frontend/."
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
  description = "Running tasks per colour."
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
