"""One-shot warehouse set-up of the compose stack (the warehouse-migrate service).

1. ``ecredit migrate --url $WAREHOUSE_ADMIN_URL``: the migrations under ``sql/migrations/``, applied
   by an administrator (they create the roles ``ecredit_pipeline``, ``ecredit_operators`` and the
   department roles; an applied migration is skipped, a changed one refused).
2. The pipeline's login ``ecredit_pipeline`` gets the password ``ECREDIT_PIPELINE_PASSWORD``, the
   one in ``CREDIT_WAREHOUSE_URL`` of the Airflow services (the migrations create the role without
   one). Run on every ``docker compose up``, so changing the password in ``docker/.env`` applies it.

Department roles get their passwords from the DBA (docker/README.md), not from here.
"""

from __future__ import annotations

import os
import sys

PIPELINE_ROLE = "ecredit_pipeline"


def main() -> int:
    admin_url = os.environ["WAREHOUSE_ADMIN_URL"]
    password = os.environ.get("ECREDIT_PIPELINE_PASSWORD") or ""
    if not password:
        print("warehouse-migrate: ECREDIT_PIPELINE_PASSWORD is empty", file=sys.stderr)
        return 2

    from ecredit.ops import cli

    rc = cli.main(["migrate", "--url", admin_url])
    if rc:
        return rc

    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    url = make_url(admin_url)
    with psycopg.connect(
        host=url.host,
        port=url.port or 5432,
        dbname=url.database,
        user=url.username,
        password=url.password,
        autocommit=True,
    ) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(PIPELINE_ROLE), sql.Literal(password))
        )
    print(f"warehouse-migrate: migrations applied; {PIPELINE_ROLE} can log in with ECREDIT_PIPELINE_PASSWORD")
    return 0


if __name__ == "__main__":
    sys.exit(main())
