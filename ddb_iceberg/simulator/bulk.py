"""Large simulated tables for benchmarks: item `i` is a function of the seed, `i` and how often it was written,
so millions of items are written out file by file, never held in memory.

The items have the shape of `workload.SimulatedTable`'s (composite key, strings, exact numbers, maps, lists,
sets, binaries); windows update, delete and insert items chosen by index. There is no ground truth to query
here (tests use `SimulatedTable` for that); what a window changes is recorded only as far as the next window
needs it (which items exist).
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import repeat

from ddb_iceberg.exports.manifest import ExportType, ExportView, ManifestSummary, to_micros
from ddb_iceberg.exports.source import EXPORTS_FOLDER
from ddb_iceberg.exports.typed_values import format_number
from ddb_iceberg.simulator.workload import DEFAULT_START
from ddb_iceberg.simulator.writer import (
    MIN_INCREMENTAL_BILLED_BYTES,
    ExportTarget,
    gzip_lines,
    write_export,
    write_gzipped_export,
)

_STATUSES = ("NEW", "PAID", "SHIPPED", "DELIVERED", "RETURNED")
_CITIES = ("Oslo", "Lima", "Pune", "Kyiv")


@dataclass
class BulkTable:
    """A table of `items` items at `start`, and the items windows have written since."""

    items: int
    seed: int = 1
    start: datetime = DEFAULT_START
    table_arn: str = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
    key_attributes: tuple[str, str] = ("customer_id", "order_id")
    # Per item index: 0 never written, 1 deleted, n >= 2 written n - 1 times.
    _versions: bytearray = field(init=False, repr=False)
    # The time the exports last showed each item written: the last full export's for all but those a window
    # wrote since (what a NEW_AND_OLD_IMAGES window's OldImage is made from).
    _exported_at: int = field(init=False, repr=False)
    _written: dict[int, int] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._versions = bytearray(b"\x02" * self.items)
        self._exported_at = to_micros(self.start)

    @property
    def table_id(self) -> str:
        return f"bulk-{self.seed}"

    def typed_item(self, index: int, written: int) -> dict[str, object]:
        """Item `index` as its `version`-th write made it, in DynamoDB JSON."""
        version = self._versions[index] - 1
        rng = random.Random(self.seed * 1_000_003 + index * 131 + version)
        item: dict[str, object] = {
            "customer_id": {"S": f"CUST#{index % 400:05d}"},
            "order_id": {"N": str(index)},
            "status": {"S": rng.choice(_STATUSES)},
            "total": {"N": format_number(Decimal(rng.randrange(0, 10_000_000)).scaleb(-2))},
            "quantity": {"N": str(rng.randrange(1, 50))},
            "created_at": {"N": str(written // 1000)},
            "gift": {"BOOL": rng.random() < 0.2},
            "customer-name": {"S": rng.choice(["Ada Lovelace", "Grace Hopper", "Zoë Ørsted"])},
            "shipping": {
                "M": {
                    "method": {"S": rng.choice(["ground", "air", "pickup"])},
                    "address": {"M": {"city": {"S": rng.choice(_CITIES)}, "zip": {"S": f"{rng.randrange(10**5):05d}"}}},
                }
            },
            "lines": {
                "L": [
                    {"M": {"sku": {"S": f"SKU-{rng.randrange(10**4):04d}"}, "qty": {"N": str(rng.randrange(1, 5))}}}
                    for _ in range(rng.randrange(1, 4))
                ]
            },
        }
        if rng.random() < 0.5:
            item["tags"] = {"SS": sorted(rng.sample(["fragile", "bulk", "promo", "express", "eco"], 2))}
        if rng.random() < 0.3:
            item["ledger_balance"] = {"N": f"{rng.randrange(10**27, 10**28)}.{rng.randrange(10**10):010d}"}
        if rng.random() < 0.2:
            item["signature"] = {"B": base64.b64encode(rng.randbytes(12)).decode("ascii")}
        return item

    def full_export(
        self, target: ExportTarget, export_time: datetime | None = None, *, workers: int = 1
    ) -> ManifestSummary:
        """A full export of every item, one data file per partition; `workers` processes write the data files
        (the same bytes either way)."""
        moment = export_time or self.start
        written = to_micros(moment)
        self._exported_at, self._written = written, {}  # its items carry its time
        parts = target.partitions
        rng = random.Random(f"{self.seed}:full:{written}")
        export_id = f"{written // 1000:014d}-{rng.randbytes(4).hex()}"
        with ProcessPoolExecutor(workers) if workers > 1 else nullcontext() as pool:
            arguments = (repeat(self), range(parts), repeat(parts), repeat(written))
            data_files = pool.map(_gzipped_partition, *arguments) if pool else map(_gzipped_partition, *arguments)
            return write_gzipped_export(
                target,
                export_id,
                data_files,
                rng,
                table_arn=self.table_arn,
                table_id=self.table_id,
                data_folder=f"{EXPORTS_FOLDER}/{export_id}/data",
                export_type=ExportType.FULL,
                start_time=moment,
                end_time=moment + timedelta(minutes=5),
                export_time=moment,
                billed_size_bytes=self.items * 700,
            )

    def partition_lines(self, part: int, parts: int, written: int) -> Iterator[bytes]:
        """The lines of a full export's data file `part` of `parts`."""
        for index in range(part, self.items, parts):
            if self._versions[index] >= 2:
                yield _line({"Item": self.typed_item(index, written)})

    def window(
        self,
        target: ExportTarget,
        start: datetime,
        end: datetime,
        changes: int,
        *,
        among: int | None = None,
        view: ExportView = ExportView.NEW_IMAGE,
    ) -> ManifestSummary:
        """A window of `changes` changes (70% updates, 15% deletes, 15% inserts of new items) to items with an
        index below `among` (default: all), written at random times in [start, end); with NEW_AND_OLD_IMAGES,
        each change to an item that existed carries it as it was (OldImage)."""
        rng = random.Random(f"{self.seed}:window:{to_micros(start)}:{changes}:{among}")
        limit = min(among or len(self._versions), len(self._versions))
        lines: list[tuple[int, bytes]] = []
        chosen: set[int] = set()
        while len(lines) < changes:
            roll = rng.random()
            if roll < 0.15:
                index = len(self._versions)
                self._versions.append(1)
            else:
                index = rng.randrange(limit)
                if index in chosen or self._versions[index] < 2:
                    continue
            chosen.add(index)
            written = rng.randrange(to_micros(start), to_micros(end))
            keys = {"customer_id": {"S": f"CUST#{index % 400:05d}"}, "order_id": {"N": str(index)}}
            record: dict[str, object] = {"Metadata": {"WriteTimestampMicros": {"N": str(written)}}, "Keys": keys}
            if view is ExportView.NEW_AND_OLD_IMAGES and self._versions[index] >= 2:
                was = self.typed_item(index, self._written.get(index, self._exported_at))
                record["OldImage"] = dict(sorted(was.items()))
            if 0.15 <= roll < 0.30:
                self._versions[index] = 1
                self._written.pop(index, None)
            else:
                self._versions[index] = min(self._versions[index] + 1, 255)
                record["NewImage"] = dict(sorted(self.typed_item(index, written).items()))
                self._written[index] = written
            lines.append((index, _line(record)))
        parts = target.partitions
        export_id = f"{to_micros(end) // 1000 + 60_000:014d}-{rng.randbytes(4).hex()}"
        return write_export(
            target,
            export_id,
            ([line for index, line in lines if index % parts == part] for part in range(parts)),
            rng,
            table_arn=self.table_arn,
            table_id=self.table_id,
            data_folder=f"{EXPORTS_FOLDER}/data",
            export_type=ExportType.INCREMENTAL,
            start_time=end + timedelta(minutes=1),
            end_time=end + timedelta(minutes=6),
            export_from_time=start,
            export_to_time=end,
            output_view=view,
            billed_size_bytes=max(MIN_INCREMENTAL_BILLED_BYTES, sum(len(line) for _, line in lines)),
        )


def _gzipped_partition(table: BulkTable, part: int, parts: int, written: int) -> tuple[bytes, int]:
    return gzip_lines(table.partition_lines(part, parts, written))


def _line(record: dict[str, object]) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
