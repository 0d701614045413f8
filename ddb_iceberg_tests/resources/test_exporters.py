"""The DynamoDB exporter's boto3 path: moto's DynamoDB where it implements the call, Stubber where it does not.

moto 5.2 implements ExportTableToPointInTime, DescribeExport and ListExports, but ignores ClientToken, ExportTime
and IncrementalExportSpecification (every call starts a new export of the whole table), its DescribeExport
leaves out ExportTime, IncrementalExportSpecification and ClientToken, and its ListExports has no pages. Reusing
an export rests on exactly those fields, so reuse, incremental exports and backfills are tested with Stubber.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
from botocore.stub import ANY, Stubber

from ddb_iceberg.errors import ExportFailedError
from ddb_iceberg.exports import ExportType
from ddb_iceberg.resources import DynamoDBExporter
from ddb_iceberg.resources.prices import export_cost_usd
from ddb_iceberg_tests.helpers import MOTO_REGION, MotoServer

TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
START, END = datetime(2026, 2, 1, 10, tzinfo=UTC), datetime(2026, 2, 1, 11, tzinfo=UTC)
EXPORT_ARN = f"{TABLE_ARN}/export/01769940000000-0a1b2c3d"
LOG = dg.get_dagster_logger()
HOUR = timedelta(hours=1)


def _exporter(**overrides: Any) -> DynamoDBExporter:
    settings: dict[str, Any] = {"table_arn": TABLE_ARN, "s3_bucket": "exports", "s3_prefix": "ddb/orders",
                                "region": MOTO_REGION, "poll_seconds": 0.01, "max_poll_seconds": 0.02}  # fmt: skip
    return DynamoDBExporter(**(settings | overrides))


@dataclass
class Call:
    operation: str
    params: dict[str, Any]
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str | None:
        status: str | None = self.response.get("ExportDescription", {}).get("ExportStatus")
        return status


@pytest.fixture
def calls(stubbed: Stubber) -> list[Call]:
    """The calls the exporter made, in order, with what came back."""
    recorded: list[Call] = []

    def before(params: dict[str, Any], model: Any, **_: Any) -> None:
        recorded.append(Call(model.name, dict(params)))

    def after(parsed: dict[str, Any], **_: Any) -> None:
        recorded[-1].response = parsed

    stubbed.client.meta.events.register("before-parameter-build.dynamodb.*", before)
    stubbed.client.meta.events.register("after-call.dynamodb.*", after)
    return recorded


def _pitr(stubber: Stubber, status: str = "ENABLED") -> None:
    stubber.add_response(
        "describe_continuous_backups",
        {"ContinuousBackupsDescription": {"ContinuousBackupsStatus": "ENABLED",
                                          "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": status}}},
        {"TableName": "orders"},
    )  # fmt: skip


def _listing(stubber: Stubber, *pages: list[dict[str, Any]], more_pages: bool = False) -> None:
    """ListExports of the table, page by page (no page: the table has no exports); `more_pages`: the last page
    given says there are more (older) ones, which the exporter must not ask for."""
    for number, page in enumerate(pages or ([],)):
        request: dict[str, Any] = {"TableArn": TABLE_ARN, "MaxResults": 25}
        if number:
            request["NextToken"] = f"page-{number}"
        response: dict[str, Any] = {"ExportSummaries": page}
        if number < len(pages) - 1 or more_pages:
            response["NextToken"] = f"page-{number + 1}"
        stubber.add_response("list_exports", response, request)


def _summary(description: dict[str, Any]) -> dict[str, Any]:
    return {key: description["ExportDescription"][key] for key in ("ExportArn", "ExportStatus", "ExportType")}


def _description(status: str, **extra: Any) -> dict[str, Any]:
    return {"ExportDescription": {"ExportArn": EXPORT_ARN, "ExportStatus": status, **extra}}


def _arn_started_at(moment: datetime, suffix: str) -> str:
    return f"{TABLE_ARN}/export/{int(moment.timestamp() * 1000):014d}-{suffix}"


def _incremental(status: str, start: datetime, end: datetime, export_arn: str = "", **extra: Any) -> dict[str, Any]:
    """What DescribeExport says of an incremental export of [start, end) into exports/ddb/orders."""
    export_arn = export_arn or _arn_started_at(end + timedelta(minutes=5), f"{int(start.timestamp()):x}")
    export_id = export_arn.rsplit("/", 1)[-1]
    description: dict[str, Any] = {
        "ExportArn": export_arn, "ExportStatus": status, "ExportType": "INCREMENTAL_EXPORT", "TableArn": TABLE_ARN,
        "S3Bucket": "exports", "S3Prefix": "ddb/orders", "ExportFormat": "DYNAMODB_JSON",
        "StartTime": end + timedelta(minutes=5),
        "IncrementalExportSpecification": {"ExportFromTime": start, "ExportToTime": end,
                                           "ExportViewType": "NEW_AND_OLD_IMAGES"},
    }  # fmt: skip
    if status == "COMPLETED":
        description |= {"ItemCount": 42, "BilledSizeBytes": 10_000_000, "EndTime": end + timedelta(minutes=12),
                        "ExportManifest": f"ddb/orders/AWSDynamoDB/{export_id}/manifest-summary.json"}  # fmt: skip
    return {"ExportDescription": description | extra}


def _start_request(start: datetime, end: datetime, token: Any = ANY) -> dict[str, Any]:
    return {"TableArn": TABLE_ARN, "S3Bucket": "exports", "S3Prefix": "ddb/orders", "ExportFormat": "DYNAMODB_JSON",
            "ClientToken": token, "ExportType": "INCREMENTAL_EXPORT",
            "IncrementalExportSpecification": {"ExportFromTime": start, "ExportToTime": end,
                                               "ExportViewType": "NEW_AND_OLD_IMAGES"}}  # fmt: skip


def _window(label: datetime) -> str:
    return f"[{label:%Y-%m-%dT%H:%M:%S}.000Z, {label + HOUR:%Y-%m-%dT%H:%M:%S}.000Z)"


def test_incremental_export_waits_with_backoff_until_completed(stubbed: Stubber) -> None:
    exporter = _exporter()
    _pitr(stubbed)
    _listing(stubbed)
    token = exporter.client_token(ExportType.INCREMENTAL, START, END)
    stubbed.add_response(
        "export_table_to_point_in_time", _description("IN_PROGRESS"), _start_request(START, END, token)
    )
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


def test_client_token_is_the_same_for_a_retry_and_differs_per_window_destination_and_failure() -> None:
    exporter, incremental = _exporter(), ExportType.INCREMENTAL
    assert exporter.client_token(incremental, START, END) == exporter.client_token(incremental, START, END)
    assert exporter.client_token(incremental, START, END) != exporter.client_token(incremental, END, END)
    assert exporter.client_token(incremental, START, END) != _exporter(s3_prefix="other").client_token(
        incremental, START, END
    )
    after_one_failure = exporter.client_token(incremental, START, END, failed_exports=1)
    assert after_one_failure == exporter.client_token(incremental, START, END, failed_exports=1)
    assert after_one_failure != exporter.client_token(incremental, START, END)
    assert len(exporter.client_token(ExportType.FULL, None, None)) <= 64


def test_client_tokens_are_the_ones_derived_before_the_kinds_were_export_types() -> None:
    # A retry straddling an upgrade must still get its export back: the same request, the same token.
    exporter = _exporter()
    assert exporter.client_token(ExportType.INCREMENTAL, START, END) == "c60c08b59a043fe15505b410c66481dd"
    assert exporter.client_token(ExportType.INCREMENTAL, START, END, 1) == "e3b1020159d17114e852db6be2640501"
    assert exporter.client_token(ExportType.FULL, START, None) == "38e8ed84a445bbf4b9aa047145fce1e4"
    assert exporter.client_token(ExportType.FULL, START, None, as_of_now=True) == "fd7b46195ca0b4ff42f95add4e63af34"


def test_a_failed_export_surfaces_its_failure_code_and_message(stubbed: Stubber) -> None:
    _pitr(stubbed)
    _listing(stubbed)
    stubbed.add_response("export_table_to_point_in_time", _description("IN_PROGRESS"))
    stubbed.add_response(
        "describe_export",
        _description("FAILED", FailureCode="S3AccessDenied", FailureMessage="no PutObject on exports"),
    )
    with pytest.raises(ExportFailedError, match="FAILED: S3AccessDenied: no PutObject on exports"):
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
    _listing(stubbed)
    stubbed.add_client_error("export_table_to_point_in_time", service_error_code=code, service_message=message)
    with pytest.raises(ExportFailedError, match=f"DynamoDB refused the export \\({code}\\): {message}"):
        _exporter().export_incremental(START, END, LOG)


def test_point_in_time_recovery_off_is_caught_first(stubbed: Stubber) -> None:
    _pitr(stubbed, "DISABLED")
    with pytest.raises(ExportFailedError, match="point-in-time recovery is DISABLED for orders"):
        _exporter().export_full(None, LOG)


def test_a_retry_after_the_token_expired_reuses_the_completed_export(stubbed: Stubber, calls: list[Call]) -> None:
    # The export of [START, END) completed 9 hours ago: past the ClientToken's 8 hours, the same request would
    # start (and bill) a second export. The table's other exports are around it in the listing, over pages in
    # ListExports' documented order (reverse alphanumeric order of ExportArn: newest first).
    done = _incremental("COMPLETED", START, END, ClientToken="token of the first run")
    earlier_window = _incremental("COMPLETED", START - HOUR, START)
    other_prefix = _incremental(
        "COMPLETED", START, END, _arn_started_at(END + 2 * HOUR, "e15e0000"), S3Prefix="elsewhere"
    )
    long_before = _incremental("COMPLETED", START - 48 * HOUR, START - 47 * HOUR)
    full = {"ExportArn": f"{TABLE_ARN}/export/01769900000000-ffffffff", "ExportStatus": "COMPLETED",
            "ExportType": "FULL_EXPORT"}  # fmt: skip
    _pitr(stubbed)
    _listing(stubbed, [_summary(other_prefix), _summary(done)], [_summary(earlier_window), full], more_pages=True)
    for described in (other_prefix, done, earlier_window):
        stubbed.add_response("describe_export", described, {"ExportArn": described["ExportDescription"]["ExportArn"]})

    description = _exporter().export_incremental(START, END, LOG)

    assert "ExportTableToPointInTime" not in [call.operation for call in calls]
    assert description.export_arn == done["ExportDescription"]["ExportArn"]
    assert (description.export_from_time, description.export_to_time, description.item_count) == (START, END, 42)
    # Exports that started before the window ended cannot be its export: not described one by one.
    described_arns = [call.params["ExportArn"] for call in calls if call.operation == "DescribeExport"]
    assert long_before["ExportDescription"]["ExportArn"] not in described_arns
    # The listing stops at the first export requested before the window ended: the older pages (the table's
    # history, 90 days of it) are never read.
    assert [call.operation for call in calls].count("ListExports") == 2


def test_an_export_in_progress_is_waited_for_not_duplicated(stubbed: Stubber, calls: list[Call]) -> None:
    running = _incremental("IN_PROGRESS", START, END)
    export_arn = running["ExportDescription"]["ExportArn"]
    _pitr(stubbed)
    _listing(stubbed, [_summary(running)])
    stubbed.add_response("describe_export", running, {"ExportArn": export_arn})
    stubbed.add_response("describe_export", running, {"ExportArn": export_arn})
    stubbed.add_response(
        "describe_export", _incremental("COMPLETED", START, END, export_arn), {"ExportArn": export_arn}
    )

    description = _exporter().export_incremental(START, END, LOG)

    assert "ExportTableToPointInTime" not in [call.operation for call in calls]
    assert description.export_arn == export_arn and description.item_count == 42


def test_a_failed_export_is_reported_and_the_retry_starts_a_new_one(stubbed: Stubber, calls: list[Call]) -> None:
    exporter = _exporter()
    failed_arn = _arn_started_at(END + timedelta(minutes=5), "badbad01")
    reason = {"FailureCode": "S3AccessDenied", "FailureMessage": "Access Denied to exports/ddb/orders"}
    _pitr(stubbed)
    _listing(stubbed)
    stubbed.add_response("export_table_to_point_in_time", _incremental("IN_PROGRESS", START, END, failed_arn))
    stubbed.add_response("describe_export", _incremental("FAILED", START, END, failed_arn, **reason))
    with pytest.raises(ExportFailedError) as failure:
        exporter.export_incremental(START, END, LOG)
    assert f"{_window(START)}: export {failed_arn} FAILED: S3AccessDenied: Access Denied to exports/ddb/orders" in str(
        failure.value
    )

    (first_start,) = [call for call in calls if call.operation == "ExportTableToPointInTime"]
    retried_arn = _arn_started_at(END + timedelta(minutes=30), "900d900d")
    failed = _incremental("FAILED", START, END, failed_arn, ClientToken=first_start.params["ClientToken"], **reason)
    _pitr(stubbed)
    _listing(stubbed, [_summary(failed)])
    stubbed.add_response("describe_export", failed, {"ExportArn": failed_arn})
    stubbed.add_response(
        "export_table_to_point_in_time",
        _incremental("IN_PROGRESS", START, END, retried_arn),
        _start_request(START, END),
    )
    stubbed.add_response("describe_export", _incremental("COMPLETED", START, END, retried_arn))

    description = exporter.export_incremental(START, END, LOG)

    first, retry = [call.params["ClientToken"] for call in calls if call.operation == "ExportTableToPointInTime"]
    assert first != retry, "the failed export's token would bring the FAILED export back"
    assert description.export_arn == retried_arn


def test_a_retry_gets_past_a_failed_export_the_listing_does_not_show(stubbed: Stubber, calls: list[Call]) -> None:
    # Should ListExports leave the FAILED export out, the retry's first token is the failed one's, and DynamoDB
    # answers with that FAILED export: the retry moves on to a new export, never reports the old failure again.
    failed_arn = _arn_started_at(END + timedelta(minutes=5), "badbad01")
    retried_arn = _arn_started_at(END + timedelta(minutes=30), "900d900d")
    _pitr(stubbed)
    _listing(stubbed)
    failed = _incremental("FAILED", START, END, failed_arn, FailureCode="UNKNOWN", FailureMessage="internal error")
    failed["ExportDescription"]["StartTime"] = datetime.now(UTC) - 2 * HOUR
    stubbed.add_response("export_table_to_point_in_time", failed, _start_request(START, END))
    stubbed.add_response(
        "export_table_to_point_in_time",
        _incremental("IN_PROGRESS", START, END, retried_arn),
        _start_request(START, END),
    )
    stubbed.add_response("describe_export", _incremental("COMPLETED", START, END, retried_arn))

    description = _exporter().export_incremental(START, END, LOG)

    first, retry = [call.params["ClientToken"] for call in calls if call.operation == "ExportTableToPointInTime"]
    assert first != retry and description.export_arn == retried_arn


def _backfill_windows(count: int) -> list[tuple[datetime, datetime]]:
    return [(START + n * HOUR, START + (n + 1) * HOUR) for n in range(count)]


def _most_in_flight(calls: list[Call]) -> int:
    in_flight: set[str] = set()
    most = 0
    for call in calls:
        export_arn = call.response.get("ExportDescription", {}).get("ExportArn")
        if call.status == "IN_PROGRESS":
            in_flight.add(export_arn)
        elif call.status in ("COMPLETED", "FAILED"):
            in_flight.discard(export_arn)
        most = max(most, len(in_flight))
    return most


def _script_backfill(stubber: Stubber, windows: list[tuple[datetime, datetime]], steps: list[tuple[Any, ...]]) -> None:
    """("start", n) starts window n's export; ("poll", n, status) is the describe_export of it that says status."""
    arns = [_arn_started_at(end + timedelta(minutes=5), f"{n:08x}") for n, (_, end) in enumerate(windows)]
    for action, n, *status in steps:
        start, end = windows[n]
        if action == "start":
            response = _incremental("IN_PROGRESS", start, end, arns[n])
            stubber.add_response("export_table_to_point_in_time", response, _start_request(start, end))
        else:
            stubber.add_response(
                "describe_export", _incremental(status[0], start, end, arns[n]), {"ExportArn": arns[n]}
            )


