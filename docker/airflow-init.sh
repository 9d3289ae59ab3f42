#!/usr/bin/env bash
# One-shot (the airflow-init service): create or upgrade Airflow's metadata database, then set the
# UI admin's password from AIRFLOW_ADMIN_PASSWORD (docker/.env). Airflow's simple auth manager
# keeps users in [core] simple_auth_manager_users and their passwords in the JSON file
# [core] simple_auth_manager_passwords_file, which the api-server reads (a shared volume).
set -euo pipefail
: "${AIRFLOW_ADMIN_PASSWORD:?AIRFLOW_ADMIN_PASSWORD is not set}"

airflow db migrate

python - <<'PY'
import json
import os
from pathlib import Path

users = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
admins = [u.split(":")[0] for u in users.split(",") if u.split(":")[1:2] == ["admin"]]
if not admins:
    raise SystemExit("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS names no admin user")
path = Path(os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
passwords = json.loads(path.read_text() or "{}") if path.is_file() else {}
passwords[admins[0]] = os.environ["AIRFLOW_ADMIN_PASSWORD"]
tmp = path.with_suffix(".tmp")
tmp.write_text(json.dumps(passwords) + "\n")
tmp.chmod(0o600)
tmp.replace(path)
print(f"airflow-init: metadata database migrated; UI user {admins[0]!r} has the password of AIRFLOW_ADMIN_PASSWORD")
PY
