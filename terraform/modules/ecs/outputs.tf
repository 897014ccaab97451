output "cluster_name" {
  description = "Name of the ECS cluster (OPSCTL_CLUSTER)."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "service_names" {
  description = "ECS service name per colour."
  value       = { for color, svc in aws_ecs_service.this : color => svc.name }
}

output "task_definition_arns" {
  description = "First task definition revision per colour."
  value       = { for color, td in aws_ecs_task_definition.this : color => td.arn }
}

output "security_group_id" {
  description = "Security group of the tasks (Redis admits it)."
  value       = aws_security_group.this.id
}

output "container_insights_log_group_name" {
  description = "Log group Container Insights writes, owned by Terraform."
  value       = aws_cloudwatch_log_group.container_insights.name
}
