"""The wrk driver against small stdlib HTTP servers on 127.0.0.1: what wrk reports must match
what the servers saw, every request must carry its own number, and the figures must parse."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bench.load import ClosedLoop
from bench.wrk import WrkTarget, run_closed_loop

from claimflow_devstack.errors import MissingToolError
from claimflow_devstack.wrk import Wrk, find_wrk

TOKEN = "Bearer test-key"
TEMPLATE = b'{"external_id":"bench-@SEQ@","lines":[{"subscriber_number":"SUB-@SEQ@"}]}'


@dataclass
class Seen:
    status: int
    ids: list[int] = field(default_factory=list)
    unauthorised: int = 0
    mismatched: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(seen: Seen) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            claim = json.loads(body)
            seq = int(claim["external_id"].removeprefix("bench-"))
            with seen.lock:
                seen.ids.append(seq)
                # Every occurrence of the placeholder carries the same number.
                if claim["lines"][0]["subscriber_number"] != f"SUB-{seq}":
                    seen.mismatched += 1
                if self.headers.get("Authorization") != TOKEN:
                    seen.unauthorised += 1
            self.send_response(seen.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # wrk resets its connections when it stops: not worth a traceback.
        pass


@contextmanager
def servers(count: int, status: int) -> Iterator[tuple[list[str], list[Seen]]]:
    seen = [Seen(status) for _ in range(count)]
    running = [_Server(("127.0.0.1", 0), _handler(s)) for s in seen]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in running]
    for thread in threads:
        thread.start()
    try:
        yield [f"http://127.0.0.1:{s.server_address[1]}/v1/claims" for s in running], seen
    finally:
        for server in running:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def wrk() -> Wrk:
    try:
        return find_wrk()
    except MissingToolError as exc:
        pytest.fail(f"wrk cannot be prepared (python -m claimflow_devstack.cli prepare): {exc}")


def _target(urls: list[str]) -> WrkTarget:
    headers = (("Authorization", TOKEN), ("Content-Type", "application/json"))
    return WrkTarget(tuple(urls), headers, TEMPLATE)


def test_every_request_is_counted_numbered_apart_and_timed(wrk: Wrk) -> None:
    with servers(2, 202) as (urls, seen):
        result = run_closed_loop(
            _target(urls), ClosedLoop(4), warmup=0, duration=2, threads=2, binary=wrk
        )
    ids = [n for s in seen for n in s.ids]
    assert result.requests > 100
    # Requests in flight when wrk stops reach a server but are never counted by wrk.
    assert result.requests <= len(ids) <= result.sent <= result.requests + 4
    assert result.ok == result.requests
    assert not result.errors
    assert not any(s.unauthorised for s in seen)
    assert not any(s.mismatched for s in seen)
    assert len(set(ids)) == len(ids), "two requests carried the same number"
    assert all(result.first_seq <= n < result.first_seq + 1_000_000_000 for n in ids)
    # Thread i sends to replica i and takes the numbers first_seq + i (mod 2).
    for index, server in enumerate(seen):
        assert server.ids
        assert {(n - result.first_seq) % 2 for n in server.ids} == {index}
    assert 1.9 < result.duration < 3.0
    assert result.throughput == pytest.approx(result.requests / result.duration)
    latency = [result.percentile(p) for p in (50, 90, 99)]
    assert all(v is not None and v > 0 for v in latency)
    assert latency == sorted(latency)
    assert result.latency_us["max"] >= result.latency_us["p99"]
    # wrk's own CPU, apart from the servers' (which run in this process).
    assert result.cpu_s > 0
    per_request = result.generator_cpu_ms_per_request
    assert per_request is not None
    assert 0 < per_request < 1.0, f"wrk spent {per_request:.3f} ms of CPU per request"


def test_statuses_other_than_the_expected_one_are_counted_by_code(wrk: Wrk) -> None:
    with servers(1, 503) as (urls, seen):
        result = run_closed_loop(
            _target(urls), ClosedLoop(2), warmup=1, duration=1, threads=1, binary=wrk
        )
    assert result.requests > 0
    assert result.ok == 0
    assert result.throughput == 0
    assert result.errors == {"HTTP 503": result.requests}
    # The warm-up run's requests reached the server too, with numbers of their own.
    assert len(seen[0].ids) > result.requests
    assert len(set(seen[0].ids)) == len(seen[0].ids)


def test_targets_wrk_cannot_send_are_refused() -> None:
    with pytest.raises(ValueError, match="no b'@SEQ@'"):
        WrkTarget(("http://127.0.0.1:1/",), (), b"{}")
    with pytest.raises(ValueError, match="port only"):
        WrkTarget(("http://127.0.0.1:1/a", "http://127.0.0.1:2/b"), (), TEMPLATE)
