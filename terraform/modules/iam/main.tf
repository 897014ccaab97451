# Two roles, least privilege: the execution role (ECS itself: pull the image, write logs, read the
# two secrets) and the task role (chat-server: only its three tables and the images under the
# uploads prefix; the collector: X-Ray writes and EMF lines into the metrics log group).

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  # Regional endpoint of a service: <service>.<region>.amazonaws.com (.com.cn in China).
  endpoint_suffix = "${data.aws_region.current.id}.${data.aws_partition.current.dns_suffix}"
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Confused-deputy guard: only tasks of this account may assume the roles.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

################################################################################
# Execution role
################################################################################

resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  description        = "ECS pulls the chat-server image, writes its logs and reads its secrets"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "ReadSecrets"
    actions   = ["ssm:GetParameters"]
    resources = var.secret_parameter_arns
  }

  statement {
    sid       = "DecryptSecrets"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values = [
        "ssm.${local.endpoint_suffix}",
        "ecr.${local.endpoint_suffix}",
      ]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

################################################################################
# Task role
################################################################################

resource "aws_iam_role" "task" {
  name_prefix        = "${var.name}-task-"
  description        = "chat-server uses its DynamoDB tables and uploaded images; the collector sends traces to X-Ray"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  tags = var.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid = "ChatTables"
    actions = [
      "dynamodb:BatchGetItem",
      "dynamodb:BatchWriteItem",
      "dynamodb:ConditionCheckItem",
      "dynamodb:DeleteItem",
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:Query",
      "dynamodb:UpdateItem",
    ]
    resources = concat(var.table_arns, [for arn in var.table_arns : "${arn}/index/*"])
  }

  # Transactions (seq allocation with the message write) are authorised per item action above.
  statement {
    sid       = "TableKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.endpoint_suffix}"]
    }
  }

  # Images: chat-server presigns the browser's PUT (the PUT acts as this role), reads each object
  # back once to check it and deletes what fails the check. Only the uploads prefix.
  statement {
    sid       = "UploadedImages"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]
    resources = [var.uploads_objects_arn]
  }

  # Without ListBucket S3 answers a missing object with 403, not 404, and chat-server could not
  # tell "not uploaded yet" from a failure. The bucket holds nothing but the images.
  statement {
    sid       = "UploadsNotFound"
    actions   = ["s3:ListBucket"]
    resources = [var.uploads_bucket_arn]
  }

  # The collector's awsemf exporter: EMF lines into the metrics log group only.
  statement {
    sid       = "MetricsAsEmf"
    actions   = ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = [var.metrics_log_group_arn, "${var.metrics_log_group_arn}:*"]
  }

  statement {
    sid = "XRayWrites"
    actions = [
      "xray:PutTelemetryRecords",
      "xray:PutTraceSegments",
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
      "xray:GetSamplingStatisticSummaries",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "chat"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}
