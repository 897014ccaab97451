variable "name" {
  description = "Name prefix of the bucket and distribution."
  type        = string
}

variable "alb_domain_name" {
  description = "Host name CloudFront uses for the ALB origin (the ALB DNS name, or a custom name covered by the ALB certificate)."
  type        = string
}

variable "alb_origin_protocol" {
  description = "http (to the ALB's port 80, no certificate) or https (to 443 with a certificate matching alb_domain_name)."
  type        = string
  default     = "http"

  validation {
    condition     = contains(["http", "https"], var.alb_origin_protocol)
    error_message = "alb_origin_protocol must be http or https."
  }
}

variable "frontend_dir" {
  description = "Directory with the web client's static files, uploaded as they are; null = upload nothing (aws s3 sync instead)."
  type        = string
  default     = null
}

variable "log_bucket_id" {
  description = "Bucket receiving the web bucket's S3 server access logs."
  type        = string
}

variable "aliases" {
  description = "Custom domain names of the distribution (need acm_certificate_arn)."
  type        = list(string)
  default     = []
}

variable "acm_certificate_arn" {
  description = "ACM certificate in us-east-1 for the aliases; null = the default *.cloudfront.net certificate."
  type        = string
  default     = null
}

variable "price_class" {
  description = "CloudFront price class; PriceClass_100 (North America and Europe edges) is the cheapest."
  type        = string
  default     = "PriceClass_100"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
