"""The application role: may INSERT and SELECT the audit table, and nothing else.

Applied by `migrate` after the schema migrations, as the owner, every time: it is idempotent,
so a renamed role, a rotated password or a table added by a later migration is picked up by
the next deploy's migration Job. The append-only trigger (see the migrations) stops UPDATE,
DELETE and TRUNCATE even for the owner; these grants make sure the service cannot even try,
nor disable the trigger, which only the table's owner or a superuser can.

The other side, at every start of the API and the worker: refuse to run with rights that
could rewrite the audit trail. The append-only guarantee rests on the service's role holding
only INSERT and SELECT; a deployment that points CLAIMFLOW_DATABASE_URL at the owner or a
superuser would silently lose it, so they stop with the reason instead
(check_least_privilege).
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from claimflow_audit.adapters.tables import audit_records
from claimflow_shared.migrate import MIGRATION_LOCK

# The tables the service works with, and what it may do to them.
APP_GRANTS = {audit_records.name: ("SELECT", "INSERT")}

_ROLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class RoleSetupError(RuntimeError):
    """The application role cannot be set up safely as configured."""


async def _run_formatted(conn: AsyncConnection, template: str, *args: str) -> None:
    # Role names and passwords cannot be bind parameters in DDL; PostgreSQL's format() quotes
    # them (%I identifiers, %L literals), so no value is ever spliced in by hand.
    params = {"template": template} | {f"a{i}": a for i, a in enumerate(args)}
    placeholders = "".join(f", CAST(:a{i} AS text)" for i in range(len(args)))
    statement = await conn.scalar(
        text(f"SELECT format(CAST(:template AS text){placeholders})"), params
    )
    await conn.exec_driver_sql(statement)


async def _create_login_role(conn: AsyncConnection, role: str) -> None:
    exists = await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
    if exists:
        return
    # Two migrations on one cluster (several databases) may race to create it.
    await conn.exec_driver_sql("SAVEPOINT create_app_role")
    try:
        await _run_formatted(conn, "CREATE ROLE %I LOGIN", role)
    except Exception as exc:
        await conn.exec_driver_sql("ROLLBACK TO SAVEPOINT create_app_role")
        again = await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        if not again:
            raise RoleSetupError(f"could not create role {role}: {type(exc).__name__}") from exc
    else:
        await conn.exec_driver_sql("RELEASE SAVEPOINT create_app_role")


async def ensure_app_role(
    conn: AsyncConnection,
    role: str,
    *,
    password: str | None,
    manage: bool,
    allow_owner: bool = False,
) -> None:
    """Create (when managed) and grant the application role; run as the schema's owner."""
    if not _ROLE_NAME.fullmatch(role):
        raise RoleSetupError(f"application role name {role!r} must match {_ROLE_NAME.pattern}")
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    owner = await conn.scalar(text("SELECT current_user"))
    if role == owner:
        if allow_owner:
            return
        raise RoleSetupError(
            f"the application role {role!r} is the migration role: it could disable the "
            "append-only trigger. Point CLAIMFLOW_DATABASE_URL at a separate role "
            "(CLAIMFLOW_MIGRATION_DATABASE_URL is the owner)."
        )
    if manage:
        await _create_login_role(conn, role)
        if password:
            await _run_formatted(conn, "ALTER ROLE %I WITH LOGIN PASSWORD %L", role, password)
    elif not await conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}):
        raise RoleSetupError(f"role {role!r} does not exist and manage_app_role is off")
    superuser = await conn.scalar(
        text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"), {"r": role}
    )
    if superuser:
        raise RoleSetupError(f"role {role!r} is a superuser: it could rewrite the audit trail")
    await _run_formatted(conn, "GRANT CONNECT ON DATABASE %I TO %I", await _database(conn), role)
    await _run_formatted(conn, "GRANT USAGE ON SCHEMA %I TO %I", await _schema(conn), role)
    for table, rights in APP_GRANTS.items():
        await _run_formatted(conn, "REVOKE ALL ON TABLE %I FROM %I", table, role)
        await _run_formatted(conn, f"GRANT {', '.join(rights)} ON TABLE %I TO %I", table, role)


async def _database(conn: AsyncConnection) -> str:
    name: str = await conn.scalar(text("SELECT current_database()"))
    return name


async def _schema(conn: AsyncConnection) -> str:
    name: str = await conn.scalar(text("SELECT current_schema()"))
    return name


async def setup_app_role(
    owner_url: str, role: str, *, password: str | None, manage: bool, allow_owner: bool
) -> None:
    engine = create_async_engine(owner_url)
    try:
        async with engine.begin() as conn:
            await ensure_app_role(
                conn, role, password=password, manage=manage, allow_owner=allow_owner
            )
    finally:
        await engine.dispose()


_RIGHTS = """
SELECT to_regclass(:table) IS NOT NULL AS migrated,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
       CASE WHEN to_regclass(:table) IS NULL THEN false
            ELSE has_table_privilege(:table, 'UPDATE')
              OR has_table_privilege(:table, 'DELETE')
              OR has_table_privilege(:table, 'TRUNCATE')
              OR pg_has_role((SELECT relowner FROM pg_class WHERE oid = to_regclass(:table)),
                             'USAGE')
       END AS can_rewrite,
       current_user AS role
"""


class PrivilegedRoleError(RuntimeError):
    pass


async def check_least_privilege(engine: AsyncEngine, *, allow_owner: bool = False) -> None:
    async with engine.connect() as conn:
        row = (await conn.execute(text(_RIGHTS), {"table": audit_records.name})).one()
    if not row.migrated:
        raise PrivilegedRoleError(
            "the audit_records table does not exist: run `claimflow-audit migrate` first"
        )
    if (row.superuser or row.can_rewrite) and not allow_owner:
        raise PrivilegedRoleError(
            f"database role {row.role!r} can change or delete audit records (owner, superuser "
            "or UPDATE/DELETE/TRUNCATE rights); connect as the application role that "
            "`claimflow-audit migrate` sets up"
        )
