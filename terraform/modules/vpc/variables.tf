variable "name" {
  description = "Name prefix of every resource of the VPC."
  type        = string
}

variable "cidr" {
  description = "IPv4 CIDR of the VPC; split into two public and two private /20s (for a /16)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Exactly two zone names; null = the region's zones a and b."
  type        = list(string)
  default     = null

  validation {
    condition     = var.availability_zones == null ? true : length(var.availability_zones) == 2
    error_message = "availability_zones must name exactly two zones."
  }
}

variable "enable_nat_gateway" {
  description = "Create one NAT gateway so tasks in private subnets reach AWS APIs and ECR. Set false to run tasks in public subnets with public IPs instead (saves the NAT's hourly cost)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
