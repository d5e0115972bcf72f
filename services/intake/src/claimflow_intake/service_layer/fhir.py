"""FHIR views of a claim (Claim, ClaimResponse, ExplanationOfBenefit), each an audited read.

The view is built from `read_claim`'s answer, so every FHIR read goes through the same
organisation check and writes the same `audit.access` event (`claim.read`) in the read's
transaction. A ClaimResponse or EOB asked of a claim not adjudicated yet is refused after
the read: the PHI was read from the database, so the read is recorded all the same.
"""

from __future__ import annotations

from fhir.resources.R4B.domainresource import DomainResource
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_intake.domain import fhir
from claimflow_intake.domain.errors import ClaimNotAdjudicatedError
from claimflow_intake.settings import IntakeSettings

from .claims import read_claim


async def read_fhir(
    engine: AsyncEngine,
    settings: IntakeSettings,
    claim_id: str,
    resource: fhir.FhirResourceName,
    *,
    principal: str,
    organisation: str | None,
) -> DomainResource:
    """The claim as the FHIR `resource`; ClaimNotFoundError as `read_claim`, and
    ClaimNotAdjudicatedError for a response or EOB of a claim still queued."""
    found = await read_claim(
        engine, settings, claim_id, principal=principal, organisation=organisation
    )
    try:
        return fhir.build(resource, found)
    except fhir.NotAdjudicatedError:
        raise ClaimNotAdjudicatedError(
            f"The claim is {found['status']}: it has no {resource} until it is adjudicated."
        ) from None
