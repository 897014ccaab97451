"""Creates, in a local AWS API endpoint (moto server), the resources opsctl drives on AWS, in the
shapes Terraform gives them (scripts/shapes.py, checked against terraform/ by
terraform/tests/test_shapes.py): an ALB whose production listener answers 403 unless the origin
header is present, the weighted forward (blue 100 / green 0) in the `production` rule behind it,
the per-colour asset rules and the test listener that always reaches green; blue and green target
groups and ECS services tagged Color, running two-container task definitions (chat and the
aws-otel-collector sidecar) rendered from Terraform's template; the alarms the stage commands
name. For the laptop rehearsal of DEMO_GUIDE.md; never run it against a real account (it refuses
unless AWS_ENDPOINT_URL is a loopback address). The DynamoDB tables are chat-server's own
(`chat-server create-tables`, run by rehearsal.sh).

Usage (AWS_ENDPOINT_URL and AWS_REGION from the environment):
  python rehearsal_stack.py create NAME     the stack; REHEARSAL_TARGETS=blue=HOST:PORT,green=HOST:PORT
                                            registers real local targets for localalb, and
                                            REHEARSAL_URL / REHEARSAL_TEST_URL are the origins
                                            of the production and test listeners
  python rehearsal_stack.py task-env NAME COLOR
                                            the environment of COLOR's chat container, as the
                                            task definition its service runs says (KEY=VALUE lines)
  python rehearsal_stack.py reapply NAME    what a later `terraform apply` puts back: Terraform's
                                            tags on the listeners, rules, target groups and
                                            services, and the desired counts it manages
"""

import os
import sys
from urllib.parse import urlparse

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402

ACCOUNT = "123456789012"  # moto's


def clients():
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    host = urlparse(endpoint).hostname or ""
    if not (host == "localhost" or host.startswith("127.")):
        sys.exit(f"rehearsal_stack: AWS_ENDPOINT_URL must be a loopback moto server, got {endpoint!r}")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return region, boto3.session.Session(region_name=region)


def tag_list(tags: dict, key="Key", value="Value") -> list:
    return [{key: k, value: v} for k, v in tags.items()]


