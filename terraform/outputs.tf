output "url" {
  description = "Public URL of the chat (CloudFront)."
  value       = "https://${module.cdn.domain_name}"
}

output "cloudfront_domain_name" {
  description = "Domain name of the CloudFront distribution."
  value       = module.cdn.domain_name
}

output "cloudfront_distribution_id" {
  description = "CloudFront distribution ID (cache invalidations after a web-client change)."
  value       = module.cdn.distribution_id
}

output "alb_name" {
  description = "Name of the ALB: OPSCTL_ALB."
  value       = module.alb.name
}

output "alb_url" {
  description = "The production listener by the ALB's name: browsers reach it only with alb_public_access (CloudFront-only otherwise)."
  value       = module.alb.url
}

output "alb_dns_name" {
  description = "DNS name of the ALB."
  value       = module.alb.dns_name
}

output "listener_port" {
  description = "Production listener port whose weights opsctl shifts (opsctl --listener-port)."
  value       = module.alb.listener_port
}

output "test_listener_url" {
  description = "Test listener URL: green only, for previews before a shift."
  value       = module.alb.test_listener_url
}

output "cluster_name" {
  description = "ECS cluster: OPSCTL_CLUSTER."
  value       = module.ecs.cluster_name
}

output "service_names" {
  description = "ECS service per colour."
  value       = module.ecs.service_names
}

output "table_prefix" {
  description = "CHAT_DYNAMODB_TABLE_PREFIX of the tasks."
  value       = module.dynamodb.table_prefix
}

output "table_names" {
  description = "DynamoDB table names."
  value       = module.dynamodb.table_names
}

output "ecr_repository_url" {
  description = "Repository to push chat-server images to."
  value       = module.ecr.repository_url
}

output "redis_endpoint" {
  description = "Primary endpoint of the Redis replication group (the full URL with its token is in SSM: redis_url_parameter)."
  value       = "${module.elasticache.primary_endpoint}:${module.elasticache.port}"
}

output "redis_url_parameter" {
  description = "SSM parameter holding CHAT_REDIS_URL."
  value       = module.elasticache.url_parameter_name
}

output "uploads_bucket" {
  description = "S3 bucket of shared images (CHAT_UPLOADS_BUCKET); expires them after uploads_expiry_days."
  value       = module.uploads.bucket_name
}

output "uploads_public_url" {
  description = "Where viewers fetch shared images (CHAT_UPLOADS_PUBLIC_URL): CloudFront's /uploads/."
  value       = local.uploads_public_url
}

output "log_group_name" {
  description = "CloudWatch log group of the tasks."
  value       = module.monitoring.log_group_name
}

output "alarm_names" {
  description = "CloudWatch alarms, for opsctl shift --alarm."
  value       = module.monitoring.alarm_names
}

output "alarm_names_by_color" {
  description = "Alarms per colour to pass to opsctl shift --alarm when moving traffic to that colour."
  value       = module.monitoring.alarm_names_by_color
}

output "opsctl_environment" {
  description = "Environment for opsctl against this deployment (the table prefix is where the lease, the control record tasks watch and their fleet heartbeats live)."
  value = {
    AWS_REGION           = var.region
    OPSCTL_ALB           = module.alb.name
    OPSCTL_CLUSTER       = module.ecs.cluster_name
    OPSCTL_LISTENER_PORT = tostring(module.alb.listener_port)
    OPSCTL_TABLE_PREFIX  = module.dynamodb.table_prefix
  }
}

output "dashboard_url" {
  description = "CloudWatch dashboard for the projector (connections per colour, messages/s, latency, errors, target health)."
  value       = module.monitoring.dashboard_url
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = module.monitoring.dashboard_name
}

output "budget_name" {
  description = "AWS Budgets budget watching the month's cost; null without budget_emails."
  value       = module.monitoring.budget_name
}

output "origin_verify_parameter" {
  description = "SSM parameter holding the secret origin header value CloudFront sends (rotate with origin_secret_rotation)."
  value       = aws_ssm_parameter.origin_verify.name
}

output "web_acl_arn" {
  description = "WAF web ACL on CloudFront; null without waf_rate_limit."
  value       = module.cdn.web_acl_arn
}

output "token_secret_parameter" {
  description = "SSM parameter holding CHAT_TOKEN_SECRET; an organiser reads it to issue moderator credentials (chat-server moderator-token, docs/web-client.md \"Moderation\")."
  value       = aws_ssm_parameter.token_secret.name
}
