"""The loopback server's rules for S3 and DynamoDB: each answers as AWS documents, where moto does not."""

from __future__ import annotations

import botocore.exceptions
import pytest

from ddb_iceberg_tests.helpers import MotoServer


def test_a_missing_key_is_403_without_list_permission_and_404_with_it(moto_server: MotoServer) -> None:
    s3 = moto_server.client("s3")
    for bucket in ("rules-may-list", "rules-may-not-list"):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="here", Body=b"x")
    moto_server.buckets_without_list_permission.buckets.add("rules-may-not-list")

    def status(bucket: str, key: str) -> int:
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as error:
            return int(error.response["ResponseMetadata"]["HTTPStatusCode"])
        return 200

    assert (status("rules-may-list", "missing"), status("rules-may-not-list", "missing")) == (404, 403)
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        s3.get_object(Bucket="rules-may-not-list", Key="missing")
    # What exists is served, and a listing (which names a prefix) still tells what is there.
    assert status("rules-may-not-list", "here") == 200
    listed = s3.list_objects_v2(Bucket="rules-may-not-list", Prefix="")["Contents"]
    assert [item["Key"] for item in listed] == ["here"]


def test_list_exports_answers_newest_first(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    dynamodb, s3 = moto_server.client("dynamodb"), moto_server.client("s3")
    s3.create_bucket(Bucket="rules-exports")
    table_arn = dynamodb.create_table(
        TableName="rules-orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]["TableArn"]
    dynamodb.update_continuous_backups(
        TableName="rules-orders", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    made = [
        dynamodb.export_table_to_point_in_time(TableArn=table_arn, S3Bucket="rules-exports", S3Prefix="p")[
            "ExportDescription"
        ]["ExportArn"]
        for _ in range(6)  # moto makes random ids: its own order is this one once in 720
    ]
    listed = [summary["ExportArn"] for summary in dynamodb.list_exports(TableArn=table_arn)["ExportSummaries"]]
    # "in reverse alphanumeric order of ExportArn" (API_ListExports); moto lists them in the order it made them.
    assert listed == sorted(made, reverse=True) and sorted(listed) == sorted(made)
