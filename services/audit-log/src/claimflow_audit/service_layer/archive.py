"""Exports for archival: a time range of the chain as gzip JSON Lines, with its anchors.

File format (`claimflow-audit-export`, version 1), one JSON object per line:

- line 1, the header: format, version, created_at, the requested range (`from` inclusive,
  `to` exclusive, on recorded_at), first_seq, last_seq, count, and the two anchors:
  `prev_hash`, the hash of the record before first_seq (64 zeros when first_seq is 1), and
  `last_hash`, the hash of record last_seq. An empty range has no seqs, count 0, and both
  anchors equal to the hash of the last record before `from`.
- then one line per record in sequence order: the hashed body (see domain/chain.py) plus
  `prev_hash` and `hash`.

The file verifies on its own (`claimflow-audit verify-export`): the records are contiguous,
the first links to prev_hash, each hash recomputes, the last is last_hash. Comparing the
anchors with the live chain, or with the neighbouring exports' anchors, proves the archive is
the chain's and that archives and database together have no holes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from claimflow_audit.adapters import store
from claimflow_audit.domain.canonical import GENESIS_HASH, canonical_time
from claimflow_audit.domain.chain import HASHED_FIELDS, AuditRecord
from claimflow_audit.domain.walk import ChainWalk, Finding, Linked

FORMAT = "claimflow-audit-export"
VERSION = 1
HASH_RULE = "hash = sha256(prev_hash as 64 hex ASCII || RFC 8785 JSON of the record's other fields)"
_RECORD_KEYS = frozenset(HASHED_FIELDS) | {"prev_hash", "hash"}


class ExportError(RuntimeError):
    """The range cannot be exported as a valid archive (the chain under it is broken)."""


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    count: int
    first_seq: int | None
    last_seq: int | None
    prev_hash: str
    last_hash: str
    sha256: str
    bytes: int

    def as_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "count": self.count,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "prev_hash": self.prev_hash,
            "last_hash": self.last_hash,
            "sha256": self.sha256,
            "bytes": self.bytes,
        }


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


class _Writer:
    """The gzip stream, written beside the target and renamed into place only when whole."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.partial = target.with_name(f".{target.name}.partial")
        target.parent.mkdir(parents=True, exist_ok=True)
        self._raw: IO[bytes] = self.partial.open("wb")
        self._gzip = gzip.GzipFile(fileobj=self._raw, mode="wb", mtime=0)

    def write(self, lines: list[dict[str, Any]]) -> None:
        self._gzip.write(b"".join(_line(v) for v in lines))

    def commit(self) -> None:
        self._gzip.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        self.partial.replace(self.target)

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            self._gzip.close()
            self._raw.close()
        self.partial.unlink(missing_ok=True)


def _walk_and_write(walk: ChainWalk, writer: _Writer, chunk: list[AuditRecord]) -> bool:
    if not walk.feed(Linked.of(r) for r in chunk):
        return False
    writer.write([r.wire() for r in chunk])
    return True


def _file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size of the finished file, for the object store's integrity metadata."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


async def export_range(
    engine: AsyncEngine,
    start: datetime,
    end: datetime,
    output: Path,
    *,
    chunk_size: int = 5000,
    clock: store.Clock = store.utc_now,
) -> ExportSummary:
    """Write the records recorded in [start, end) to output; verified while written."""
    if end <= start:
        raise ExportError("the range is empty: --to must be after --from")
    async with engine.connect() as conn:
        span = await store.seq_range(conn, start, end)
        if span is None:
            after = await store.first_seq_from(conn, start)
            before = (after - 1) if after is not None else (await store.chain_head(conn)).seq
            first, last = None, None
            prev_hash = GENESIS_HASH if before == 0 else await store.hash_at(conn, before)
            last_hash = prev_hash
        else:
            first, last = span
            prev_hash = GENESIS_HASH if first == 1 else await store.hash_at(conn, first - 1)
            last_hash = await store.hash_at(conn, last)
        if prev_hash is None or last_hash is None:
            raise ExportError("the chain has a gap at the range's edge; run verify")
        header = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": canonical_time(clock()),
            "from": canonical_time(start),
            "to": canonical_time(end),
            "first_seq": first,
            "last_seq": last,
            "count": 0 if first is None or last is None else last - first + 1,
            "prev_hash": prev_hash,
            "last_hash": last_hash,
            "hash_rule": HASH_RULE,
        }
        writer = await asyncio.to_thread(_Writer, output)
        try:
            await asyncio.to_thread(writer.write, [header])
            finding = await _write_records(conn, writer, first, last, prev_hash, chunk_size)
            if finding is None:
                await asyncio.to_thread(writer.commit)
        except BaseException:
            await asyncio.to_thread(writer.abandon)
            raise
    if finding is not None:
        await asyncio.to_thread(writer.abandon)
        raise ExportError(f"not exported: {finding.explain()}; run verify")
    sha256, size = await asyncio.to_thread(_file_digest, output)
    return ExportSummary(
        path=output,
        count=0 if first is None or last is None else last - first + 1,
        first_seq=first,
        last_seq=last,
        prev_hash=prev_hash,
        last_hash=last_hash,
        sha256=sha256,
        bytes=size,
    )


