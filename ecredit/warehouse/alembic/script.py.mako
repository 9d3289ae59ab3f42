"""${message}

Runs sql/migrations/${up_revision}_<name>[.<dialect>].sql (decision 93): write the SQL files first,
one per dialect (an empty one where a dialect has nothing to do, decision 84).

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from ecredit.warehouse import migrations

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    migrations.upgrade(${int(up_revision)})


def downgrade() -> None:
    # the statements that undo the file, per dialect; leave a dialect out if it cannot be undone
    migrations.downgrade_body(${int(up_revision)}, {"postgresql": [], "sqlite": []})
