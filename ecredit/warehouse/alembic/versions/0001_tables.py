"""tables: the tables of warehouse.md

Runs sql/migrations/0001_tables.<dialect>.sql. Downgrade drops those tables (and their rows).

Revision ID: 0001
Revises:
"""

from ecredit.warehouse import migrations

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

DROP = [
    "DROP TABLE dim_operator",
    "DROP TABLE dishonest_list_change",
    "DROP TABLE dq_result",
    "DROP TABLE draw_commitment",
    "DROP TABLE fact_credit_record",
    "DROP TABLE feed_status",
    "DROP TABLE inspection_draw",
    "DROP TABLE inspection_plan",
    "DROP TABLE inspector",
    "DROP TABLE operator_score",
    "DROP TABLE pipeline_run",
    "DROP TABLE quarantine",
    "DROP TABLE risk_alert",
    "DROP TABLE serious_dishonest_list",
    "DROP TABLE supervision_measure",
]


def upgrade() -> None:
    migrations.upgrade(1)


def downgrade() -> None:
    migrations.downgrade_body(1, {"postgresql": DROP, "sqlite": DROP})
