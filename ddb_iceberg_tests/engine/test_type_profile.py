"""Type profiles: profiles of parts, merged in any order, are the profile of the whole, and plan the same layout."""

from __future__ import annotations

import pickle
import random
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ddb_iceberg.engine.schema import plan_layout
from ddb_iceberg.engine.type_profile import ItemProfile
from ddb_iceberg.exports.typed_values import decode_item
from ddb_iceberg_tests.mutations import typed_values

items = st.lists(
    st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), typed_values, max_size=4).map(
        lambda typed: {"pk": Decimal(0), **decode_item(typed)}
    ),
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(items=items, seed=st.integers(0, 2**32))
def test_merged_parts_equal_the_whole_and_plan_the_same_layout(items: list[dict[str, Any]], seed: int) -> None:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(len(items) + 1), k=min(3, len(items) + 1)))
    parts = [items[a:b] for a, b in zip([0, *cuts], [*cuts, len(items)], strict=True)]
    rng.shuffle(parts)
    merged = ItemProfile()
    for part in parts:
        merged.merge(pickle.loads(pickle.dumps(ItemProfile.of(part))))  # as a Spark task sends it
    whole = ItemProfile.of(items)
    assert merged == whole
    if items:
        assert plan_layout(None, ["pk"], merged) == plan_layout(None, ["pk"], items)
