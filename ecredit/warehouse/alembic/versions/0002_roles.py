"""roles: who may read what (PostgreSQL; nothing on SQLite)

Runs sql/migrations/0002_roles.<dialect>.sql. Downgrade: nothing to undo on SQLite; refused on
PostgreSQL (the roles are the cluster's, shared with its other databases).

Revision ID: 0002
Revises: 0001
"""

from ecredit.warehouse import migrations

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    migrations.upgrade(2)


def downgrade() -> None:
    migrations.downgrade_body(
        2,
        {"sqlite": []},
        why="the roles belong to the PostgreSQL cluster, and other "
        "databases of it may use them; the grants and policies go with "
        "the tables.",
    )
