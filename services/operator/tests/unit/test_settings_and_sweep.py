"""Settings from the environment, and which topic keys the sweep may withdraw."""

from __future__ import annotations

import pytest

from claimflow_operator.handlers import kopf_settings
from claimflow_operator.settings import OperatorSettings
from claimflow_operator.sweep import orphans


def test_namespaces_are_comma_separated_and_empty_means_clusterwide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLAIMFLOW_OPERATOR_NAMESPACES", " team-a, team-b ,")
    monkeypatch.setenv("CLAIMFLOW_KAFKA_TOPIC_PREFIX", "stage.")
    settings = OperatorSettings()
    assert settings.operator_namespaces == ["team-a", "team-b"]
    assert not settings.clusterwide
    assert settings.topic("claimflow.plans") == "stage.claimflow.plans"
    monkeypatch.setenv("CLAIMFLOW_OPERATOR_NAMESPACES", "")
    assert OperatorSettings().clusterwide


def test_defaults_match_the_chart_contract() -> None:
    settings = OperatorSettings()
    assert (settings.http_host, settings.operator_health_port) == ("127.0.0.1", 8080)
    assert settings.operator_metrics_port == 9090


def test_watches_always_time_out() -> None:
    watching = kopf_settings(OperatorSettings()).watching
    assert watching.server_timeout is not None
    assert watching.client_timeout is not None
    assert watching.connect_timeout is not None
    # The API server takes whole seconds only; the client gives the server's own timeout a
    # chance to end the watch cleanly first.
    assert isinstance(watching.server_timeout, int)
    assert watching.client_timeout > watching.server_timeout


def test_the_sweep_withdraws_only_keys_of_watched_namespaces_without_a_resource() -> None:
    live = ["team-a/gone", "team-a/here", "team-b/gone", "bare-name"]
    scoped = OperatorSettings(operator_namespaces=["team-a"])
    assert orphans(live, ["team-a/here"], scoped) == ["team-a/gone"]
    everywhere = OperatorSettings(operator_namespaces=[])
    assert orphans(live, ["team-a/here"], everywhere) == ["team-a/gone", "team-b/gone"]
