variable "name" {
  description = "Repository name."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed KMS key encrypting the images."
  type        = string
}

variable "keep_images" {
  description = "How many images to keep (rollback targets); older ones expire."
  type        = number
  default     = 20
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
