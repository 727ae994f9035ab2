"""PostgreSQL databases for tests: made once from the migrated template, emptied and reused.

``CREATE DATABASE … TEMPLATE`` and ``DROP DATABASE`` each make PostgreSQL checkpoint: 0.5–2.5 s each
on these 2-core machines, twice for every PostgreSQL test. Instead a test's database is handed back
when the test ends, emptied (every table's rows deleted in foreign-key order, the append-only ones truncated,
every sequence set back to the template's value, one transaction, ~20–50 ms) and given to the next test in the same
worker. A database whose schema is no longer the template's (a migration test that downgraded it)
or that cannot be emptied is dropped instead, so the next test never sees a changed schema.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg
import sqlalchemy as sa
from psycopg import sql

# The schema's fingerprint: columns, their types and defaults, indexes, the Alembic revision.
_FINGERPRINT = """
SELECT md5(
  coalesce((SELECT string_agg(table_name || '.' || column_name || ':' || data_type || ':' ||
                              coalesce(column_default, ''), ',' ORDER BY table_name, ordinal_position)
            FROM information_schema.columns WHERE table_schema = 'public'), '')
  || '|' || coalesce((SELECT string_agg(indexname, ',' ORDER BY indexname)
                      FROM pg_indexes WHERE schemaname = 'public'), '')
  || '|' || coalesce((SELECT string_agg(version_num, ',') FROM alembic_version), ''))
"""
_SEQUENCES = """
SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), last_value, start_value
FROM pg_sequences WHERE schemaname = 'public'
"""


# Tables whose own triggers refuse DELETE (the append-only audit tables): emptied by TRUNCATE,
# which row triggers do not see, and only when they hold rows (TRUNCATE makes new files).
_GUARDED = """
SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal AND (t.tgtype & 8) <> 0
"""


@dataclass(frozen=True)
class _Template:
    fingerprint: str
    empty_sql: sql.Composed  # DELETEs in foreign-key order, then the sequences set back
    guarded: tuple[str, ...]  # tables emptied by TRUNCATE


def _database_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + name


def _read_template(admin_url: str, sa_url: str) -> _Template:
    engine = sa.create_engine(sa_url, poolclass=sa.pool.NullPool)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        tables = [t.name for t in reversed(metadata.sorted_tables) if t.name != "alembic_version"]
    finally:
        engine.dispose()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        fingerprint = conn.execute(_FINGERPRINT).fetchone()[0]  # type: ignore[index]
        sequences = conn.execute(_SEQUENCES).fetchall()
        guarded = tuple(row[0] for row in conn.execute(_GUARDED))
    statements = [
        sql.SQL("DELETE FROM {}").format(sql.Identifier(table)) for table in tables if table not in guarded
    ]
    for name, last_value, start_value in sequences:
        value, called = (start_value, False) if last_value is None else (last_value, True)
        statements.append(
            sql.SQL("SELECT setval({}, {}, {})").format(*map(sql.Literal, (name, value, called)))
        )
    return _Template(fingerprint, sql.SQL("; ").join(statements), guarded)


class PgDatabasePool:
    """Databases copied from `template`, reused test after test within one worker process."""

    def __init__(self, admin_url: str, sa_base: str, template: str) -> None:
        self._admin_url = admin_url
        self._sa_base = sa_base
        self._name = template
        self._template = _read_template(_database_url(admin_url, template), f"{sa_base}/{template}")
        self._free: list[str] = []
        self._made: set[str] = set()

    def _admin(self, sql: str, *params: object) -> None:
        with psycopg.connect(self._admin_url, autocommit=True) as conn:
            conn.execute(sql, params or None)

    def take(self) -> str:
        """An empty database with the template's schema (its name)."""
        if self._free:
            return self._free.pop()
        name = f"wl_t_{uuid.uuid4().hex[:12]}"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {self._name}")
        # Commits not waiting for the WAL's fsync (tens of ms each on these shared disks, thousands of
        # commits in a campaign test). Nothing is lost for a test: the server never crashes under it
        # (the database fault tests cut connections with a proxy), and the service's own settings
        # are untouched.
        self._admin(f"ALTER DATABASE {name} SET synchronous_commit = off")
        self._made.add(name)
        return name

    def give_back(self, name: str) -> None:
        """Empty `name` for the next test, or drop it when it cannot be made as new."""
        # the test's services may still hold connections (an app not shut down): cut them first
        self._admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            name,
        )
        try:
            with psycopg.connect(_database_url(self._admin_url, name), autocommit=True) as conn:
                if conn.execute(_FINGERPRINT).fetchone()[0] != self._template.fingerprint:  # type: ignore[index]
                    raise LookupError("schema changed")
                with conn.transaction():
                    for table in self._template.guarded:
                        if conn.execute(
                            sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(table))
                        ).fetchone():
                            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
                    conn.execute(self._template.empty_sql)
        except (psycopg.Error, LookupError):
            self._drop(name)
            return
        self._free.append(name)

    def _drop(self, name: str) -> None:
        self._made.discard(name)
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        for name in list(self._made):
            self._drop(name)
        self._free.clear()
