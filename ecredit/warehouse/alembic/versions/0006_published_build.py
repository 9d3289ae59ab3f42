"""published build: which build of a run date's gold the warehouse holds (decision 0112)

Runs sql/migrations/0006_published_build.<dialect>.sql. Downgrade drops published_build (publish
then replaces the latest state whole) and puts back 0001's comment of dim_operator.updated_run_date.

Revision ID: 0006
Revises: 0005
"""

from ecredit.warehouse import migrations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    migrations.upgrade(6)


def downgrade() -> None:
    migrations.downgrade_body(
        6,
        {
            "postgresql": [
                "DROP TABLE published_build",
                "COMMENT ON COLUMN dim_operator.updated_run_date IS 'run date of the state shown'",
            ],
            "sqlite": ["DROP TABLE published_build"],
        },
    )
