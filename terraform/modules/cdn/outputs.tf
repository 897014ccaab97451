output "domain_name" {
  description = "Domain name of the distribution (the chat's public URL host)."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "distribution_id" {
  description = "ID of the distribution (for cache invalidations)."
  value       = aws_cloudfront_distribution.this.id
}

output "bucket_id" {
  description = "Bucket holding the web client (aws s3 sync target)."
  value       = aws_s3_bucket.this.id
}
