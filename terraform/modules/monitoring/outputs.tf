output "log_group_name" {
  description = "Log group of the chat-server and collector containers."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of the log group."
  value       = aws_cloudwatch_log_group.this.arn
}

output "alarm_names" {
  description = "Every alarm name, for opsctl shift --alarm."
  value = concat(
    [aws_cloudwatch_metric_alarm.alb_5xx.alarm_name],
    [for c in sort(tolist(local.colors)) : aws_cloudwatch_metric_alarm.target_5xx[c].alarm_name],
    [for c in sort(tolist(local.colors)) : aws_cloudwatch_metric_alarm.unhealthy[c].alarm_name],
    [for c in sort(tolist(local.colors)) : aws_cloudwatch_metric_alarm.latency_p95[c].alarm_name],
    [aws_cloudwatch_metric_alarm.client_errors.alarm_name],
  )
}

output "alarm_names_by_color" {
  description = "Alarm names per colour (5xx, unhealthy hosts, p95 latency): the ones to pass to opsctl shift --alarm when moving traffic to that colour."
  value = {
    for c in local.colors : c => [
      aws_cloudwatch_metric_alarm.target_5xx[c].alarm_name,
      aws_cloudwatch_metric_alarm.unhealthy[c].alarm_name,
      aws_cloudwatch_metric_alarm.latency_p95[c].alarm_name,
    ]
  }
}

output "metrics_log_group_name" {
  description = "Log group the collector's awsemf exporter writes."
  value       = aws_cloudwatch_log_group.metrics.name
}

output "metrics_log_group_arn" {
  description = "ARN of the EMF log group (the task role writes it)."
  value       = aws_cloudwatch_log_group.metrics.arn
}

output "exported_metrics" {
  description = "chat-server metric names the collector exports to CloudWatch."
  value       = local.exported_metrics
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard for the projector."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "dashboard_url" {
  description = "Console URL of the dashboard."
  value       = "https://${var.region}.console.aws.amazon.com/cloudwatch/home?region=${var.region}#dashboards/dashboard/${aws_cloudwatch_dashboard.this.dashboard_name}"
}

output "budget_name" {
  description = "Name of the monthly cost budget; null without budget_emails."
  value       = length(var.budget_emails) > 0 ? aws_budgets_budget.this[0].name : null
}
