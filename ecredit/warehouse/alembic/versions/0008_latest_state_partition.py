"""latest-state partition: each latest-state table partitioned by its key, one partition (decision 0114)

Runs sql/migrations/0008_latest_state_partition.<dialect>.sql (nothing on SQLite). Downgrade runs
the function that file defines with ``partitioned = false``: each table becomes a plain table
again, with its columns, comments, key, indexes, owner, grants, policies and rows.

Revision ID: 0008
Revises: 0007
"""

from ecredit.warehouse import migrations

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("dim_operator", "fact_credit_record", "fact_license", "fact_spot_check", "fact_complaint")


def upgrade() -> None:
    migrations.upgrade(8)


def unpartition() -> list[str]:
    sql = migrations.migration_file(8, "postgresql").sql
    start = sql.index("CREATE FUNCTION pg_temp.rebuild_latest")
    end = sql.index("$fn$;", start) + len("$fn$;")
    tables = ", ".join(f"'{t}'" for t in TABLES)
    return [
        sql[start:end],
        f"SELECT pg_temp.rebuild_latest(t, false) FROM unnest(ARRAY[{tables}]) t",
        "DROP FUNCTION pg_temp.rebuild_latest(text, boolean)",
    ]


def downgrade() -> None:
    migrations.downgrade_body(8, {"postgresql": unpartition(), "sqlite": []})
