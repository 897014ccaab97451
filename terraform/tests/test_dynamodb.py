"""The DynamoDB tables in Terraform are exactly the ones `chat-server create-tables` creates."""

from __future__ import annotations

PREFIX_REF = "${var.table_prefix}"


def key(name, attr_types):
    if name is None:
        return None
    assert name in attr_types, f"key {name!r} has no attribute block (declared: {sorted(attr_types)})"
    return {"name": name, "type": attr_types[name]}


def terraform_tables(dynamodb: dict, prefix: str) -> dict[str, dict]:
    """Each aws_dynamodb_table in the shape of contract/src/schema.rs's `Table`."""
    tables = {}
    for label, body in dynamodb["resource"]["aws_dynamodb_table"].items():
        assert body["name"].startswith(PREFIX_REF), f"table {label} is not named {PREFIX_REF}…: {body['name']}"
        name = prefix + body["name"][len(PREFIX_REF) :]
        attr_types = {a["name"]: a["type"] for a in body.get("attribute", [])}
        indexes = [
            {
                "name": gsi["name"],
                "hash_key": key(gsi["hash_key"], attr_types),
                "range_key": key(gsi.get("range_key"), attr_types),
                "projection": gsi["projection_type"],
            }
            for gsi in body.get("global_secondary_index", [])
        ]
        ttl = body.get("ttl", [{}])[0]
        pitr = body.get("point_in_time_recovery", [{}])[0]
        tables[name] = {
            "name": name,
            "hash_key": key(body["hash_key"], attr_types),
            "range_key": key(body.get("range_key"), attr_types),
            "global_secondary_indexes": sorted(indexes, key=lambda i: i["name"]),
            "ttl_attribute": ttl.get("attribute_name") if ttl.get("enabled") is True else None,
            "point_in_time_recovery": pitr.get("enabled") is True,
            "billing_mode": body["billing_mode"],
            # DynamoDB rejects attribute definitions that no key uses: Terraform must declare exactly these.
            "_attributes": attr_types,
        }
    return tables


def schema_tables(printed: list[dict]) -> dict[str, dict]:
    out = {}
    for table in printed:
        normal = {k: table.get(k) for k in (
            "name", "hash_key", "range_key", "global_secondary_indexes",
            "ttl_attribute", "point_in_time_recovery", "billing_mode",
        )}
        normal["global_secondary_indexes"] = sorted(table.get("global_secondary_indexes") or [], key=lambda i: i["name"])
        out[table["name"]] = normal
    return out


def printed_prefix(printed: list[dict]) -> str:
    names = [t["name"] for t in printed if t["name"].endswith("messages")]
    assert len(names) == 1, f"expected one …messages table in the printed schema: {[t['name'] for t in printed]}"
    return names[0][: -len("messages")]


def test_tables_equal_create_tables_schema(modules, printed_schema):
    prefix = printed_prefix(printed_schema)
    expected = schema_tables(printed_schema)
    actual = terraform_tables(modules["dynamodb"], prefix)

    assert sorted(actual) == sorted(expected), "Terraform and chat-server name different tables"
    for name, want in expected.items():
        got = {k: v for k, v in actual[name].items() if not k.startswith("_")}
        assert got == want, f"table {name}: Terraform {got} != create-tables {want}"


def test_attribute_blocks_are_exactly_the_key_attributes(modules, printed_schema):
    prefix = printed_prefix(printed_schema)
    for name, table in terraform_tables(modules["dynamodb"], prefix).items():
        used = {table["hash_key"]["name"]}
        if table["range_key"]:
            used.add(table["range_key"]["name"])
        for gsi in table["global_secondary_indexes"]:
            used.add(gsi["hash_key"]["name"])
            if gsi["range_key"]:
                used.add(gsi["range_key"]["name"])
        assert set(table["_attributes"]) == used, f"{name}: attribute blocks {sorted(table['_attributes'])} != keys {sorted(used)}"


def test_tasks_and_tables_share_one_prefix(root, modules):
    """The tables' prefix and the tasks' CHAT_DYNAMODB_TABLE_PREFIX come from the same value."""
    assert root["module"]["dynamodb"]["table_prefix"] == root["module"]["ecs"]["table_prefix"]
    env = {e["name"]: e["value"] for e in modules["ecs"]["locals"]["base_environment"]}
    assert env["CHAT_DYNAMODB_TABLE_PREFIX"] == "${var.table_prefix}"
    assert "table_prefix" in root["output"], "operators need the table prefix as an output"
