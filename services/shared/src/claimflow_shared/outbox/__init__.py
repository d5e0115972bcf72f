"""Transactional outbox and idempotent-consumer bookkeeping, shared by every service."""

from .idempotency import mark_processed
from .relay import OutboxRelay
from .tables import install_outbox_tables
from .writer import enqueue

__all__ = ["OutboxRelay", "enqueue", "install_outbox_tables", "mark_processed"]
