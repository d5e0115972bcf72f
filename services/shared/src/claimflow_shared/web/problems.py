"""RFC 9457 problem details: every error a claimflow API returns has this shape."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from claimflow_shared.errors import DomainError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://claimflow.dev/problems/"
RETRY_AFTER_SECONDS = "1"
# A problem lists at most this many failures: a megabyte of bad CSV rows fails half a million
# times, and an answer of tens of megabytes helps no client.
MAX_ERRORS = 100

log = logging.getLogger(__name__)


class FieldError(BaseModel):
    """One failing rule: where (claim, line, field) and which rule, in words free of PHI."""

    claim: int | None = Field(
        default=None, description="0-based claim index in a multi-claim import"
    )
    line: int | None = Field(default=None, description="0-based line index, null for the claim")
    field: str | None = Field(default=None, description="canonical field name")
    rule: str = Field(description="stable machine name of the rule", examples=["npi-luhn"])
    message: str


class Problem(BaseModel):
    type: str = Field(examples=[PROBLEM_BASE + "validation-error"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None
    error_count: int | None = Field(
        default=None, description=f"how many failures there were, when more than {MAX_ERRORS}"
    )
    truncated: bool | None = Field(
        default=None, description=f"true when errors holds only the first {MAX_ERRORS} failures"
    )


class ProblemError(Exception):
    """Raised anywhere in request handling; rendered as problem+json."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str | None = None,
        *,
        errors: Sequence[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(title)
        self.problem = Problem(
            type=PROBLEM_BASE + slug,
            title=title,
            status=status,
            detail=detail,
            errors=list(errors) if errors is not None else None,
        )
        self.headers = headers


def problem_response(
    problem: Problem, request: Request | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    if request is not None and problem.instance is None:
        problem = problem.model_copy(update={"instance": request.url.path})
    if problem.errors is not None and len(problem.errors) > MAX_ERRORS:
        problem = problem.model_copy(
            update={
                "errors": problem.errors[:MAX_ERRORS],
                "error_count": len(problem.errors),
                "truncated": True,
            }
        )
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("rate-limited", "Too many requests"),
}


def _from_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = _STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    problem = Problem(type=PROBLEM_BASE + slug, title=title, status=exc.status_code, detail=detail)
    return problem_response(problem, request, headers=dict(exc.headers or {}) or None)


def _location_to_error(loc: Sequence[Any]) -> tuple[str | None, int | None]:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    line = next((p for p in parts if isinstance(p, int)), None)
    names = [str(p) for p in parts if not isinstance(p, int)]
    return (".".join(names) or None), line


def _from_request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        field, line = _location_to_error(err.get("loc", ()))
        # pydantic's message never echoes the input value; "input" is dropped on purpose.
        errors.append(
            FieldError(line=line, field=field, rule=str(err.get("type")), message=err["msg"])
        )
    problem = Problem(
        type=PROBLEM_BASE + "validation-error",
        title="Request is not valid",
        status=422,
        detail=f"{len(errors)} field(s) failed validation",
        errors=errors,
    )
    return problem_response(problem, request)


def _from_problem_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.problem, request, exc.headers)


# SQLSTATEs that say the server cannot serve this request now, not that the request is wrong:
# a retry (after a restart, failover, or when load drops) succeeds unchanged.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset(
    {
        "08",  # connection exception: refused, dropped, closed mid-operation
        "53",  # insufficient resources: too many connections, out of memory or disk
    }
)
_UNAVAILABLE_SQLSTATES = frozenset(
    {
        "57P01",  # admin_shutdown: terminated by pg_terminate_backend or a fast shutdown
        "57P02",  # crash_shutdown: another backend crashed and the server is resetting
        "57P03",  # cannot_connect_now: starting up, shutting down, in recovery
        "57P04",  # database_dropped
        "57P05",  # idle_session_timeout
        "57014",  # query_canceled: statement_timeout, or a cancel request
        "55P03",  # lock_not_available: lock_timeout
        "25006",  # read_only_sql_transaction: a standby, or default_transaction_read_only
        "25P03",  # idle_in_transaction_session_timeout: the session is gone
        # The transaction lost to a concurrent one and was rolled back whole: the same
        # request, sent again, runs against the winner's result.
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
    }
)
_MAX_LINKS = 32


