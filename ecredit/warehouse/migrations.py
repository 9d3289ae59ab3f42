"""The warehouse's schema as versioned SQL (``sql/migrations/``), applied in order by this runner,
which records what it applied in ``schema_migrations``.

A migration is ``NNNN_<name>.sql`` (every dialect) or ``NNNN_<name>.<dialect>.sql`` (one dialect:
``postgresql`` or ``sqlite``). Each is applied in one transaction together with its row in
``schema_migrations`` (version, name, SHA-256 of the file, when): a failed migration leaves
nothing behind. An applied file that changed since is refused (migrations are frozen; a change
is a new migration). ``ecredit migrate`` runs it; on PostgreSQL it needs a role that may create
roles (0002 creates the department roles), so an administrator runs it once per database and
release, and the pipeline's own role then only checks that nothing is pending.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from ecredit.core.settings import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "sql" / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(postgresql|sqlite))?\.sql$")
LEDGER_DDL = ("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, "
              "sha256 VARCHAR(64) NOT NULL, applied_at TIMESTAMP NOT NULL)")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text("utf-8")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def available(dialect: str, folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations for a dialect, in version order (one file per version)."""
    out: dict[int, Migration] = {}
    for p in sorted(folder.glob("*.sql")):
        m = _NAME.match(p.name)
        if not m:
            raise MigrationError(f"{p}: not a migration file name (NNNN_name[.dialect].sql)")
        if m.group(3) not in (None, dialect):
            continue
        version = int(m.group(1))
        if version in out:
            raise MigrationError(f"two migrations {version:04d} for {dialect}: {out[version].path.name}, {p.name}")
        out[version] = Migration(version, m.group(2), p)
    return [out[v] for v in sorted(out)]


def applied(engine: Engine) -> dict[int, str]:
    """version -> SHA-256 of what was applied (empty for a new database)."""
    with engine.begin() as conn:
        if not inspect(conn).has_table("schema_migrations"):  # a role without CREATE may read it
            conn.exec_driver_sql(LEDGER_DDL)
        return {r[0]: r[1] for r in conn.execute(text("SELECT version, sha256 FROM schema_migrations"))}


def pending(engine: Engine) -> list[Migration]:
    done = applied(engine)
    todo = []
    for m in available(engine.dialect.name):
        if m.version in done:
            if done[m.version] != m.sha256:
                raise MigrationError(f"migration {m.path.name} was changed after it was applied to this warehouse; "
                                     "migrations are frozen: write a new one")
            continue
        todo.append(m)
    return todo


def _record(m: Migration, placeholder: str) -> tuple[str, tuple]:
    """The ledger row of an applied migration: SQL text with the driver's placeholders, and values."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    marks = ", ".join([placeholder] * 4)
    return (f"INSERT INTO schema_migrations (version, name, sha256, applied_at) VALUES ({marks})",
            (m.version, m.name, m.sha256, now))


def migrate(engine: Engine) -> list[str]:
    """Apply every pending migration, each in its own transaction; returns the files applied."""
    out = []
    for m in pending(engine):
        if engine.dialect.name == "sqlite":
            # the sqlite3 module runs a script only through executescript, which commits first:
            # the script opens its own transaction, which the ledger row joins and commit ends
            raw = engine.raw_connection()
            try:
                con = raw.driver_connection
                con.executescript(f"BEGIN;\n{m.sql}\n;")
                con.execute(*_record(m, "?"))
                con.commit()
            except Exception as e:
                raw.driver_connection.rollback()
                raise MigrationError(f"migration {m.path.name} failed: {e}") from e
            finally:
                raw.close()
        else:  # PostgreSQL: DDL is transactional; the driver's cursor runs the whole file
            raw = engine.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute(m.sql)
                cur.execute(*_record(m, "%s"))
                raw.commit()
            except Exception as e:
                raw.rollback()
                raise MigrationError(f"migration {m.path.name} failed: {e}") from e
            finally:
                raw.close()
        out.append(m.path.name)
    return out
