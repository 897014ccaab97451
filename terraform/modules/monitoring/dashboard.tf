# The dashboard for the projector: one screen, large widgets, per colour where it matters, so a
# blue/green shift shows as connections moving from one line to the other.

locals {
  ns = var.metrics_namespace

  # [namespace, metric, dimension, value, options] per colour.
  per_color = {
    for metric in local.exported_metrics : metric => [
      for c in sort(tolist(local.colors)) : [local.ns, metric, "color", c, { label = c }]
    ]
  }

  alb_metric = { for name in ["HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count", "HTTPCode_Target_4XX_Count", "HTTPCode_ELB_4XX_Count"] :
    name => ["AWS/ApplicationELB", name, "LoadBalancer", var.alb_arn_suffix, { label = name, stat = "Sum" }]
  }

  dynamodb_search = join(" OR ", [for t in var.table_names : "TableName=\"${t}\""])

  # chat-server's metrics arrive once per scrape (metrics_interval_secs, 60 s) from each task. A
  # graph summing them over periods as long as the scrape gets a task's sample in 0 or 2 periods
  # (the line dips to 0 or doubles). Counters are graphed over three scrapes; the connections
  # gauge as the mean per task times the running tasks (Container Insights), carried over a
  # period without a sample (FILL … REPEAT).
  counter_period = 3 * var.metrics_interval_secs

  # The graphs, one row each: where it sits (every graph is 6 high), its title, statistic and
  # metrics, and any option of its own; `widgets` gives them the shape they all share.
  graphs = [
    {
      x       = 0, y = 0, width = 8, title = "Connections per colour", stat = "Average"
      metrics = concat(
        [for i, c in sort(tolist(local.colors)) : [{ expression = "FILL(c${i}, REPEAT) * FILL(t${i}, REPEAT)", label = c, id = "e${i}" }]],
        [for i, c in sort(tolist(local.colors)) : [local.ns, "chat_connections_open", "color", c, { id = "c${i}", visible = false }]],
        [for i, c in sort(tolist(local.colors)) : ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", var.name, "ServiceName", "${var.name}-${c}", { id = "t${i}", visible = false }]],
      )
      options = { stacked = true }
    },
    {
      x = 8, y = 0, width = 8, title = "Messages per second", stat = "Sum"
      metrics = concat(
        [for i, c in sort(tolist(local.colors)) : [{ expression = "m${i}/PERIOD(m${i})", label = c, id = "e${i}" }]],
        [for i, c in sort(tolist(local.colors)) : [local.ns, "chat_messages_in_total", "color", c, { id = "m${i}", visible = false }]],
      )
      options = { period = local.counter_period }
    },
    {
      x       = 16, y = 0, width = 8, title = "Send -> ack: durable write, mean seconds", stat = "Average"
      metrics = local.per_color["chat_store_append_seconds"]
    },
    {
      x       = 0, y = 6, width = 8, title = "HTTP 5xx / 4xx per minute", stat = "Sum"
      metrics = [for name in keys(local.alb_metric) : local.alb_metric[name]]
    },
    {
      x = 8, y = 6, width = 8, title = "Target health per colour", stat = "Maximum"
      metrics = flatten([
        for c in sort(tolist(local.colors)) : [
          ["AWS/ApplicationELB", "HealthyHostCount", "TargetGroup", var.target_group_arn_suffixes[c], "LoadBalancer", var.alb_arn_suffix, { label = "${c} healthy" }],
          ["AWS/ApplicationELB", "UnHealthyHostCount", "TargetGroup", var.target_group_arn_suffixes[c], "LoadBalancer", var.alb_arn_suffix, { label = "${c} unhealthy" }],
        ]
      ])
    },
    {
      x       = 16, y = 6, width = 8, title = "Redis link up (1 = every task linked)", stat = "Minimum"
      metrics = local.per_color["chat_fanout_link_up"]
      options = { yAxis = { left = { min = 0, max = 1 } } }
    },
    {
      x = 0, y = 12, width = 12, title = "DynamoDB errors: failed sends, throttles, system errors", stat = "Sum"
      metrics = concat(
        local.per_color["chat_sends_failed_total"],
        [[{ expression = "SEARCH('{AWS/DynamoDB,TableName,Operation} MetricName=(\"ThrottledRequests\" OR \"SystemErrors\") (${local.dynamodb_search})', 'Sum', 60)", id = "ddb", label = "" }]],
      )
    },
    {
      x       = 12, y = 12, width = 6, title = "Rate-limited frames, slow consumers closed", stat = "Sum"
      metrics = concat(local.per_color["chat_rate_limited_total"], local.per_color["chat_slow_consumers_closed_total"])
      options = { period = local.counter_period }
    },
  ]

  alarm_widget = {
    type = "alarm", x = 18, y = 12, width = 6, height = 6
    properties = {
      title = "Alarms"
      alarms = concat(
        [aws_cloudwatch_metric_alarm.alb_5xx.arn, aws_cloudwatch_metric_alarm.client_errors.arn],
        [for c in sort(tolist(local.colors)) : aws_cloudwatch_metric_alarm.target_5xx[c].arn],
        [for c in sort(tolist(local.colors)) : aws_cloudwatch_metric_alarm.unhealthy[c].arn],
        [for c in sort(tolist(local.colors)) : aws_cloudwatch_metric_alarm.latency_p95[c].arn],
      )
    }
  }

  widgets = concat(
    [for g in local.graphs : {
      type = "metric", x = g.x, y = g.y, width = g.width, height = 6
      properties = merge(
        { title = g.title, region = var.region, view = "timeSeries", stat = g.stat, period = 60, metrics = g.metrics },
        try(g.options, {}),
      )
    }],
    [local.alarm_widget],
  )
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({ widgets = local.widgets })
}
