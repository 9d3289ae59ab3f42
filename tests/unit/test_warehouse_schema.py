import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecredit.warehouse import schema as warehouse


def test_the_sqlite_migrations_give_the_table_definitions(tmp_path):
    """sql/migrations applied to an empty embedded warehouse give exactly the tables, columns,
    keys and indexes of ecredit/warehouse/schema.py (a table change needs a new migration)."""
    from sqlalchemy import inspect

    from ecredit.warehouse import migrations

    eng = warehouse.engine_for(f"sqlite:///{tmp_path / 'w.db'}")
    migrations.migrate(eng)
    insp = inspect(eng)
    assert set(insp.get_table_names()) == set(warehouse.metadata.tables) | {"schema_migrations", "alembic_version"}
    for t in warehouse.metadata.tables.values():
        cols = {c["name"]: (str(c["type"]), c["nullable"]) for c in insp.get_columns(t.name)}
        want = {c.name: (str(c.type.compile(eng.dialect)), c.nullable) for c in t.columns}
        assert cols == want, t.name
        assert insp.get_pk_constraint(t.name)["constrained_columns"] == [c.name for c in t.primary_key.columns]
        assert {i["name"] for i in insp.get_indexes(t.name)} == {i.name for i in t.indexes}, t.name


def test_migration_files_are_well_named():
    from ecredit.warehouse import migrations

    for dialect in ("postgresql", "sqlite"):
        versions = [m.version for m in migrations.available(dialect)]
        assert versions == list(range(1, len(versions) + 1)), dialect


def test_one_alembic_revision_per_migration_in_one_line():
    """Alembic's revisions are 0001..n, one per migration number of both dialects, each revising
    the one before (no branch), each running its own file."""
    from alembic.script import ScriptDirectory

    from ecredit.warehouse import migrations

    script = ScriptDirectory.from_config(migrations.alembic_config())
    chain = [r.revision for r in reversed(list(script.walk_revisions()))]
    n = len(migrations.available("sqlite"))
    assert n == len(migrations.available("postgresql")) >= 5
    assert chain == [f"{v:04d}" for v in range(1, n + 1)]
    assert script.get_heads() == [f"{n:04d}"]
    for r in script.walk_revisions():
        assert r.down_revision == (None if r.revision == "0001" else f"{int(r.revision) - 1:04d}")
        assert f"migrations.upgrade({int(r.revision)})" in Path(r.path).read_text("utf-8"), r.path


def test_every_table_and_column_has_a_comment():
    """The comments are the data dictionary the departments read."""
    for table in warehouse.metadata.tables.values():
        assert table.comment, table.name
        for col in table.columns:
            assert col.comment, (table.name, col.name)


def test_migration_0004_keeps_the_measures_published_before_it(tmp_path):
    """A warehouse published before measures had a legal basis: its supervision_measure rows stay,
    resting on their class (the rule they were made by), with no legal basis recorded, not under
    objection; the new key refuses a second row for an (operator, measure) of a date."""
    import datetime as dt

    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from ecredit.warehouse import migrations

    eng = warehouse.engine_for(f"sqlite:///{tmp_path / 'w.db'}")
    assert migrations.migrate(eng, "0001") == ["0001_tables.sqlite.sql"]
    d = dt.date(2026, 10, 1)
    with eng.begin() as c:
        c.execute(
            text(
                "INSERT INTO supervision_measure VALUES (:d, 'K1', 'PLATFORM_PROMOTION', 'C', 'commerce'), "
                "(:d, 'K2', 'GOV_FUNDING', 'D', 'ndrc')"
            ),
            {"d": d},
        )
    assert "0004_measures_and_facts.sqlite.sql" in migrations.migrate(eng)
    with eng.connect() as c:
        rows = [
            tuple(r)
            for r in c.execute(
                text(
                    "SELECT operator_key, measure_code, final_class, responsible_dept, basis, legal_basis, under_objection "
                    "FROM supervision_measure ORDER BY operator_key"
                )
            )
        ]
    assert rows == [
        ("K1", "PLATFORM_PROMOTION", "C", "commerce", "class:C", None, 0),
        ("K2", "GOV_FUNDING", "D", "ndrc", "class:D", None, 0),
    ]
    with eng.begin() as c, pytest.raises(IntegrityError):
        c.execute(
            text("INSERT INTO supervision_measure VALUES (:d, 'K2', 'GOV_FUNDING', 'D', 'amr', 'class:D', 'x', 0)"),
            {"d": d},
        )


