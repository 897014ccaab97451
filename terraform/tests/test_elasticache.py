"""ElastiCache cluster mode: off by default, N shards of a primary and a replica when asked, and a
CHAT_REDIS_URL whose scheme tells chat-server which client to use (checked against the binary)."""

from __future__ import annotations


def test_cluster_mode_is_a_shard_count_off_by_default(root, modules):
    variables = modules["elasticache"]["variable"]
    assert variables["shards"]["default"] == 0
    assert variables["shards"]["validation"], "shards is validated"
    assert root["variable"]["redis_shards"]["default"] == 0
    assert root["module"]["elasticache"]["shards"] == "${var.redis_shards}"


def test_cluster_mode_makes_shards_of_a_primary_and_a_replica(modules):
    group = modules["elasticache"]["resource"]["aws_elasticache_replication_group"]["this"]
    locals_ = modules["elasticache"]["locals"]
    assert locals_["cluster"] == "${var.shards > 0}"
    assert "enabled" in group["cluster_mode"] and "disabled" in group["cluster_mode"]
    assert "var.shards" in group["num_node_groups"]
    assert "1" in group["replicas_per_node_group"]
    assert "null" in group["num_cache_clusters"] and "2" in group["num_cache_clusters"]
    assert group["parameter_group_name"] == "${local.parameter_group_name}"
    assert "local.cluster_parameter_group" in locals_["parameter_group_name"]
    assert ".cluster.on" in locals_["cluster_parameter_group"]
    assert "configuration_endpoint_address" in locals_["endpoint"]
    assert "primary_endpoint_address" in locals_["endpoint"]


def test_the_cluster_scheme_is_one_chat_server_accepts(modules, server_help):
    assert "rediss+cluster" in modules["elasticache"]["locals"]["scheme"]
    assert "rediss+cluster://" in server_help, "chat-server --help names the cluster scheme"
