# Where the tasks log, the alarms an operator (and `opsctl shift --alarm NAME`) watches (ALB 5xx,
# per colour target 5xx, unhealthy targets and p95 response time, a 4xx surge), chat-server's own
# metrics (EMF log group), the projector dashboard (dashboard.tf) and the budget (budget.tf).

locals {
  colors = toset(["blue", "green"])

  # chat-server metrics (names as its admin /metrics writes them) that the collector turns into
  # CloudWatch metrics with dimension `color`: what the dashboard and alarms read, nothing more
  # (each is a custom metric per colour, billed monthly).
  exported_metrics = [
    "chat_connections_open",
    "chat_messages_in_total",
    "chat_sends_failed_total",
    "chat_rate_limited_total",
    "chat_slow_consumers_closed_total",
    "chat_store_append_seconds",
    "chat_fanout_link_up",
  ]
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

# EMF lines written by the collector sidecar; CloudWatch extracts the metrics on ingestion, so the
# lines themselves are kept only briefly.
resource "aws_cloudwatch_log_group" "metrics" {
  #checkov:skip=CKV_AWS_338:EMF lines are raw copies of metrics CloudWatch has already extracted (and keeps 15 months); a year of them would only add storage cost.
  name              = "/ecs/${var.name}/metrics"
  retention_in_days = var.metrics_log_retention_days
  kms_key_id        = var.kms_key_arn

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "alb_5xx" {
  alarm_name          = "${var.name}-alb-5xx"
  alarm_description   = "The ALB itself answers 5xx (no healthy target, target reset or timeout)."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_ELB_5XX_Count"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  threshold           = var.error_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = var.tags
}

resource "aws_cloudwatch_metric_alarm" "target_5xx" {
  for_each = local.colors

  alarm_name          = "${var.name}-${each.key}-5xx"
  alarm_description   = "chat-server tasks of ${each.key} answer 5xx."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_Target_5XX_Count"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffixes[each.key] }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  threshold           = var.error_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = merge(var.tags, { Color = each.key })
}

resource "aws_cloudwatch_metric_alarm" "unhealthy" {
  for_each = local.colors

  alarm_name          = "${var.name}-${each.key}-unhealthy-hosts"
  alarm_description   = "At least one ${each.key} target fails the /healthz check."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffixes[each.key] }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = merge(var.tags, { Color = each.key })
}

resource "aws_cloudwatch_metric_alarm" "latency_p95" {
  for_each = local.colors

  alarm_name          = "${var.name}-${each.key}-p95-latency"
  alarm_description   = "p95 target response time of ${each.key} (HTTP API and WebSocket handshakes) is slow."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.target_group_arn_suffixes[each.key] }
  extended_statistic  = "p95"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 3
  threshold           = var.latency_p95_threshold_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  tags = merge(var.tags, { Color = each.key })
}

# A surge of 4xx: a client loop, an attack answered 429/403, or a broken web client. Both what
# chat-server answers and what the ALB answers itself (the 403 for requests without the origin
# secret), summed over 5 minutes.
resource "aws_cloudwatch_metric_alarm" "client_errors" {
  alarm_name          = "${var.name}-4xx-surge"
  alarm_description   = "More than ${var.client_error_threshold} 4xx answers (chat-server and ALB) in 5 minutes."
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = var.client_error_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  metric_query {
    id          = "total"
    expression  = "FILL(target, 0) + FILL(elb, 0)"
    label       = "4xx answers"
    return_data = true
  }

  metric_query {
    id = "target"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_4XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      stat        = "Sum"
      period      = 300
    }
  }

  metric_query {
    id = "elb"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_4XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      stat        = "Sum"
      period      = 300
    }
  }

  tags = var.tags
}
