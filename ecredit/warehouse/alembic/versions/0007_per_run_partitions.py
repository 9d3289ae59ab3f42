"""per-run partitions: the per-run tables partitioned by run date on PostgreSQL (decision 0113)

Runs sql/migrations/0007_per_run_partitions.<dialect>.sql (nothing on SQLite). Downgrade runs the
function that file defines with ``partitioned = false``: each table becomes a plain table again,
with its columns, comments, key, indexes, owner, grants, policies and rows; the schema
run_partitions goes.

Revision ID: 0007
Revises: 0006
"""

from ecredit.warehouse import migrations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = (
    "feed_status",
    "operator_score",
    "supervision_measure",
    "inspector",
    "serious_dishonest_list",
    "dishonest_list_change",
    "risk_alert",
)


def upgrade() -> None:
    migrations.upgrade(7)


def unpartition() -> list[str]:
    sql = migrations.migration_file(7, "postgresql").sql
    start = sql.index("CREATE FUNCTION pg_temp.rebuild_by_run_date")
    end = sql.index("$fn$;", start) + len("$fn$;")
    tables = ", ".join(f"'{t}'" for t in TABLES)
    return [
        sql[start:end],
        f"SELECT pg_temp.rebuild_by_run_date(t, false) FROM unnest(ARRAY[{tables}]) t",
        "DROP FUNCTION pg_temp.rebuild_by_run_date(text, boolean)",
        "DROP SCHEMA run_partitions",
    ]


def downgrade() -> None:
    migrations.downgrade_body(7, {"postgresql": unpartition(), "sqlite": []})
