output "primary_endpoint" {
  description = "Endpoint clients connect to (follows failover): the primary endpoint, or in cluster mode the configuration endpoint."
  value       = local.endpoint
}

output "cluster_mode" {
  description = "Whether the replication group runs in cluster mode (shards > 0)."
  value       = local.cluster
}

output "port" {
  description = "Port of the replication group."
  value       = var.port
}

output "url_parameter_arn" {
  description = "SSM SecureString parameter with the rediss:// URL (CHAT_REDIS_URL)."
  value       = aws_ssm_parameter.url.arn
}

output "url_parameter_name" {
  description = "Name of the SSM parameter with CHAT_REDIS_URL."
  value       = aws_ssm_parameter.url.name
}

output "security_group_id" {
  description = "Security group of the replication group."
  value       = aws_security_group.this.id
}
