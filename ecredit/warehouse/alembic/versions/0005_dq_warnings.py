"""dq warnings: dq_result's data dictionary tells warnings apart (PostgreSQL comments only)

Runs sql/migrations/0005_dq_warnings.<dialect>.sql. Downgrade puts back 0001's comments of
dq_result's check, success and severity (PostgreSQL); nothing to undo on SQLite.

Revision ID: 0005
Revises: 0004
"""

from ecredit.warehouse import migrations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COMMENTS_OF_0001 = [
    'COMMENT ON COLUMN dq_result."check" IS \'delivery_gate, quarantined_ratio, volume, rows:<CODE> (rows '
    "quarantined per reason), gx:<expectation>(<column>) (the feed''s GX suite on the file)'",
    "COMMENT ON COLUMN dq_result.success IS 'the check passed'",
    "COMMENT ON COLUMN dq_result.severity IS 'error / warning'",
]


def upgrade() -> None:
    migrations.upgrade(5)


def downgrade() -> None:
    migrations.downgrade_body(5, {"postgresql": COMMENTS_OF_0001, "sqlite": []})
