# Notices a forgotten `terraform destroy` before the bill does: the account's monthly cost against
# monthly_budget_usd, e-mailed when 80 % is reached and when the month is forecast to exceed it.
# Account-wide on purpose: a Project tag filter needs the tag activated for cost allocation first,
# and reads $0 until then.

resource "aws_budgets_budget" "this" {
  count = length(var.budget_emails) > 0 ? 1 : 0

  name         = "${var.name}-monthly"
  budget_type  = "COST"
  limit_amount = format("%.2f", var.monthly_budget_usd)
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  notification {
    comparison_operator        = "GREATER_THAN"
    threshold                  = 80
    threshold_type             = "PERCENTAGE"
    notification_type          = "ACTUAL"
    subscriber_email_addresses = var.budget_emails
  }

  notification {
    comparison_operator        = "GREATER_THAN"
    threshold                  = 100
    threshold_type             = "PERCENTAGE"
    notification_type          = "FORECASTED"
    subscriber_email_addresses = var.budget_emails
  }

  tags = var.tags
}
