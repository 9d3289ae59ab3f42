"""measures and facts: measures with a legal basis; licences, spot checks, complaints

Runs sql/migrations/0004_measures_and_facts.<dialect>.sql. Downgrade refused: the measures' legal
bases and objections and the three fact tables' rows would be lost.

Revision ID: 0004
Revises: 0003
"""

from ecredit.warehouse import migrations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    migrations.upgrade(4)


def downgrade() -> None:
    migrations.downgrade_body(
        4,
        {},
        why="the measures' legal bases and objections, and the rows of fact_license, "
        "fact_spot_check and fact_complaint, would be lost.",
    )
