"""Batched reads and writes for the importer, at the database driver's own speed.

The importer classifies each batch of numbers against the do-not-call lists and the campaign's
existing contacts with one `IN`/`ANY` query per list, then writes the batch in one go, sorted by
number (B-tree inserts in key order touch fewer pages):

- SQLite: `executemany` of a plain INSERT inside a savepoint, with a 64 MiB page cache while the
  import runs. The import's transaction holds SQLite's write lock from its first statement, so no
  other writer can add a number between the check and the insert; should the unique key still
  refuse one, the batch is rolled back to the savepoint and retried with ON CONFLICT DO NOTHING
  (measured: the upsert clause alone costs a quarter of the insert time, so it is the fallback).
- PostgreSQL: `COPY` into a temporary staging table and one `INSERT … SELECT … ON CONFLICT DO
  NOTHING`, since another import may commit the same number concurrently.

Both run inside the caller's session transaction, so a failure leaves nothing half-imported.

SQL here is assembled only from integers and constants of this module (S608 is silenced for that);
every value from a file goes in as a bound parameter or through COPY.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from dialer.models import Contact, ContactState

IMPORT_CACHE_KIB = 64 * 1024
# (phone_e164, name, fields_json, timezone, row_number)
ContactRow = tuple[str, str | None, str, str | None, int]
# (row_number, line, reason, detail, value)
RejectRow = tuple[int, int | None, str, str, str]


class BulkIO(Protocol):
    def existing(self, phones: Sequence[str]) -> dict[str, tuple[int | None, int | None]]: ...
    def dnc_global(self, phones: Sequence[str]) -> set[str]: ...
    def dnc_campaign(self, phones: Sequence[str]) -> set[str]: ...
    def insert_contacts(self, rows: Sequence[ContactRow]) -> int: ...
    def insert_rejects(self, rows: Sequence[RejectRow]) -> None: ...
    def close(self) -> None: ...


def bulk_for(session: Session, campaign_id: int, import_id: int, now: datetime) -> BulkIO:
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return SqliteBulk(session, campaign_id, import_id, now)
    if dialect == "postgresql":
        return PostgresBulk(session, campaign_id, import_id, now)
    raise NotImplementedError(f"list import supports SQLite and PostgreSQL, not {dialect}")


def _driver(session: Session) -> Any:
    return session.connection().connection.driver_connection


class SqliteBulk:
    def __init__(self, session: Session, campaign_id: int, import_id: int, now: datetime) -> None:
        self.conn = _driver(session)
        self.campaign_id = campaign_id
        self.import_id = import_id
        # The same text SQLAlchemy's SQLite DATETIME stores, so the ORM reads these rows back.
        stamp = Contact.__table__.c.created_at.type.dialect_impl(session.get_bind().dialect)
        bind = stamp.bind_processor(session.get_bind().dialect)
        when = bind(now) if bind else now.isoformat(sep=" ")
        assert isinstance(when, str) and "'" not in when
        cur = self.conn.cursor()
        self.cache_size = cur.execute("PRAGMA cache_size").fetchone()[0]
        cur.execute(f"PRAGMA cache_size = {-IMPORT_CACHE_KIB}")
        cur.close()
        self.savepoints = 0
        self.insert_sql = (
            "INSERT INTO contacts (campaign_id, phone_e164, name, fields, timezone, row_number, state, attempts,"  # noqa: S608
            " outcome_counts, next_due_at, import_id, created_at)"
            f" VALUES ({int(campaign_id)}, ?, ?, ?, ?, ?, '{ContactState.pending.name}', 0, '{{}}', '{when}',"
            f" {int(import_id)}, '{when}')"
        )
        self.upsert_sql = self.insert_sql + " ON CONFLICT (campaign_id, phone_e164) DO NOTHING"
        self.reject_sql = (
            "INSERT INTO list_import_rejects (import_id, row_number, line, reason, detail, value)"  # noqa: S608
            f" VALUES ({int(import_id)}, ?, ?, ?, ?, ?)"
        )

    def _select(self, sql: str, params: Sequence[Any]) -> list[Any]:
        cur = self.conn.cursor()
        try:
            return list(cur.execute(sql, params))
        finally:
            cur.close()

    @staticmethod
    def _marks(n: int) -> str:
        return ",".join("?" * n)

    def existing(self, phones: Sequence[str]) -> dict[str, tuple[int | None, int | None]]:
        sql = (
            "SELECT phone_e164, import_id, row_number FROM contacts"  # noqa: S608
            f" WHERE campaign_id = ? AND phone_e164 IN ({self._marks(len(phones))})"
        )
        return {p: (i, r) for p, i, r in self._select(sql, [self.campaign_id, *phones])}

    def dnc_global(self, phones: Sequence[str]) -> set[str]:
        sql = f"SELECT phone_e164 FROM dnc_global WHERE phone_e164 IN ({self._marks(len(phones))})"  # noqa: S608
        return {p for (p,) in self._select(sql, phones)}

    def dnc_campaign(self, phones: Sequence[str]) -> set[str]:
        sql = (
            "SELECT phone_e164 FROM dnc_campaign"  # noqa: S608
            f" WHERE campaign_id = ? AND phone_e164 IN ({self._marks(len(phones))})"
        )
        return {p for (p,) in self._select(sql, [self.campaign_id, *phones])}

    def insert_contacts(self, rows: Sequence[ContactRow]) -> int:
        cur = self.conn.cursor()
        self.savepoints += 1
        savepoint = f"wl_batch_{self.savepoints}"
        try:
            cur.execute(f"SAVEPOINT {savepoint}")
            try:
                cur.executemany(self.insert_sql, rows)
            except sqlite3.IntegrityError:
                cur.execute(f"ROLLBACK TO {savepoint}")
                cur.executemany(self.upsert_sql, rows)
            added = int(cur.rowcount)
            cur.execute(f"RELEASE {savepoint}")
            return added
        finally:
            cur.close()

    def insert_rejects(self, rows: Sequence[RejectRow]) -> None:
        cur = self.conn.cursor()
        try:
            cur.executemany(self.reject_sql, rows)
        finally:
            cur.close()

    def close(self) -> None:
        cur = self.conn.cursor()
        try:
            cur.execute(f"PRAGMA cache_size = {int(self.cache_size)}")
        finally:
            cur.close()


class PostgresBulk:
    STAGE = "wl_contacts_stage"

    def __init__(self, session: Session, campaign_id: int, import_id: int, now: datetime) -> None:
        self.conn = _driver(session)
        self.campaign_id = campaign_id
        self.import_id = import_id
        self.now = now
        with self.conn.cursor() as cur:
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {self.STAGE} (phone_e164 varchar(20), name varchar(128),"
                " fields json, timezone varchar(64), row_number integer) ON COMMIT DROP"
            )

    def existing(self, phones: Sequence[str]) -> dict[str, tuple[int | None, int | None]]:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT phone_e164, import_id, row_number FROM contacts"
                " WHERE campaign_id = %s AND phone_e164 = ANY(%s)",
                (self.campaign_id, list(phones)),
            )
            return {p: (i, r) for p, i, r in cur.fetchall()}

    def dnc_global(self, phones: Sequence[str]) -> set[str]:
        with self.conn.cursor() as cur:
            cur.execute("SELECT phone_e164 FROM dnc_global WHERE phone_e164 = ANY(%s)", (list(phones),))
            return {p for (p,) in cur.fetchall()}

    def dnc_campaign(self, phones: Sequence[str]) -> set[str]:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT phone_e164 FROM dnc_campaign WHERE campaign_id = %s AND phone_e164 = ANY(%s)",
                (self.campaign_id, list(phones)),
            )
            return {p for (p,) in cur.fetchall()}

    def insert_contacts(self, rows: Sequence[ContactRow]) -> int:
        with self.conn.cursor() as cur:
            cur.execute(f"TRUNCATE {self.STAGE}")
            with cur.copy(
                f"COPY {self.STAGE} (phone_e164, name, fields, timezone, row_number) FROM STDIN"
            ) as cp:
                for row in rows:
                    if row[1] and "\x00" in row[1]:  # PostgreSQL text cannot hold NUL (JSON escapes it)
                        row = (row[0], row[1].replace("\x00", ""), *row[2:])
                    cp.write_row(row)
            cur.execute(
                "INSERT INTO contacts (campaign_id, phone_e164, name, fields, timezone, row_number, state,"  # noqa: S608
                " attempts, outcome_counts, next_due_at, import_id, created_at)"
                f" SELECT %s, phone_e164, name, fields, timezone, row_number, %s, 0, '{{}}'::json, %s, %s, %s"
                f" FROM {self.STAGE} ON CONFLICT (campaign_id, phone_e164) DO NOTHING",
                (self.campaign_id, ContactState.pending.name, self.now, self.import_id, self.now),
            )
            return int(cur.rowcount)

    def insert_rejects(self, rows: Sequence[RejectRow]) -> None:
        with (
            self.conn.cursor() as cur,
            cur.copy(
                "COPY list_import_rejects (import_id, row_number, line, reason, detail, value) FROM STDIN"
            ) as cp,
        ):
            for row in rows:
                cp.write_row((self.import_id, *row))

    def close(self) -> None:
        pass