def test_migration_0003_makes_the_published_plans_version_1(tmp_path):
    """A warehouse migrated before 0003, with a published draw: after 0003 the draw is version 1,
    in force, published when the date's last successful run finished, its plan rows version 1."""
    from sqlalchemy import text

    from ecredit.warehouse import migrations

    eng = warehouse.engine_for(f"sqlite:///{tmp_path / 'w.db'}")
    assert migrations.migrate(eng, "0002") == ["0001_tables.sqlite.sql", "0002_roles.sqlite.sql"]
    with eng.begin() as c:
        c.execute(text("INSERT INTO inspection_draw VALUES ('2026-12-01', 'aa', 'bb', 'cc', '{}')"))
        c.execute(text("INSERT INTO inspection_plan VALUES ('2026-12-01', 'OP1', 'cc', 'D', 'ZF-1,ZF-2', 1)"))
        c.execute(text("INSERT INTO inspection_plan VALUES ('2026-12-01', 'OP2', 'cc', 'C', 'ZF-2,ZF-1', 0)"))
        for at, status in (
            ("2026-12-02 02:10:00.000000", "success"),
            ("2026-12-02 03:10:00.000000", "success"),
            ("2026-12-02 04:10:00.000000", "failed"),
        ):
            c.execute(
                text(
                    "INSERT INTO pipeline_run (run_date, run_id, finished_at, status) "
                    "VALUES ('2026-12-01', 'r', :at, :s)"
                ),
                {"at": at, "s": status},
            )
    assert migrations.migrate(eng, "0003") == ["0003_draw_versions.sqlite.sql"]
    with eng.connect() as c:
        draws = [dict(r._mapping) for r in c.execute(text("SELECT * FROM inspection_draw"))]
        plans = sorted(
            tuple(r)
            for r in c.execute(text("SELECT run_date, version, operator_key, onsite_required FROM inspection_plan"))
        )
    assert draws == [
        {
            "run_date": "2026-12-01",
            "version": 1,
            "salt": "aa",
            "salt_sha256": "bb",
            "seed": "cc",
            "counts": "{}",
            "in_force": 1,
            "inputs_kept": 0,
            "published_at": "2026-12-02 03:10:00.000000",
        }
    ]
    assert plans == [("2026-12-01", 1, "OP1", 1), ("2026-12-01", 1, "OP2", 0)]


# ---------------------------------------------------------------- Alembic (decision 93)

ROOT = Path(__file__).resolve().parents[2]


