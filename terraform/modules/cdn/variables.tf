variable "name" {
  description = "Name prefix of the distribution's policies and web ACL."
  type        = string
}

variable "alb_domain_name" {
  description = "Host name CloudFront uses for the ALB origin (the ALB DNS name, or a custom name covered by the ALB certificate)."
  type        = string
}

variable "alb_origin_protocol" {
  description = "https (to 443 with a certificate matching alb_domain_name) or http (to port 80: plaintext between CloudFront and the ALB)."
  type        = string
  default     = "https"

  validation {
    condition     = contains(["http", "https"], var.alb_origin_protocol)
    error_message = "alb_origin_protocol must be http or https."
  }
}

variable "allow_http_origin" {
  description = "Accept alb_origin_protocol = http: requests, cookies and the origin secret cross the internet between CloudFront and the ALB unencrypted."
  type        = bool
  default     = false
}

variable "origin_verify_header_name" {
  description = "Header added to every request CloudFront sends to the ALB."
  type        = string
  default     = "X-Origin-Verify"
}

variable "origin_verify_value" {
  description = "Secret value of origin_verify_header_name (the current rotation slot)."
  type        = string
  sensitive   = true
}

variable "frame_ancestors" {
  description = "Origins allowed to embed the chat in a frame, besides the chat itself (CSP frame-ancestors)."
  type        = list(string)
  default     = []
}

variable "assets_path" {
  description = "Path prefix of the web client's versioned files (cached)."
  type        = string
  default     = "/assets"
}

variable "uploads_bucket_domain_name" {
  description = "Regional domain name of the uploads bucket (the origin of /<uploads_prefix>*)."
  type        = string
}

variable "uploads_prefix" {
  description = "Key prefix of the images in the uploads bucket; served at the same path."
  type        = string
  default     = "uploads/"
}

variable "uploads_ttl_seconds" {
  description = "Longest an edge keeps an image (default and maximum TTL of the uploads cache policy)."
  type        = number
  default     = 86400

  validation {
    condition     = var.uploads_ttl_seconds >= 60 && var.uploads_ttl_seconds <= 31536000
    error_message = "uploads_ttl_seconds must be between 60 s and one year."
  }
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes one viewer address may send before the WAF blocks it; null = no web ACL."
  type        = number
  default     = null
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
