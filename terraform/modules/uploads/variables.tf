variable "name" {
  description = "Prefix of the bucket name (a random suffix is added; no dots, so presigned URLs on <bucket>.s3.<region>.amazonaws.com match S3's certificate)."
  type        = string
}

variable "prefix" {
  description = "Key prefix of the images (CHAT_UPLOADS_PREFIX); CloudFront serves the path /<prefix>* from the same keys."
  type        = string
  default     = "uploads/"

  validation {
    condition     = can(regex("^([A-Za-z0-9_.-]+/)+$", var.prefix))
    error_message = "prefix must be path segments of A-Z a-z 0-9 _ - . ending with / (chat-server's CHAT_UPLOADS_PREFIX rule, never empty: CloudFront routes the path)."
  }
}

variable "expiry_days" {
  description = "Days after which an uploaded image is deleted."
  type        = number
  default     = 30
}

variable "allowed_origins" {
  description = "Origins of the chat's pages, allowed to PUT into the bucket from a browser (CORS)."
  type        = list(string)

  validation {
    condition     = length(var.allowed_origins) > 0 && length(var.allowed_origins) <= 100
    error_message = "allowed_origins needs at least the chat's own origin (S3 allows 100 origins per rule set in practice)."
  }
}

variable "upload_headers" {
  description = "Request headers a browser's PUT carries besides host (those chat-server's presigned URL signs)."
  type        = list(string)
  default     = ["content-type", "cache-control", "if-none-match"]
}

variable "cloudfront_distribution_arn" {
  description = "The distribution allowed to read the images (origin access control)."
  type        = string
}

variable "access_log_bucket" {
  description = "Bucket receiving the server access logs (its policy admits S3 log delivery under s3/)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
