output "bucket_name" {
  description = "Name of the uploads bucket (CHAT_UPLOADS_BUCKET)."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the uploads bucket."
  value       = aws_s3_bucket.this.arn
}

output "objects_arn" {
  description = "ARN pattern of the images (the prefix only): what the task role may put, read and delete."
  value       = "${aws_s3_bucket.this.arn}/${var.prefix}*"
}

output "bucket_regional_domain_name" {
  description = "Regional domain name of the bucket (CloudFront's origin)."
  value       = aws_s3_bucket.this.bucket_regional_domain_name
}

output "prefix" {
  description = "Key prefix of the images (CHAT_UPLOADS_PREFIX), also the CloudFront path /<prefix>*."
  value       = var.prefix
}
