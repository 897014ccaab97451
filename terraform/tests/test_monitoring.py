"""Metrics leave the task and reach people: the collector sidecar scrapes chat-server's admin
/metrics (loopback) and exports EMF to CloudWatch; the dashboard for the projector, the 4xx-surge
alarm and the budget read exactly those metrics. (The names are checked against a running
chat-server's /metrics in test_live_healthcheck.py.)"""

from __future__ import annotations

import json
import re

import pytest

from conftest import COLORS, MODULES, TERRAFORM, parse_dir, task_containers, templatefile_args


@pytest.fixture(scope="module")
def ecs():
    return parse_dir(MODULES / "ecs")


@pytest.fixture(scope="module")
def mon():
    return parse_dir(MODULES / "monitoring")


@pytest.fixture(scope="module")
def root_doc():
    return parse_dir(TERRAFORM)


def collector(ecs) -> dict:
    return ecs["locals"]["collector_config"]


def test_scrape_targets_the_admin_listener_on_loopback(ecs):
    env = {e["name"]: e["value"] for e in ecs["locals"]["base_environment"]}
    assert env["CHAT_ADMIN_LISTEN"] == "127.0.0.1:${var.admin_port}"
    config = collector(ecs)
    assert config.startswith("${{for color in local.colors : color =>"), "one collector config per colour"
    assert '"127.0.0.1:${var.admin_port}"' in config
    assert 'metrics_path = "/metrics"' in config
    assert "labels = {color = color}" in config, "each colour's metrics carry dimension color"
    assert 'scrape_interval = "${var.metrics_interval_secs}s"' in config


def test_metrics_pipeline_is_prometheus_to_awsemf(ecs):
    config = collector(ecs)
    assert 'metrics = {receivers = ["prometheus"], processors = ["resourcedetection", "batch"], exporters = ["awsemf"]}' in config
    assert 'traces = {receivers = ["otlp"], processors = ["resourcedetection", "batch"], exporters = ["awsxray"]}' in config
    assert "namespace = var.metrics_namespace" in config
    assert "log_group_name = var.metrics_log_group_name" in config
    assert 'dimensions = [["color"]]' in config
    assert 'metric_name_selectors = [for m in var.exported_metrics : "^${m}$"]' in config
    assert 'dimension_rollup_option = "NoDimensionRollup"' in config


def test_each_task_writes_its_own_log_stream(ecs):
    """awsemf fills {TaskId} from the ECS resource attributes; without the ecs resource detector
    in the pipeline the placeholder stays empty and every task of a colour writes one stream."""
    config = collector(ecs)
    assert 'log_stream_name = "${color}/{TaskId}"' in config
    detection = re.search(r"resourcedetection = \{(.*?)\}", config)
    assert detection, "no resourcedetection processor"
    assert re.search(r'detectors = \[[^\]]*"ecs"', detection.group(1)), detection.group(1)
    assert 'metrics = {receivers = ["prometheus"], processors = ["resourcedetection",' in config


def test_collector_gets_its_config_through_the_environment(ecs):
    assert templatefile_args(ecs)["collector_config"] == "yamlencode(local.collector_config[each.key])"
    collector = task_containers()[1]
    template = (MODULES / "ecs" / "containers.json.tftpl").read_text()
    assert '{ "name": "AOT_CONFIG_CONTENT", "value": ${jsonencode(collector_config)} }' in template
    assert any(e["name"] == "AOT_CONFIG_CONTENT" for e in collector["environment"])
    assert "command" not in collector, "a --config flag would override AOT_CONFIG_CONTENT"
    assert collector["essential"] is False


def test_root_wires_metrics_through_one_list(root_doc, mon):
    ecs_call = root_doc["module"]["ecs"]
    assert ecs_call["exported_metrics"] == "${module.monitoring.exported_metrics}"
    assert ecs_call["metrics_log_group_name"] == "${module.monitoring.metrics_log_group_name}"
    assert root_doc["module"]["iam"]["metrics_log_group_arn"] == "${module.monitoring.metrics_log_group_arn}"
    group = mon["resource"]["aws_cloudwatch_log_group"]["metrics"]
    assert group["kms_key_id"] == "${var.kms_key_arn}"
    assert mon["variable"]["metrics_namespace"]["default"] == parse_dir(MODULES / "ecs")["variable"]["metrics_namespace"]["default"]


