import pytest

from ecredit import warehouse
from ecredit.settings import PROJECT_ROOT

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_sql_files_match_the_table_definitions(dialect):
    path = PROJECT_ROOT / "sql" / f"warehouse.{dialect}.sql"
    assert path.read_text("utf-8") == warehouse.ddl(dialect), (
        f"{path} is out of date: run `.venv/bin/python -m ecredit.warehouse {dialect} > {path}`")


def test_every_table_and_column_has_a_comment():
    """The comments are the data dictionary the departments read."""
    for table in warehouse.metadata.tables.values():
        assert table.comment, table.name
        for col in table.columns:
            assert col.comment, (table.name, col.name)
