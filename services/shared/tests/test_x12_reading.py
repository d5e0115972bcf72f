"""Reading interchanges with the maps parsed once per process, from several threads at once."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import pyx12.map_if
import pyx12.params

from claimflow_shared.x12 import InterchangeResult, loaded_maps, read_interchange
from claimflow_shared.x12.maps import derive_837d
from claimflow_shared.x12.testing import dental_interchange


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The map files pyx12 actually parses from here on, starting with none held."""
    parsed: list[str] = []
    original: Callable[..., Any] = loaded_maps._original

    def counting(map_file: str, param: Any, map_path: str | None = None) -> Any:
        parsed.append(map_file)
        return original(map_file, param, map_path)

    monkeypatch.setattr(loaded_maps, "_original", counting)
    monkeypatch.setattr(loaded_maps, "_loaded", {})
    return parsed


def summary(result: InterchangeResult) -> tuple[Any, ...]:
    # The 999's own envelope carries the time it was made and a fresh group control number;
    # what it says runs from its ST to its SE.
    ack = result.ack[result.ack.index("ST*") : result.ack.index("GE*")] if result.ack else None
    return (result.status, ack, result.errors, result.transactions)


def test_a_second_interchange_parses_no_map_again(parses: list[str]) -> None:
    first = read_interchange(dental_interchange(2))
    assert sorted(parses) == ["837.5010.X224.A2.xml", "x12.control.00501.xml"]
    second = read_interchange(dental_interchange(3, control=2))
    assert len(parses) == 2
    assert loaded_maps.loaded_map_count() == 2
    assert first.status == second.status == "A"


def test_maps_outside_claimflows_map_directory_are_parsed_each_time(parses: list[str]) -> None:
    param = pyx12.params.ParamsBase()
    stock = str(derive_837d.stock_map_dir())
    one = pyx12.map_if.load_map_file("x12.control.00501.xml", param, stock)
    other = pyx12.map_if.load_map_file("x12.control.00501.xml", param, stock)
    assert one is not other
    assert parses == ["x12.control.00501.xml", "x12.control.00501.xml"]


def test_readers_in_threads_share_the_maps_and_find_what_they_find_alone(
    parses: list[str],
) -> None:
    good = dental_interchange(20)
    bad_claim = dental_interchange(20, control=2).replace("SV3*AD:D0210*108", "SV3*AD:D0210*X", 3)
    bad_envelope = dental_interchange(20, control=3).replace("SE*", "SE*9", 1)
    texts = [good, bad_claim, bad_envelope] * 2
    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        together = list(pool.map(read_interchange, texts))
    assert len(parses) == 2  # each map parsed once, by whichever reader came first
    alone = [read_interchange(text) for text in texts]
    assert [summary(r) for r in together] == [summary(r) for r in alone]
    assert [r.status for r in alone[:3]] == ["A", "R", "R"]
    assert [{e.level for e in r.errors} for r in alone[:3]] == [set(), {"element"}, {"transaction"}]
