import pytest

from ecredit.warehouse import schema as warehouse

pytestmark = pytest.mark.unit


def test_the_sqlite_migrations_give_the_table_definitions(tmp_path):
    """sql/migrations applied to an empty embedded warehouse give exactly the tables, columns,
    keys and indexes of ecredit/warehouse/schema.py (a table change needs a new migration)."""
    from sqlalchemy import inspect

    from ecredit.warehouse import migrations

    eng = warehouse.engine_for(f"sqlite:///{tmp_path / 'w.db'}")
    migrations.migrate(eng)
    insp = inspect(eng)
    assert set(insp.get_table_names()) == set(warehouse.metadata.tables) | {"schema_migrations"}
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


def test_every_table_and_column_has_a_comment():
    """The comments are the data dictionary the departments read."""
    for table in warehouse.metadata.tables.values():
        assert table.comment, table.name
        for col in table.columns:
            assert col.comment, (table.name, col.name)


def test_migration_0004_keeps_the_measures_published_before_it(tmp_path, monkeypatch):
    """A warehouse published before measures had a legal basis: its supervision_measure rows stay,
    resting on their class (the rule they were made by), with no legal basis recorded, not under
    objection; the new key refuses a second row for an (operator, measure) of a date."""
    import datetime as dt
    import shutil

    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from ecredit.warehouse import migrations

    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy(migrations.MIGRATIONS_DIR / "0001_tables.sqlite.sql", folder)
    monkeypatch.setattr(migrations.available, "__defaults__", (folder,))
    eng = warehouse.engine_for(f"sqlite:///{tmp_path / 'w.db'}")
    assert migrations.migrate(eng) == ["0001_tables.sqlite.sql"]
    d = dt.date(2026, 10, 1)
    with eng.begin() as c:
        c.execute(text("INSERT INTO supervision_measure VALUES (:d, 'K1', 'PLATFORM_PROMOTION', 'C', 'commerce'), "
                       "(:d, 'K2', 'GOV_FUNDING', 'D', 'ndrc')"), {"d": d})
    for p in migrations.MIGRATIONS_DIR.glob("*.sqlite.sql"):
        shutil.copy(p, folder)
    assert "0004_measures_and_facts.sqlite.sql" in migrations.migrate(eng)
    with eng.connect() as c:
        rows = [tuple(r) for r in c.execute(text(
            "SELECT operator_key, measure_code, final_class, responsible_dept, basis, legal_basis, under_objection "
            "FROM supervision_measure ORDER BY operator_key"))]
    assert rows == [("K1", "PLATFORM_PROMOTION", "C", "commerce", "class:C", None, 0),
                    ("K2", "GOV_FUNDING", "D", "ndrc", "class:D", None, 0)]
    with eng.begin() as c, pytest.raises(IntegrityError):
        c.execute(text("INSERT INTO supervision_measure VALUES (:d, 'K2', 'GOV_FUNDING', 'D', 'amr', 'class:D', 'x', 0)"),
                  {"d": d})


def test_migration_0003_makes_the_published_plans_version_1(tmp_path, monkeypatch):
    """A warehouse migrated before 0003, with a published draw: after 0003 the draw is version 1,
    in force, published when the date's last successful run finished, its plan rows version 1."""
    from sqlalchemy import text

    from ecredit.warehouse import migrations

    eng = warehouse.engine_for(f"sqlite:///{tmp_path / 'w.db'}")
    real = migrations.available
    monkeypatch.setattr(migrations, "available", lambda dialect: [m for m in real(dialect) if m.version < 3])
    migrations.migrate(eng)
    with eng.begin() as c:
        c.execute(text("INSERT INTO inspection_draw VALUES ('2026-12-01', 'aa', 'bb', 'cc', '{}')"))
        c.execute(text("INSERT INTO inspection_plan VALUES ('2026-12-01', 'OP1', 'cc', 'D', 'ZF-1,ZF-2', 1)"))
        c.execute(text("INSERT INTO inspection_plan VALUES ('2026-12-01', 'OP2', 'cc', 'C', 'ZF-2,ZF-1', 0)"))
        for at, status in (("2026-12-02 02:10:00.000000", "success"), ("2026-12-02 03:10:00.000000", "success"),
                           ("2026-12-02 04:10:00.000000", "failed")):
            c.execute(text("INSERT INTO pipeline_run (run_date, run_id, finished_at, status) "
                           "VALUES ('2026-12-01', 'r', :at, :s)"), {"at": at, "s": status})
    monkeypatch.setattr(migrations, "available", lambda dialect: [m for m in real(dialect) if m.version <= 3])
    assert migrations.migrate(eng) == ["0003_draw_versions.sqlite.sql"]
    with eng.connect() as c:
        draws = [dict(r._mapping) for r in c.execute(text("SELECT * FROM inspection_draw"))]
        plans = sorted(tuple(r) for r in c.execute(text("SELECT run_date, version, operator_key, onsite_required "
                                                        "FROM inspection_plan")))
    assert draws == [{"run_date": "2026-12-01", "version": 1, "salt": "aa", "salt_sha256": "bb", "seed": "cc",
                      "counts": "{}", "in_force": 1, "inputs_kept": 0, "published_at": "2026-12-02 03:10:00.000000"}]
    assert plans == [("2026-12-01", 1, "OP1", 1), ("2026-12-01", 1, "OP2", 0)]
