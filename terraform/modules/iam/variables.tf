variable "name" {
  description = "Name prefix of the roles."
  type        = string
}

variable "table_arns" {
  description = "ARNs of the DynamoDB tables chat-server may use (and their indexes)."
  type        = list(string)
}

variable "secret_parameter_arns" {
  description = "SSM parameters the execution role reads into the container (CHAT_TOKEN_SECRET, CHAT_REDIS_URL)."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Customer managed KMS key encrypting the tables and parameters."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "metrics_log_group_arn" {
  description = "Log group the collector sidecar writes chat-server's metrics to (EMF)."
  type        = string
}

variable "uploads_bucket_arn" {
  description = "ARN of the uploads bucket (ListBucket only, so a missing image answers 404)."
  type        = string
}

variable "uploads_objects_arn" {
  description = "ARN pattern of the images under the uploads prefix (bucket/prefix*): put, read, delete."
  type        = string
}