def create(name: str) -> None:
    region, aws = clients()
    ec2 = aws.client("ec2")
    elb = aws.client("elbv2")
    ecs = aws.client("ecs")
    cloudwatch = aws.client("cloudwatch")

    url = os.environ.get("REHEARSAL_URL", f"https://{name}.example.com")
    test_url = os.environ.get("REHEARSAL_TEST_URL", f"http://{name}-alb.example.com:{shapes.TEST_LISTENER_PORT}")
    origins = shapes.chat_origins(url, test_url)

    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in [("10.20.1.0/24", f"{region}a"), ("10.20.2.0/24", f"{region}b")]
    ]
    sg = ec2.create_security_group(GroupName=f"{name}-tasks", Description="chat-server tasks", VpcId=vpc)["GroupId"]
    lb = elb.create_load_balancer(Name=name, Subnets=subnets, Tags=tag_list(shapes.terraform_tags(name)))[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    real = dict(kv.split("=", 1) for kv in os.environ.get("REHEARSAL_TARGETS", "").split(",") if "=" in kv)
    tgs = {}
    for i, color in enumerate(shapes.COLORS):
        arn = elb.create_target_group(
            Name=f"{name}-{color}",
            Protocol="HTTP",
            Port=shapes.CONTAINER_PORT,
            VpcId=vpc,
            TargetType="ip",
            HealthCheckPath=shapes.HEALTH_CHECK_PATH,
            Tags=tag_list(shapes.terraform_tags(name, {"Color": color})),
        )["TargetGroups"][0]["TargetGroupArn"]
        # REHEARSAL_TARGETS=blue=127.0.0.1:8081,green=127.0.0.1:8082 registers the local
        # chat-server tasks, which localalb then routes to; else stand-in addresses.
        if color in real:
            host, port = real[color].rsplit(":", 1)
            target = {"Id": host, "Port": int(port)}
        else:
            target = {"Id": f"10.20.{i + 1}.10", "Port": shapes.CONTAINER_PORT}
        elb.register_targets(TargetGroupArn=arn, Targets=[target])
        # Above the tasks' drain window plus the 1 s the drain takes to start (rehearsal.sh drains
        # in 2 s instead of Terraform's 10 so the guide runs in seconds).
        elb.modify_target_group_attributes(
            TargetGroupArn=arn,
            Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": os.environ.get("REHEARSAL_DEREGISTRATION_DELAY", "5")}],
        )
        tgs[color] = arn

    # The production listener as modules/alb lays it out behind CloudFront: 403 by default, the
    # weighted forward only for requests carrying the origin secret (both rotation slots).
    production = elb.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{
            "Type": "fixed-response",
            "FixedResponseConfig": {"StatusCode": "403", "ContentType": "text/plain", "MessageBody": "Forbidden"},
        }],
        Tags=tag_list(shapes.terraform_tags(name)),
    )["Listeners"][0]["ListenerArn"]
    origin = {"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": shapes.ORIGIN_HEADER, "Values": ["rehearsal-a", "rehearsal-b"]}}
    elb.create_rule(
        ListenerArn=production,
        Priority=shapes.PRODUCTION_RULE_PRIORITY,
        Conditions=[origin],
        Actions=[{
            "Type": "forward",
            "ForwardConfig": {"TargetGroups": [
                {"TargetGroupArn": tgs[c], "Weight": shapes.INITIAL_WEIGHTS[c]} for c in shapes.COLORS
            ]},
        }],
        Tags=tag_list(shapes.terraform_tags(name, shapes.PRODUCTION_RULE_TAGS)),
    )
    for color in shapes.COLORS:
        elb.create_rule(
            ListenerArn=production,
            Priority=shapes.ASSET_RULE_PRIORITY[color],
            Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": [f"{shapes.ASSETS_PATH}/{color}-*"]}}, origin],
            Actions=[{"Type": "forward", "TargetGroupArn": tgs[color]}],
            Tags=tag_list(shapes.terraform_tags(name, {"Color": color})),
        )
    # The test listener: green, whatever the weights.
    elb.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTP",
        Port=shapes.TEST_LISTENER_PORT,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tgs["green"]}],
        Tags=tag_list(shapes.terraform_tags(name)),
    )

    ecs.create_cluster(clusterName=name, tags=tag_list(shapes.terraform_tags(name), "key", "value"))
    for color in shapes.COLORS:
        td = ecs.register_task_definition(
            family=f"{name}-{color}",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            runtimePlatform={"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
            containerDefinitions=shapes.container_definitions(name, color, f"{name}:v1", region, ACCOUNT, origins),
            tags=tag_list(shapes.terraform_tags(name, {"Color": color}), "key", "value"),
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(
            cluster=name,
            serviceName=f"{name}-{color}",
            taskDefinition=td,
            desiredCount=shapes.DESIRED_COUNTS[color],
            launchType="FARGATE",
            loadBalancers=[{"targetGroupArn": tgs[color], "containerName": "chat", "containerPort": shapes.CONTAINER_PORT}],
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg], "assignPublicIp": "DISABLED"}
            },
            tags=tag_list(shapes.terraform_tags(name, {"Color": color}), "key", "value"),
        )

    # The alarms DEMO_GUIDE's stage commands gate on (modules/monitoring's names).
    alarms = [f"{name}-{c}-5xx" for c in shapes.COLORS] + [f"{name}-{c}-unhealthy-hosts" for c in shapes.COLORS]
    alarms += [f"{name}-4xx-surge", f"{name}-alb-5xx"]
    for alarm in alarms:
        cloudwatch.put_metric_alarm(
            AlarmName=alarm,
            Namespace="AWS/ApplicationELB",
            MetricName="HTTPCode_Target_5XX_Count",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=5.0,
            ComparisonOperator="GreaterThanThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="rehearsal")
    print(f"rehearsal_stack: ALB {name} (production listener 80, test listener {shapes.TEST_LISTENER_PORT}), "
          f"cluster {name}, services {name}-blue and {name}-green")


def task_env(name: str, color: str) -> None:
    _, aws = clients()
    ecs = aws.client("ecs")
    service = ecs.describe_services(cluster=name, services=[f"{name}-{color}"])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    chat = next(c for c in td["containerDefinitions"] if c["name"] == "chat")
    for e in chat.get("environment", []):
        print(f"{e['name']}={e['value']}")


def reapply(name: str) -> None:
    """Puts back what `terraform apply` manages, the way Terraform would: the tags it sets (tags
    it does not know are removed, except the provider's ignore_tags), and each service's desired
    count unless the service ignores it (an update of a service that forces a new deployment
    replaces that colour's tasks)."""
    _, aws = clients()
    elb = aws.client("elbv2")
    ecs = aws.client("ecs")
    lb = elb.describe_load_balancers(Names=[name])["LoadBalancers"][0]["LoadBalancerArn"]
    arns = []
    for listener in elb.describe_listeners(LoadBalancerArn=lb)["Listeners"]:
        arns.append(listener["ListenerArn"])
        arns += [r["RuleArn"] for r in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"] if not r["IsDefault"]]
    arns += [tg["TargetGroupArn"] for tg in elb.describe_target_groups(LoadBalancerArn=lb)["TargetGroups"]]
    for desc in elb.describe_tags(ResourceArns=arns)["TagDescriptions"]:
        have = {t["Key"]: t["Value"] for t in desc["Tags"]}
        stale = [k for k in have if k not in shapes.TERRAFORM_TAG_KEYS and not shapes.kept_on_apply(k)]
        if stale:
            elb.remove_tags(ResourceArns=[desc["ResourceArn"]], TagKeys=stale)
            print(f"rehearsal_stack: terraform apply removed {', '.join(sorted(stale))} from {desc['ResourceArn'].split('/', 1)[1]}")
    for color in shapes.COLORS:
        svc = ecs.describe_services(cluster=name, services=[f"{name}-{color}"])["services"][0]
        want = shapes.DESIRED_COUNTS[color]
        if "desired_count" not in shapes.SERVICE_IGNORE_CHANGES and svc["desiredCount"] != want:
            ecs.update_service(cluster=name, service=svc["serviceName"], desiredCount=want,
                               forceNewDeployment=shapes.FORCE_NEW_DEPLOYMENT)
            print(f"rehearsal_stack: terraform apply set {svc['serviceName']} to {want} tasks"
                  + (" (a new deployment: every task replaced)" if shapes.FORCE_NEW_DEPLOYMENT else ""))
    print("rehearsal_stack: terraform apply simulated")


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "create":
        create(args[1])
    elif len(args) == 3 and args[0] == "task-env":
        task_env(args[1], args[2])
    elif len(args) == 2 and args[0] == "reapply":
        reapply(args[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
