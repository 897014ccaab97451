output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "IPv4 CIDR of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnets, one per AZ (ALB; tasks when NAT is off)."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets, one per AZ (tasks behind NAT, Redis)."
  value       = aws_subnet.private[*].id
}

output "nat_gateway_enabled" {
  description = "Whether private subnets have a route to the internet through NAT."
  value       = var.enable_nat_gateway
}
