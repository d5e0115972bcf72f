"""Who may write and read which topic: the ACLs of each service's Kafka user.

Only intake writes `claims.submitted`; only adjudication writes `claims.adjudicated`,
`payments.requested` and `claims.reversed`; only the operator writes `claimflow.plans`; the
payments system answers on `payments.completed` and `payments.failed`. A service reads only
the topics it consumes, and every consumer may write the dead-letter topic. The data tier's
`KafkaUser` resources (k8s/data/users.yaml) declare the same grants; a test holds them equal.
"""

from __future__ import annotations

from dataclasses import dataclass

from claimflow_shared.events.catalog import Topics


@dataclass(frozen=True)
class Grants:
    writes: frozenset[str]
    reads: frozenset[str]
    # Consumer groups it joins (their READ), by the services' default names.
    groups: frozenset[str] = frozenset()
    dead_letters: bool = False


_EVERY_TOPIC = frozenset(
    value for name, value in vars(Topics).items() if name.isupper() and isinstance(value, str)
)

SERVICE_GRANTS: dict[str, Grants] = {
    "intake": Grants(
        writes=frozenset({Topics.CLAIMS_SUBMITTED, Topics.AUDIT_ACCESS}),
        reads=frozenset(
            {Topics.CLAIMS_ADJUDICATED, Topics.CLAIMS_REVERSED, Topics.PAYMENTS_COMPLETED}
        ),
        groups=frozenset({"claimflow-intake"}),
        dead_letters=True,
    ),
    "adjudication": Grants(
        # audit.access: the reads of its 835s, which carry PHI.
        writes=frozenset(
            {
                Topics.CLAIMS_ADJUDICATED,
                Topics.PAYMENTS_REQUESTED,
                Topics.CLAIMS_REVERSED,
                Topics.AUDIT_ACCESS,
            }
        ),
        reads=frozenset(
            {
                Topics.CLAIMS_SUBMITTED,
                Topics.PAYMENTS_COMPLETED,
                Topics.PAYMENTS_FAILED,
                Topics.PLANS,
            }
        ),
        groups=frozenset({"claimflow-adjudication"}),
        dead_letters=True,
    ),
    "audit-log": Grants(
        writes=frozenset(),
        reads=_EVERY_TOPIC,
        groups=frozenset({"claimflow-audit-log"}),
        dead_letters=True,
    ),
    # It reads the plans back to withdraw those whose resource is gone (its sweep).
    "operator": Grants(writes=frozenset({Topics.PLANS}), reads=frozenset({Topics.PLANS})),
    "payments": Grants(
        writes=frozenset({Topics.PAYMENTS_COMPLETED, Topics.PAYMENTS_FAILED}),
        reads=frozenset({Topics.PAYMENTS_REQUESTED}),
        groups=frozenset({"claimflow-payments"}),
    ),
}
