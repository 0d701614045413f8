"""The DynamoDB exporter's boto3 path: moto's DynamoDB where it implements the call, Stubber where it does not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import dagster as dg
import pytest
from botocore.stub import Stubber

from ddb_iceberg.resources import DynamoDBExporter
from ddb_iceberg_tests.helpers import MOTO_REGION, MotoServer

TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
START, END = datetime(2026, 2, 1, 10, tzinfo=UTC), datetime(2026, 2, 1, 11, tzinfo=UTC)
EXPORT_ARN = f"{TABLE_ARN}/export/01769940000000-0a1b2c3d"
LOG = dg.get_dagster_logger()


def _exporter(**overrides: Any) -> DynamoDBExporter:
    settings: dict[str, Any] = {"table_arn": TABLE_ARN, "s3_bucket": "exports", "s3_prefix": "ddb/orders",
                                "region": MOTO_REGION, "poll_seconds": 0.01, "max_poll_seconds": 0.02}  # fmt: skip
    return DynamoDBExporter(**(settings | overrides))


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client("dynamodb", region_name=MOTO_REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        monkeypatch.setattr(DynamoDBExporter, "_client", lambda self: client)
        yield stubber
        stubber.assert_no_pending_responses()


def _pitr(stubber: Stubber, status: str = "ENABLED") -> None:
    stubber.add_response(
        "describe_continuous_backups",
        {"ContinuousBackupsDescription": {"ContinuousBackupsStatus": "ENABLED",
                                          "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": status}}},
        {"TableName": "orders"},
    )  # fmt: skip


def _description(status: str, **extra: Any) -> dict[str, Any]:
    return {"ExportDescription": {"ExportArn": EXPORT_ARN, "ExportStatus": status, **extra}}


def test_incremental_export_waits_with_backoff_until_completed(stubbed: Stubber) -> None:
    exporter = _exporter()
    _pitr(stubbed)
    token = exporter.client_token("incremental", START, END)
    stubbed.add_response(
        "export_table_to_point_in_time",
        _description("IN_PROGRESS"),
        {"TableArn": TABLE_ARN, "S3Bucket": "exports", "S3Prefix": "ddb/orders", "ExportFormat": "DYNAMODB_JSON",
         "ClientToken": token, "ExportType": "INCREMENTAL_EXPORT",
         "IncrementalExportSpecification": {"ExportFromTime": START, "ExportToTime": END,
                                            "ExportViewType": "NEW_AND_OLD_IMAGES"}},
    )  # fmt: skip
    stubbed.add_response("describe_export", _description("IN_PROGRESS"), {"ExportArn": EXPORT_ARN})
    stubbed.add_response(
        "describe_export",
        _description("COMPLETED", ExportType="INCREMENTAL_EXPORT", ItemCount=42, BilledSizeBytes=10_000_000,
                     ExportManifest="ddb/orders/AWSDynamoDB/01769940000000-0a1b2c3d/manifest-summary.json",
                     S3Bucket="exports",
                     IncrementalExportSpecification={"ExportFromTime": START, "ExportToTime": END}),
        {"ExportArn": EXPORT_ARN},
    )  # fmt: skip
    description = exporter.export_incremental(START, END, LOG)
    assert (description.item_count, description.billed_size_bytes) == (42, 10_000_000)
    assert (description.export_from_time, description.export_to_time) == (START, END)
    assert description.manifest_location.startswith("s3://exports/ddb/orders/AWSDynamoDB/")


def test_client_token_is_the_same_for_a_retry_and_differs_per_window() -> None:
    exporter = _exporter()
    assert exporter.client_token("incremental", START, END) == exporter.client_token("incremental", START, END)
    assert exporter.client_token("incremental", START, END) != exporter.client_token("incremental", END, END)
    assert len(exporter.client_token("full", None, None)) <= 64


def test_a_failed_export_surfaces_its_failure_code_and_message(stubbed: Stubber) -> None:
    _pitr(stubbed)
    stubbed.add_response("export_table_to_point_in_time", _description("IN_PROGRESS"))
    stubbed.add_response(
        "describe_export",
        _description("FAILED", FailureCode="S3AccessDenied", FailureMessage="no PutObject on exports"),
    )
    with pytest.raises(dg.Failure, match="FAILED: S3AccessDenied: no PutObject on exports"):
        _exporter().export_incremental(START, END, LOG)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("InvalidExportTimeException", "ExportToTime is too recent"),
        ("ExportConflictException", "a different export used this ClientToken"),
        ("PointInTimeRecoveryUnavailableException", "PITR is not available"),
    ],
)
def test_refusals_name_dynamodb_s_reason(stubbed: Stubber, code: str, message: str) -> None:
    _pitr(stubbed)
    stubbed.add_client_error("export_table_to_point_in_time", service_error_code=code, service_message=message)
    with pytest.raises(dg.Failure, match=f"DynamoDB refused the export \\({code}\\): {message}"):
        _exporter().export_incremental(START, END, LOG)


def test_point_in_time_recovery_off_is_caught_first(stubbed: Stubber) -> None:
    _pitr(stubbed, "DISABLED")
    with pytest.raises(dg.Failure, match="point-in-time recovery is DISABLED for orders"):
        _exporter().export_full(None, LOG)


def test_against_moto_pitr_then_a_full_export(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    dynamodb = moto_server.client("dynamodb")
    table = dynamodb.create_table(
        TableName="moto-orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]
    dynamodb.put_item(TableName="moto-orders", Item={"id": {"S": "a"}, "n": {"N": "1"}})
    moto_server.client("s3").create_bucket(Bucket="moto-exports")
    exporter = _exporter(table_arn=table["TableArn"], s3_bucket="moto-exports", endpoint_url=moto_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(dg.Failure, match="point-in-time recovery is DISABLED"):
        exporter.export_full(None, LOG)
    dynamodb.update_continuous_backups(
        TableName="moto-orders", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    description = exporter.export_full(None, LOG)
    # moto 5.2 builds the ARN oddly (".../table/<table ARN>/import/<id>"); its item count is what it exported.
    assert "table/moto-orders" in description.export_arn and description.item_count == 1
    assert description.export_type == "FULL_EXPORT" and description.manifest_location.startswith("s3://moto-exports/")
