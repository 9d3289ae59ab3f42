"""The shared warehouse for real (warehouse.md): migrations on PostgreSQL and the embedded default,
atomic and idempotent publishing through staging tables, and the department roles — against the
PostgreSQL server on 127.0.0.1:5432 (a database created and dropped per test session). The gold
layer published here is the end-to-end fixture's (three run dates)."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import uuid

import pytest
from sqlalchemy import create_engine, inspect, select, text

from ecredit.core import settings as settings_mod
from ecredit.warehouse import migrations, publish
from ecredit.warehouse import schema as wh
from tests.integration.conftest import DATES, PII_KEY, run_cli

pytestmark = pytest.mark.postgres
ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
PIPELINE = "postgresql+psycopg://ecredit_pipeline@127.0.0.1:5432/{db}"
DEPTS = ("amr", "ndrc", "cac", "psb", "commerce", "finance", "gds", "post", "customs")
PUBLIC = (
    "dim_operator",
    "fact_credit_record",
    "operator_score",
    "serious_dishonest_list",
    "dishonest_list_change",
    "risk_alert",
    "inspection_plan",
    "inspection_draw",
    "draw_commitment",
    "inspector",
    "fact_license",
    "fact_spot_check",
    "fact_complaint",
)
OWN_ROWS = {"supervision_measure": "responsible_dept", "feed_status": "dept", "dq_result": "dept"}


def _server_up() -> bool:
    try:
        with create_engine(ADMIN.format(db="postgres")).connect() as c:
            c.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def new_database() -> str:
    name = f"ecredit_test_{uuid.uuid4().hex[:10]}"
    eng = create_engine(ADMIN.format(db="postgres"), isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    eng = create_engine(ADMIN.format(db="postgres"), isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": name})
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="module")
def pg():
    if not _server_up():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")
    name = new_database()
    assert migrations.migrate(wh.engine_for(ADMIN.format(db=name))) == [
        m.path.name for m in migrations.available("postgresql")
    ]
    yield name
    drop_database(name)


def cfg_for(e2e, url):
    return settings_mod.load(
        {
            "CREDIT_DATA_DIR": str(e2e["root"]),
            "CREDIT_PII_KEY": PII_KEY,
            "CREDIT_RULES": str(e2e["rules"]),
            "CREDIT_WAREHOUSE_URL": url,
        }
    )


def rows(url, table, aside=()):
    """The table's rows, read through its typed definition (booleans, dates, decimals compare
    equal across the two databases), without the columns named in ``aside``."""
    cols = [c for c in wh.metadata.tables[table].columns if c.name not in aside]
    with create_engine(url).connect() as c:
        out = [dict(r._mapping) for r in c.execute(select(*cols))]
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in out)


def snapshot(url, tables=None, aside=()):
    return {t: rows(url, t, aside) for t in tables or [t for t in wh.metadata.tables if t not in wh.BOOKKEEPING_TABLES]}


# ---------------------------------------------------------------- migrations


def _schema(url):
    insp = inspect(create_engine(url))
    return {
        t: ({c["name"] for c in insp.get_columns(t)}, tuple(insp.get_pk_constraint(t)["constrained_columns"]))
        for t in wh.metadata.tables
    }


def test_migrations_give_the_tables_of_warehouse_py_on_both_databases(pg, tmp_path):
    want = {
        t.name: ({c.name for c in t.columns}, tuple(c.name for c in t.primary_key.columns))
        for t in wh.metadata.tables.values()
    }
    sqlite_url = f"sqlite:///{tmp_path / 'w.db'}"
    assert migrations.migrate(wh.engine_for(sqlite_url)) == [m.path.name for m in migrations.available("sqlite")]
    assert migrations.migrate(wh.engine_for(sqlite_url)) == []  # applied once
    assert _schema(sqlite_url) == want
    assert _schema(PIPELINE.format(db=pg)) == want
    assert migrations.migrate(wh.engine_for(ADMIN.format(db=pg))) == []
    # every table and column carries a comment: the data dictionary
    with create_engine(ADMIN.format(db=pg)).connect() as c:
        missing = c.execute(
            text(
                "SELECT c.relname, a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') "
                "AND NOT c.relispartition "
                "AND c.relname NOT IN ('schema_migrations', 'alembic_version') AND a.attnum > 0 AND NOT a.attisdropped "
                "AND col_description(c.oid, a.attnum) IS NULL"
            )
        ).fetchall()
        assert missing == []
        # what dq_result's checks and severities mean (migration 0005: warnings) is warehouse.py's
        said = dict(
            c.execute(
                text(
                    "SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a "
                    "WHERE a.attrelid = 'dq_result'::regclass AND a.attname IN ('check', 'success', 'severity')"
                )
            ).all()
        )
        assert said == {k: wh.dq_result.c[k].comment for k in ("check", "success", "severity")}
        assert (
            c.execute(
                text(
                    "SELECT count(*) FROM pg_class WHERE relname = 'operator_score' "
                    "AND obj_description(oid) IS NOT NULL"
                )
            ).scalar()
            == 1
        )


def test_a_changed_applied_migration_is_refused(pg, tmp_path):
    """The checksum guard on PostgreSQL: an applied migration whose file changed since stops the
    migration, naming the file; a migration that fails leaves nothing behind (its revision, its
    ledger row and its DDL roll back together)."""
    import shutil

    name = new_database()
    try:
        folder = tmp_path / "m"
        shutil.copytree(migrations.MIGRATIONS_DIR, folder)
        url = ADMIN.format(db=name)
        assert migrations.migrate(wh.engine_for(url), "0001", folder=folder) == ["0001_tables.postgresql.sql"]
        edited = folder / "0001_tables.postgresql.sql"
        original = edited.read_bytes()
        edited.write_bytes(original + b"\nCREATE TABLE t (a INTEGER);\n")
        with pytest.raises(
            migrations.MigrationError, match=r"0001_tables\.postgresql\.sql was changed after it was applied"
        ):
            migrations.migrate(wh.engine_for(url), folder=folder)
        edited.write_bytes(original)
        (folder / "0002_roles.postgresql.sql").write_text("CREATE TABLE u (a INTEGER);\nTHIS IS NOT SQL;\n", "utf-8")
        with pytest.raises(migrations.MigrationError, match=r"0002_roles\.postgresql\.sql failed"):
            migrations.migrate(wh.engine_for(url), folder=folder)
        assert not inspect(create_engine(url)).has_table("u")  # a failed migration leaves nothing behind
        assert not inspect(create_engine(url)).has_table("t")
        assert migrations.current(wh.engine_for(url)) == "0001" and sorted(migrations.applied(wh.engine_for(url))) == [
            1
        ]
    finally:
        drop_database(name)


def test_alembic_upgrade_downgrade_and_upgrade_again_on_postgres(pg):
    """`alembic upgrade head` on an empty database (the administrator's URL by -x url), `alembic
    downgrade -1` (0005 puts back 0001's comments) and `alembic upgrade head` again; the pipeline's
    role then finds nothing pending, and reads alembic_version, which it owns."""
    from tests.unit.test_warehouse_schema import alembic

    name = new_database()
    try:
        url = ADMIN.format(db=name)
        up = alembic("-x", f"url={url}", "upgrade", "head")
        assert up.returncode == 0, up.stderr
        assert [ln.split(",")[0].split("Running ")[1] for ln in up.stderr.splitlines() if "Running upgrade" in ln] == [
            "upgrade  -> 0001",
            "upgrade 0001 -> 0002",
            "upgrade 0002 -> 0003",
            "upgrade 0003 -> 0004",
            "upgrade 0004 -> 0005",
            "upgrade 0005 -> 0006",
            "upgrade 0006 -> 0007",
            "upgrade 0007 -> 0008",
        ]
        assert _schema(PIPELINE.format(db=name)) == _schema(PIPELINE.format(db=pg))

        def comment():
            with create_engine(url).connect() as c:
                return c.execute(
                    text(
                        "SELECT col_description(a.attrelid, a.attnum) FROM pg_attribute a "
                        "WHERE a.attrelid = 'dq_result'::regclass AND a.attname = 'severity'"
                    )
                ).scalar()

        assert comment() == wh.dq_result.c["severity"].comment
        down = alembic("-x", f"url={url}", "downgrade", "-1")  # 0008: the latest-state tables plain again
        assert down.returncode == 0, down.stderr
        assert _schema(PIPELINE.format(db=name)) == _schema(PIPELINE.format(db=pg))
        with create_engine(url).connect() as c:
            assert c.execute(text("SELECT relkind FROM pg_class WHERE relname = 'dim_operator'")).scalar() == "r"
        down = alembic("-x", f"url={url}", "downgrade", "-1")  # 0007: the per-run tables plain again
        assert down.returncode == 0, down.stderr
        assert _schema(PIPELINE.format(db=name)) == _schema(PIPELINE.format(db=pg))
        with create_engine(url).connect() as c:
            assert c.execute(text("SELECT relkind FROM pg_class WHERE relname = 'operator_score'")).scalar() == "r"
        down = alembic("-x", f"url={url}", "downgrade", "-1")  # 0006: published_build dropped
        assert down.returncode == 0, down.stderr
        with create_engine(url).connect() as c:
            assert c.execute(text("SELECT to_regclass('published_build')")).scalar() is None
            assert (
                c.execute(
                    text(
                        "SELECT col_description(a.attrelid, a.attnum) FROM pg_attribute a WHERE "
                        "a.attrelid = 'dim_operator'::regclass AND a.attname = 'updated_run_date'"
                    )
                ).scalar()
                == "run date of the state shown"
            )
        down = alembic("-x", f"url={url}", "downgrade", "-1")
        assert down.returncode == 0, down.stderr
        assert comment() == "error / warning"  # as 0001 wrote it
        assert migrations.current(wh.engine_for(url)) == "0004"
        refused = alembic("-x", f"url={url}", "downgrade", "-1")
        assert (
            refused.returncode != 0 and "0004_measures_and_facts.postgresql.sql) cannot be downgraded" in refused.stderr
        )
        assert migrations.migrate(wh.engine_for(url)) == [
            "0005_dq_warnings.postgresql.sql",
            "0006_published_build.postgresql.sql",
            "0007_per_run_partitions.postgresql.sql",
            "0008_latest_state_partition.postgresql.sql",
        ]
        assert comment() == wh.dq_result.c["severity"].comment
        assert migrations.migrate(wh.engine_for(PIPELINE.format(db=name))) == []
        with create_engine(url).connect() as c:
            assert (
                c.execute(text("SELECT tableowner FROM pg_tables WHERE tablename = 'alembic_version'")).scalar()
                == "ecredit_pipeline"
            )
    finally:
        drop_database(name)


def test_a_database_of_the_old_runner_is_adopted_on_postgres(pg):
    """A database migrated to 0003 by the runner before Alembic (schema_migrations 1..3, no
    alembic_version): the pipeline's role cannot adopt it and says which setting; the
    administrator's migrate stamps it at 0003 and applies 0004 to 0008 only, rows kept; then the
    pipeline's role finds nothing pending."""
    name = new_database()
    try:
        admin = wh.engine_for(ADMIN.format(db=name))
        migrations.migrate(admin, "0003")
        with admin.begin() as c:  # what the old runner left: its ledger, no alembic_version
            c.execute(text("DROP TABLE alembic_version"))
            c.execute(
                text("INSERT INTO inspection_draw VALUES ('2026-12-01', 'aa', 'bb', 'cc', '{}', 1, true, false, now())")
            )
        ledger = migrations.applied(admin)
        assert sorted(ledger) == [1, 2, 3] and migrations.current(admin) is None
        cfg = settings_mod.load({"CREDIT_WAREHOUSE_URL": PIPELINE.format(db=name)})
        with pytest.raises(settings_mod.SettingError, match="CREDIT_WAREHOUSE_URL.*ecredit migrate"):
            publish.connect(cfg)
        assert migrations.migrate(admin) == [
            "0004_measures_and_facts.postgresql.sql",
            "0005_dq_warnings.postgresql.sql",
            "0006_published_build.postgresql.sql",
            "0007_per_run_partitions.postgresql.sql",
            "0008_latest_state_partition.postgresql.sql",
        ]
        assert migrations.current(admin) == "0008"
        assert {v: s for v, s in migrations.applied(admin).items() if v <= 3} == ledger
        with create_engine(PIPELINE.format(db=name)).connect() as c:
            assert c.execute(text("SELECT count(*) FROM inspection_draw")).scalar() == 1
        publish.connect(cfg).dispose()  # nothing pending for the pipeline's role
        # fully migrated by the old runner: only stamped, by `ecredit migrate`
        name2 = new_database()
        try:
            admin2 = wh.engine_for(ADMIN.format(db=name2))
            migrations.migrate(admin2)
            with admin2.begin() as c:
                c.execute(text("DROP TABLE alembic_version"))
            proc = run_cli(["migrate", "--url", ADMIN.format(db=name2)], dict(os.environ))
            assert proc.returncode == 0, proc.stderr
            assert "nothing" in proc.stdout
            assert migrations.current(admin2) == "0008"
        finally:
            drop_database(name2)
    finally:
        drop_database(name)


def test_migration_0004_keeps_earlier_measures_and_each_departments_view(pg):
    """A warehouse migrated and published before measures had a legal basis: after 0004 its
    supervision_measure rows stay (basis class:<class>, no legal basis, not under objection), the
    key is (run_date, operator_key, measure_code), and a department still reads its own rows only,
    new columns included, and the three fact tables."""
    name = new_database()
    try:
        admin = wh.engine_for(ADMIN.format(db=name))
        assert migrations.migrate(admin, "0002") == ["0001_tables.postgresql.sql", "0002_roles.postgresql.sql"]
        with admin.begin() as c:
            c.execute(
                text(
                    "INSERT INTO supervision_measure VALUES ('2026-10-01', 'K1', 'PLATFORM_PROMOTION', 'C', "
                    "'commerce'), ('2026-10-01', 'K2', 'GOV_FUNDING', 'D', 'ndrc')"
                )
            )
        assert "0004_measures_and_facts.postgresql.sql" in migrations.migrate(admin)
        insp = inspect(create_engine(PIPELINE.format(db=name)))
        assert insp.get_pk_constraint("supervision_measure")["constrained_columns"] == [
            "run_date",
            "operator_key",
            "measure_code",
        ]
        with create_engine(f"postgresql+psycopg://ecredit_ndrc@127.0.0.1:5432/{name}").connect() as c:
            got = [
                tuple(r)
                for r in c.execute(
                    text(
                        "SELECT operator_key, measure_code, basis, legal_basis, "
                        "under_objection FROM supervision_measure"
                    )
                )
            ]
            assert got == [("K2", "GOV_FUNDING", "class:D", None, False)]
            for t in ("fact_license", "fact_spot_check", "fact_complaint"):
                assert c.execute(text(f"SELECT count(*) FROM {t}")).scalar() == 0
        with create_engine(f"postgresql+psycopg://ecredit_commerce@127.0.0.1:5432/{name}").connect() as c:
            assert c.execute(text("SELECT basis FROM supervision_measure")).scalars().all() == ["class:C"]
    finally:
        drop_database(name)


PER_RUN = [t.name for t in wh.PER_RUN_TABLES]


def partitions(url: str, table: str) -> list[str]:
    with create_engine(url).connect() as c:
        return sorted(
            c.execute(
                text("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = to_regclass(:t)"), {"t": table}
            ).scalars()
        )


def made_up_row(table, run_date: dt.date, n: int, dept: str) -> dict:
    """A row of ``table`` with a value of its type in every column (a key made of ``n``)."""
    from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric

    row = {}
    for c in table.columns:
        if c.name == "run_date":
            row[c.name] = run_date
        elif c.name in ("dept", "responsible_dept"):
            row[c.name] = dept
        elif isinstance(c.type, Boolean):
            row[c.name] = False
        elif isinstance(c.type, Date):
            row[c.name] = run_date
        elif isinstance(c.type, DateTime):
            row[c.name] = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        elif isinstance(c.type, Integer | Numeric):
            row[c.name] = n
        else:
            row[c.name] = f"{c.name[:3]}{n}"[: getattr(c.type, "length", None) or 40]
    return row


def test_migration_0007_moves_the_per_run_rows_to_partitions_and_back(pg):
    """Decision 113: a warehouse at 0006 with rows of two run dates; 0007 makes each per-run table
    partitioned by run date with a partition per date, the rows, key, indexes, grants and
    row-level security kept (a department still reads only its own measures); the downgrade
    makes them plain tables again with the same rows."""
    name = new_database()
    try:
        url = ADMIN.format(db=name)
        admin = wh.engine_for(url)
        migrations.migrate(admin, "0006")
        days = [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
        # (0008's partition of the latest-state tables is not applied here: the next test's)
        with admin.begin() as c:
            for t in wh.PER_RUN_TABLES:
                c.execute(
                    t.insert(),
                    [made_up_row(t, d, n, dept) for d in days for n, dept in enumerate(("amr", "ndrc", "cac"))],
                )
        before = snapshot(url, PER_RUN)
        indexes = {t: sorted(i["name"] for i in inspect(admin).get_indexes(t)) for t in PER_RUN}
        assert migrations.migrate(admin, "0007") == ["0007_per_run_partitions.postgresql.sql"]
        assert snapshot(url, PER_RUN) == before and all(len(v) == 6 for v in before.values())
        for t in PER_RUN:
            assert partitions(url, t) == [f"run_partitions.{t}_20261101", f"run_partitions.{t}_20261102"], t
        assert {t: sorted(i["name"] for i in inspect(create_engine(url)).get_indexes(t)) for t in PER_RUN} == indexes
        with create_engine(f"postgresql+psycopg://ecredit_amr@127.0.0.1:5432/{name}").connect() as c:
            assert c.execute(text("SELECT count(*) FROM supervision_measure")).scalar() == 2  # its own only
            assert c.execute(text("SELECT count(*) FROM operator_score")).scalar() == 6
            with pytest.raises(Exception, match="permission denied"):
                c.execute(text("SELECT count(*) FROM run_partitions.supervision_measure_20261101"))  # not around RLS
        with create_engine(PIPELINE.format(db=name)).begin() as c:  # the pipeline still owns them
            c.execute(text("DELETE FROM risk_alert WHERE run_date = '2026-11-02'"))
        before["risk_alert"] = [r for r in before["risk_alert"] if "2026-11-02" not in r]
        assert migrations.downgrade(admin) == ["0007_per_run_partitions.postgresql.sql"]
        assert snapshot(url, PER_RUN) == before
        assert all(partitions(url, t) == [] for t in PER_RUN)
        with create_engine(url).connect() as c:
            assert c.execute(text("SELECT to_regnamespace('run_partitions')")).scalar() is None
        with create_engine(f"postgresql+psycopg://ecredit_ndrc@127.0.0.1:5432/{name}").connect() as c:
            assert c.execute(text("SELECT count(*) FROM supervision_measure")).scalar() == 2
    finally:
        drop_database(name)


LATEST = [t.name for t in wh.LATEST_STATE_TABLES]


def test_migration_0008_makes_each_latest_state_table_one_partition_and_back(pg):
    """Decision 114: a warehouse at 0007 with rows in the latest-state tables; 0008 makes each one
    partitioned by its key with the one partition run_partitions.<table>_latest, the rows, key,
    indexes and grants kept (the warehouse is then the head's, table for table); the downgrade
    makes them plain tables again with the same rows."""
    name = new_database()
    try:
        url = ADMIN.format(db=name)
        admin = wh.engine_for(url)
        migrations.migrate(admin, "0007")
        with admin.begin() as c:
            for t in wh.LATEST_STATE_TABLES:
                c.execute(t.insert(), [made_up_row(t, dt.date(2026, 11, 1), n, "amr") for n in range(3)])
        before = snapshot(url, LATEST)
        indexes = {t: sorted(i["name"] for i in inspect(admin).get_indexes(t)) for t in LATEST}
        assert migrations.migrate(admin) == ["0008_latest_state_partition.postgresql.sql"]
        assert snapshot(url, LATEST) == before and all(len(v) == 3 for v in before.values())
        for t in LATEST:
            assert partitions(url, t) == [f"run_partitions.{t}_latest"], t
        assert {t: sorted(i["name"] for i in inspect(create_engine(url)).get_indexes(t)) for t in LATEST} == indexes
        assert _schema(PIPELINE.format(db=name)) == _schema(PIPELINE.format(db=pg))
        with create_engine(f"postgresql+psycopg://ecredit_amr@127.0.0.1:5432/{name}").connect() as c:
            assert c.execute(text("SELECT count(*) FROM fact_credit_record")).scalar() == 3
            with pytest.raises(Exception, match="permission denied"):
                c.execute(text("SELECT count(*) FROM run_partitions.fact_credit_record_latest"))
        with create_engine(PIPELINE.format(db=name)).begin() as c:  # the pipeline still owns them
            c.execute(
                text("DELETE FROM fact_license WHERE license_no = :k"),
                {"k": json.loads(before["fact_license"][0])["license_no"]},
            )
        before["fact_license"] = before["fact_license"][1:]
        assert migrations.downgrade(admin) == ["0008_latest_state_partition.postgresql.sql"]
        assert snapshot(url, LATEST) == before
        with create_engine(url).connect() as c:
            for t in LATEST:
                assert c.execute(text("SELECT relkind FROM pg_class WHERE relname = :t"), {"t": t}).scalar() == "r"
        assert all(partitions(url, t) == [] for t in LATEST)
    finally:
        drop_database(name)


def test_each_published_run_date_is_a_partition_of_each_per_run_table(published, pg):
    for t in PER_RUN:
        want = [f"run_partitions.{t}_{d.replace('-', '')}" for d in DATES]
        assert partitions(PIPELINE.format(db=pg), t) == want, t
    for t in LATEST:  # replaced whole on the first date, then changed through the table (decision 114)
        assert partitions(PIPELINE.format(db=pg), t) == [f"run_partitions.{t}_latest"], t


# ---------------------------------------------------------------- publishing


@pytest.fixture(scope="module")
def published(e2e, pg):
    """The end-to-end gold of the three dates published to PostgreSQL by the pipeline's role."""
    cfg = cfg_for(e2e, PIPELINE.format(db=pg))
    for d in DATES:
        publish.publish_run(cfg, dt.date.fromisoformat(d), f"pg-{d}")
    return cfg


@pytest.fixture(scope="module")
def published_dirty(dirty_e2e, pg):
    """The dirty city's gold (conftest: quarantined rows, personal data masked in them) published
    to a PostgreSQL database of its own by the pipeline's role."""
    name = new_database()
    try:
        migrations.migrate(wh.engine_for(ADMIN.format(db=name)))
        cfg = cfg_for(dirty_e2e, PIPELINE.format(db=name))
        for d in DATES:
            publish.publish_run(cfg, dt.date.fromisoformat(d), f"pg-{d}")
        yield {"db": name, "cfg": cfg}
    finally:
        drop_database(name)


@pytest.mark.parametrize("city", ["e2e", "dirty"])
def test_postgres_holds_the_same_rows_as_the_embedded_default(request, city):
    """The embedded warehouse of a run through the DAG (e2e: backfilled dates and a rejected
    delivery; dirty: quarantined rows) and PostgreSQL, published from the same lake, hold the same
    rows in every table, the run that validated or published a row aside (run_id)."""
    if city == "e2e":
        run, url = request.getfixturevalue("e2e"), PIPELINE.format(db=request.getfixturevalue("pg"))
        request.getfixturevalue("published")
    else:
        run, url = (
            request.getfixturevalue("dirty_e2e"),
            PIPELINE.format(db=request.getfixturevalue("published_dirty")["db"]),
        )
    # the draws' published_at is when each warehouse's publish ran: the same rows, other times
    aside = ("run_id", "published_at")
    got, want = snapshot(url, aside=aside), snapshot(run["warehouse"], aside=aside)
    assert set(got) == set(wh.metadata.tables) - set(wh.BOOKKEEPING_TABLES)
    for t in want:
        assert got[t] == want[t], t
    assert want["dq_result"] and want["fact_credit_record"]
    if city == "dirty":
        assert len(want["quarantine"]) > 50  # every reason code of quality.md, masked payloads


@pytest.mark.parametrize("city", ["e2e", "dirty"])
@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_publishing_a_date_twice_gives_the_same_rows(request, tmp_path, kind, city):
    """Every table but pipeline_run, the validation tables included, run_id and all: publishing a
    validated delivery again writes the same rows (quality.md), and so keeps the run that validated
    it. The e2e city has draws; the dirty one quarantined rows to lose or duplicate."""
    if city == "e2e":
        run, db = request.getfixturevalue("e2e"), request.getfixturevalue("pg")
        request.getfixturevalue("published")
    else:
        run, db = request.getfixturevalue("dirty_e2e"), request.getfixturevalue("published_dirty")["db"]
    url = PIPELINE.format(db=db) if kind == "postgresql" else f"sqlite:///{tmp_path / 'w.db'}"
    cfg = cfg_for(run, url)
    if kind == "sqlite":
        for d in DATES:
            publish.publish_run(cfg, dt.date.fromisoformat(d), "first")
    before = snapshot(url)
    publish.publish_run(cfg, dt.date.fromisoformat(DATES[-1]), "again")
    publish.publish_run(cfg, dt.date.fromisoformat(DATES[1]), "again")  # an older date: the state stays
    after = snapshot(url)
    assert set(before) == set(wh.metadata.tables) - set(wh.BOOKKEEPING_TABLES)
    for t in before:
        assert after[t] == before[t], t
    assert sum(len(v) for v in before.values()) > 1000 and len(before["dq_result"]) > 100
    if city == "dirty":
        assert len(before["quarantine"]) > 50
    else:
        assert before["inspection_plan"] and before["inspection_draw"]


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_a_failure_between_staging_and_swap_leaves_the_previous_state(e2e, published, pg, tmp_path, kind, monkeypatch):
    url = PIPELINE.format(db=pg) if kind == "postgresql" else f"sqlite:///{tmp_path / 'w.db'}"
    cfg = cfg_for(e2e, url)
    if kind == "sqlite":
        for d in DATES[:2]:
            publish.publish_run(cfg, dt.date.fromisoformat(d), "first")
    else:
        publish.publish_run(cfg, dt.date.fromisoformat(DATES[-1]), "first")
    before = snapshot(url)

    def boom(run_date):
        raise RuntimeError("injected: the machine died between staging and swap")

    monkeypatch.setattr(publish, "after_staging", boom)
    with pytest.raises(RuntimeError, match="injected"):
        publish.publish_run(cfg, dt.date.fromisoformat(DATES[-1]), "doomed")
    assert snapshot(url) == before
    with create_engine(url).connect() as c:
        if kind == "postgresql":
            left = c.execute(text("SELECT relname FROM pg_class WHERE relname LIKE 'stage_%'")).fetchall()
        else:
            left = c.execute(text("SELECT name FROM sqlite_temp_master WHERE name LIKE 'stage_%'")).fetchall()
    assert left == []
    monkeypatch.undo()
    publish.publish_run(cfg, dt.date.fromisoformat(DATES[-1]), "recovered")  # and a rerun completes


def test_a_reader_sees_a_whole_run_or_the_one_before_never_a_mix(e2e, pg):
    name = new_database()
    try:
        migrations.migrate(wh.engine_for(ADMIN.format(db=name)))
        url = PIPELINE.format(db=name)
        cfg = cfg_for(e2e, url)
        states, seen, stop = {}, set(), threading.Event()
        probe = (
            "SELECT (SELECT count(*) FROM dim_operator), (SELECT max(updated_run_date) FROM dim_operator), "
            "(SELECT count(*) FROM fact_credit_record), (SELECT count(*) FROM operator_score), "
            "(SELECT count(*) FROM feed_status)"
        )

        def read():
            eng = create_engine(url)
            while not stop.is_set():
                with eng.connect() as c:
                    seen.add(tuple(c.execute(text(probe)).one()))

        publish.publish_run(cfg, dt.date.fromisoformat(DATES[0]), "r")
        with create_engine(url).connect() as c:
            states[DATES[0]] = tuple(c.execute(text(probe)).one())
        reader = threading.Thread(target=read)
        reader.start()
        try:
            for d in DATES[1:]:
                publish.publish_run(cfg, dt.date.fromisoformat(d), "r")
                with create_engine(url).connect() as c:
                    states[d] = tuple(c.execute(text(probe)).one())
        finally:
            stop.set()
            reader.join()
        assert len(set(states.values())) == 3
        assert seen and seen <= set(states.values()), seen - set(states.values())
    finally:
        drop_database(name)


# ---------------------------------------------------------------- roles


def test_each_department_reads_exactly_what_it_is_granted(published, pg, published_dirty):
    admin = create_engine(ADMIN.format(db=pg))
    with admin.connect() as c:
        total = {t: c.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in (*PUBLIC, *OWN_ROWS)}
        own = {
            (t, d): c.execute(text(f"SELECT count(*) FROM {t} WHERE {col} = :d"), {"d": d}).scalar()
            for t, col in OWN_ROWS.items()
            for d in DEPTS
        }
        assert not c.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = 'ecredit_pipeline'")).scalar()
    assert all(total[t] > 0 for t in PUBLIC if t != "inspection_draw")
    for d in DEPTS:
        with create_engine(f"postgresql+psycopg://ecredit_{d}@127.0.0.1:5432/{pg}").connect() as c:
            for t in PUBLIC:
                assert c.execute(text(f"SELECT count(*) FROM {t}")).scalar() == total[t], (d, t)
            for t in OWN_ROWS:
                assert c.execute(text(f"SELECT count(*) FROM {t}")).scalar() == own[(t, d)], (d, t)
        for t in ("quarantine", "pipeline_run", "published_build", "schema_migrations", "alembic_version"):
            with create_engine(f"postgresql+psycopg://ecredit_{d}@127.0.0.1:5432/{pg}").connect() as c:
                with pytest.raises(Exception, match="permission denied"):
                    c.execute(text(f"SELECT count(*) FROM {t}"))
            with create_engine(f"postgresql+psycopg://ecredit_{d}@127.0.0.1:5432/{pg}").connect() as c:
                with pytest.raises(Exception, match="permission denied"):
                    c.execute(text("DELETE FROM operator_score"))
    assert sum(own[("supervision_measure", d)] for d in DEPTS) == total["supervision_measure"]
    with admin.connect() as c:  # the pipeline's operators read everything
        c.exec_driver_sql("SET ROLE ecredit_operators")
        assert c.execute(text("SELECT count(*) FROM supervision_measure")).scalar() == total["supervision_measure"]
    # ... the whole quarantine too, read where it has rows (the end-to-end data is clean)
    dirty_admin = create_engine(ADMIN.format(db=published_dirty["db"]))
    with dirty_admin.connect() as c:
        quarantined = c.execute(text("SELECT count(*) FROM quarantine")).scalar()
    with create_engine(PIPELINE.format(db=published_dirty["db"])).connect() as c:
        assert c.execute(text("SELECT count(*) FROM quarantine")).scalar() == quarantined > 50
    with dirty_admin.connect() as c:
        c.exec_driver_sql("SET ROLE ecredit_operators")
        assert c.execute(text("SELECT count(*) FROM quarantine")).scalar() == quarantined
        assert c.execute(text("SELECT count(*) FROM dq_result")).scalar() > 100


def test_the_pipeline_role_cannot_migrate_roles_and_says_which_setting(pg):
    name = new_database()
    try:
        cfg = settings_mod.load({"CREDIT_WAREHOUSE_URL": PIPELINE.format(db=name)})
        with pytest.raises(settings_mod.SettingError, match="CREDIT_WAREHOUSE_URL"):
            publish.connect(cfg)
    finally:
        drop_database(name)


def test_an_unreachable_server_names_the_setting():
    cfg = settings_mod.load({"CREDIT_WAREHOUSE_URL": "postgresql+psycopg://ecredit_pipeline@127.0.0.1:9/none"})
    with pytest.raises(settings_mod.SettingError, match="CREDIT_WAREHOUSE_URL.*cannot be reached"):
        publish.connect(cfg)


def test_an_unreachable_warehouse_stops_the_run_at_its_first_task(e2e):
    env = {**e2e["env"], "CREDIT_WAREHOUSE_URL": "postgresql+psycopg://ecredit_pipeline@127.0.0.1:9/none"}
    proc = run_cli(["run", "--date", DATES[0]], env, timeout=300)
    assert proc.returncode != 0
    assert "CREDIT_WAREHOUSE_URL" in proc.stderr and "cannot be reached" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_the_full_dag_runs_on_postgres(tmp_path, pg):
    """`ecredit run` for a date of a small generated city, publishing to PostgreSQL."""
    from ecredit.generate import generate

    name = new_database()
    try:
        assert run_cli(["migrate", "--url", ADMIN.format(db=name)], dict(os.environ)).returncode == 0
        generate(tmp_path / "landing", 40, [dt.date(2026, 11, 1)], seed=3, dirty_rate=0.02, progress=lambda m: None)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_", "AIRFLOW"))}
        env.update(
            CREDIT_DATA_DIR=str(tmp_path),
            CREDIT_PII_KEY=PII_KEY,
            AIRFLOW_HOME=str(tmp_path / "airflow"),
            SPARK_LOCAL_IP="127.0.0.1",
            CREDIT_WAREHOUSE_URL=PIPELINE.format(db=name),
        )
        proc = run_cli(["run", "--date", "2026-11-01"], env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        with create_engine(PIPELINE.format(db=name)).connect() as c:
            assert c.execute(text("SELECT status FROM pipeline_run")).scalar() == "success"
            assert c.execute(text("SELECT count(*) FROM operator_score")).scalar() > 30
            assert c.execute(text("SELECT count(*) FROM quarantine")).scalar() > 0
    finally:
        drop_database(name)


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_change_sets_against_a_build_the_warehouse_does_not_hold_are_not_applied(e2e, tmp_path, kind):
    """Decision 112: D3's change sets were taken against a build of D2; when the warehouse holds
    another build of D2 (D2 rebuilt and not published, here its build id changed), publishing D3
    replaces the latest state whole, and the latest-state tables are D3's gold all the same. With
    the build it holds, the change sets are applied and give the same rows."""
    import shutil

    from ecredit.core import lake

    shutil.copytree(e2e["root"] / "lake", tmp_path / "lake")
    name = new_database() if kind == "postgresql" else None
    try:
        if name:
            migrations.migrate(wh.engine_for(ADMIN.format(db=name)))
        url = PIPELINE.format(db=name) if name else f"sqlite:///{tmp_path / 'w.db'}"
        cfg = settings_mod.load(
            {
                "CREDIT_DATA_DIR": str(tmp_path),
                "CREDIT_LANDING_DIR": str(e2e["root"] / "landing"),
                "CREDIT_PII_KEY": PII_KEY,
                "CREDIT_RULES": str(e2e["rules"]),
                "CREDIT_WAREHOUSE_URL": url,
            }
        )
        days = [dt.date.fromisoformat(d) for d in DATES]
        for d in days[:2]:
            publish.publish_run(cfg, d, "first")
        latest = [t.name for t in wh.LATEST_STATE_TABLES]
        applied = publish.publish_run(cfg, days[2], "by changes")["counts"]
        assert applied["latest_state"] == f"changes against {days[1]}"
        by_changes = snapshot(url, latest)
        assert sum(applied[t] for t in latest) < sum(len(v) for v in by_changes.values())  # fewer rows written
        # the warehouse back at D2, from another build of D2 than D3's change sets are against
        with create_engine(url).begin() as c:
            c.execute(text("DELETE FROM feed_status WHERE run_date = :d"), {"d": days[2]})
        marker = lake.built_marker(cfg, days[1])
        lake.write_json(marker, {**lake.read_json(marker), "build": "0" * 32})
        publish.publish_run(cfg, days[1], "D2 again")  # now the latest: replaced whole by D2's gold
        assert snapshot(url, latest) != by_changes
        replaced = publish.publish_run(cfg, days[2], "replaced")["counts"]
        assert replaced["latest_state"].startswith("replaced (the warehouse holds another build of 2026-11-02")
        assert snapshot(url, latest) == by_changes
    finally:
        if name:
            drop_database(name)
