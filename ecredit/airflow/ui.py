"""``ecredit ui``: ``airflow standalone`` with the project's environment, in the foreground."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ecredit.airflow import env as env_mod


def start_ui(port: int = 8080) -> int:
    """Run ``airflow standalone`` (API server + UI, scheduler, DAG processor, triggerer) with the
    project's environment, in the foreground until Ctrl-C. Returns its exit code."""
    home = env_mod.prepare_airflow_env(migrate=False)  # standalone migrates itself
    env = dict(os.environ)
    env["AIRFLOW__API__PORT"] = str(port)
    if env.get("AIRFLOW__LOGGING__NAMESPACE_LEVELS") == env_mod.QUIET_NAMESPACES:
        del env["AIRFLOW__LOGGING__NAMESPACE_LEVELS"]
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")  # this machine only, unless the user says otherwise
    # the task runners reach the API server's execution API at the port actually used
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://{env['AIRFLOW__API__HOST']}:{port}/execution/")
    env["PATH"] = env_mod.prepend_path_var("PATH", str(Path(sys.executable).parent), dict(env))
    url = f"http://127.0.0.1:{port}"
    pw_file = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    print(
        f"Starting Airflow (standalone) with AIRFLOW_HOME={home}\n"
        f"  DAGs:     {env['AIRFLOW__CORE__DAGS_FOLDER']}\n"
        f"  UI:       {url}  (ready after about 20 s)\n"
        f"  login:    admin; the password is in {pw_file}\n"
        f"  stop:     Ctrl-C",
        flush=True,
    )
    # Own process group, so that stopping reaches every child (killing only the parent leaves them).
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env, start_new_session=True)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        print("\nStopping Airflow ...", flush=True)
        return _stop_group(proc)


def _stop_group(proc: subprocess.Popen, timeout: float = 30) -> int:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return proc.wait()
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return proc.wait()