def test_a_backfill_starts_all_exports_before_waiting_on_any(stubbed: Stubber, calls: list[Call]) -> None:
    windows = _backfill_windows(5)
    _pitr(stubbed)
    _listing(stubbed)
    _script_backfill(
        stubbed,
        windows,
        [("start", n) for n in range(5)]
        + [("poll", n, "IN_PROGRESS") for n in range(5)]
        + [("poll", n, "COMPLETED") for n in range(5)],
    )

    descriptions = _exporter().export_incrementals(windows, LOG)

    operations = [call.operation for call in calls]
    last_start = max(i for i, operation in enumerate(operations) if operation == "ExportTableToPointInTime")
    assert operations.count("ExportTableToPointInTime") == 5 and last_start < operations.index("DescribeExport")
    assert [(d.export_from_time, d.export_to_time) for d in descriptions] == windows


def test_a_backfill_keeps_at_most_max_concurrent_exports_in_flight(stubbed: Stubber, calls: list[Call]) -> None:
    windows = _backfill_windows(5)
    _pitr(stubbed)
    _listing(stubbed)
    # As soon as one export ends, the next one starts: the two slots stay busy.
    _script_backfill(
        stubbed,
        windows,
        [
            ("start", 0), ("start", 1), ("poll", 0, "COMPLETED"), ("poll", 1, "IN_PROGRESS"),
            ("start", 2), ("poll", 1, "COMPLETED"), ("poll", 2, "IN_PROGRESS"),
            ("start", 3), ("poll", 2, "IN_PROGRESS"), ("poll", 3, "IN_PROGRESS"),
            ("poll", 2, "COMPLETED"), ("poll", 3, "COMPLETED"),
            ("start", 4), ("poll", 4, "COMPLETED"),
        ],
    )  # fmt: skip

    descriptions = _exporter(max_concurrent_exports=2).export_incrementals(windows, LOG)

    assert _most_in_flight(calls) == 2
    assert [(d.export_from_time, d.export_to_time) for d in descriptions] == windows


