"""The project's Airflow environment and the Spark job environment; importing it does **not** import Airflow.

Airflow reads ``AIRFLOW_HOME`` and the rest of its configuration once, when ``airflow`` is first
imported, so a process that runs the DAG calls :func:`prepare_airflow_env` first and only then touches
Airflow (the runner does it itself). If Airflow was already imported with another configuration,
:func:`prepare_airflow_env` re-points the metadata DB and the DAGs folder of the running process at the
new values (what tests need), with a warning.

- :func:`prepare_airflow_env` - AIRFLOW_HOME (default ``<repo>/.airflow``), the DAGs folder, a SQLite
  metadata DB, quiet logging; migrates the DB once (a marker file makes later calls instant).
- :func:`spark_conf`, :func:`spark_child_env`, :func:`spark_connection_json`, :func:`job_path` - what
  the Spark operator (``ecredit.airflow.operators``) gives every ``spark-submit``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from collections.abc import MutableMapping
from pathlib import Path

from ecredit.core import settings as settings_mod
from ecredit.core.files import exclusive

log = logging.getLogger(__name__)

PROJECT_ROOT: Path = settings_mod.PROJECT_ROOT
DAGS_FOLDER: Path = PROJECT_ROOT / "dags"
JOBS_FOLDER: Path = PROJECT_ROOT / "jobs"
DAG_ID = "ecommerce_credit_daily"
RESOLVE_TASK_ID = "resolve_run_date"

#: The Spark connection the operator uses. It is (re)written into the task process's environment from
#: ``SPARK_MASTER`` before every submit, so it always exists and never falls back to the hook's "yarn".
SPARK_CONN_ID = "ecredit_spark"

#: The run date D, as the Spark jobs receive it: the ``run_date`` XCom of the ``resolve_run_date`` task.
#: Renders to "" when that task did not succeed (the operator then fails without retrying).
RUN_DATE_TEMPLATE = "{{ (ti.xcom_pull(task_ids='" + RESOLVE_TASK_ID + "') or {}).get('run_date') or '' }}"
# the DAG's ``full`` param as the Spark job's ``--full`` value: fold every delivery again
FULL_TEMPLATE = "{{ 'true' if params.get('full') else 'false' }}"

# Airflow internals that are chatty at INFO in a by-hand run (including the task runner's own "task"
# logger: ::group:: markers, "Pushing xcom ..."); the "[DAG TEST] starting task ..." lines, our own
# modules' logs, print() output and the spark-submit output stay (in the run's log file, see
# ecredit.airflow.runner). Errors always show. Only for the in-process runner: `start_ui` drops it so
# the UI's task logs keep Airflow's usual shape.
QUIET_NAMESPACES = (
    "alembic=WARNING airflow.dag_processing=WARNING airflow.serialization=WARNING "
    "airflow.models=WARNING airflow.api_fastapi=WARNING airflow.utils.db=WARNING "
    "airflow.task.operators=WARNING task=WARNING httpx=WARNING"
)
_MIGRATED_MARKER = ".ecredit-db-migrated"


def prepare_airflow_env(
    airflow_home: str | os.PathLike | None = None, *, dags_folder: str | os.PathLike | None = None, migrate: bool = True
) -> Path:
    """Set the project's Airflow configuration in ``os.environ`` and migrate the metadata DB once.

    Call it **before** anything imports ``airflow`` in this process (``ecredit.ops.cli`` does, first thing).
    Values the user already set in the environment win; explicit arguments win over both (tests pass a
    temporary ``airflow_home``). Sets ``AIRFLOW_HOME`` (default ``<repo>/.airflow``), the DAGs folder
    (default ``<repo>/dags``), no example DAGs, ``PARALLELISM=4`` (the 2-core machine), a SQLite metadata
    DB in ``AIRFLOW_HOME`` (unless ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` is set), quiet logging, and puts
    the repository root on ``PYTHONPATH`` so task processes can ``import ecredit``.

    With ``migrate`` the metadata DB is created/upgraded the first time (about 1 s) and a marker file
    in ``AIRFLOW_HOME`` makes later calls return at once. Returns ``AIRFLOW_HOME``.
    """
    env = os.environ
    explicit = airflow_home is not None
    home = (
        Path(airflow_home) if airflow_home is not None else Path(env.get("AIRFLOW_HOME") or PROJECT_ROOT / ".airflow")
    )
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)

    def put(name: str, value: str, *, force: bool = False) -> None:
        if force or not env.get(name):
            env[name] = value

    put("AIRFLOW_HOME", str(home), force=explicit)
    put("AIRFLOW__CORE__DAGS_FOLDER", str(Path(dags_folder or DAGS_FOLDER).resolve()), force=dags_folder is not None)
    put("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    put("AIRFLOW__CORE__PARALLELISM", "4")
    put("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}", force=explicit)
    put("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(home / "logs"), force=explicit)
    put("AIRFLOW__LOGGING__NAMESPACE_LEVELS", QUIET_NAMESPACES)
    # The UI's admin password file (standalone writes it); explicit so it follows AIRFLOW_HOME.
    put(
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
        str(home / "simple_auth_manager_passwords.json.generated"),
        force=explicit,
    )
    prepend_path_var("PYTHONPATH", str(PROJECT_ROOT))

    if "airflow.settings" in sys.modules:
        _reconfigure_loaded_airflow()
    if migrate:
        migrate_db()
    return home


def prepend_path_var(name: str, entry: str, env: MutableMapping[str, str] | None = None) -> str:
    target: MutableMapping[str, str] = os.environ if env is None else env
    parts = [p for p in (target.get(name) or "").split(os.pathsep) if p]
    if entry not in parts:
        parts.insert(0, entry)
    target[name] = os.pathsep.join(parts)
    return target[name]


def _reconfigure_loaded_airflow() -> None:
    """Airflow is already imported: point its ORM and DAGs folder at the current environment."""
    from airflow import settings as af_settings

    wanted_conn = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    wanted_dags = os.path.expanduser(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if af_settings.SQL_ALCHEMY_CONN == wanted_conn and af_settings.DAGS_FOLDER == wanted_dags:
        return
    log.warning("Airflow was imported before prepare_airflow_env(); re-pointing it at %s", wanted_conn)
    af_settings.configure_vars()  # SQL_ALCHEMY_CONN, DAGS_FOLDER from the (env-overridden) config
    af_settings.reconfigure_orm()


def migrate_db(force: bool = False) -> None:
    """Create or upgrade the Airflow metadata DB, once per AIRFLOW_HOME/DB URL and Airflow version."""
    home = Path(os.environ["AIRFLOW_HOME"])
    conn = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    marker = home / _MIGRATED_MARKER
    sqlite_file = conn[len("sqlite:///") :] if conn.startswith("sqlite:///") else None

    from importlib.metadata import version

    stamp = json.dumps({"airflow": version("apache-airflow-core"), "db": conn})

    def done() -> bool:
        return (
            not force
            and marker.is_file()
            and marker.read_text() == stamp
            and (sqlite_file is None or Path(sqlite_file).is_file())
        )

    if done():
        return
    # one process at a time: two `ecredit run` started together on a fresh AIRFLOW_HOME would both
    # create the tables, and the second fail ("table ... already exists")
    with exclusive(home / (_MIGRATED_MARKER + ".lock")):
        if done():  # the other process migrated it meanwhile
            return
        logging.disable(logging.INFO)  # alembic's chatter; errors still show
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from airflow.utils import db as af_db

                af_db.upgradedb()  # a fresh DB is created from the ORM (fast); an old one is migrated
        finally:
            logging.disable(logging.NOTSET)
        marker.write_text(stamp)


# --------------------------------------------------------------------------------------------------
# Spark


def spark_master(env: dict | None = None) -> str:
    """``SPARK_MASTER`` as the settings read it (``local[*]`` when unset)."""
    return settings_mod.load(env).spark_master


def spark_connection_json(master: str) -> str:
    """The Airflow connection (JSON form of ``AIRFLOW_CONN_...``) that makes the Spark provider's hook
    pass ``--master <master>``. With ``conn_type`` ``spark`` and no port, the hook (6.3.x) uses ``host``
    verbatim when it contains ``://`` or there is no port: ``local[*]``, ``local[2]``,
    ``spark://127.0.0.1:7077``, ``k8s://https://h:443`` and ``yarn`` all pass through unchanged.
    """
    return json.dumps({"conn_type": "spark", "host": master})


def spark_conn_env_var(conn_id: str = SPARK_CONN_ID) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def spark_bin_dir() -> Path:
    """Folder holding the ``spark-submit`` of this interpreter's pyspark (the venv's)."""
    venv_bin = Path(sys.executable).parent  # not resolved: a venv's python is a symlink
    if (venv_bin / "spark-submit").is_file():
        return venv_bin
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home()) / "bin"


def spark_conf(extra: dict | None = None) -> dict[str, str]:
    """``--conf`` values every job gets: the driver at ``SPARK_LOCAL_IP`` (loopback by default: the
    host name resolves oddly here; on a cluster, the address the executors reach), the venv's
    interpreter for driver and executors, the repo on the executors' PYTHONPATH."""
    from ecredit.spark import driver_host

    conf = {
        "spark.driver.host": driver_host(),
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.executorEnv.PYTHONPATH": str(PROJECT_ROOT),
        "spark.ui.showConsoleProgress": "false",
        "spark.log.level": "WARN",  # Spark's INFO chatter would bury the job's own output
    }
    conf.update(extra or {})
    return conf


def spark_child_env(settings: settings_mod.Settings | None = None, extra: dict | None = None) -> dict[str, str]:
    """Environment additions for the spark-submit process (the hook merges them into os.environ)."""
    bin_dir = spark_bin_dir()
    env: dict[str, str] = {}
    if settings is not None:
        env.update(settings.as_env())
    env.update(
        {
            "PATH": prepend_path_var("PATH", str(bin_dir), dict(os.environ)),
            "SPARK_HOME": os.environ.get("SPARK_HOME") or _spark_home(),
            "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP") or "127.0.0.1",
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "PYTHONPATH": prepend_path_var("PYTHONPATH", str(PROJECT_ROOT), dict(os.environ)),
        }
    )
    env.update(extra or {})
    return env


def _spark_home() -> str:
    from pyspark.find_spark_home import _find_spark_home

    return str(_find_spark_home())


def job_path(job: str | os.PathLike) -> Path:
    """``ingest.py`` -> ``<repo>/jobs/ingest.py``; an absolute path is kept."""
    p = Path(job)
    return p if p.is_absolute() else JOBS_FOLDER / p