def test_task_role_writes_only_the_metrics_log_group():
    statements = parse_dir(MODULES / "iam")["data"]["aws_iam_policy_document"]["task"]["statement"]
    (emf,) = [s for s in statements if s.get("sid") == "MetricsAsEmf"]
    assert sorted(emf["actions"]) == ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    assert emf["resources"] == ["${var.metrics_log_group_arn}", "${var.metrics_log_group_arn}:*"]


# The one expression every graph of the dashboard goes through (dashboard.tf, locals.widgets).
WIDGETS = (
    '${concat([for g in local.graphs : {type = "metric", x = g.x, y = g.y, width = g.width, height = 6, '
    'properties = merge({title = g.title, region = var.region, view = "timeSeries", stat = g.stat, '
    "period = 60, metrics = g.metrics}, try(g.options, {}))}], [local.alarm_widget])}"
)


def dashboard_widgets(mon) -> list[dict]:
    """The dashboard's widgets as `widgets` builds them from the `graphs` rows and the alarm widget."""
    body = mon["resource"]["aws_cloudwatch_dashboard"]["this"]["dashboard_body"]
    assert body == "${jsonencode({widgets = local.widgets})}"
    assert mon["locals"]["widgets"] == WIDGETS, "locals.widgets changed: update how this test builds the widgets"
    graphs = [
        {
            "type": "metric", "x": g["x"], "y": g["y"], "width": g["width"], "height": 6,
            "properties": {
                "title": g["title"], "region": "${var.region}", "view": "timeSeries", "stat": g["stat"], "period": 60,
                "metrics": g["metrics"], **g.get("options", {}),
            },
        }
        for g in mon["locals"]["graphs"]
    ]
    return graphs + [mon["locals"]["alarm_widget"]]


def widget(mon, title_part: str) -> dict:
    found = [w for w in dashboard_widgets(mon) if title_part.lower() in w["properties"]["title"].lower()]
    assert len(found) == 1, f"dashboard has {len(found)} widgets titled like {title_part!r}"
    return found[0]


@pytest.mark.parametrize(
    "title, metric",
    [
        ("Connections per colour", "chat_connections_open"),
        ("Send -> ack", "chat_store_append_seconds"),
        ("Redis link", "chat_fanout_link_up"),
        ("Rate-limited", "chat_rate_limited_total"),
    ],
)
def test_dashboard_shows_chat_server_metrics_per_colour(mon, title, metric):
    w = widget(mon, title)
    assert w["type"] == "metric"
    assert metric in w["properties"]["metrics"], f"{title} does not plot {metric}"
    assert metric in mon["locals"]["exported_metrics"], f"{metric} is not exported to CloudWatch"
    per_color = mon["locals"]["per_color"]
    assert per_color.startswith("${{for metric in local.exported_metrics : metric => [for c in sort(tolist(local.colors)) : [local.ns, metric, \"color\", c")


def test_dashboard_messages_per_second_is_a_rate(mon):
    w = widget(mon, "Messages per second")
    metrics = w["properties"]["metrics"]
    assert "m${i}/PERIOD(m${i})" in metrics and "chat_messages_in_total" in metrics


def test_dashboard_errors_health_and_dynamodb(mon):
    http = widget(mon, "5xx / 4xx")["properties"]["metrics"]
    alb = mon["locals"]["alb_metric"]
    for name in ("HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count", "HTTPCode_Target_4XX_Count", "HTTPCode_ELB_4XX_Count"):
        assert name in alb
    assert "local.alb_metric" in http
    health = widget(mon, "Target health")["properties"]["metrics"]
    assert "HealthyHostCount" in health and "UnHealthyHostCount" in health and "var.target_group_arn_suffixes[c]" in health
    ddb = widget(mon, "DynamoDB errors")["properties"]["metrics"]
    assert 'local.per_color["chat_sends_failed_total"]' in ddb
    assert "ThrottledRequests" in ddb and "SystemErrors" in ddb
    alarms = widget(mon, "Alarms")
    assert alarms["type"] == "alarm"
    assert "aws_cloudwatch_metric_alarm.client_errors.arn" in json.dumps(alarms["properties"]["alarms"])


def test_dashboard_widgets_do_not_overlap(mon):
    cells = set()
    for w in dashboard_widgets(mon):
        assert w["x"] + w["width"] <= 24
        for x in range(w["x"], w["x"] + w["width"]):
            for y in range(w["y"], w["y"] + w["height"]):
                assert (x, y) not in cells, f"{w['properties']['title']} overlaps another widget"
                cells.add((x, y))


