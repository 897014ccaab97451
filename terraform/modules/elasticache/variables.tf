variable "name" {
  description = "Replication group id and name prefix."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets in two AZs for the primaries and the replicas."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed to connect (the chat-server tasks)."
  type        = list(string)
}

variable "engine" {
  description = "valkey (Redis OSS 7.2-compatible, about 20 % cheaper per node) or redis."
  type        = string
  default     = "valkey"

  validation {
    condition     = contains(["valkey", "redis"], var.engine)
    error_message = "engine must be valkey or redis."
  }
}

variable "engine_version" {
  description = "Engine version (matches parameter_group_name)."
  type        = string
  default     = "8.0"
}

variable "parameter_group_name" {
  description = "Parameter group of the engine version."
  type        = string
  default     = "default.valkey8"
}

variable "shards" {
  description = "0: cluster mode off (one primary, one replica). N > 0: cluster mode on with N shards of a primary and one replica each."
  type        = number
  default     = 0

  validation {
    condition     = var.shards >= 0 && var.shards <= 500 && floor(var.shards) == var.shards
    error_message = "shards must be a whole number from 0 (cluster mode off) to 500."
  }
}

variable "node_type" {
  description = "Node type of every node (primaries and replicas)."
  type        = string
  default     = "cache.t4g.micro"
}

variable "port" {
  description = "Port the nodes listen on."
  type        = number
  default     = 6379
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for encryption at rest and the URL parameter."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
