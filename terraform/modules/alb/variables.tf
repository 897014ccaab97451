variable "name" {
  description = "Name of the ALB and prefix of its target groups (ALB names: at most 32 characters)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the target groups and security group."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR the tasks live in (egress from the ALB to targets)."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets of the ALB, at least two AZs."
  type        = list(string)
}

variable "target_port" {
  description = "Port chat-server listens on inside the task (CHAT_LISTEN)."
  type        = number
  default     = 8080
}

variable "health_check_path" {
  description = "Liveness path the target groups probe (chat-server answers 200 while it serves)."
  type        = string
  default     = "/healthz"
}

variable "idle_timeout" {
  description = "Seconds an idle connection (WebSocket included) stays open. Must exceed the server's 30 s ping interval."
  type        = number
  default     = 120

  validation {
    condition     = var.idle_timeout > 30 && var.idle_timeout <= 4000
    error_message = "idle_timeout must be above the server's 30 s ping interval and at most 4000 s."
  }
}

variable "deregistration_delay" {
  description = "Seconds a deregistering target keeps its connections; longer than CHAT_DRAIN_SECS."
  type        = number
  default     = 20
}

variable "initial_weights" {
  description = "Listener weights at creation only (opsctl owns them afterwards)."
  type        = map(number)
  default     = { blue = 100, green = 0 }
}

variable "certificate_arn" {
  description = "ACM certificate (same region) for an HTTPS listener on 443; null = HTTP on 80 only, behind CloudFront."
  type        = string
  default     = null
}

variable "ssl_policy" {
  description = "TLS policy of HTTPS listeners."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "test_listener_port" {
  description = "Port of the test listener that forwards to green only."
  type        = number
  default     = 9000
}

variable "test_listener_cidr_blocks" {
  description = "IPv4 CIDRs allowed to reach the test listener (operators' addresses, e.g. 203.0.113.7/32)."
  type        = list(string)
  default     = []
}

variable "enable_deletion_protection" {
  description = "Protect the ALB from deletion (then terraform destroy needs it turned off first)."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Days ALB access logs are kept in S3."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "domain_name" {
  description = "DNS name covered by certificate_arn and pointed at the ALB (CloudFront's HTTPS origin host); required with certificate_arn."
  type        = string
  default     = null
}

variable "drain_secs" {
  description = "CHAT_DRAIN_SECS of the tasks; deregistration_delay must exceed it."
  type        = number
  default     = 10
}

variable "public_access" {
  description = "Open the production listener to browsers directly (0.0.0.0/0) instead of only our CloudFront distribution."
  type        = bool
  default     = false
}

variable "origin_verify_header_name" {
  description = "Header CloudFront adds to every origin request; without public_access the production rule forwards only requests carrying one of origin_verify_values in it."
  type        = string
  default     = "X-Origin-Verify"
}

variable "origin_verify_values" {
  description = "Accepted values of origin_verify_header_name: the current secret and the previous rotation slot."
  type        = list(string)
  default     = []
  sensitive   = true

  validation {
    condition     = length(var.origin_verify_values) <= 4 && alltrue([for v in var.origin_verify_values : length(v) >= 16 && length(v) <= 128])
    error_message = "origin_verify_values takes at most 4 values of 16-128 characters (an ALB rule allows 5 condition values in all; one header value at most 128)."
  }
}

variable "assets_path" {
  description = "Path prefix under which chat-server serves its web client as <prefix>/<colour>-<build>/…; each colour's prefix is routed to that colour."
  type        = string
  default     = "/assets"
}