def alembic(*args: str) -> subprocess.CompletedProcess:
    """The ``alembic`` command a DBA runs, from the repository root (alembic.ini)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def old_runner(url: str, upto: int) -> None:
    """What the runner before Alembic did to an SQLite warehouse: each file by executescript in
    one transaction with its row in schema_migrations; no alembic_version."""
    import datetime as dt
    import sqlite3

    from ecredit.warehouse import migrations

    con = sqlite3.connect(url[len("sqlite:///") :])
    con.execute(migrations.LEDGER_DDL)
    for m in migrations.available("sqlite")[:upto]:
        con.executescript(f"BEGIN;\n{m.sql}\n;")
        con.execute(
            "INSERT INTO schema_migrations (version, name, sha256, applied_at) VALUES (?, ?, ?, ?)",
            (m.version, m.name, m.sha256, dt.datetime(2026, 11, 1).isoformat(sep=" ")),
        )
        con.commit()
    con.close()


def sqlite3_tables(path) -> set[str]:
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()


def test_alembic_history_upgrade_downgrade_as_a_dba_runs_them(tmp_path):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    history = alembic("history")
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert [ln.split(",")[0] for ln in lines] == [
        "0007 -> 0008 (head)",
        "0006 -> 0007",
        "0005 -> 0006",
        "0004 -> 0005",
        "0003 -> 0004",
        "0002 -> 0003",
        "0001 -> 0002",
        "<base> -> 0001",
    ]
    up = alembic("-x", f"url={url}", "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert "Running upgrade 0005 -> 0006" in up.stderr and "Running upgrade 0007 -> 0008" in up.stderr
    assert alembic("-x", f"url={url}", "current").stdout.strip() == "0008 (head)"
    down = alembic("-x", f"url={url}", "downgrade", "-4")
    assert down.returncode == 0, down.stderr
    assert all(f"Running downgrade 000{v} -> 000{v - 1}" in down.stderr for v in (8, 7, 6, 5)), down.stderr
    assert alembic("-x", f"url={url}", "current").stdout.strip() == "0004"
    assert "published_build" not in sqlite3_tables(tmp_path / "w.db")
    # 0004 rebuilt a table and added three: refused, with a sentence saying why, nothing changed
    refused = alembic("-x", f"url={url}", "downgrade", "-1")
    assert refused.returncode != 0
    assert "revision 0004 (0004_measures_and_facts.sqlite.sql) cannot be downgraded on sqlite" in refused.stderr
    assert alembic("-x", f"url={url}", "current").stdout.strip() == "0004"
    assert alembic("-x", f"url={url}", "upgrade", "head").returncode == 0
    assert alembic("-x", f"url={url}", "current").stdout.strip() == "0008 (head)"
    assert "published_build" in sqlite3_tables(tmp_path / "w.db")
    # the URL from the project's setting when -x url is not given
    data = tmp_path / "data"
    env_up = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CREDIT_DATA_DIR": str(data), "CREDIT_WAREHOUSE_URL": ""},
    )
    assert env_up.returncode == 0, env_up.stderr
    assert (data / "warehouse.db").is_file()


def test_upgrade_downgrade_and_upgrade_again_through_the_api(tmp_path):
    from sqlalchemy import inspect, text

    from ecredit.warehouse import migrations

    eng = warehouse.engine_for(f"sqlite:///{tmp_path / 'w.db'}")
    names = [m.path.name for m in migrations.available("sqlite")]
    assert migrations.current(eng) is None
    assert migrations.migrate(eng) == names
    assert migrations.migrate(eng) == []  # applied once
    assert migrations.current(eng) == "0008"
    with eng.connect() as c:
        before = sorted(c.execute(text("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")))
    assert migrations.downgrade(eng, "-3") == [
        "0008_latest_state_partition.sqlite.sql",
        "0007_per_run_partitions.sqlite.sql",
        "0006_published_build.sqlite.sql",
    ]
    assert migrations.current(eng) == "0005" and 6 not in migrations.applied(eng)
    assert "published_build" not in inspect(eng).get_table_names()
    assert migrations.migrate(eng) == [
        "0006_published_build.sqlite.sql",
        "0007_per_run_partitions.sqlite.sql",
        "0008_latest_state_partition.sqlite.sql",
    ]
    with eng.connect() as c:
        after = sorted(c.execute(text("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")))
    assert after == before  # the same DDL, table for table
    assert sorted(migrations.applied(eng)) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert set(inspect(eng).get_table_names()) >= set(warehouse.metadata.tables)


def test_a_database_of_the_old_runner_is_adopted_without_running_anything_again(tmp_path):
    """A warehouse migrated to 0003 by the runner before Alembic, with published rows: the first
    migrate stamps it at 0003 and applies 0004 to 0008 only; its rows stay."""
    from sqlalchemy import text

    from ecredit.warehouse import migrations

    url = f"sqlite:///{tmp_path / 'w.db'}"
    old_runner(url, 3)
    eng = warehouse.engine_for(url)
    with eng.begin() as c:
        c.execute(text("INSERT INTO inspection_draw VALUES ('2026-12-01', 1, 'aa', 'bb', 'cc', '{}', 1, 0, NULL)"))
    ledger = migrations.applied(eng)
    assert migrations.current(eng) is None and sorted(ledger) == [1, 2, 3]
    assert migrations.migrate(eng) == [
        "0004_measures_and_facts.sqlite.sql",
        "0005_dq_warnings.sqlite.sql",
        "0006_published_build.sqlite.sql",
        "0007_per_run_partitions.sqlite.sql",
        "0008_latest_state_partition.sqlite.sql",
    ]
    assert migrations.current(eng) == "0008"
    assert {v: s for v, s in migrations.applied(eng).items() if v <= 3} == ledger  # 1..3 untouched
    with eng.connect() as c:
        assert c.execute(text("SELECT count(*) FROM inspection_draw")).scalar() == 1
    # a database of the old runner migrated to its last migration (0005): stamped, nothing before re-run
    url2 = f"sqlite:///{tmp_path / 'w2.db'}"
    old_runner(url2, 5)
    assert migrations.migrate(warehouse.engine_for(url2)) == [
        "0006_published_build.sqlite.sql",
        "0007_per_run_partitions.sqlite.sql",
        "0008_latest_state_partition.sqlite.sql",
    ]
    assert migrations.current(warehouse.engine_for(url2)) == "0008"
    # the same through `alembic upgrade head`
    url3 = f"sqlite:///{tmp_path / 'w3.db'}"
    old_runner(url3, 2)
    up = alembic("-x", f"url={url3}", "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert "stamped revision 0002 (nothing re-run)" in up.stderr and "Running upgrade 0002 -> 0003" in up.stderr
    assert "Running upgrade  -> 0001" not in up.stderr


def test_a_changed_applied_migration_stops_the_migration_naming_the_file(tmp_path):
    """The checksum guard: an applied migration whose file changed since stops the next migrate
    (``ecredit migrate``, the pipeline, ``alembic upgrade``), naming the file; nothing runs. A
    migration that fails leaves nothing behind."""
    import shutil

    from sqlalchemy import create_engine, inspect

    from ecredit.warehouse import migrations

    folder = tmp_path / "m"
    shutil.copytree(migrations.MIGRATIONS_DIR, folder)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    eng = warehouse.engine_for(url)
    assert migrations.migrate(eng, "0001", folder=folder) == ["0001_tables.sqlite.sql"]
    edited = folder / "0001_tables.sqlite.sql"
    original = edited.read_bytes()
    edited.write_bytes(original + b"\nCREATE TABLE t (a INTEGER);\n")
    with pytest.raises(migrations.MigrationError, match=r"0001_tables\.sqlite\.sql was changed after it was applied"):
        migrations.migrate(eng, folder=folder)
    assert migrations.current(eng) == "0001" and not inspect(create_engine(url)).has_table("t")
    edited.write_bytes(original)
    (folder / "0002_roles.sqlite.sql").write_text("CREATE TABLE u (a INTEGER);\nTHIS IS NOT SQL;\n", "utf-8")
    with pytest.raises(migrations.MigrationError, match=r"0002_roles\.sqlite\.sql failed"):
        migrations.migrate(eng, folder=folder)
    assert not inspect(create_engine(url)).has_table("u")  # a failed migration leaves nothing behind
    assert migrations.current(eng) == "0001" and sorted(migrations.applied(eng)) == [1]
    # the real files: an applied migration edited since stops `alembic upgrade head` too
    url2 = f"sqlite:///{tmp_path / 'y.db'}"
    assert migrations.migrate(warehouse.engine_for(url2), "0003")
    from sqlalchemy import text

    with warehouse.engine_for(url2).begin() as c:
        c.execute(text("UPDATE schema_migrations SET sha256 = 'edited' WHERE version = 2"))
    up = alembic("-x", f"url={url2}", "upgrade", "head")
    assert up.returncode != 0
    assert "migration 0002_roles.sqlite.sql was changed after it was applied" in up.stderr
    assert migrations.current(warehouse.engine_for(url2)) == "0003"


MIGRATE_TOGETHER = """
import sys, time
from ecredit.warehouse import migrations, schema
eng = schema.engine_for(sys.argv[1])
while time.time() < float(sys.argv[2]):  # every process starts at the same instant
    time.sleep(0.001)
