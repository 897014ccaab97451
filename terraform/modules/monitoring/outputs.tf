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
