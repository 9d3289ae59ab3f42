"""An audit of the code's SQL: no statement is built by putting a value into its text. Every string
that reads as SQL (a keyword in its literal parts) and is built with an f-string, ``str.format``,
``%`` or ``+`` may interpolate only the identifiers listed below, each one a name from the table
registry (``ecredit/warehouse/schema.py``) written between double quotes; values are bound parameters
(SQLAlchemy Core, ``text(... :name)``, psycopg's COPY ``write_row`` or ``psycopg.sql``). Adding
``text(f"... {value}")`` anywhere in ``ecredit/``, ``jobs/``, ``dags/`` or ``docker/``
fails this test."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ecredit.warehouse import schema as wh

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("ecredit", "jobs", "dags", "docker")  # bench/: a DuckDB benchmark harness, not the pipeline
SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|COPY|TRUNCATE|GRANT|REVOKE|WHERE|VALUES)\b")

# (file, interpolated expression) -> why it is not a value
ALLOWED = {
    ("ecredit/warehouse/publish.py", "name"): "STAGE_PREFIX or KEYS_PREFIX + a registry table name, double-quoted",
    ("ecredit/warehouse/publish.py", "KEYS_PREFIX"): "a constant prefix of a double-quoted table name",
    ("ecredit/warehouse/publish.py", "target"): "a registry table name, or the schema run_partitions and a stage "
    "table's name (registry name and a date), each double-quoted",
    ("ecredit/warehouse/alembic/versions/0007_per_run_partitions.py", "tables"): "the registry's per-run table "
    "names (TABLES, constants), each single-quoted",
    ("ecredit/warehouse/alembic/versions/0008_latest_state_partition.py", "tables"): "the registry's latest-state "
    "table names (TABLES, constants), each single-quoted",
    ("ecredit/warehouse/publish.py", "key"): "a registry table's primary-key column name, double-quoted",
    ("ecredit/warehouse/publish.py", "table.name"): "a registry table name, double-quoted",
    ("ecredit/warehouse/publish.py", "STAGE_PREFIX"): "a constant prefix of a double-quoted table name",
    ("ecredit/warehouse/publish.py", "cols"): "the registry table's column names, each double-quoted",
    ("ecredit/warehouse/publish.py", "col_list"): "the registry table's column names, each double-quoted",
}


def dynamic_sql(source: str) -> list[tuple[int, str]]:
    """(line, expression) for every expression interpolated into a string that reads as SQL."""
    tree = ast.parse(source)
    out = []

    def sqlish(node) -> bool:
        return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(SQL_WORDS.search(node.value))

    for node in ast.walk(tree):
        exprs = []
        if isinstance(node, ast.JoinedStr):
            literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if SQL_WORDS.search(literal):
                exprs = [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and sqlish(node.func.value)
        ):
            exprs = [*node.args, *(k.value for k in node.keywords)]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and sqlish(node.left):
            exprs = [node.right]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and (sqlish(node.left) or sqlish(node.right)):
            exprs = [e for e in (node.left, node.right) if not isinstance(e, ast.Constant)]
        out += [(e.lineno, ast.get_source_segment(source, e)) for e in exprs]
    return out


def test_the_audit_catches_a_value_in_sql_text():
    bad = [
        "conn.execute(text(f\"SELECT * FROM quarantine WHERE dept = '{dept}'\"))",
        "conn.exec_driver_sql(\"DELETE FROM t WHERE name = '%s'\" % name)",
        'cur.execute("UPDATE t SET a = {}".format(value))',
        'sql = "INSERT INTO t VALUES (\'" + value + "\')"',
    ]
    for snippet in bad:
        assert dynamic_sql(snippet), snippet
    good = [
        'conn.execute(text("SELECT * FROM quarantine WHERE dept = :dept"), {"dept": dept})',
        'log.info(f"published {n} rows for {d}")',
        "conn.execute(delete(t).where(t.c.run_date == d))",
    ]
    for snippet in good:
        assert dynamic_sql(snippet) == [], snippet


def test_sql_text_interpolates_only_registry_identifiers():
    found, offenders = set(), []
    files = [p for f in FOLDERS for p in sorted((ROOT / f).rglob("*.py"))]
    assert len(files) > 20
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        for line, expr in dynamic_sql(path.read_text("utf-8")):
            if (rel, expr) in ALLOWED:
                found.add((rel, expr))
            else:
                offenders.append(f"{rel}:{line}: {expr}")
    assert offenders == [], "a value is put into SQL text; bind it as a parameter:\n" + "\n".join(offenders)
    assert found == set(ALLOWED)  # no stale entry


def test_registry_identifiers_need_no_escaping():
    """What makes the double-quoted registry names above safe: none can hold a quote."""
    ident = re.compile(r"^[a-z_][a-z0-9_]*$")
    for t in wh.metadata.tables.values():
        assert ident.match(t.name), t.name
        for c in t.columns:
            assert ident.match(c.name), (t.name, c.name)
