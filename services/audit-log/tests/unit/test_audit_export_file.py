"""verify-export on files: the format is checked offline, and any edit to it is found."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from claimflow_audit.domain.chain import AuditRecord, ChainHead, Entry, link
from claimflow_audit.service_layer.archive import FORMAT, VERSION, verify_export

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def records(count: int) -> list[AuditRecord]:
    entries = [
        Entry(event_id=f"e-{n}", type="t.v1", event_time=T0 + timedelta(seconds=n), actor="a")
        for n in range(1, count + 1)
    ]
    return link(ChainHead(), entries, T0)


def write(path: Path, header: dict[str, Any], lines: list[dict[str, Any]]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for value in [header, *lines]:
            fh.write(json.dumps(value) + "\n")
    return path


def export_of(
    chain: list[AuditRecord], first: int, last: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    part = [r for r in chain if first <= r.seq <= last]
    header = {
        "format": FORMAT,
        "version": VERSION,
        "first_seq": first,
        "last_seq": last,
        "count": len(part),
        "prev_hash": part[0].prev_hash,
        "last_hash": part[-1].hash,
    }
    return header, [r.wire() for r in part]


def test_a_middle_slice_of_the_chain_verifies_on_its_own(tmp_path: Path) -> None:
    header, lines = export_of(records(20), 6, 15)
    check = verify_export(write(tmp_path / "a.jsonl.gz", header, lines))
    assert check.valid, check
    assert check.checked == 10


def test_an_edited_record_is_named(tmp_path: Path) -> None:
    header, lines = export_of(records(20), 1, 20)
    lines[8]["actor"] = "someone else"
    check = verify_export(write(tmp_path / "a.jsonl.gz", header, lines))
    assert (check.valid, check.first_invalid, check.reason) == (False, 9, "hash_mismatch")


def test_a_dropped_record_is_a_gap_and_a_dropped_tail_too(tmp_path: Path) -> None:
    header, lines = export_of(records(20), 1, 20)
    check = verify_export(write(tmp_path / "a.jsonl.gz", header, lines[:4] + lines[5:]))
    assert (check.first_invalid, check.reason) == (5, "gap")
    check = verify_export(write(tmp_path / "b.jsonl.gz", header, lines[:-2]))
    assert (check.first_invalid, check.reason) == (19, "gap")


def test_anchors_that_do_not_match_the_records_are_found(tmp_path: Path) -> None:
    header, lines = export_of(records(20), 5, 10)
    check = verify_export(write(tmp_path / "a.jsonl.gz", header | {"prev_hash": "0" * 64}, lines))
    assert (check.first_invalid, check.reason) == (5, "prev_hash_mismatch")
    check = verify_export(write(tmp_path / "b.jsonl.gz", header | {"last_hash": "1" * 64}, lines))
    assert check.reason == "anchor_mismatch"


def test_truncated_foreign_or_padded_files_are_malformed(tmp_path: Path) -> None:
    header, lines = export_of(records(50), 1, 50)
    whole = write(tmp_path / "whole.jsonl.gz", header, lines).read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    assert verify_export(cut).reason == "malformed"
    foreign = write(tmp_path / "f.jsonl.gz", {"format": "other"}, lines)
    assert verify_export(foreign).reason == "malformed"
    extra = write(tmp_path / "x.jsonl.gz", header, [*lines, {"seq": 51}])
    assert verify_export(extra).reason == "malformed"
    plain = tmp_path / "plain.jsonl.gz"
    plain.write_text("not gzip")
    assert verify_export(plain).reason == "malformed"