def _links(exc: BaseException) -> Iterator[BaseException]:
    """exc and everything it wraps: SQLAlchemy's `orig`, causes, contexts, group members."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending and len(seen) < _MAX_LINKS:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        if isinstance(link, BaseExceptionGroup):
            pending.extend(link.exceptions)
        wrapped = link.orig if isinstance(link, DBAPIError) else None
        pending.extend(
            e for e in (wrapped, link.__cause__, link.__context__) if isinstance(e, BaseException)
        )


def _unavailable_link(link: BaseException) -> bool:
    if isinstance(link, PoolTimeoutError | OSError):
        # OSError covers refused and reset connections and connect timeouts, which asyncpg
        # raises unwrapped.
        return True
    if isinstance(link, DBAPIError) and link.connection_invalidated:
        return True
    sqlstate = getattr(link, "sqlstate", None)
    if isinstance(sqlstate, str) and (
        sqlstate in _UNAVAILABLE_SQLSTATES or sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES
    ):
        return True
    # A connection the server dropped while it sat in the pool, used through the driver
    # directly (SQLAlchemy tells this case by the same words).
    return isinstance(link, asyncpg.InterfaceError) and "connection is closed" in str(link)


def database_unavailable(exc: BaseException) -> bool:
    """True when exc, or anything it wraps, says the database cannot serve now (an outage,
    restart, failover, overload or timeout) rather than that the request or code is wrong."""
    return any(_unavailable_link(link) for link in _links(exc))


def _internal_error(request: Request, exc: BaseException) -> JSONResponse:
    # The exception text may carry PHI from the request, so only its type is logged.
    log.error("unhandled error %s on %s %s", type(exc).__name__, request.method, request.url.path)
    problem = Problem(
        type=PROBLEM_BASE + "internal-error",
        title="Internal error",
        status=500,
        detail="The request could not be completed; it is safe to retry.",
    )
    return problem_response(problem, request)


def _service_unavailable(request: Request, exc: BaseException) -> JSONResponse:
    # PostgreSQL restarting or failing over is an outage, not a bug: say when to retry. Only
    # the type is logged: a driver's message may quote the SQL and its parameters.
    log.warning(
        "database unavailable (%s) on %s %s", type(exc).__name__, request.method, request.url.path
    )
    problem = Problem(
        type=PROBLEM_BASE + "service-unavailable",
        title="Service unavailable",
        status=503,
        detail="The database cannot serve the request now. Retry the same request (with "
        "the same Idempotency-Key, where it has one); nothing is applied twice.",
    )
    return problem_response(problem, request, {"Retry-After": RETRY_AFTER_SECONDS})


def _from_unexpected(request: Request, exc: Exception) -> JSONResponse:
    if database_unavailable(exc):
        return _service_unavailable(request, exc)
    return _internal_error(request, exc)


def _from_database_error(request: Request, exc: Exception) -> JSONResponse:
    if database_unavailable(exc):
        return _service_unavailable(request, exc)
    # Not an outage: on to the catch-all, which logs it as the bug it is.
    raise exc


# Answered where routes raise (inside the middleware stack, so metrics and tracing see the
# 503), not only by the outermost catch-all: everything a database failure surfaces as, bare
# or wrapped (SQLAlchemy's errors, the driver's, sockets', a task group's exception group).
_DATABASE_ERROR_TYPES: tuple[type[Exception], ...] = (
    SQLAlchemyError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    ExceptionGroup,
)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _from_problem_error)
    app.add_exception_handler(StarletteHTTPException, _from_http_exception)
    app.add_exception_handler(RequestValidationError, _from_request_validation)
    for database_error in _DATABASE_ERROR_TYPES:
        app.add_exception_handler(database_error, _from_database_error)
    # The outermost catch-all (Starlette's ServerErrorMiddleware) classifies too: an error
    # raised in a middleware or after the route returned never reaches the handlers above.
    app.add_exception_handler(Exception, _from_unexpected)


@dataclass(frozen=True)
class DomainProblem:
    """How an API answers one kind of domain error; the problem type is the error's code."""

    status: int
    title: str
    headers: Mapping[str, str] | None = None


def _spec_for(
    exc: DomainError, problems: Mapping[type[DomainError], DomainProblem]
) -> DomainProblem | None:
    return next((problems[c] for c in type(exc).__mro__ if c in problems), None)


def _as_problem(exc: DomainError, spec: DomainProblem) -> Problem:
    errors = [
        FieldError(claim=f.claim, line=f.line, field=f.field, rule=f.rule, message=f.message)
        for f in exc.failures
    ]
    return Problem(
        type=PROBLEM_BASE + exc.code,
        title=spec.title,
        status=spec.status,
        detail=exc.detail,
        errors=errors or None,
    )


def domain_problem(
    exc: DomainError, problems: Mapping[type[DomainError], DomainProblem]
) -> Problem | None:
    """The problem a service's table gives `exc`; None when the table does not map it."""
    spec = _spec_for(exc, problems)
    return None if spec is None else _as_problem(exc, spec)


def install_domain_problems(
    app: FastAPI, problems: Mapping[type[DomainError], DomainProblem]
) -> None:
    """Answer the use cases' domain errors as problems, from one table per service."""

    def from_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        spec = _spec_for(exc, problems)
        if spec is None:
            # An error no table maps is a bug: the catch-all answers 500 and logs its type.
            raise exc
        headers = dict(spec.headers) if spec.headers else None
        return problem_response(_as_problem(exc, spec), request, headers)

    app.add_exception_handler(DomainError, from_domain_error)


_DESCRIPTIONS = {status: title for status, (_slug, title) in _STATUS_SLUGS.items()} | {
    409: "Conflict",
    422: f"Invalid input: every failing field is listed in errors (the first {MAX_ERRORS}, "
    "with truncated and error_count, when there are more)",
    500: "Internal error",
    503: "Service unavailable: the database is down, restarting or overloaded; retry after "
    "Retry-After seconds",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the problem+json errors an operation can return."""
    return {
        status: {
            "model": Problem,
            "content": {PROBLEM_MEDIA_TYPE: {}},
            "description": _DESCRIPTIONS.get(status, "Error"),
        }
        for status in statuses
    }
