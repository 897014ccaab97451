output "name" {
  description = "Name of the ALB (OPSCTL_ALB)."
  value       = aws_lb.this.name
}

output "arn" {
  description = "ARN of the ALB."
  value       = aws_lb.this.arn
}

output "arn_suffix" {
  description = "ARN suffix of the ALB (CloudWatch LoadBalancer dimension)."
  value       = aws_lb.this.arn_suffix
}

output "dns_name" {
  description = "DNS name of the ALB."
  value       = aws_lb.this.dns_name
}

output "security_group_id" {
  description = "Security group of the ALB (tasks admit traffic from it)."
  value       = aws_security_group.this.id
}

output "listener_port" {
  description = "Port of the production listener whose weights opsctl shifts (opsctl --listener-port)."
  value       = local.listener_port
}

output "listener_protocol" {
  description = "Protocol CloudFront uses to reach the production listener."
  value       = local.https ? "https" : "http"
}

output "test_listener_url" {
  description = "URL of the test listener (green only)."
  value       = "${lower(local.test_protocol)}://${local.https && var.domain_name != null ? var.domain_name : aws_lb.this.dns_name}:${var.test_listener_port}"
}

output "target_group_arns" {
  description = "Target group ARN per colour."
  value       = { for color, tg in aws_lb_target_group.this : color => tg.arn }

  # ECS refuses a service whose target group no listener uses yet: hand the ARNs out only then.
  depends_on = [aws_lb_listener.this, aws_lb_listener.test, aws_lb_listener_rule.production]
}

output "target_group_arn_suffixes" {
  description = "Target group ARN suffix per colour (CloudWatch TargetGroup dimension)."
  value       = { for color, tg in aws_lb_target_group.this : color => tg.arn_suffix }
}

output "log_bucket_id" {
  description = "S3 bucket holding access logs (ALB, and S3 server access logs under s3/)."
  value       = aws_s3_bucket.logs.id
}

output "url" {
  description = "URL of the production listener by the ALB's name (browsers reach it only with public_access; with a certificate use domain_name)."
  value       = "${local.https ? "https" : "http"}://${local.https && var.domain_name != null ? var.domain_name : aws_lb.this.dns_name}"
}

output "production_rule_arn" {
  description = "Listener rule holding the weighted forward when only CloudFront may reach the ALB (tag chat:traffic = production); null with public_access."
  value       = local.verify_origin ? aws_lb_listener_rule.production[0].arn : null
}
