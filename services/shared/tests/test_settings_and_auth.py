"""API keys are configured as hashes and authenticate to a principal with roles."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
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
