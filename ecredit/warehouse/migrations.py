"""The warehouse's schema: versioned SQL (``sql/migrations/``) driven by Alembic (decision 93).

A migration is ``NNNN_<name>.sql`` (every dialect) or ``NNNN_<name>.<dialect>.sql`` (one dialect:
``postgresql`` or ``sqlite``); the SQL files are the source of truth. Alembic's environment is
``ecredit/warehouse/alembic/`` (``alembic.ini`` at the repository root): revision ``NNNN`` runs the
file ``NNNN_*`` of the database's dialect as its body, so ``alembic upgrade head``, ``alembic
history``, ``alembic current`` and ``alembic downgrade -1`` work as usual, and ``alembic_version``
holds the revision a database is at. Each revision runs in one transaction with its
``alembic_version`` update and its row in ``schema_migrations`` (version, name, SHA-256 of the file,
when): a failed migration leaves nothing behind.

Two guards run before Alembic migrates anything (``prepare``, called by the environment):

- the checksum guard: an applied file whose SHA-256 differs from its ``schema_migrations`` row stops
  the migration, naming the file (migrations are frozen; a change is a new migration);
- adoption: a database migrated by the runner before Alembic (``schema_migrations`` rows 1..n, no
  ``alembic_version``) is stamped at revision n, nothing re-run.

``ecredit migrate`` and the pipeline (``publish.connect``) call ``migrate``, one process at a time
per database (``one_migrator``): two runs started together on a new warehouse both migrate it. On PostgreSQL it needs a
role that may create roles (0002 creates the department roles), so an administrator runs it once per
database and release, and the pipeline's own role then only checks that nothing is pending.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import DateTime, bindparam, create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.pool import NullPool

from ecredit.core.files import exclusive
from ecredit.core.settings import PROJECT_ROOT
from ecredit.warehouse.schema import SQLITE_BUSY_TIMEOUT_S

log = logging.getLogger("alembic.env")  # the logger of Alembic's own env.py template: alembic.ini shows it
MIGRATIONS_DIR = PROJECT_ROOT / "sql" / "migrations"
ALEMBIC_DIR = Path(__file__).resolve().parent / "alembic"
LEDGER = "schema_migrations"
VERSION_TABLE = "alembic_version"
PIPELINE_ROLE = "ecredit_pipeline"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(postgresql|sqlite))?\.sql$")
LEDGER_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, "
    "sha256 VARCHAR(64) NOT NULL, applied_at TIMESTAMP NOT NULL)"
)


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def revision(self) -> str:
        return revision_id(self.version)

    @property
    def sql(self) -> str:
        return self.path.read_text("utf-8")

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def revision_id(version: int) -> str:
    """Alembic's revision id of migration ``version``: its four digits."""
    return f"{version:04d}"


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


def migration_file(version: int, dialect: str, folder: Path = MIGRATIONS_DIR) -> Migration:
    for m in available(dialect, folder):
        if m.version == version:
            return m
    raise MigrationError(
        f"no migration {version:04d} for {dialect} under {folder} (revision {revision_id(version)} "
        "runs the file NNNN_<name>[.<dialect>].sql of its number)"
    )


# ---------------------------------------------------------------- the API: ecredit migrate, the pipeline, tests


def alembic_config(engine: Engine | None = None, url: str | None = None, folder: Path = MIGRATIONS_DIR):
    """Alembic's Config for the warehouse at ``engine`` (or ``url``), without alembic.ini."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.attributes.update(engine=engine, url=url, sql_dir=Path(folder), applied=[], undone=[])
    return cfg


MIGRATION_LOCK_KEY = 0x6563726564697432  # "ecredit2": PostgreSQL's advisory lock of a migration


@contextmanager
def one_migrator(engine: Engine) -> Iterator[None]:
    """One process at a time migrates a database: Alembic decides what to apply from the revision
    it reads first, so a second migrator started together would apply the same files again (on
    SQLite it failed with 'database is locked': two deferred transactions that read, then write).
    PostgreSQL: a session-level advisory lock, released when the session ends; SQLite: an ``flock``
    on ``<database>.migrate.lock``, released by the kernel if the process dies. The second waits,
    then finds the schema up to date."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT pg_advisory_lock(%(k)s)", {"k": MIGRATION_LOCK_KEY})
            try:
                yield
            finally:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(%(k)s)", {"k": MIGRATION_LOCK_KEY})
                conn.commit()
        return
    db = engine.url.database if engine.dialect.name == "sqlite" else None
    if not db or db == ":memory:" or db.startswith("file:"):
        yield
        return
    with exclusive(Path(db + ".migrate.lock")):
        yield