async def _write_records(
    conn: AsyncConnection,
    writer: _Writer,
    first: int | None,
    last: int | None,
    prev_hash: str,
    chunk_size: int,
) -> Finding | None:
    """Stream first..last into writer, verifying as it goes; the first finding stops it."""
    if first is None or last is None:
        return None
    walk = ChainWalk(first, prev_hash)
    async for chunk in store.records_between(conn, first, last, chunk_size):
        if not await asyncio.to_thread(_walk_and_write, walk, writer, chunk):
            break
    return walk.finish(last)


@dataclass
class ExportCheck:
    valid: bool
    checked: int
    first_invalid: int | None = None
    reason: str | None = None
    detail: str | None = None
    header: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "checked": self.checked,
            "first_invalid": self.first_invalid,
            "reason": self.reason,
            "detail": self.detail,
            "first_seq": self.header.get("first_seq"),
            "last_seq": self.header.get("last_seq"),
            "prev_hash": self.header.get("prev_hash"),
            "last_hash": self.header.get("last_hash"),
        }


class MalformedExportError(ValueError):
    pass


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for number, text in enumerate(fh, start=1):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise MalformedExportError(f"line {number} is not JSON") from exc
            if not isinstance(value, dict):
                raise MalformedExportError(f"line {number} is not a JSON object")
            yield value


def _header(value: dict[str, Any]) -> dict[str, Any]:
    if value.get("format") != FORMAT or value.get("version") != VERSION:
        raise MalformedExportError(f"not a {FORMAT} version {VERSION} file")
    for key in ("count", "prev_hash", "last_hash"):
        if key not in value:
            raise MalformedExportError(f"the header has no {key}")
    return value


def _linked(value: dict[str, Any]) -> Linked:
    if set(value) != _RECORD_KEYS:
        raise MalformedExportError(
            f"record {value.get('seq')!r} does not have exactly the record fields"
        )
    body = {k: value[k] for k in HASHED_FIELDS}
    seq, prev_hash, digest = value["seq"], value["prev_hash"], value["hash"]
    if not isinstance(seq, int) or not isinstance(prev_hash, str) or not isinstance(digest, str):
        raise MalformedExportError("a record's seq or hashes have the wrong type")
    return Linked(seq, prev_hash, digest, body)


def verify_export(path: Path) -> ExportCheck:
    """Verify an export file on its own, without the database (blocking: file I/O)."""
    check = ExportCheck(valid=False, checked=0)
    try:
        _walk_file(path, check)
    except (MalformedExportError, EOFError, OSError, zlib.error, UnicodeDecodeError) as exc:
        check.valid = False
        check.reason = "malformed"
        check.detail = str(exc) or type(exc).__name__
    return check


def _walk_file(path: Path, check: ExportCheck) -> None:
    lines = _lines(path)
    first_line = next(lines, None)
    if first_line is None:
        raise MalformedExportError("the file is empty")
    header = check.header = _header(first_line)
    walk = ChainWalk(header.get("first_seq") or 1, header["prev_hash"])
    count = 0
    for value in lines:
        count += 1
        if not walk.feed([_linked(value)]):
            break
    check.checked = walk.checked
    finding = walk.finish(header.get("last_seq"))
    if finding is not None:
        check.first_invalid, check.reason = finding.seq, finding.reason.value
        check.detail = finding.explain()
        return
    if count != header["count"]:
        raise MalformedExportError(
            f"the header says {header['count']} records, the file has {count}"
        )
    if (walk.last_hash if count else header["prev_hash"]) != header["last_hash"]:
        check.reason = "anchor_mismatch"
        check.detail = "the last record's hash is not the header's last_hash"
        return
    check.valid = True


async def compare_with_chain(engine: AsyncEngine, header: dict[str, Any]) -> dict[str, bool | None]:
    """Whether the export's anchors are the live chain's hashes at the same places (None
    for an empty export, whose anchors name no seq)."""
    first, last = header.get("first_seq"), header.get("last_seq")
    if first is None or last is None:
        return {"prev_hash_matches": None, "last_hash_matches": None}
    async with engine.connect() as conn:
        before = GENESIS_HASH if first == 1 else await store.hash_at(conn, first - 1)
        at_last = await store.hash_at(conn, last)
    return {
        "prev_hash_matches": before == header["prev_hash"],
        "last_hash_matches": at_last == header["last_hash"],
    }
