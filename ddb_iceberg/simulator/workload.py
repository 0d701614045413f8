"""A simulated DynamoDB table under traffic: deterministic from a seed, with its true state at any time.

Writes are generated hour by hour from `random.Random(f"{seed}:{hour}")`, replaying the state they act on,
so the same configuration always produces the same history, and any point in time or window can be asked
for in any order.
"""

from __future__ import annotations

import bisect
import random
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from ddb_iceberg.exports.manifest import to_micros
from ddb_iceberg.exports.typed_values import EXACT_CONTEXT, DecodedItem

Key = tuple[Any, ...]
_HOUR_MICROS = 3_600_000_000

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


class KeyShape(StrEnum):
    COMPOSITE = "composite"  # partition key `customer_id` (S) and sort key `order_id` (N)
    SIMPLE = "simple"  # partition key `sku` (S) only


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that determines a simulated table's history."""

    seed: int = 7
    table_name: str = "orders"
    start: datetime = DEFAULT_START
    initial_items: int = 500
    writes_per_hour: int = 120
    key_shape: KeyShape = KeyShape.COMPOSITE
    # An attribute (`quantity`) that turns from N to S for some items after the first hours, as real
    # tables drift when application code changes; off by default.
    type_drift: bool = False
    region: str = "us-east-1"
    account_id: str = "123456789012"

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("SimulationConfig.start must be timezone-aware (UTC)")
        if self.initial_items < 0 or self.writes_per_hour < 0:
            raise ValueError("initial_items and writes_per_hour cannot be negative")

    @property
    def key_attributes(self) -> tuple[str, ...]:
        return ("customer_id", "order_id") if self.key_shape is KeyShape.COMPOSITE else ("sku",)

    @property
    def table_arn(self) -> str:
        return f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{self.table_name}"


@dataclass(frozen=True, slots=True)
class WriteEvent:
    """One write to the table: a put of `item`, or a delete when `item` is None."""

    timestamp_micros: int
    key: Key
    item: DecodedItem | None


class _KeyPool:
    """Keys with O(1) add, remove and seeded random choice (order depends only on the history)."""

    def __init__(self) -> None:
        self._keys: list[Key] = []
        self._index: dict[Key, int] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def add(self, key: Key) -> None:
        if key not in self._index:
            self._index[key] = len(self._keys)
            self._keys.append(key)

    def remove(self, key: Key) -> None:
        index = self._index.pop(key)
        last = self._keys.pop()
        if index < len(self._keys):
            self._keys[index] = last
            self._index[last] = index

    def choice(self, rng: random.Random) -> Key:
        return self._keys[rng.randrange(len(self._keys))]

    def sample(self, rng: random.Random, count: int) -> list[Key]:
        return [self._keys[i] for i in rng.sample(range(len(self._keys)), k=min(count, len(self._keys)))]


@dataclass
class _History:
    events: list[WriteEvent] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    state: dict[Key, DecodedItem] = field(default_factory=dict)
    live: _KeyPool = field(default_factory=_KeyPool)
    deleted: _KeyPool = field(default_factory=_KeyPool)
    next_serial: int = 0
    hours_generated: int = -1  # hour -1 is the initial load before `start`


