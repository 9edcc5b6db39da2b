"""A started worker keeps its start-up heap out of the garbage collector's full collections."""

from __future__ import annotations

import gc

from api.app import settle_heap


def test_the_start_up_heap_is_frozen() -> None:
    try:
        settle_heap()
        assert gc.get_freeze_count() > 10_000  # modules, types and the app: not walked by later full collections
    finally:
        gc.unfreeze()
