# The three tables chat-server uses, exactly as contract/src/schema.rs declares them (and as
# `chat-server create-tables` creates them locally). terraform/tests/test_dynamodb.py compares
# this file with `chat-server create-tables --print-schema`.

resource "aws_dynamodb_table" "messages" {
  name         = "${var.table_prefix}messages"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "room"
  range_key    = "seq"

  attribute {
    name = "room"
    type = "S"
  }

  attribute {
    name = "seq"
    type = "N"
  }

  attribute {
    name = "user_id"
    type = "N"
  }

  attribute {
    name = "ts"
    type = "N"
  }

  # Moderation: a user's messages by time.
  global_secondary_index {
    name            = "by-user"
    hash_key        = "user_id"
    range_key       = "ts"
    projection_type = "ALL"
  }

  # Only idempotency items carry expires_at; messages themselves never expire.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  deletion_protection_enabled = var.deletion_protection

  tags = var.tags
}

resource "aws_dynamodb_table" "connections" {
  #checkov:skip=CKV_AWS_28:Live-connection rows expire within minutes (TTL); schema.rs declares no point-in-time recovery and Terraform must equal it.
  name         = "${var.table_prefix}connections"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "conn_id"

  attribute {
    name = "conn_id"
    type = "S"
  }

  attribute {
    name = "color"
    type = "S"
  }

  # Operators count live connections per colour with a Query, never a Scan.
  global_secondary_index {
    name            = "by-color"
    hash_key        = "color"
    range_key       = "conn_id"
    projection_type = "KEYS_ONLY"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = false
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  deletion_protection_enabled = var.deletion_protection

  tags = var.tags
}

resource "aws_dynamodb_table" "user_counter" {
  name         = "${var.table_prefix}user-counter"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "name"

  attribute {
    name = "name"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  deletion_protection_enabled = var.deletion_protection

  tags = var.tags
}
