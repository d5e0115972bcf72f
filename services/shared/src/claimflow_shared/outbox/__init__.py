"""Transactional outbox and idempotent-consumer bookkeeping, shared by every service."""

from .inbox import first_seen
from .relay import OutboxRelay
from .tables import install_outbox_tables
from .writer import enqueue

__all__ = ["OutboxRelay", "enqueue", "first_seen", "install_outbox_tables"]
