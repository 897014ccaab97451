variable "name" {
  description = "Name of the cluster and prefix of services and task families."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the tasks' security group."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC (egress to Redis)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets the tasks run in (private with NAT, or public with assign_public_ip)."
  type        = list(string)
}

variable "assign_public_ip" {
  description = "Give tasks public IPs (needed in public subnets without NAT)."
  type        = bool
  default     = false
}

variable "alb_security_group_id" {
  description = "Security group of the ALB; the only source allowed to reach the tasks."
  type        = string
}

variable "target_group_arns" {
  description = "Target group ARN per colour (keys blue and green)."
  type        = map(string)
}

variable "image" {
  description = "chat-server image URI (repository:tag) of the first task definition revision."
  type        = string
}

variable "otel_collector_image" {
  description = "AWS Distro for OpenTelemetry collector image (the tracing sidecar)."
  type        = string
  default     = "public.ecr.aws/aws-observability/aws-otel-collector:v0.45.1"
}

variable "cpu" {
  description = "Task CPU units (256 = 0.25 vCPU)."
  type        = number
  default     = 256
}

variable "memory" {
  description = "Task memory in MiB, shared by chat-server and the collector."
  type        = number
  default     = 512
}

variable "cpu_architecture" {
  description = "X86_64 or ARM64 (Graviton, about 20 % cheaper; the image must be built for it)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "desired_counts" {
  description = "Running tasks per colour (keys blue and green)."
  type        = map(number)
  default     = { blue = 1, green = 1 }
}

variable "use_fargate_spot" {
  description = "Run tasks on FARGATE_SPOT (about 70 % cheaper; tasks can be reclaimed with a 2-minute warning, which the drain handles)."
  type        = bool
  default     = false
}

variable "container_port" {
  description = "Port chat-server listens on (CHAT_LISTEN) and the target groups send to."
  type        = number
  default     = 8080
}

variable "health_check_path" {
  description = "Path of chat-server's liveness endpoint."
  type        = string
  default     = "/healthz"
}

variable "redis_port" {
  description = "Port of the Redis replication group."
  type        = number
  default     = 6379
}

variable "execution_role_arn" {
  description = "Role ECS uses to pull the image, read the secrets and write logs."
  type        = string
}

variable "task_role_arn" {
  description = "Role chat-server and the collector act as (DynamoDB tables, X-Ray)."
  type        = string
}

variable "log_group_name" {
  description = "CloudWatch log group of both containers."
  type        = string
}

variable "table_prefix" {
  description = "CHAT_DYNAMODB_TABLE_PREFIX: prefix of the three DynamoDB tables."
  type        = string
}

variable "token_secret_parameter_arn" {
  description = "SSM SecureString parameter holding CHAT_TOKEN_SECRET."
  type        = string
}

variable "redis_url_parameter_arn" {
  description = "SSM SecureString parameter holding CHAT_REDIS_URL (rediss://:token@host:6379)."
  type        = string
}

variable "drain_secs" {
  description = "CHAT_DRAIN_SECS: seconds over which a stopping task spreads its reconnect frames."
  type        = number
  default     = 10
}

variable "stop_timeout" {
  description = "Seconds between SIGTERM and SIGKILL; must exceed drain_secs."
  type        = number
  default     = 30

  validation {
    condition     = var.stop_timeout <= 120
    error_message = "Fargate allows a stopTimeout of at most 120 seconds."
  }
}

variable "allowed_origins" {
  description = "CHAT_ALLOWED_ORIGINS; empty = chat-server's default (same host, which CloudFront keeps by forwarding Host)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "kms_key_arn" {
  description = "Customer managed KMS key encrypting the Container Insights log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps Container Insights performance logs."
  type        = number
  default     = 365
}

variable "admin_port" {
  description = "Port of chat-server's admin listener (metrics) on the task's loopback: CHAT_ADMIN_LISTEN and the collector's scrape target."
  type        = number
  default     = 9090
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of chat-server's metrics (awsemf exporter)."
  type        = string
  default     = "ChatServer"
}

variable "metrics_interval_secs" {
  description = "Seconds between two scrapes of chat-server's /metrics by the collector."
  type        = number
  default     = 60

  validation {
    condition     = var.metrics_interval_secs >= 10 && var.metrics_interval_secs <= 300
    error_message = "metrics_interval_secs must be between 10 and 300."
  }
}

variable "exported_metrics" {
  description = "Prometheus metric names (as chat-server's /metrics writes them) that become CloudWatch metrics; the dashboard and alarms use these."
  type        = list(string)
  default     = []
}

variable "metrics_log_group_name" {
  description = "Log group the collector's awsemf exporter writes (monitoring module)."
  type        = string
}

variable "frame_ancestors" {
  description = "CHAT_FRAME_ANCESTORS: origins allowed to embed the page besides its own (the same list CloudFront's page policy carries)."
  type        = list(string)
  default     = []
}

variable "uploads_bucket" {
  description = "CHAT_UPLOADS_BUCKET: S3 bucket of shared images; null = chat-server keeps them under its data directory."
  type        = string
  default     = null
}

variable "uploads_prefix" {
  description = "CHAT_UPLOADS_PREFIX: key prefix of the images in the bucket."
  type        = string
  default     = "uploads/"
}

variable "uploads_public_url" {
  description = "CHAT_UPLOADS_PUBLIC_URL: where viewers fetch the images, ending at the prefix (https://<distribution>/uploads/); required with uploads_bucket."
  type        = string
  default     = null
}