class SimulatedTable:
    """A DynamoDB table under a realistic, seeded workload."""

    def __init__(self, config: SimulationConfig | None = None) -> None:
        self.config = config or SimulationConfig()
        self._key_attributes = self.config.key_attributes
        self._history = _History()
        self._start_micros = to_micros(self.config.start)
        self._generate_initial_load()

    @classmethod
    def scripted(
        cls,
        key_attributes: Sequence[str],
        writes: Iterable[tuple[datetime, DecodedItem | None, Key]],
        config: SimulationConfig | None = None,
    ) -> SimulatedTable:
        """A table whose history is exactly `writes` (time, item or None for a delete, key), for tests and
        examples that need particular items rather than a workload."""
        table = cls(replace(config or SimulationConfig(), initial_items=0, writes_per_hour=0))
        table._key_attributes = tuple(key_attributes)
        table._history.hours_generated = 10**9  # nothing more to generate
        for moment, item, key in sorted(writes, key=lambda write: write[0]):
            table._append(WriteEvent(to_micros(moment), tuple(key), item))
        return table

    @property
    def key_attributes(self) -> tuple[str, ...]:
        return self._key_attributes

    def key_of(self, item: DecodedItem) -> Key:
        return tuple(item[name] for name in self.key_attributes)

    def events_between(self, start: datetime, end: datetime) -> list[WriteEvent]:
        """The writes with start <= timestamp < end, in timestamp order."""
        start_micros, end_micros = to_micros(start), to_micros(end)
        self._generate_until(end_micros)
        history = self._history
        low = bisect.bisect_left(history.timestamps, start_micros)
        high = bisect.bisect_left(history.timestamps, end_micros)
        return history.events[low:high]

    def state_at(self, moment: datetime) -> dict[Key, DecodedItem]:
        """The table's true content as of `moment`: every write strictly before it applied."""
        state: dict[Key, DecodedItem] = {}
        for event in self.events_between(datetime(1970, 1, 1, tzinfo=UTC), moment):
            if event.item is None:
                state.pop(event.key, None)
            else:
                state[event.key] = event.item
        return state

    # Generation -------------------------------------------------------------------------------------------

    def _generate_initial_load(self) -> None:
        rng = random.Random(f"{self.config.seed}:initial")
        # The initial items were written during the hour before `start`.
        timestamps = sorted(
            self._start_micros - rng.randrange(1, _HOUR_MICROS) for _ in range(self.config.initial_items)
        )
        for timestamp in timestamps:
            self._record(timestamp, self._new_item(rng, self._fresh_key(rng), timestamp))
        self._history.hours_generated = 0

    def _generate_until(self, end_micros: int) -> None:
        history = self._history
        while self._start_micros + history.hours_generated * _HOUR_MICROS < end_micros:
            self._generate_hour(history.hours_generated)
            history.hours_generated += 1

    def _generate_hour(self, hour: int) -> None:
        rng = random.Random(f"{self.config.seed}:{hour}")
        hour_start = self._start_micros + hour * _HOUR_MICROS
        mean = self.config.writes_per_hour
        count = max(0, round(rng.gauss(mean, mean**0.5))) if mean else 0
        hot_keys = self._history.live.sample(rng, 3)
        for offset in sorted(rng.randrange(_HOUR_MICROS) for _ in range(count)):
            timestamp = max(hour_start + offset, (self._history.timestamps or [0])[-1] + 1)
            self._random_write(rng, timestamp, hot_keys, hour)

    def _random_write(self, rng: random.Random, timestamp: int, hot_keys: list[Key], hour: int) -> None:
        state, live, deleted = self._history.state, self._history.live, self._history.deleted
        roll = rng.random()
        if roll < 0.22 or not live:
            self._record(timestamp, self._new_item(rng, self._fresh_key(rng), timestamp))
        elif roll < 0.30 and hot_keys:
            # A few keys are written many times an hour: compaction keeps only their last state per window.
            key = rng.choice(hot_keys)
            self._record(timestamp, self._updated_item(rng, state.get(key) or self._new_item(rng, key, timestamp)))
        elif roll < 0.72:
            key = live.choice(rng)
            self._record(timestamp, self._updated_item(rng, state[key], drift=hour >= 2))
        elif roll < 0.90:
            self._delete(timestamp, live.choice(rng))
        elif deleted:
            # Re-create a deleted item: same key, fresh content.
            self._record(timestamp, self._new_item(rng, deleted.choice(rng), timestamp))
        else:
            self._record(timestamp, self._new_item(rng, self._fresh_key(rng), timestamp))

    def _record(self, timestamp: int, item: DecodedItem) -> None:
        key = self.key_of(item)
        self._history.state[key] = item
        self._history.live.add(key)
        if key in self._history.deleted:
            self._history.deleted.remove(key)
        self._append(WriteEvent(timestamp, key, item))

    def _delete(self, timestamp: int, key: Key) -> None:
        del self._history.state[key]
        self._history.live.remove(key)
        self._history.deleted.add(key)
        self._append(WriteEvent(timestamp, key, None))

    def _append(self, event: WriteEvent) -> None:
        self._history.events.append(event)
        self._history.timestamps.append(event.timestamp_micros)

    def _fresh_key(self, rng: random.Random) -> Key:
        self._history.next_serial += 1
        serial = self._history.next_serial
        if self.config.key_shape is KeyShape.COMPOSITE:
            return (f"CUST#{rng.randrange(1, 400):05d}", Decimal(serial))
        return (f"SKU-{serial:07d}-{rng.choice(string.ascii_uppercase)}",)

    def _new_item(self, rng: random.Random, key: Key, timestamp: int) -> DecodedItem:
        item: DecodedItem = dict(zip(self.key_attributes, key, strict=True))
        item["status"] = rng.choice(["NEW", "PAID", "SHIPPED", "DELIVERED", ""])
        item["total"] = Decimal(rng.randrange(0, 10_000_000)).scaleb(-2, EXACT_CONTEXT)
        item["quantity"] = Decimal(rng.randrange(1, 50))
        item["created_at"] = Decimal(timestamp // 1000)
        item["gift"] = rng.random() < 0.2
        item["customer-name"] = rng.choice(["Ada Lovelace", "Grace Hopper", "Edsger Dijkstra", "Zoë Ørsted"])
        item["shipping"] = {
            "method": rng.choice(["ground", "air", "pickup"]),
            "address": {
                "city": rng.choice(["Oslo", "Lima", "Pune", "Kyiv"]),
                "zip": f"{rng.randrange(10**5):05d}",
            },
            "insured": rng.random() < 0.5,
        }
        item["lines"] = [
            {"sku": f"SKU-{rng.randrange(10**4):04d}", "qty": Decimal(rng.randrange(1, 5))}
            for _ in range(rng.randrange(1, 4))
        ]
        if rng.random() < 0.5:
            item["tags"] = frozenset(rng.sample(["fragile", "bulk", "promo", "express", "eco"], rng.randrange(1, 4)))
        if rng.random() < 0.3:
            item["scores"] = frozenset(Decimal(rng.randrange(-500, 500)).scaleb(-1, EXACT_CONTEXT) for _ in range(3))
        if rng.random() < 0.2:
            item["signature"] = rng.randbytes(rng.randrange(0, 24))
        if rng.random() < 0.1:
            item["thumbnails"] = frozenset(rng.randbytes(8) for _ in range(2))
        if rng.random() < 0.3:
            # 38 significant digits: beyond bigint and double, exact only as decimal(38, s).
            item["ledger_balance"] = Decimal(rng.randrange(10**37, 10**38)).scaleb(-10, EXACT_CONTEXT)
        if rng.random() < 0.05:
            # Magnitudes no decimal(38, s) holds.
            item["measurement"] = Decimal(rng.choice(["6.02214076E+23", "1.602176634E-19", "9.99E+125", "1E-130"]))
        if rng.random() < 0.1:
            item["notes"] = None
        if rng.random() < 0.1:
            item["audit"] = ["created", Decimal(timestamp), {"by": "system"}]
        return item

    def _updated_item(self, rng: random.Random, current: DecodedItem, *, drift: bool = False) -> DecodedItem:
        item = dict(current)
        item["status"] = rng.choice(["PAID", "SHIPPED", "DELIVERED", "RETURNED"])
        if rng.random() < 0.5:
            item["total"] = Decimal(rng.randrange(0, 10_000_000)).scaleb(-2, EXACT_CONTEXT)
        if drift and self.config.type_drift and rng.random() < 0.3:
            item["quantity"] = f"{rng.randrange(1, 50)} units"
        elif rng.random() < 0.3:
            item["quantity"] = Decimal(rng.randrange(1, 50))
        if rng.random() < 0.25:
            item["discount_code"] = rng.choice(["WELCOME10", "SPRING", "VIP"])
        if rng.random() < 0.2:
            item.pop("gift", None)
        if rng.random() < 0.15:
            item.pop("tags", None)
        if rng.random() < 0.2:
            item["shipping"] = {**item.get("shipping", {}), "tracking": f"1Z{rng.randrange(10**9):09d}"}
        if rng.random() < 0.1:
            item["returned"] = {"reason": rng.choice(["damaged", "late"]), "refund": Decimal("12.50")}
        return item
