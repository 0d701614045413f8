"""DynamoDB's order of ListExports: "in reverse alphanumeric order of ExportArn", newest first (an ARN ends in its
zero-padded request time): https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ListExports.html.
moto lists in the order the exports were made, oldest first, and a reader that stops at the first export older
than it needs relies on the documented order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ddb_iceberg.loopback_aws import AwsRequest, Response


@dataclass
class ListExportsNewestFirst:
    """ListExports answered in DynamoDB's documented order."""

    def before(self, request: AwsRequest) -> Response | None:
        return None

    def after(self, request: AwsRequest, response: Response) -> Response | None:
        if request.service != "dynamodb" or request.operation != "ListExports" or not response.status.startswith("2"):
            return None
        body = json.loads(response.body)
        summaries = body.get("ExportSummaries", [])
        body["ExportSummaries"] = sorted(summaries, key=lambda summary: summary["ExportArn"], reverse=True)
        headers = [(name, value) for name, value in response.headers if name.lower() != "content-length"]
        return Response(response.status, headers, json.dumps(body).encode())
