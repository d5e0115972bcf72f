"""`claimflow-intake x12-import` as an operator runs it, on the real database: an interchange
file stored claim by claim with its 999, a second import storing nothing, a broken envelope
storing nothing and exiting 1, usage errors exiting 2 (run in-process: they need no database
and a process start costs seconds)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from claimflow_devstack.testing import run_cli
from claimflow_intake.adapters.tables import claims
from claimflow_intake.cli import main as cli_main
from claimflow_intake.settings import IntakeSettings

from .conftest import auth
from .test_x12 import FIXTURES, REPO, _counts, assert_valid_999, post, segments

CLAIM_1234 = REPO / "examples" / "x12" / "claim_1234.837"


def cli(settings: IntakeSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLAIMFLOW_DATABASE_URL": settings.database_url.get_secret_value()}
    return run_cli("claimflow_intake", ["x12-import", *args], env)


async def run(settings: IntakeSettings, *args: str) -> tuple[int, str, str]:
    done = await asyncio.to_thread(cli, settings, *args)
    return done.returncode, done.stdout, done.stderr


async def _owners(settings: IntakeSettings) -> list[tuple[str, str]]:
    engine = create_async_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(claims.c.organisation, claims.c.submitted_by))
            return [(r.organisation, r.submitted_by) for r in rows]
    finally:
        await engine.dispose()


async def test_claim_1234_imports_once_and_its_ack_is_a_valid_999(
    settings: IntakeSettings, tmp_path: Path
) -> None:
    ack = tmp_path / "claim_1234.999"
    code, out, err = await run(
        settings, str(CLAIM_1234), "--organisation", "smile-dental", "--ack", str(ack)
    )

    assert code == 0, err
    summary: dict[str, Any] = json.loads(out)
    assert (summary["status"], summary["accepted"], summary["rejected"]) == ("A", 1, 0)
    assert (summary["sender"], summary["control_number"]) == ("ZZ:SMILEDENTAL", "000000101")
    (result,) = summary["results"]
    assert (result["claim_submitter_id"], result["replayed"]) == ("1234", False)
    assert_valid_999(ack.read_text())
    assert ["AK9", "A", "1", "1", "1"] in segments(ack.read_text())
    assert await _counts(settings) == (1, 1)
    assert await _owners(settings) == [("smile-dental", "x12-import")]
    # What leaves the command is the claim's identity and the 999, never its PHI.
    assert "3730189502" not in out + err
    assert "DOE" not in out + err

    code, out, err = await run(settings, str(CLAIM_1234), "--organisation", "smile-dental")
    assert code == 0, err
    (again,) = json.loads(out)["results"]
    assert (again["id"], again["replayed"]) == (result["id"], True)
    assert await _counts(settings) == (1, 1)


async def test_an_imported_interchange_sent_again_through_the_api_replays_its_receipt(
    settings: IntakeSettings, client: httpx.AsyncClient
) -> None:
    # The API's submitter is principal and organisation "clearinghouse"; retry keys are per
    # principal, so the import names it to share them.
    code, out, err = await run(
        settings,
        str(CLAIM_1234),
        "--organisation",
        "clearinghouse",
        "--principal",
        "clearinghouse",
    )
    assert code == 0, err
    (imported,) = json.loads(out)["results"]

    response = await post(client, "claim_1234.837")

    (result,) = response.json()["results"]
    assert (result["status"], result["replayed"]) == (202, True)
    assert result["claim"]["id"] == imported["id"]
    assert result["claim"]["totals"]["net_fee"] == "116.85"
    assert await _counts(settings) == (1, 1)
    stored = await client.get(result["location"], headers=auth())
    assert stored.status_code == 200


async def test_a_broken_envelope_exits_1_with_its_999_and_stores_nothing(
    settings: IntakeSettings,
) -> None:
    code, out, err = await run(
        settings,
        str(FIXTURES / "envelope_se_count.837"),
        "--organisation",
        "smile-dental",
        "--ack",
        "-",
    )

    assert code == 1, err
    # --ack -: the 999 first, then the summary.
    ack, brace, rest = out.partition("\n{")
    assert_valid_999(ack)
    assert ["AK9", "R", "1", "1", "0"] in segments(ack)
    summary = json.loads(brace.lstrip("\n") + rest)
    assert (summary["status"], summary["accepted"], summary["results"]) == ("R", 0, [])
    assert summary["failures"] == [
        {
            "rule": "x12-transaction-4",
            "field": "ST",
            "message": "SE01 does not match the number of included segments",
        }
    ]
    assert await _counts(settings) == (0, 0)


async def test_usage_errors_exit_2_before_anything_is_stored(
    settings: IntakeSettings, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.setenv("CLAIMFLOW_DATABASE_URL", settings.database_url.get_secret_value())
    usages = {
        "--organisation": [str(CLAIM_1234)],
        "none.837": [str(tmp_path / "none.837"), "--organisation", "o"],
        "999": [str(CLAIM_1234), "--organisation", "o", "--ack", str(tmp_path / "no" / "999")],
        "blank": [str(CLAIM_1234), "--organisation", " "],
    }
    for named, args in usages.items():
        with pytest.raises(SystemExit) as exit_:
            await asyncio.to_thread(cli_main, ["x12-import", *args])
        assert exit_.value.code == 2, named
        assert named in capsys.readouterr().err
    assert await _counts(settings) == (0, 0)