def test_a_backfill_reports_every_failed_window_after_waiting_for_the_others(stubbed: Stubber) -> None:
    windows = _backfill_windows(3)
    arns = [_arn_started_at(end + timedelta(minutes=5), f"{n:08x}") for n, (_, end) in enumerate(windows)]
    _pitr(stubbed)
    _listing(stubbed)
    stubbed.add_response("export_table_to_point_in_time", _incremental("IN_PROGRESS", *windows[0], arns[0]))
    stubbed.add_client_error("export_table_to_point_in_time", "LimitExceededException", "too many exports in progress")
    stubbed.add_response("export_table_to_point_in_time", _incremental("IN_PROGRESS", *windows[2], arns[2]))
    stubbed.add_response("describe_export", _incremental("IN_PROGRESS", *windows[0], arns[0]))
    stubbed.add_response(
        "describe_export",
        _incremental("FAILED", *windows[2], arns[2], FailureCode="UNKNOWN", FailureMessage="internal error"),
    )
    stubbed.add_response("describe_export", _incremental("COMPLETED", *windows[0], arns[0]))

    with pytest.raises(ExportFailedError) as failure:
        _exporter().export_incrementals(windows, LOG)

    report = str(failure.value)
    assert "2 of 3 exports did not complete (1 did" in report
    assert f"{_window(windows[1][0])}: DynamoDB refused the export (LimitExceededException)" in report
    assert f"{_window(windows[2][0])}: export {arns[2]} FAILED: UNKNOWN: internal error" in report
    assert _window(windows[0][0]) not in report


