# Two availability zones, public subnets for the ALB (and for tasks when NAT is off), private
# subnets for tasks and Redis, one NAT gateway by default, and free DynamoDB and S3 gateway
# endpoints so table and image traffic never pays NAT processing.

data "aws_region" "current" {}

data "aws_partition" "current" {}

# Pinned by name: the subnets never move when AWS adds a zone to the region.
data "aws_availability_zones" "available" {
  state = "available"

  filter {
    name   = "zone-name"
    values = local.requested_azs
  }

  lifecycle {
    # A name that does not exist in the region (or is not available to the account) would
    # silently shrink the VPC to one zone; ALB and ElastiCache Multi-AZ need two.
    postcondition {
      condition     = length(self.names) == 2
      error_message = "The availability zones ${join(", ", local.requested_azs)} are not both available in this region: set availability_zones to two zones listed by `aws ec2 describe-availability-zones`."
    }
  }
}

locals {
  requested_azs = coalesce(var.availability_zones, ["${data.aws_region.current.id}a", "${data.aws_region.current.id}b"])
  azs           = data.aws_availability_zones.available.names
}

resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_11:Flow logs cost per GB and this event-scoped VPC carries only ALB, task and Redis traffic; ALB access logs record every request that enters.
  cidr_block           = var.cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = merge(var.tags, { Name = var.name })
}

# Adopt the default security group and strip every rule from it: nothing uses it.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-default-deny" })
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = var.name })
}

resource "aws_subnet" "public" {
  count = length(local.azs)

  vpc_id            = aws_vpc.this.id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.cidr, 4, count.index)
  # Tasks in public subnets get their address from the ECS service (assign_public_ip), never by default.
  map_public_ip_on_launch = false

  tags = merge(var.tags, { Name = "${var.name}-public-${local.azs[count.index]}", Tier = "public" })
}

resource "aws_subnet" "private" {
  count = length(local.azs)

  vpc_id            = aws_vpc.this.id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.cidr, 4, count.index + 8)

  tags = merge(var.tags, { Name = "${var.name}-private-${local.azs[count.index]}", Tier = "private" })
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-public" })
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count = length(local.azs)

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_eip" "nat" {
  count = var.enable_nat_gateway ? 1 : 0

  domain = "vpc"

  tags = merge(var.tags, { Name = "${var.name}-nat" })

  depends_on = [aws_internet_gateway.this]
}

# One NAT gateway for both AZs: the cheap choice; an AZ outage also takes private egress of the other AZ.
resource "aws_nat_gateway" "this" {
  count = var.enable_nat_gateway ? 1 : 0

  allocation_id = aws_eip.nat[0].id
  subnet_id     = aws_subnet.public[0].id

  tags = merge(var.tags, { Name = var.name })

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id

  tags = merge(var.tags, { Name = "${var.name}-private" })
}

resource "aws_route" "private_nat" {
  count = var.enable_nat_gateway ? 1 : 0

  route_table_id         = aws_route_table.private.id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[0].id
}

resource "aws_route_table_association" "private" {
  count = length(local.azs)

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

# Gateway endpoints are free: DynamoDB traffic and S3 traffic (chat-server reading back and
# deleting uploaded images) from either tier skip the NAT and the internet. Browsers still PUT
# images to S3's public endpoint.
resource "aws_vpc_endpoint" "gateway" {
  for_each = toset(["dynamodb", "s3"])

  vpc_id            = aws_vpc.this.id
  service_name      = "${data.aws_partition.current.reverse_dns_prefix}.${data.aws_region.current.id}.${each.key}"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.public.id, aws_route_table.private.id]

  tags = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

# The DynamoDB endpoint was its own resource before S3 joined it: moved, not replaced.
moved {
  from = aws_vpc_endpoint.dynamodb
  to   = aws_vpc_endpoint.gateway["dynamodb"]
}