# The roles are the PostgreSQL cluster's, shared by its databases, and the advisory lock of
# ``one_migrator`` is the database's own: two databases of one cluster migrated at once change the
# same rows of the shared catalogs, and PostgreSQL fails one with 'tuple concurrently updated' (seen
# with two test processes; also a deployment migrating two warehouses together). That migration's
# transaction is rolled back whole (one transaction per migration); it is tried again.
SHARED_CATALOG_RACE = ("tuple concurrently updated", "pg_authid_rolname_index", "pg_auth_members")
MIGRATE_ATTEMPTS = 5


def migrate(engine: Engine, target: str = "head", folder: Path = MIGRATIONS_DIR) -> list[str]:
    """``alembic upgrade <target>`` (a database of the old runner is adopted first), one migrator
    at a time (``one_migrator``); returns the files applied, in order (empty when the schema is up
    to date). A migration that lost a race on the cluster's shared catalogs (``SHARED_CATALOG_RACE``)
    is tried again, up to ``MIGRATE_ATTEMPTS`` times in all."""
    import random
    import time

    from alembic import command

    applied: list[str] = []
    for attempt in range(1, MIGRATE_ATTEMPTS + 1):
        cfg = alembic_config(engine, folder=folder)
        try:
            with one_migrator(engine):
                _run(command.upgrade, cfg, target)
            return applied + list(cfg.attributes.get("applied", []))
        except MigrationError as e:
            applied += list(cfg.attributes.get("applied", []))  # committed before the failed one
            if attempt == MIGRATE_ATTEMPTS or not any(k in str(e) for k in SHARED_CATALOG_RACE):
                raise
            log.warning("%s (another database of the cluster was migrated at once): trying again", e)
            time.sleep(random.uniform(0.1, 0.5) * attempt)  # noqa: S311 - a back-off, not a secret
    raise AssertionError("unreachable")


def downgrade(engine: Engine, target: str = "-1", folder: Path = MIGRATIONS_DIR) -> list[str]:
    """``alembic downgrade <target>``, one migrator at a time; returns the files undone, in order."""
    from alembic import command

    cfg = alembic_config(engine, folder=folder)
    with one_migrator(engine):
        _run(command.downgrade, cfg, target)
    return list(cfg.attributes["undone"])


def _run(fn, cfg, target: str) -> None:
    from alembic.util import CommandError

    try:
        fn(cfg, target)
    except CommandError as e:  # e.g. alembic_version names a revision this release does not know
        raise MigrationError(f"Alembic: {e}") from None


