"""The operator's log lines: one JSON object each, kopf's per-object extras trimmed, no line per
liveness probe."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import kopf
import pytest

from claimflow_operator.logs import configure_operator_logging


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """What the operator's logging writes (to stdout in the pod)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    access = logging.getLogger("aiohttp.access")
    saved_access = access.level
    configure_operator_logging("operator", "INFO")
    stream = io.StringIO()
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        access.setLevel(saved_access)


def test_a_kopf_object_line_keeps_its_reference_without_kopfs_settings(
    output: io.StringIO,
) -> None:
    ref = {"apiVersion": "claimflow.io/v1", "kind": "BenefitPlan", "namespace": "n", "name": "p"}
    extra = {"settings": kopf.OperatorSettings(), "k8s_skip": False, "k8s_ref": ref}
    logging.getLogger("kopf.objects").info("Handler 'reconcile' succeeded.", extra=extra)
    (line,) = output.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["message"] == "Handler 'reconcile' succeeded."
    assert "settings" not in entry
    assert "k8s_skip" not in entry
    assert "BenefitPlan" in entry["k8s_ref"]
    assert len(line) < 400


def test_liveness_probes_are_not_logged_but_warnings_are(output: io.StringIO) -> None:
    access = logging.getLogger("aiohttp.access")
    access.info('10.244.0.1 "GET /healthz HTTP/1.1" 200')
    access.warning("slow")
    lines = output.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["slow"]
