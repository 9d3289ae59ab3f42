#!/usr/bin/env bash
# PostgreSQL's docker-entrypoint-initdb.d: runs once, when the server starts on an empty data
# volume. One server, two databases:
#   airflow  Airflow's metadata, owned by the login `airflow` (password AIRFLOW_DB_PASSWORD)
#   ecredit  the warehouse; its schema and roles (ecredit_pipeline, the department roles) come
#            from `ecredit migrate`, which the warehouse-migrate service runs as postgres
# Nobody but the owners and the roles the migrations grant may connect to either.
set -euo pipefail
: "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     --set=airflow_password="$AIRFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
CREATE DATABASE ecredit;
REVOKE ALL ON DATABASE ecredit FROM PUBLIC;
SQL