def current(engine: Engine) -> str | None:
    """The Alembic revision the warehouse is at (None: not migrated by Alembic yet)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def applied(engine: Engine) -> dict[int, str]:
    """version -> SHA-256 of what was applied, from ``schema_migrations`` (empty: a new database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(LEDGER):
            return {}
        return {r[0]: r[1] for r in conn.execute(text("SELECT version, sha256 FROM schema_migrations"))}


# ---------------------------------------------------------------- the environment (alembic/env.py)


def migration_engine(url) -> Engine:
    """An engine to migrate with. SQLite: the driver's own transaction handling off and a real
    BEGIN per transaction, so that a migration's DDL, its ``alembic_version`` update and its
    ledger row commit or roll back together (pysqlite would commit DDL as it goes)."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    eng = create_engine(url, poolclass=NullPool, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(eng, "connect")
    def _no_driver_transactions(dbapi_connection, record):
        dbapi_connection.isolation_level = None

    @event.listens_for(eng, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN")

    return eng


def _ledger(conn: Connection) -> dict[int, str]:
    return {r[0]: r[1] for r in conn.execute(text("SELECT version, sha256 FROM schema_migrations"))}


def check_checksums(ledger: dict[int, str], upto: int, dialect: str, folder: Path) -> None:
    """The checksum guard: every migration <= ``upto`` recorded in the ledger is still the file
    that was applied."""
    files = {m.version: m for m in available(dialect, folder)}
    for version in sorted(v for v in ledger if v <= upto):
        m = files.get(version)
        if m is None:
            raise MigrationError(
                f"migration {version:04d} was applied to this warehouse but its file for {dialect} "
                f"is gone from {folder}; migrations are frozen: restore it"
            )
        if ledger[version] != m.sha256:
            raise MigrationError(
                f"migration {m.path.name} was changed after it was applied to this warehouse; "
                "migrations are frozen: write a new one"
            )


def prepare(conn: Connection, script, folder: Path = MIGRATIONS_DIR) -> str | None:
    """Before Alembic runs: the ledger table, the adoption of a database of the old runner, the
    checksum guard. Commits; returns the revision the database was stamped at, if adopted."""
    from alembic.runtime.migration import MigrationContext

    dialect = conn.dialect.name
    if not inspect(conn).has_table(LEDGER):  # a role without CREATE may still check a migrated database
        conn.exec_driver_sql(LEDGER_DDL)
    ledger = _ledger(conn)
    mc = MigrationContext.configure(conn, opts={"transactional_ddl": True})
    heads = mc.get_current_heads()
    adopted = None
    if not heads and ledger:
        n = max(ledger)
        if sorted(ledger) != list(range(1, n + 1)):
            raise MigrationError(
                f"schema_migrations lists migrations {sorted(ledger)}, not 1..{n}: this warehouse "
                "cannot be adopted by Alembic"
            )
        adopted = revision_id(n)
        try:
            script.get_revision(adopted)
        except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown revision
            raise MigrationError(
                f"schema_migrations reaches migration {adopted}, which this release does not "
                "know: migrate it with the release that wrote it"
            ) from None
        check_checksums(ledger, n, dialect, folder)
        mc.stamp(script, adopted)
        log.info(
            "Adopted a warehouse of the runner before Alembic: schema_migrations lists 0001..%s, stamped "
            "revision %s (nothing re-run)",
            adopted,
            adopted,
        )
        if dialect == "postgresql" and n >= 2:
            hand_version_table_to_pipeline(conn)
    elif heads:
        if len(heads) > 1:
            raise MigrationError(f"{VERSION_TABLE} holds several heads {heads}; the revisions are one line")
        check_checksums(ledger, int(heads[0]), dialect, folder)
    conn.commit()
    return adopted


def hand_version_table_to_pipeline(conn: Connection) -> None:
    """PostgreSQL: ``alembic_version`` belongs to the pipeline's role like ``schema_migrations``
    (0002), so that role can check that nothing is pending; the operators read it."""
    conn.exec_driver_sql("ALTER TABLE alembic_version OWNER TO ecredit_pipeline")
    conn.exec_driver_sql("GRANT SELECT ON alembic_version TO ecredit_operators")


# ---------------------------------------------------------------- revision bodies (alembic/versions/)


def _split_sqlite(script: str, name: str) -> list[str]:
    """A SQLite script as statements (sqlite3 runs one statement per call; ``executescript``
    would commit the migration's transaction first)."""
    out, buf = [], ""
    parts = script.split(";")
    for part in parts[:-1]:
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    rest = "\n".join(line for line in (buf + parts[-1]).splitlines() if not line.strip().startswith("--"))
    if rest.strip():
        raise MigrationError(f"migration {name}: the text after its last statement is not a complete statement")
    return out


def _execute(conn: Connection, sql: str, name: str) -> None:
    if conn.dialect.name == "sqlite":
        for stmt in _split_sqlite(sql, name):
            conn.exec_driver_sql(stmt)
    else:  # PostgreSQL: the driver's cursor runs the whole file (no parameters: % is not a placeholder)
        cur = conn.connection.cursor()
        try:
            cur.execute(sql)
        finally:
            cur.close()


def _context():
    from alembic import op

    ctx = op.get_context()
    cfg = ctx.config
    attrs = cfg.attributes if cfg is not None else {}
    return op.get_bind(), attrs, Path(attrs.get("sql_dir") or MIGRATIONS_DIR)


def upgrade(version: int) -> None:
    """The body of revision ``version``'s upgrade: its SQL file for the dialect, then its ledger row."""
    conn, attrs, folder = _context()
    m = migration_file(version, conn.dialect.name, folder)
    try:
        _execute(conn, m.sql, m.path.name)
    except MigrationError:
        raise
    except Exception as e:
        raise MigrationError(f"migration {m.path.name} failed: {str(getattr(e, 'orig', None) or e).strip()}") from e
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    conn.execute(text("DELETE FROM schema_migrations WHERE version = :v"), {"v": version})
    conn.execute(
        text("INSERT INTO schema_migrations (version, name, sha256, applied_at) VALUES (:v, :n, :s, :at)").bindparams(
            bindparam("at", type_=DateTime())
        ),
        {"v": version, "n": m.name, "s": m.sha256, "at": now},
    )
    if version == 2 and conn.dialect.name == "postgresql":
        hand_version_table_to_pipeline(conn)
    attrs.setdefault("applied", []).append(m.path.name)


def downgrade_body(version: int, undo: dict[str, list[str]], why: str = "") -> None:
    """The body of revision ``version``'s downgrade: ``undo[dialect]``'s statements, then its ledger
    row goes. A dialect missing from ``undo`` cannot be downgraded: a MigrationError says why."""
    conn, attrs, folder = _context()
    dialect = conn.dialect.name
    m = migration_file(version, dialect, folder)
    if dialect not in undo:
        raise MigrationError(
            f"revision {m.revision} ({m.path.name}) cannot be downgraded on {dialect}: {why} "
            "Restore the backup taken before it was applied."
        )
    for stmt in undo[dialect]:
        if dialect == "postgresql":  # as a file is run: a function's body may hold '%'
            _execute(conn, stmt, m.path.name)
        else:
            conn.exec_driver_sql(stmt)
    conn.execute(text("DELETE FROM schema_migrations WHERE version = :v"), {"v": version})
    attrs.setdefault("undone", []).append(m.path.name)
