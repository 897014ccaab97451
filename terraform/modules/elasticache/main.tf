# Redis-compatible ElastiCache for cross-task fanout and presence: a primary and a replica in two
# AZs with automatic failover, TLS in transit, encryption at rest and an AUTH token. The full
# rediss:// URL (token included) is kept in SSM so it reaches tasks as a secret, not plain env.
#
# With `shards` > 0 the group runs in cluster mode: that many shards (node groups) of a primary
# and one replica each, rooms spread over them by their `{room}` hash tag. The URL then names the
# configuration endpoint with the rediss+cluster:// scheme, which makes chat-server use the
# cluster client (sharded pub/sub on each room's shard, following slot moves and failovers).

locals {
  cluster = var.shards > 0

  # Cluster mode needs a parameter group with cluster-enabled yes (default.<family>.cluster.on).
  cluster_parameter_group = endswith(var.parameter_group_name, ".cluster.on") ? var.parameter_group_name : "${var.parameter_group_name}.cluster.on"
  parameter_group_name    = local.cluster ? local.cluster_parameter_group : var.parameter_group_name
  scheme                  = local.cluster ? "rediss+cluster" : "rediss"
  endpoint                = local.cluster ? aws_elasticache_replication_group.this.configuration_endpoint_address : aws_elasticache_replication_group.this.primary_endpoint_address
}

resource "random_password" "auth" {
  length  = 48
  special = false
}

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids

  tags = var.tags
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-redis-"
  description = "ElastiCache: Redis protocol from chat-server tasks only."
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-redis" })

  lifecycle {
    create_before_destroy = true
  }
}

# count, not for_each: the group ids are unknown until apply, their number is not.
resource "aws_vpc_security_group_ingress_rule" "clients" {
  count = length(var.allowed_security_group_ids)

  security_group_id            = aws_security_group.this.id
  description                  = "Redis over TLS from chat-server tasks"
  referenced_security_group_id = var.allowed_security_group_ids[count.index]
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port

  tags = var.tags
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = var.name
  description          = "chat-server fanout and presence"
  engine               = var.engine
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = var.port
  parameter_group_name = local.parameter_group_name

  # Off: one primary and one replica. On: `shards` node groups of a primary and one replica.
  cluster_mode               = local.cluster ? "enabled" : "disabled"
  num_cache_clusters         = local.cluster ? null : 2
  num_node_groups            = local.cluster ? var.shards : null
  replicas_per_node_group    = local.cluster ? 1 : null
  automatic_failover_enabled = true
  multi_az_enabled           = true

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [aws_security_group.this.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = random_password.auth.result

  auto_minor_version_upgrade = true
  apply_immediately          = true
  # No snapshots: Redis holds only pub/sub and presence keys that expire within seconds; every
  # durable byte is in DynamoDB, so a snapshot would have nothing worth restoring.
  snapshot_retention_limit = 0

  tags = var.tags
}

resource "aws_ssm_parameter" "url" {
  name        = "/${var.name}/redis-url"
  description = "CHAT_REDIS_URL for chat-server (TLS, AUTH token included)"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  value       = "${local.scheme}://:${random_password.auth.result}@${local.endpoint}:${var.port}"

  tags = var.tags
}