def test_client_error_surge_alarm(mon, root_doc):
    alarm = mon["resource"]["aws_cloudwatch_metric_alarm"]["client_errors"]
    assert alarm["alarm_name"] == "${var.name}-4xx-surge"
    queries = {q["id"]: q for q in alarm["metric_query"]}
    assert queries["total"]["expression"] == "FILL(target, 0) + FILL(elb, 0)" and queries["total"]["return_data"] is True
    assert queries["target"]["metric"][0]["metric_name"] == "HTTPCode_Target_4XX_Count"
    assert queries["elb"]["metric"][0]["metric_name"] == "HTTPCode_ELB_4XX_Count"
    for q in ("target", "elb"):
        assert queries[q]["metric"][0]["stat"] == "Sum" and queries[q]["metric"][0]["period"] == 300
    assert alarm["threshold"] == "${var.client_error_threshold}"
    assert alarm["comparison_operator"] == "GreaterThanThreshold"
    assert alarm["alarm_actions"] == "${var.alarm_actions}"
    assert root_doc["module"]["monitoring"]["client_error_threshold"] == "${var.client_error_threshold}"
    names = mon["output"]["alarm_names"]["value"]
    assert "aws_cloudwatch_metric_alarm.client_errors.alarm_name" in names


def test_budget_mails_the_configured_addresses(mon, root_doc):
    budget = mon["resource"]["aws_budgets_budget"]["this"]
    assert budget["count"] == "${length(var.budget_emails) > 0 ? 1 : 0}"
    assert budget["budget_type"] == "COST" and budget["time_unit"] == "MONTHLY" and budget["limit_unit"] == "USD"
    kinds = {(n["notification_type"], n["threshold"]) for n in budget["notification"]}
    assert kinds == {("ACTUAL", 80), ("FORECASTED", 100)}
    for n in budget["notification"]:
        assert n["subscriber_email_addresses"] == "${var.budget_emails}"
    assert root_doc["module"]["monitoring"]["budget_emails"] == "${var.budget_emails}"
    assert root_doc["module"]["monitoring"]["monthly_budget_usd"] == "${var.monthly_budget_usd}"


def test_outputs_lead_to_the_dashboard(root_doc, mon):
    for name in ("dashboard_url", "dashboard_name", "budget_name", "alb_url", "origin_verify_parameter", "web_acl_arn"):
        assert name in root_doc["output"], name
    url = mon["output"]["dashboard_url"]["value"]
    assert re.search(r"#dashboards/dashboard/\$\{aws_cloudwatch_dashboard\.this\.dashboard_name\}$", url)
    for color in COLORS:
        assert color in root_doc["variable"]["desired_counts"]["default"]


# chat-server's metrics (namespace var.metrics_namespace) that are counters, graphed as sums.
SCRAPED_COUNTERS = ("chat_messages_in_total", "chat_rate_limited_total", "chat_slow_consumers_closed_total")


def test_dashboard_is_right_for_a_60_second_scrape(mon, ecs):
    """Each task's metrics arrive once per scrape (60 s). Summed over 60 s periods a task's sample
    lands in 0 or 2 of them: the connections line dips to 0 or doubles, a rate drops to 0 then
    doubles. Counters need periods of several scrapes; the gauge is the mean per task times the
    running tasks, with a missing sample carried over."""
    assert mon["variable"]["metrics_interval_secs"]["default"] == ecs["variable"]["metrics_interval_secs"]["default"]
    scrape = mon["variable"]["metrics_interval_secs"]["default"]
    assert mon["locals"]["counter_period"] == "${3 * var.metrics_interval_secs}"
    for w in dashboard_widgets(mon):
        props = w["properties"]
        if w["type"] != "metric":
            continue
        metrics = props["metrics"]
        if any(c in metrics for c in SCRAPED_COUNTERS):
            assert props["period"] == "${local.counter_period}", f"{props['title']}: period {props['period']} for a {scrape} s scrape"
    conns = widget(mon, "Connections per colour")["properties"]
    assert conns["stat"] == "Average", "a sum of a gauge scraped once per period dips and doubles"
    assert "FILL(c${i}, REPEAT) * FILL(t${i}, REPEAT)" in conns["metrics"]
    assert '"ECS/ContainerInsights", "RunningTaskCount", "ClusterName", var.name, "ServiceName", "${var.name}-${c}"' in conns["metrics"]
