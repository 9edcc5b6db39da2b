"""Numbers beyond the database's integer range in paths and queries are refused (422), never a 500 (found by fuzzing)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

HUGE = str(2**70)


@pytest.mark.parametrize("url", [
    f"/transparency/sth/{HUGE}", f"/transparency/sths?after={HUGE}", f"/transparency/proof/inclusion?leaf_index={HUGE}",
    f"/transparency/proof/consistency?first=1&second={HUGE}", f"/transparency/entries?start={HUGE}&end={HUGE}",
    f"/status-lists/{HUGE}",
])
def test_out_of_range_numbers_are_invalid_input(client: TestClient, url: str) -> None:
    assert client.get(url).status_code == 422
