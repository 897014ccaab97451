output "domain_name" {
  description = "Domain name of the distribution (the chat's public URL host)."
  value       = aws_cloudfront_distribution.this.domain_name
}

output "arn" {
  description = "ARN of the distribution (the uploads bucket admits its reads only)."
  value       = aws_cloudfront_distribution.this.arn
}

output "distribution_id" {
  description = "ID of the distribution (for cache invalidations)."
  value       = aws_cloudfront_distribution.this.id
}

output "web_acl_arn" {
  description = "ARN of the WAF web ACL; null without waf_rate_limit."
  value       = var.waf_rate_limit == null ? null : aws_wafv2_web_acl.this[0].arn
}
