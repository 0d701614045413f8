"""S3's answer to a missing key when the caller may not list the bucket there: 403, not 404.

"If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403 (Access Denied)
error" for a key that does not exist (GetObject and HeadObject, Amazon S3 API Reference:
https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html). The deployment's roles may list the
export bucket only under a `s3:prefix` condition, which a GET or HEAD carries none of: for them every missing
key is a 403. moto always answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ddb_iceberg.loopback_aws import AwsRequest, Response, xml_error


@dataclass
class MissingKeyIsAccessDenied:
    """In `buckets`, a GET or HEAD of a missing key is answered 403 AccessDenied, as S3 answers a caller
    without `s3:ListBucket` on it. Listings (with a prefix) are answered as before."""

    buckets: set[str] = field(default_factory=set)

    def before(self, request: AwsRequest) -> Response | None:
        return None

    def after(self, request: AwsRequest, response: Response) -> Response | None:
        if request.is_s3_object_read and request.bucket in self.buckets and response.status.startswith("404"):
            if request.method == "HEAD":  # a HEAD answer has no body
                return Response("403 Forbidden", [("Content-Type", "application/xml")], b"")
            return xml_error("403 Forbidden", "AccessDenied", "Access Denied")
        return None
