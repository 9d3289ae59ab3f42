import pytest

from ecredit import warehouse

pytestmark = pytest.mark.unit


def test_the_sqlite_migrations_give_the_table_definitions(tmp_path):
    """sql/migrations applied to an empty embedded warehouse give exactly the tables, columns,
    keys and indexes of ecredit/warehouse.py (a table change needs a new migration)."""
    from sqlalchemy import inspect

    from ecredit import migrations

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
    from ecredit import migrations

    for dialect in ("postgresql", "sqlite"):
        versions = [m.version for m in migrations.available(dialect)]
        assert versions == list(range(1, len(versions) + 1)), dialect


def test_every_table_and_column_has_a_comment():
    """The comments are the data dictionary the departments read."""
    for table in warehouse.metadata.tables.values():
        assert table.comment, table.name
        for col in table.columns:
            assert col.comment, (table.name, col.name)
