"""PostgreSQL URLs as operators hand them out, turned into the form SQLAlchemy's asyncpg needs.

Platforms (CloudNativePG's `<cluster>-app` Secret, managed databases, libpq habits) give
`postgresql://` or `postgres://` URLs, sometimes with libpq query parameters such as
`sslmode=require`. The services need `postgresql+asyncpg://`, and SQLAlchemy's asyncpg
dialect passes every query parameter to `asyncpg.connect()` as a keyword argument: asyncpg
takes the TLS mode as `ssl=`, and knows no `sslmode=` keyword there.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

ASYNC_DRIVER = "postgresql+asyncpg"
_PLAIN_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+asyncpg"})
# asyncpg reads these only from a DSN, not as connect() keywords, so they cannot travel in a
# SQLAlchemy URL; failing here names the problem instead of a TypeError at first connect.
_DSN_ONLY = frozenset({"sslcert", "sslkey", "sslrootcert", "sslcrl", "sslpassword"})


def async_url(url: str) -> str:
    """`url` in the `postgresql+asyncpg://` form, with libpq's sslmode as asyncpg's ssl."""
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise ValueError("database URL is not a URL") from None
    if parsed.drivername not in _PLAIN_SCHEMES:
        raise ValueError(
            f"database URL scheme {parsed.drivername!r} is not PostgreSQL "
            "(expected postgresql://, postgres:// or postgresql+asyncpg://)"
        )
    unsupported = sorted(_DSN_ONLY & parsed.query.keys())
    if unsupported:
        raise ValueError(
            f"database URL parameters {unsupported} are not supported; "
            "use sslmode (or ssl) with the system's trusted CAs"
        )
    query = dict(parsed.query)
    sslmode = query.pop("sslmode", None)
    if sslmode is not None:
        # asyncpg's ssl= takes libpq's mode names (disable ... verify-full) unchanged; of a
        # repeated parameter libpq keeps the last.
        query.setdefault("ssl", sslmode if isinstance(sslmode, str) else sslmode[-1])
    return _render(parsed.set(drivername=ASYNC_DRIVER, query=query))


def libpq_dsn(url: str) -> str:
    """A plain `postgresql://` DSN for `asyncpg.connect(dsn)`, which spells TLS `sslmode`."""
    parsed = make_url(async_url(url))
    query = dict(parsed.query)
    ssl = query.pop("ssl", None)
    if ssl is not None:
        # In a DSN asyncpg would pass an unknown `ssl` on to the server as a setting.
        query["sslmode"] = ssl
    return _render(parsed.set(drivername="postgresql", query=query))


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


VERIFIED_MODES = frozenset({"verify-full"})
ENCRYPTED_MODES = frozenset({"require", "verify-ca", "verify-full"})


def tls_mode(url: str) -> str | None:
    """The TLS mode connections to a URL as async_url left it will use: its `ssl`, else
    libpq's PGSSLMODE (which asyncpg honours too), else None (asyncpg's `prefer`)."""
    value = make_url(url).query.get("ssl")
    if value is None:
        return os.environ.get("PGSSLMODE")
    return value if isinstance(value, str) else value[-1]


def check_database_tls(url: str, setting: str, *, allow_unverified: bool) -> None:
    """ValueError unless the URL verifies the server (sslmode=verify-full), or, when allowed,
    at least encrypts (require, verify-ca)."""
    mode = tls_mode(url)
    if mode in VERIFIED_MODES or (allow_unverified and mode in ENCRYPTED_MODES):
        return
    raise ValueError(
        f"in production {setting} must verify the database server: add sslmode=verify-full "
        "to it (or set PGSSLMODE=verify-full) with PGSSLROOTCERT naming the CA's file, or use "
        "sslmode=require with CLAIMFLOW_DATABASE_ALLOW_UNVERIFIED_TLS=true"
    )