print(len(migrations.migrate(eng)))
"""


def _migrate_together(url: str | list[str], n: int = 4) -> list[tuple[int, str, str]]:
    """Migrate ``url`` from ``n`` processes started at the same instant (a list: one process per
    database)."""
    import time

    urls = [url] * n if isinstance(url, str) else url
    start = time.time() + 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE_TOGETHER, u, str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        for u in urls
    ]
    return [(p.wait(300), p.stdout.read().strip(), p.stderr.read()[-2000:]) for p in procs]  # type: ignore[union-attr]


def _check_migrated_once(url: str, results) -> None:
    from sqlalchemy import text

    from ecredit.warehouse import migrations

    assert all(rc == 0 for rc, _, _ in results), results
    files = len(list(migrations.MIGRATIONS_DIR.glob("*.sql")))
    applied = sorted(int(out) for _, out, _ in results)
    # one process applied every revision, the others found the schema up to date
    assert applied[-1] > 0 and applied[:-1] == [0] * (len(applied) - 1), applied
    eng = warehouse.engine_for(url)
    with eng.connect() as c:
        versions = [r[0] for r in c.execute(text("SELECT version FROM schema_migrations ORDER BY version"))]
    assert versions == sorted(set(versions)) and len(versions) == applied[-1] <= files


def test_runs_started_together_on_a_new_sqlite_warehouse_migrate_it_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    _check_migrated_once(url, _migrate_together(url))


def test_runs_started_together_on_a_new_postgresql_warehouse_migrate_it_once():
    from tests.helpers import new_pg_database

    with new_pg_database("ecredit_migrate") as url:
        _check_migrated_once(url, _migrate_together(url))


def test_databases_of_one_cluster_migrated_together_all_get_every_migration():
    """The roles are the cluster's: four new databases migrated at the same instant change the same
    role rows; PostgreSQL fails the losers' 0002 with 'tuple concurrently updated' (it did, every
    time, before ``migrations.SHARED_CATALOG_RACE``), and each is tried again until applied."""
    from contextlib import ExitStack

    from ecredit.warehouse import migrations
    from tests.helpers import new_pg_database

    with ExitStack() as stack:
        urls = [stack.enter_context(new_pg_database("ecredit_cluster")) for _ in range(4)]
        results = _migrate_together(urls)
        assert all(rc == 0 for rc, _, _ in results), results
        names = {m.name for m in migrations.available("postgresql")}
        assert [int(out) for _, out, _ in results] == [len(names)] * 4  # each applied every revision
        for url in urls:
            with warehouse.engine_for(url).connect() as c:
                assert {r[0] for r in c.exec_driver_sql("SELECT name FROM schema_migrations")} == names
