output "table_prefix" {
  description = "Prefix of the tables (CHAT_DYNAMODB_TABLE_PREFIX)."
  value       = var.table_prefix
}

output "table_names" {
  description = "Table names by role."
  value = {
    messages     = aws_dynamodb_table.messages.name
    connections  = aws_dynamodb_table.connections.name
    user_counter = aws_dynamodb_table.user_counter.name
  }
}

output "table_arns" {
  description = "ARNs of the three tables."
  value = [
    aws_dynamodb_table.messages.arn,
    aws_dynamodb_table.connections.arn,
    aws_dynamodb_table.user_counter.arn,
  ]
}
