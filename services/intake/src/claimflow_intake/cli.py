"""`claimflow-intake` (or `python -m claimflow_intake.cli`): the intake service's processes and
its batch import.

    claimflow-intake api | worker | migrate
    claimflow-intake x12-import FILE --organisation ORG [--principal NAME] [--ack PATH|-]

x12-import stores the claims of an X12 837 Dental interchange file as POST /v1/claims/x12
does, for a file that comes by SFTP or a clearinghouse's drop rather than over HTTP: the
same reader, rules, retry keys and receipts, so a file imported again stores nothing twice,
nor does one sent again through the API by the principal --principal names (retry keys are
each principal's own). The 999 goes to --ack, a JSON summary to
standard output; exit status 0 when the interchange was accepted (AK9 A, E or P), 1 when it
was rejected and nothing was stored, 2 for a usage error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from claimflow_intake.domain.errors import InterchangeRejectedError, RuleFailure
from claimflow_intake.domain.x12_claims import X12Claim
from claimflow_intake.service_layer import x12
from claimflow_intake.service_layer.bulk import Outcome
from claimflow_intake.service_layer.claims import Receipt
from claimflow_intake.service_layer.receipts import claim_receipt
from claimflow_intake.settings import IntakeSettings
from claimflow_shared.cli import PROCESSES, serve_process, service_parser
from claimflow_shared.db import create_engine
from claimflow_shared.migrate import upgrade

MIGRATIONS = "claimflow_intake:migrations"
X12_PRINCIPAL = "x12-import"
# The 999's AK901 of an interchange that stored what it could (E and P refused some claims).
ACCEPTED = ("A", "E", "P")


async def _submit(
    settings: IntakeSettings, source: TextIO, *, organisation: str, principal: str
) -> x12.X12Receipt:
    engine = create_engine(settings)
    try:
        return await x12.submit_interchange(
            engine,
            settings,
            source,
            principal=principal,
            organisation=organisation,
            render=claim_receipt,
        )
    finally:
        await engine.dispose()


def _failures(found: Sequence[RuleFailure]) -> list[dict[str, Any]]:
    # RuleFailure words are PHI-free by contract: rule, place and message, never a value.
    return [{k: v for k, v in dataclasses.asdict(f).items() if v is not None} for f in found]


def _result(claim: X12Claim, outcome: Outcome) -> dict[str, Any]:
    where = {
        "claim_submitter_id": claim.claim_id,
        "transaction": claim.transaction,
        "segment_position": claim.segment_position,
    }
    if isinstance(outcome, Receipt):
        return where | {"id": outcome.body["id"], "replayed": outcome.replayed}
    return where | {"error": outcome.code, "failures": _failures(outcome.failures)}


def _print(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2))  # noqa: T201 - the command's output


def x12_import(
    settings: IntakeSettings,
    path: Path,
    *,
    organisation: str,
    principal: str = X12_PRINCIPAL,
    ack: str | None = None,
) -> int:
    """Import one interchange file; the exit status."""
    with ExitStack() as files:
        try:
            # A text stream: the reader takes the file segment by segment, never as one string.
            source = files.enter_context(path.open(encoding="utf-8", newline=""))
            # Opened before anything is stored, so a bad --ack path stores nothing.
            ack_out = (
                None
                if ack is None
                else sys.stdout
                if ack == "-"
                else files.enter_context(Path(ack).open("w", encoding="utf-8"))
            )
        except OSError as exc:
            print(f"x12-import: {exc.filename}: {exc.strerror}", file=sys.stderr)  # noqa: T201
            return 2
        try:
            receipt = asyncio.run(
                _submit(settings, source, organisation=organisation, principal=principal)
            )
        except UnicodeDecodeError:
            print(  # noqa: T201
                "x12-import: the interchange must be UTF-8 (or ASCII); nothing was stored",
                file=sys.stderr,
            )
            return 1
        except InterchangeRejectedError as exc:
            if ack_out is not None and exc.ack is not None:
                ack_out.write(exc.ack.rstrip("\n") + "\n")
            _print(
                {
                    "status": "R",
                    "sender": exc.sender,
                    "control_number": exc.control_number,
                    "accepted": 0,
                    "rejected": 0,
                    "failures": _failures(exc.failures),
                    "results": [],
                }
            )
            return 1
        read = receipt.read
        if ack_out is not None and read.ack is not None:
            ack_out.write(read.ack.rstrip("\n") + "\n")
        results = [_result(claim, outcome) for claim, outcome in receipt.outcomes]
        accepted = sum("id" in r for r in results)
        _print(
            {
                "status": read.status,
                "sender": read.sender,
                "control_number": read.control_number,
                "accepted": accepted,
                "rejected": len(results) - accepted,
                "results": results,
            }
        )
        return 0 if read.status in ACCEPTED else 1


def main(argv: Sequence[str] | None = None) -> None:
    parser, commands = service_parser(
        "claimflow-intake",
        "claimflow's claim intake service",
        api="serve the /v1/claims HTTP API",
        worker="relay the outbox and apply claim status events",
    )
    imports = commands.add_parser(
        "x12-import", help="store the claims of an X12 837 Dental interchange file"
    )
    imports.add_argument("file", type=Path, help="the interchange (ISA..IEA), UTF-8 or ASCII")
    imports.add_argument(
        "--organisation",
        required=True,
        metavar="ORG",
        help="the submitting organisation, which owns the claims",
    )
    imports.add_argument(
        "--principal",
        default=X12_PRINCIPAL,
        metavar="NAME",
        help=f"who submitted them, as audited (default {X12_PRINCIPAL})",
    )
    imports.add_argument("--ack", metavar="PATH", help="write the 999 here ('-': standard output)")
    args = parser.parse_args(argv)
    command: str = args.command
    if command == "x12-import" and not (args.organisation.strip() and args.principal.strip()):
        parser.error("--organisation and --principal must not be blank")
    settings = IntakeSettings()
    if command in PROCESSES:
        serve_process("claimflow_intake", command, settings)
    elif command == "migrate":
        upgrade(MIGRATIONS, settings.database_url.get_secret_value())
    else:
        sys.exit(
            x12_import(
                settings,
                args.file,
                organisation=args.organisation,
                principal=args.principal,
                ack=args.ack,
            )
        )


if __name__ == "__main__":
    main()
