"""Refuse to run with database rights that could rewrite the audit trail.

The append-only guarantee rests on the service's role holding only INSERT and SELECT; a
deployment that points CLAIMFLOW_DATABASE_URL at the owner or a superuser would silently
lose it, so the API and the worker check at startup and stop with the reason instead.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from claimflow_audit.adapters.tables import audit_records

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