def test_an_export_s_metadata_has_its_estimated_cost(stubbed: Stubber) -> None:
    _pitr(stubbed)
    _listing(stubbed, [_summary(done := _incremental("COMPLETED", START, END))])
    stubbed.add_response("describe_export", done)

    metadata = _exporter(export_price_per_gb_usd=0.25).export_incremental(START, END, LOG).metadata()

    assert metadata["billed_size_bytes"] == dg.MetadataValue.int(10_000_000)
    assert metadata["estimated_cost_usd"] == dg.MetadataValue.float(export_cost_usd(10_000_000, 0.25))
    assert metadata["estimated_cost_usd"].value == pytest.approx(10_000_000 / 1024**3 * 0.25, abs=1e-6)
    assert "0.25 USD per GB" in metadata["price_source"]


def _moto_table(moto_server: MotoServer, name: str, monkeypatch: pytest.MonkeyPatch) -> str:
    dynamodb = moto_server.client("dynamodb")
    table = dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )["TableDescription"]
    dynamodb.put_item(TableName=name, Item={"id": {"S": "a"}, "n": {"N": "1"}})
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    table_arn: str = table["TableArn"]
    return table_arn


def test_against_moto_pitr_then_a_full_export(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    table_arn = _moto_table(moto_server, "moto-orders", monkeypatch)
    moto_server.client("s3").create_bucket(Bucket="moto-exports")
    exporter = _exporter(table_arn=table_arn, s3_bucket="moto-exports", endpoint_url=moto_server.endpoint_url)
    with pytest.raises(ExportFailedError, match="point-in-time recovery is DISABLED"):
        exporter.export_full(None, LOG)
    moto_server.client("dynamodb").update_continuous_backups(
        TableName="moto-orders", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    description = exporter.export_full(None, LOG)
    # moto 5.2 builds the ARN oddly (".../table/<table ARN>/import/<id>"); its item count is what it exported.
    assert "table/moto-orders" in description.export_arn and description.item_count == 1
    assert description.export_type == "FULL_EXPORT" and description.manifest_location.startswith("s3://moto-exports/")


def test_against_moto_a_failed_point_in_time_export_names_its_time_and_reason(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full export at an explicit time looks through the table's exports first (moto's ListExports and
    # DescribeExport); moto fails the export itself, for the bucket that does not exist.
    table_arn = _moto_table(moto_server, "moto-failing", monkeypatch)
    moto_server.client("dynamodb").update_continuous_backups(
        TableName="moto-failing", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    exporter = _exporter(table_arn=table_arn, s3_bucket="no-such-bucket", endpoint_url=moto_server.endpoint_url)
    with pytest.raises(ExportFailedError) as failure:
        exporter.export_full(START, LOG)
    (export,) = moto_server.client("dynamodb").list_exports(TableArn=table_arn)["ExportSummaries"]
    assert str(failure.value) == (
        f"the full export as of 2026-02-01T10:00:00.000Z: export {export['ExportArn']} FAILED: "
        "S3NoSuchBucket: The specified bucket does not exist"
    )
