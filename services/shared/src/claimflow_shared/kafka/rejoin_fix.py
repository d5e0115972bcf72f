"""A group member of kafka-python 3.0.12 can stop half way through a rebalance; `apply()`
keeps it rejoining until the rebalance is done.

A rebalance that a metadata change starts (partitions added to a subscribed topic, or a topic
the leader's last assignment could not see yet) is not recorded in the coordinator's
`rejoin_needed`: only the difference between the metadata it last assigned and the current
metadata asks for it. The leader's new assignment makes the two equal again at once. When the
poll that sent the JoinGroup and SyncGroup requests runs out of time before the SyncGroup
answer, the next poll finds nothing left to do: the answer is never applied, heartbeats stay
off, the broker drops the member after its session timeout, and the consumer goes on polling
the partitions it had before, or none. Seen as a consumer that never took a payment request
after the topic appeared on a three-node cluster a moment after the member's first join.

The client keeps the attempt whose outcome it has not applied yet (`_join_task`); while there
is one, the member needs to rejoin, whatever the snapshots say. The next poll then awaits that
attempt, or starts a fresh one if it ended unawaited.
"""

from __future__ import annotations

from typing import Any

from kafka.coordinator.consumer import ConsumerCoordinator

_MARK = "_claimflow_rejoin_fix"


def apply() -> None:
    """Idempotent; a no-op for a client whose coordinator keeps no `_join_task`."""
    original = ConsumerCoordinator.need_rejoin
    if getattr(original, _MARK, False):
        return

    def need_rejoin(self: Any) -> bool:
        unapplied = getattr(self, "_join_task", None) is not None
        return unapplied or bool(original(self))

    setattr(need_rejoin, _MARK, True)
    ConsumerCoordinator.need_rejoin = need_rejoin
