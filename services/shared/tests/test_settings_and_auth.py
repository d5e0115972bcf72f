"""API keys are configured as hashes and authenticate to a principal with roles; a key file
is re-read when it changes."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from claimflow_shared.settings import ServiceSettings
from claimflow_shared.web.auth import ApiKeyAuthenticator


def test_api_keys_from_environment_json(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = hashlib.sha256(b"s3cret").hexdigest()
    monkeypatch.setenv(
        "CLAIMFLOW_API_KEYS",
        f'[{{"principal": "ch", "sha256": "{digest}", "roles": ["submitter", "reader"]}}]',
    )
    monkeypatch.setenv("CLAIMFLOW_KAFKA_TOPIC_PREFIX", "dev.")
    settings = ServiceSettings()
    principal = ApiKeyAuthenticator(settings.api_keys).authenticate("s3cret")
    assert principal is not None
    assert principal.name == "ch"
    assert principal.roles == {"submitter", "reader"}
    # A key without an organisation acts for an organisation of its own, named as it is.
    assert principal.organisation == "ch"
    assert not principal.sees_every_organisation
    assert ApiKeyAuthenticator(settings.api_keys).authenticate("S3cret") is None
    assert settings.topic("claims.submitted") == "dev.claims.submitted"
    assert settings.dead_letter_topic == "dev.claimflow.deadletter"


def test_unknown_roles_and_bad_hashes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "CLAIMFLOW_API_KEYS", '[{"principal": "x", "sha256": "abc", "roles": ["admin"]}]'
    )
    with pytest.raises(ValidationError) as caught:
        ServiceSettings()
    fields = {".".join(str(p) for p in e["loc"]) for e in caught.value.errors()}
    assert fields == {"api_keys.0.sha256", "api_keys.0.roles"}


def test_a_key_acts_for_its_organisation_and_payer_roles_see_every_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    portal = hashlib.sha256(b"portal").hexdigest()
    payer = hashlib.sha256(b"payer").hexdigest()
    monkeypatch.setenv(
        "CLAIMFLOW_API_KEYS",
        f'[{{"principal": "portal", "organisation": "clearinghouse-a", "sha256": "{portal}",'
        f' "roles": ["submitter", "reader"]}},'
        f' {{"principal": "claims-desk", "sha256": "{payer}", "roles": ["payer-admin"]}}]',
    )
    authenticator = ApiKeyAuthenticator(ServiceSettings().api_keys)
    member, staff = authenticator.authenticate("portal"), authenticator.authenticate("payer")
    assert member is not None
    assert staff is not None
    assert (member.organisation, member.sees_every_organisation) == ("clearinghouse-a", False)
    assert staff.sees_every_organisation


def test_secrets_can_come_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path
    (directory / "claimflow_database_url").write_text("postgresql+asyncpg://u:p@db/claims")
    monkeypatch.delenv("CLAIMFLOW_DATABASE_URL", raising=False)
    settings = ServiceSettings(_secrets_dir=directory)  # type: ignore[call-arg]
    assert settings.database_url.get_secret_value() == "postgresql+asyncpg://u:p@db/claims"


def _key_file(path: Path, **keys: list[str]) -> None:
    """Write the key file atomically, as the kubelet swaps a mounted Secret."""
    entries = [
        {"principal": name, "sha256": hashlib.sha256(name.encode()).hexdigest(), "roles": roles}
        for name, roles in keys.items()
    ]
    staged = path.with_suffix(".new")
    staged.write_text(json.dumps(entries))
    staged.replace(path)


def _reloads(result: str) -> float:
    value = REGISTRY.get_sample_value(
        "claimflow_api_key_reloads_total", {"service": "keys-test", "result": result}
    )
    return value or 0.0


def test_a_key_file_is_reread_when_it_changes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A revoked key stops working, and a new one works, without a restart; a broken file
    keeps the keys in force and says so without quoting it."""
    keys = tmp_path / "claimflow_api_keys"
    _key_file(keys, alice=["reader"])
    settings = ServiceSettings(api_keys_file=keys)
    authenticator = ApiKeyAuthenticator(
        settings.api_keys, key_file=settings.api_keys_file, service="keys-test", recheck_seconds=0
    )
    assert authenticator.authenticate("alice") is not None
    assert authenticator.authenticate("bob") is None

    loaded = _reloads("loaded")
    _key_file(keys, bob=["submitter"])
    assert authenticator.authenticate("alice") is None
    bob = authenticator.authenticate("bob")
    assert bob is not None
    assert bob.roles == {"submitter"}
    assert _reloads("loaded") == loaded + 1

    failed = _reloads("failed")
    keys.write_text('[{"principal": "mallory", "sha256": "not-a-hash", "roles": []}]')
    with caplog.at_level(logging.ERROR):
        assert authenticator.authenticate("bob") is not None
        assert authenticator.authenticate("bob") is not None
    assert _reloads("failed") == failed + 1  # reported once per change, not per request
    assert "mallory" not in caplog.text
    assert "not-a-hash" not in caplog.text

    keys.unlink()
    assert authenticator.authenticate("bob") is not None  # a vanished file changes nothing


def test_a_key_file_is_checked_at_most_once_per_interval(tmp_path: Path) -> None:
    keys = tmp_path / "claimflow_api_keys"
    _key_file(keys, alice=["reader"])
    authenticator = ApiKeyAuthenticator([], key_file=keys, recheck_seconds=3600)
    assert authenticator.authenticate("alice") is not None
    _key_file(keys, bob=["reader"])
    # Within the interval the file is not looked at again.
    assert authenticator.authenticate("alice") is not None


def test_a_missing_or_broken_key_file_fails_the_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ApiKeyAuthenticator([], key_file=tmp_path / "absent")
    broken = tmp_path / "broken"
    broken.write_text("[{")
    with pytest.raises(ValidationError):
        ApiKeyAuthenticator([], key_file=broken)


def test_oidc_needs_both_issuer_and_audience() -> None:
    with pytest.raises(ValidationError, match="go together"):
        ServiceSettings(oidc_issuer="https://login.example.org/")
    settings = ServiceSettings(oidc_issuer="https://login.example.org/", oidc_audience="claimflow")
    assert (settings.oidc_organisation_claim, settings.oidc_roles_claim) == ("client_id", "scp")
