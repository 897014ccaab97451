# Shared images (chat-server's CHAT_UPLOADS_*): browsers PUT them straight into the web-client
# bucket under uploads/ through URLs chat-server presigns, and the distribution's default
# behaviour serves them like any other object of the bucket (origin access control, cached,
# nosniff from the security-headers policy). chat-server itself only reads an object back once
# to check its bytes, and deletes what fails. Objects expire after the event
# (uploads_expire_days; the rule is in main.tf with the bucket's other lifecycle rules), and
# force_destroy lets `terraform destroy` remove the bucket with whatever was uploaded.

variable "uploads_expire_days" {
  description = "Days after which shared images are deleted (the event is over)."
  type        = number
  default     = 14

  validation {
    condition     = var.uploads_expire_days >= 1
    error_message = "uploads_expire_days must be at least 1."
  }
}

variable "uploads_allowed_origins" {
  description = "Origins whose pages may PUT images into the bucket (the chat's public URLs); empty = the distribution's own https origin."
  type        = list(string)
  default     = []
}

locals {
  uploads_prefix  = "uploads/"
  uploads_origins = length(var.uploads_allowed_origins) > 0 ? var.uploads_allowed_origins : ["https://${aws_cloudfront_distribution.this.domain_name}"]
}

# The browser's PUT to a presigned URL is cross-origin (the bucket's own host name).
resource "aws_s3_bucket_cors_configuration" "uploads" {
  bucket = aws_s3_bucket.this.id

  cors_rule {
    allowed_methods = ["PUT"]
    allowed_origins = local.uploads_origins
    allowed_headers = ["content-type", "cache-control"]
    max_age_seconds = 3600
  }
}

# What chat-server's task role needs: presign PUTs (signed with its own credentials), read an
# upload back once, delete a refused one. Only under the prefix.
data "aws_iam_policy_document" "uploads" {
  statement {
    sid       = "ChatServerUploads"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.this.arn}/${local.uploads_prefix}*"]
  }
}

output "uploads_bucket" {
  description = "CHAT_UPLOADS_BUCKET for chat-server."
  value       = aws_s3_bucket.this.id
}

output "uploads_prefix" {
  description = "CHAT_UPLOADS_PREFIX for chat-server."
  value       = local.uploads_prefix
}

output "uploads_public_url" {
  description = "CHAT_UPLOADS_PUBLIC_URL for chat-server: where the distribution serves the images."
  value       = "https://${aws_cloudfront_distribution.this.domain_name}/${local.uploads_prefix}"
}

output "uploads_policy_json" {
  description = "IAM policy (JSON) chat-server's task role needs for uploads; attach it with the task role's other policies."
  value       = data.aws_iam_policy_document.uploads.json
}
