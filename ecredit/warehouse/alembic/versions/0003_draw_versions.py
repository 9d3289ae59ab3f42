"""draw versions: every published version of a draw date's plan is kept

Runs sql/migrations/0003_draw_versions.<dialect>.sql. Downgrade refused: the versions after the
first would be lost.

Revision ID: 0003
Revises: 0002
"""

from ecredit.warehouse import migrations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    migrations.upgrade(3)


def downgrade() -> None:
    migrations.downgrade_body(
        3,
        {},
        why="a draw date's plan versions after the first, and what superseded versions were drawn on, would be lost.",
    )
