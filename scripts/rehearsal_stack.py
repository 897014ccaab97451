"""Creates, in a local AWS API endpoint (moto server), the resources opsctl drives on AWS: an
ALB with a weighted listener (blue 100 / green 0), blue and green target groups and ECS services
tagged Color, and a CloudWatch alarm. For the laptop rehearsal of DEMO_GUIDE.md; never run it
against a real account (it refuses unless AWS_ENDPOINT_URL is a loopback address).

Usage: python rehearsal_stack.py NAME   (AWS_ENDPOINT_URL and AWS_REGION from the environment;
REHEARSAL_TARGETS=blue=HOST:PORT,green=HOST:PORT registers real local targets for localalb)
"""

import os
import sys
from urllib.parse import urlparse

import boto3


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "chat"
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    host = urlparse(endpoint).hostname or ""
    if not (host == "localhost" or host.startswith("127.")):
        sys.exit(f"rehearsal_stack: AWS_ENDPOINT_URL must be a loopback moto server, got {endpoint!r}")
    aws = boto3.session.Session(region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    ec2 = aws.client("ec2")
    elb = aws.client("elbv2")
    ecs = aws.client("ecs")
    cloudwatch = aws.client("cloudwatch")
    dynamodb = aws.client("dynamodb")

    # The connections table (as chat-server's schema defines it): opsctl keeps its lease and
    # the control record there, tasks their fleet heartbeats. `create-tables` accepts it.
    dynamodb.create_table(
        TableName=f"{name}-connections",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "conn_id", "AttributeType": "S"},
            {"AttributeName": "color", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "conn_id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "by-color",
            "KeySchema": [
                {"AttributeName": "color", "KeyType": "HASH"},
                {"AttributeName": "conn_id", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }],
    )
    dynamodb.update_time_to_live(
        TableName=f"{name}-connections",
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )

    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
        for cidr, az in [("10.20.1.0/24", "us-east-1a"), ("10.20.2.0/24", "us-east-1b")]
    ]
    sg = ec2.create_security_group(GroupName=f"{name}-tasks", Description="chat-server tasks", VpcId=vpc)["GroupId"]
    lb = elb.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tgs = {}
    for i, color in enumerate(["blue", "green"]):
        arn = elb.create_target_group(
            Name=f"{name}-{color}",
            Protocol="HTTP",
            Port=8080,
            VpcId=vpc,
            TargetType="ip",
            HealthCheckPath="/healthz",
            Tags=[{"Key": "Color", "Value": color}],
        )["TargetGroups"][0]["TargetGroupArn"]
        # REHEARSAL_TARGETS=blue=127.0.0.1:8081,green=127.0.0.1:8082 registers the local
        # chat-server tasks, which localalb then routes to; else stand-in addresses.
        real = dict(kv.split("=", 1) for kv in os.environ.get("REHEARSAL_TARGETS", "").split(",") if "=" in kv)
        if color in real:
            host, port = real[color].rsplit(":", 1)
            target = {"Id": host, "Port": int(port)}
        else:
            target = {"Id": f"10.20.{i + 1}.10", "Port": 8080}
        elb.register_targets(TargetGroupArn=arn, Targets=[target])
        # Above the tasks' CHAT_DRAIN_SECS (2) plus the 1 s the drain takes to start.
        elb.modify_target_group_attributes(
            TargetGroupArn=arn,
            Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": os.environ.get("REHEARSAL_DEREGISTRATION_DELAY", "5")}],
        )
        tgs[color] = arn
    elb.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": tgs["blue"], "Weight": 100},
                        {"TargetGroupArn": tgs["green"], "Weight": 0},
                    ]
                },
            }
        ],
    )
    ecs.create_cluster(clusterName=name)
    for color in ["blue", "green"]:
        td = ecs.register_task_definition(
            family=f"{name}-{color}",
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[
                {
                    "name": "chat-server",
                    "image": "chat-server:v1",
                    "essential": True,
                    "portMappings": [{"containerPort": 8080}],
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(
            cluster=name,
            serviceName=f"{name}-{color}",
            taskDefinition=td,
            desiredCount=1,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": subnets, "securityGroups": [sg], "assignPublicIp": "DISABLED"}
            },
            tags=[{"key": "Color", "value": color}],
        )
    cloudwatch.put_metric_alarm(
        AlarmName=f"{name}-target-5xx",
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=f"{name}-target-5xx", StateValue="OK", StateReason="rehearsal")
    print(f"rehearsal_stack: ALB {name}, cluster {name}, services {name}-blue and {name}-green")


if __name__ == "__main__":
    main()
