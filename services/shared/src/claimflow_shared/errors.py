"""Domain errors: what a use case answers when it refuses, in the domain's words.

Use cases (each service's `service_layer/`) raise these and know nothing of HTTP; each
service's `api/errors.py` maps them to RFC 9457 problems in one table, and a worker treats
them like any other failure of its handler. `code` is the stable machine name of the error,
the last segment of the problem `type` the API answers with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class RuleFailure:
    """One failing rule: where (claim, line, field), which rule, and words free of PHI."""

    rule: str
    message: str
    line: int | None = None
    field: str | None = None
    claim: int | None = None


class DomainError(Exception):
    """Base of every error a use case raises on purpose."""

    code: ClassVar[str] = "domain-error"

    def __init__(self, detail: str | None = None, *, failures: Sequence[RuleFailure] = ()) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        self.failures = tuple(failures)


class BadCursorError(DomainError):
    """A page cursor this service did not issue (or one it can no longer read)."""

    code = "bad-cursor"
