terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, <= 6.25.0"
      # A CloudFront web ACL must live in us-east-1, whatever region the rest uses.
      configuration_aliases = [aws.us_east_1]
    }
  }
}
