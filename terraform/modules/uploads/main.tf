# Images people share in the chat (issue 15). chat-server signs a presigned PUT and the browser
# sends the bytes straight into this private bucket (never through the tasks); chat-server reads
# each object back once to check it and deletes what fails. Viewers get the images from
# CloudFront under /uploads/* (origin access control: only our distribution may read), and the
# lifecycle removes them after the event. `terraform destroy` deletes the bucket with its objects.
#
#   browser --PUT (presigned, CORS from the chat's origins)--> s3://<bucket>/uploads/<random>.<ext>
#   browser --GET https://<distribution>/uploads/<random>.<ext>--> CloudFront --OAC--> the object

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_21:Objects are written once under random names and never overwritten; versions would only keep refused uploads chat-server deletes.
  #checkov:skip=CKV_AWS_144:Event-scoped images that expire after expiry_days; a copy in a second region doubles storage for nothing.
  #checkov:skip=CKV_AWS_145:Images are public through CloudFront to anyone holding the link; SSE-S3 encrypts at rest without a KMS call per upload and read or opening the key to CloudFront.
  #checkov:skip=CKV2_AWS_62:chat-server checks each upload when the browser says it is done; no consumer reacts to object events.
  bucket_prefix = "${var.name}-uploads-"
  # terraform destroy removes the bucket with every image in it, no manual emptying.
  force_destroy = true

  tags = var.tags
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# The bucket owns every object, whoever's presigned URL put it; ACLs are off.
resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

# Server access logs next to the ALB's, in the log bucket (its policy admits S3 log delivery
# under s3/).
resource "aws_s3_bucket_logging" "this" {
  bucket        = aws_s3_bucket.this.id
  target_bucket = var.access_log_bucket
  target_prefix = "s3/${var.name}-uploads/"
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-after-the-event"
    status = "Enabled"

    # The whole bucket: it holds nothing but uploads (an empty filter {} warns since 5.90).
    filter {
      prefix = ""
    }

    expiration {
      days = var.expiry_days
    }

    # A single presigned PUT never starts one, but nothing half-uploaded may outlive a day.
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# The browser PUTs from the chat's pages (CloudFront's name, its aliases, the ALB with
# public access): the preflight asks for PUT with the headers the presigned URL signs besides
# host (content-type, cache-control). The CORS answer does not depend on the S3 host name
# the URL uses (<bucket>.s3.<region>.amazonaws.com).
resource "aws_s3_bucket_cors_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  cors_rule {
    id              = "browser-upload"
    allowed_methods = ["PUT"]
    allowed_origins = var.allowed_origins
    allowed_headers = var.upload_headers
    expose_headers  = ["ETag"]
    max_age_seconds = 3600
  }
}

# Reads by our distribution only (origin access control signs them); nothing over plain HTTP.
data "aws_iam_policy_document" "this" {
  statement {
    sid       = "CloudFrontReadsUploads"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this.arn}/${var.prefix}*"]

    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [var.cloudfront_distribution_arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.this.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}
