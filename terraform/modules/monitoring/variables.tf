variable "name" {
  description = "Name prefix of the log group and alarms."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed KMS key encrypting the log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps task logs."
  type        = number
  default     = 365
}

variable "alb_arn_suffix" {
  description = "ARN suffix of the ALB (LoadBalancer dimension)."
  type        = string
}

variable "target_group_arn_suffixes" {
  description = "ARN suffix of each colour's target group (TargetGroup dimension)."
  type        = map(string)
}

variable "error_threshold" {
  description = "5xx responses per minute, two minutes in a row, that raise an error alarm."
  type        = number
  default     = 5
}

variable "latency_p95_threshold_seconds" {
  description = "p95 target response time, three minutes in a row, that raises the latency alarm."
  type        = number
  default     = 0.5
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm changes state (e.g. an SNS topic); empty = none."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "region" {
  description = "Region of the metrics the dashboard shows."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of chat-server's metrics (written by the collector's awsemf exporter)."
  type        = string
  default     = "ChatServer"
}

variable "metrics_log_retention_days" {
  description = "Days the collector's EMF lines are kept (the extracted metrics follow CloudWatch's own retention)."
  type        = number
  default     = 3
}

variable "client_error_threshold" {
  description = "4xx answers (chat-server plus the ALB itself) in 5 minutes that raise the 4xx-surge alarm."
  type        = number
  default     = 500
}

variable "budget_emails" {
  description = "E-mail addresses told when the month's cost is forecast to pass, or passes, monthly_budget_usd; empty = no budget."
  type        = list(string)
  default     = []
}

variable "monthly_budget_usd" {
  description = "Monthly cost budget of the account in USD."
  type        = number
  default     = 150
}

variable "table_names" {
  description = "DynamoDB table names whose throttles and system errors the dashboard shows."
  type        = list(string)
  default     = []
}

variable "metrics_interval_secs" {
  description = "How often the collector scrapes chat-server's metrics (the ecs module's metrics_interval_secs): the dashboard's periods are laid out for it."
  type        = number
  default     = 60
}
