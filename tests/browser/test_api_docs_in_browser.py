"""Each service's /docs, rendered by a real headless Chromium, shows every operation of its
OpenAPI document: Swagger UI's scripts and styles come from the service itself, so the page
works where the browser can reach nothing but the service.

Each service runs as its real API process (the command line from the devstack's service
registry) on 127.0.0.1, against the session's PostgreSQL and Kafka. A screenshot of each
page is kept under .state/artifacts/ for a person to look at.
"""

from __future__ import annotations

import html
import re
import struct
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from claimflow_devstack import browser, processes
from claimflow_devstack.errors import DevstackError
from claimflow_devstack.paths import state_dir
from claimflow_devstack.services import SERVICES, ServiceSpec, service
from claimflow_devstack.stack import api_keys_config, service_env

READY_TIMEOUT = 90.0
WIDTH, HEIGHT = 1280, 2000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The operation each service exists for: the page must show it, whatever else it shows.
MAIN_OPERATION = {
    "intake": ("post", "/v1/claims"),
    "adjudication": ("get", "/v1/providers/top"),
    "audit-log": ("get", "/v1/audit/claims/{claim_id}"),
}
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def artifacts_dir() -> Path:
    path = state_dir() / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def chromium() -> Path:
    # A missing browser fails the tests that need it, saying what to install.
    try:
        return browser.chromium_binary()
    except DevstackError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(params=[spec.name for spec in SERVICES])
def service_api(
    request: pytest.FixtureRequest,
    database_url: str,
    kafka_broker: Any,
    topic_prefix: str,
    tmp_path: Path,
) -> Iterator[ServiceSpec]:
    """The service's API process, as `make run` starts it, on a free port."""
    spec = replace(service(request.param), port=processes.free_port(), worker_port=None)
    env = service_env(
        spec,
        database_url=database_url,
        bootstrap_servers=kafka_broker.bootstrap_servers,
        api_keys=api_keys_config("docs-test-key"),
    )
    env |= {
        "CLAIMFLOW_KAFKA_TOPIC_PREFIX": topic_prefix,
        "CLAIMFLOW_CONSUMER_GROUP": f"{spec.name}-{topic_prefix}",
    }
    spec.run_migrations(env, tmp_path)
    api = processes.start(
        f"{spec.name}-api", spec.command("api"), log_path=tmp_path / "api.log", env=env
    )
    try:
        processes.wait_ready(f"{spec.base_url}/readyz", [api], READY_TIMEOUT)
        yield spec
    finally:
        processes.stop(api)


def _operations(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path, summary) of every operation the document describes."""
    return [
        (method, path, operation.get("summary", ""))
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def _rendered_operations(dom: str) -> list[tuple[str, str]]:
    """(method, path) of every operation block Swagger UI rendered."""
    blocks = re.findall(
        r'<div class="opblock opblock-(\w+)[^"]*" id="operations-.*?data-path="([^"]*)"',
        dom,
        flags=re.DOTALL,
    )
    return [(method, html.unescape(path)) for method, path in blocks]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR", f"{path} has no PNG header chunk"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(scope="module")
def blank_page_bytes(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> int:
    """The size of a screenshot of an empty page at the same window size."""
    path = browser.screenshot(
        "about:blank", tmp_path_factory.mktemp("blank") / "blank.png", width=WIDTH, height=HEIGHT
    )
    return path.stat().st_size


def test_docs_render_every_operation_in_a_headless_browser(
    chromium: Path, service_api: ServiceSpec, blank_page_bytes: int
) -> None:
    spec = service_api
    document = httpx.get(f"{spec.base_url}/openapi.json", timeout=10).json()
    expected = _operations(document)
    assert MAIN_OPERATION[spec.name][:2] in {(m, p) for m, p, _ in expected}

    dom = browser.dump_dom(f"{spec.base_url}/docs")

    assert "Failed to load API definition" not in dom
    assert f">{html.escape(document['info']['title'])}" in dom
    rendered = _rendered_operations(dom)
    assert sorted(rendered) == sorted((m, p) for m, p, _ in expected)
    text = html.unescape(re.sub(r"<[^>]+>", " ", dom))
    for _method, path, summary in expected:
        assert summary in text, f"{spec.name} /docs does not show the summary of {path}"

    shot = browser.screenshot(
        f"{spec.base_url}/docs",
        artifacts_dir() / f"docs-{spec.name}.png",
        width=WIDTH,
        height=HEIGHT,
    )
    assert _png_size(shot) == (WIDTH, HEIGHT)
    # A page that rendered nothing compresses to almost nothing.
    assert shot.stat().st_size > 5 * blank_page_bytes, (
        f"{shot} ({shot.stat().st_size} bytes) looks blank (an empty page: {blank_page_bytes})"
    )
