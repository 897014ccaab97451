variable "table_prefix" {
  description = "CHAT_DYNAMODB_TABLE_PREFIX: tables are {prefix}messages, {prefix}connections, {prefix}user-counter."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+$", var.table_prefix))
    error_message = "table_prefix must be non-empty and use only A-Z a-z 0-9 _ - . (what chat-server accepts)."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key encrypting the tables."
  type        = string
}

variable "deletion_protection" {
  description = "Protect tables from deletion (then terraform destroy needs it turned off first)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
