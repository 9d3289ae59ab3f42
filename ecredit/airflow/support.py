"""Airflow glue: the project's Airflow environment, the Spark operator, and the in-process runner.

Importing this module does **not** import Airflow. Airflow reads ``AIRFLOW_HOME`` and the rest of its
configuration once, when ``airflow`` is first imported, so a process that runs the DAG calls
:func:`prepare_airflow_env` first and only then touches Airflow (the runner functions below do it
themselves). If Airflow was already imported with another configuration, :func:`prepare_airflow_env`
re-points the metadata DB and the DAGs folder of the running process at the new values (what tests
need), with a warning.

- :func:`prepare_airflow_env` - AIRFLOW_HOME (default ``<repo>/.airflow``), the DAGs folder, a SQLite
  metadata DB, quiet logging; migrates the DB once (a marker file makes later calls instant).
- :class:`EcreditSparkSubmitOperator` - the Spark provider's ``SparkSubmitOperator`` for a job under
  ``jobs/``, against ``SPARK_MASTER``; created on first access (module ``__getattr__``) so that importing
  this module stays Airflow-free.
- :func:`run_dag_for_date` / :func:`backfill` - run the DAG in this process through Airflow's own test
  runner (``DAG.test``); task logs go to the console.
- :func:`start_ui` - ``airflow standalone`` with the project's environment, in the foreground.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecredit.core import feeds
from ecredit.core import settings as settings_mod

if TYPE_CHECKING:  # pragma: no cover
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator as _SparkOp

    EcreditSparkSubmitOperator = _SparkOp

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
RUN_DATE_TEMPLATE = (
    "{{ (ti.xcom_pull(task_ids='" + RESOLVE_TASK_ID + "') or {}).get('run_date') or '' }}"
)

# Airflow internals that are chatty at INFO in a by-hand run (including the task runner's own "task"
# logger: ::group:: markers, "Pushing xcom ..."); the "[DAG TEST] starting task ..." lines, our own
# modules' logs, print() output and the spark-submit output stay. Errors always show. Only for the
# in-process runner: `start_ui` drops it so the UI's task logs keep Airflow's usual shape.
_QUIET_NAMESPACES = (
    "alembic=WARNING airflow.dag_processing=WARNING airflow.serialization=WARNING "
    "airflow.models=WARNING airflow.api_fastapi=WARNING airflow.utils.db=WARNING "
    "airflow.task.operators=WARNING task=WARNING httpx=WARNING"
)
_MIGRATED_MARKER = ".ecredit-db-migrated"


# --------------------------------------------------------------------------------------------------
# Environment


def prepare_airflow_env(airflow_home: str | os.PathLike | None = None, *,
                        dags_folder: str | os.PathLike | None = None,
                        migrate: bool = True) -> Path:
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
    home = Path(airflow_home if explicit else env.get("AIRFLOW_HOME") or PROJECT_ROOT / ".airflow")
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)

    def put(name: str, value: str, *, force: bool = False) -> None:
        if force or not env.get(name):
            env[name] = value

    put("AIRFLOW_HOME", str(home), force=explicit)
    put("AIRFLOW__CORE__DAGS_FOLDER", str(Path(dags_folder or DAGS_FOLDER).resolve()),
        force=dags_folder is not None)
    put("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    put("AIRFLOW__CORE__PARALLELISM", "4")
    put("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}", force=explicit)
    put("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(home / "logs"), force=explicit)
    put("AIRFLOW__LOGGING__NAMESPACE_LEVELS", _QUIET_NAMESPACES)
    # The UI's admin password file (standalone writes it); explicit so it follows AIRFLOW_HOME.
    put("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
        str(home / "simple_auth_manager_passwords.json.generated"), force=explicit)
    _prepend_path_var("PYTHONPATH", str(PROJECT_ROOT))

    if "airflow.settings" in sys.modules:
        _reconfigure_loaded_airflow()
    if migrate:
        migrate_db()
    return home


def _prepend_path_var(name: str, entry: str, env: dict | None = None) -> str:
    env = os.environ if env is None else env
    parts = [p for p in (env.get(name) or "").split(os.pathsep) if p]
    if entry not in parts:
        parts.insert(0, entry)
    env[name] = os.pathsep.join(parts)
    return env[name]


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
    sqlite_file = conn[len("sqlite:///"):] if conn.startswith("sqlite:///") else None

    from importlib.metadata import version

    stamp = json.dumps({"airflow": version("apache-airflow-core"), "db": conn})

    def done() -> bool:
        return (not force and marker.is_file() and marker.read_text() == stamp
                and (sqlite_file is None or Path(sqlite_file).is_file()))

    if done():
        return
    import fcntl

    # one process at a time: two `ecredit run` started together on a fresh AIRFLOW_HOME would both
    # create the tables, and the second fail ("table ... already exists")
    fd = os.open(home / (_MIGRATED_MARKER + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
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
    finally:
        os.close(fd)


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
    env.update({
        "PATH": _prepend_path_var("PATH", str(bin_dir), dict(os.environ)),
        "SPARK_HOME": os.environ.get("SPARK_HOME") or _spark_home(),
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP") or "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYTHONPATH": _prepend_path_var("PYTHONPATH", str(PROJECT_ROOT), dict(os.environ)),
    })
    env.update(extra or {})
    return env


def _spark_home() -> str:
    from pyspark.find_spark_home import _find_spark_home

    return str(_find_spark_home())


def job_path(job: str | os.PathLike) -> Path:
    """``ingest.py`` -> ``<repo>/jobs/ingest.py``; an absolute path is kept."""
    p = Path(job)
    return p if p.is_absolute() else JOBS_FOLDER / p


_operator_cls = None


def _build_operator_class():
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from airflow.sdk.exceptions import AirflowFailException

    class EcreditSparkSubmitOperator(SparkSubmitOperator):
        """``spark-submit <repo>/jobs/<job> --date <run date>`` against ``SPARK_MASTER``.

        :param job: file name under ``jobs/`` (or an absolute path to a PySpark application).
        :param run_date: the date passed as ``--date`` (templated); by default the ``run_date`` XCom of
            ``resolve_run_date``.
        :param extra_args: further application arguments after ``--date D``.
        :param run_lock: the job writes the lake: it runs under its DAG run's lock
            (``ecredit.core.runlock.holding``; the DAG's ``take_lock`` took it).

        At execute time (in the task process): the connection ``ecredit_spark`` is written into the
        environment from ``SPARK_MASTER`` (so the hook never defaults to yarn), the venv's
        ``spark-submit`` is put first on PATH, and the child gets SPARK_LOCAL_IP, PYSPARK_PYTHON, the
        project's settings and the repository on PYTHONPATH. A missing run date or a wrong setting fails
        the task without retrying.
        """

        ui_color = "#fce8b2"

        def __init__(self, *, job: str | os.PathLike, run_date: str = RUN_DATE_TEMPLATE,
                     extra_args: list[str] | tuple[str, ...] = (), conn_id: str = SPARK_CONN_ID,
                     name: str | None = None, skip_when: Any = None, run_lock: bool = False,
                     **kwargs: Any) -> None:
            self.skip_when = skip_when  # callable(run_date) -> True when the job has nothing to do
            self.run_lock = run_lock
            app = job_path(job)
            kwargs.setdefault("application_args", ["--date", run_date, *extra_args])
            super().__init__(application=str(app), conn_id=conn_id,
                             name=name or f"ecredit-{app.stem}", **kwargs)

        def execute(self, context):
            args = [str(a) for a in (self.application_args or [])]
            if "--date" in args:
                i = args.index("--date")
                date = args[i + 1] if i + 1 < len(args) else ""
                try:
                    dt.date.fromisoformat(date)
                except ValueError:
                    raise AirflowFailException(
                        f"No run date for {self.task_id} (got {date!r}): "
                        f"the task {RESOLVE_TASK_ID} did not succeed.") from None
            try:
                s = settings_mod.load()
            except settings_mod.SettingError as e:
                raise AirflowFailException(str(e)) from None
            done = {"job": Path(str(self.application)).name, "run_date": args[args.index("--date") + 1] if "--date" in args else None}
            if not self.run_lock:
                return self._submit(context, s, args, done)
            from ecredit.core import runlock

            try:
                with runlock.holding(s, str(context["run_id"]), done["run_date"], self.task_id):
                    return self._submit(context, s, args, done)
            except runlock.LockHeld as e:
                raise AirflowFailException(str(e)) from None

        def _submit(self, context, s, args, done):
            if self.skip_when is not None and "--date" in args and self.skip_when(args[args.index("--date") + 1]):
                self.log.info("%s: nothing to do for this date; no Spark application started", self.task_id)
                return {**done, "skipped": True}
            os.environ[spark_conn_env_var(self._conn_id)] = spark_connection_json(s.spark_master)
            mask_settings_secrets(s)
            # Merge so our defaults never override what the DAG author passed (idempotent on retry).
            self.conf = {**spark_conf(), **(self.conf or {})}
            # The child's environment (the settings, secrets included) goes to the hook only, never
            # into the templated field env_vars: Airflow stores and shows rendered fields (a retry
            # in the same process re-renders the same object), and its masker does not know the
            # name CREDIT_PII_KEY.
            self._child_env = {**spark_child_env(s), **(self.env_vars or {})}
            self._hook = None  # built by super().execute through _get_hook below
            self.log.info("spark-submit %s --date %s on master %s", self.application,
                          args[args.index("--date") + 1] if "--date" in args else "-", s.spark_master)
            super().execute(context)
            return {**done, "skipped": False}  # XCom: downstream joins check that the job succeeded

        def _get_hook(self):
            author_env = self.env_vars
            self.env_vars = getattr(self, "_child_env", None) or author_env
            try:
                return super()._get_hook()
            finally:
                self.env_vars = author_env

    EcreditSparkSubmitOperator.__module__ = __name__
    EcreditSparkSubmitOperator.__qualname__ = "EcreditSparkSubmitOperator"
    return EcreditSparkSubmitOperator


def __getattr__(name: str):
    # PEP 562: build the operator class on first use so that importing this module stays Airflow-free.
    global _operator_cls
    if name == "EcreditSparkSubmitOperator":
        if _operator_cls is None:
            _operator_cls = _build_operator_class()
        globals()[name] = _operator_cls
        return _operator_cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------------------
# Helpers the DAG file calls (kept here so the DAG file is wiring only)


def mask_settings_secrets(s: settings_mod.Settings | None = None) -> None:
    """Register ``CREDIT_PII_KEY``, ``CREDIT_DRAW_SECRET`` and the warehouse URL's password, if any,
    with Airflow's secrets masker (task process and supervisor): a value that reaches a log line or
    a rendered field shows as ``***``.
    The masker masks by field *name* only for names like ``secret`` or ``password``, and
    ``CREDIT_PII_KEY`` is not one of them."""
    try:
        if s is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = settings_mod.load()
        from airflow.sdk.log import mask_secret
        from sqlalchemy.engine import make_url

        for value in (s.pii_key, s.draw_secret, make_url(s.warehouse_url).password):
            if value:
                mask_secret(str(value))
    except Exception:  # noqa: BLE001 - a wrong setting is reported by the task itself
        pass


def take_run_lock(context) -> None:
    """The DAG's setup task ``take_lock``: the run's lock on its lake, once the gates are done and
    before ``ingest`` (``pipeline.take_lock``). Another run's lock, held longer than
    ``CREDIT_LOCK_TIMEOUT``, fails the task without a retry with one sentence naming that run."""
    from airflow.sdk.exceptions import AirflowFailException

    from ecredit import pipeline
    from ecredit.core import runlock

    got = context["ti"].xcom_pull(task_ids=RESOLVE_TASK_ID)
    run_date = got.get("run_date") if isinstance(got, dict) else None
    if not run_date:
        raise AirflowFailException(f"No run date: the task {RESOLVE_TASK_ID} did not succeed; no lock is taken.")
    with setting_errors_fail_fast():
        try:
            pipeline.take_lock(str(run_date), str(context["run_id"]))
        except runlock.LockHeld as e:
            raise AirflowFailException(str(e)) from None


def release_run_lock(context) -> bool:
    """The DAG's teardown task ``release_lock``: gives the run's lock back once every task of the
    run is done (it runs whatever their outcome, when ``take_lock`` succeeded)."""
    from ecredit import pipeline

    with setting_errors_fail_fast():
        return pipeline.release_lock(str(context["run_id"]))


@contextmanager
def writing_stage(context, run_date: str | None):
    """A task that writes the lake, the warehouse or the outbox: ``setting_errors_fail_fast``, and
    the work runs under its DAG run's lock (``ecredit.core.runlock.holding``); a lock held by another
    run fails the task at once, without a retry, with the sentence naming that run."""
    from ecredit import pipeline
    from ecredit.core import runlock

    ti = context.get("ti")
    with setting_errors_fail_fast():
        try:
            with pipeline.holding_lock(run_date, str(context["run_id"]), getattr(ti, "task_id", None) or "?"):
                yield
        except runlock.LockHeld as e:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(e)) from None


@contextmanager
def setting_errors_fail_fast():
    """A ``SettingError`` inside becomes ``AirflowFailException``: the task fails with the setting's
    one-sentence message and is not retried (a wrong setting does not fix itself in 30 s). The
    settings' secrets are registered with the secrets masker first."""
    mask_settings_secrets()
    try:
        yield
    except settings_mod.SettingError as e:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(e)) from None


def run_date_of(context) -> str | None:
    """D of the running DAG run: the resolve task's XCom, else the ``run_date`` param, else None."""
    try:
        got = context["ti"].xcom_pull(task_ids=RESOLVE_TASK_ID)
        if isinstance(got, dict) and got.get("run_date"):
            return str(got["run_date"])
    except Exception:  # noqa: BLE001 - best effort, used from the failure callback
        pass
    params = context.get("params") or {}
    return params.get("run_date") or None


def on_task_failure(context) -> None:
    """Task ``on_failure_callback``: record the failed attempt in the warehouse's ``pipeline_run``.
    Never raises: a callback failure must not hide the task's own error."""
    try:
        from ecredit import pipeline

        ti = context.get("ti")
        task_id = getattr(ti, "task_id", None) or "?"
        if task_id.split(".", 1)[0] in feeds.DEPARTMENTS or task_id == "validate":
            # a department's trouble marks the department (feed_status, dq_result) and never fails
            # the run: it is not a failed attempt of the run
            log.warning("%s failed: the department is marked, the run goes on", task_id)
            return
        exc = context.get("exception")
        pipeline.record_failure(run_date_of(context), str(context.get("run_id") or getattr(ti, "run_id", "")),
                                task_id, str(exc) if exc is not None else "failed")
    except Exception:  # noqa: BLE001
        log.warning("Could not record the failure of this task in pipeline_run", exc_info=True)


# --------------------------------------------------------------------------------------------------
# Running the DAG in-process


def run_dag(run_date: str | None, dag_id: str = DAG_ID, dags_folder: str | os.PathLike | None = None,
            *, logical_date: dt.datetime | None = None):
    """Run ``dag_id`` once through ``DAG.test()`` in this process; return the finished ``DagRun``.

    ``run_date`` (YYYY-MM-DD) goes in as ``conf = {"run_date": D}``. Every call parses the DAG folder
    afresh (``DAG.test`` renders templates into the very task objects it runs, so a DAG object must
    not be reused) and creates a new run with run id ``manual__<now>`` and logical date = now.
    ``DAG.test`` *deletes* an earlier run with the same logical date, so the date travels in the conf
    and the logical date stays unique. ``run_date=None`` with an explicit aware ``logical_date``
    simulates a scheduled run (D = the day before ``logical_date`` in Asia/Shanghai); such a run
    replaces any earlier run at that logical date. The folder is synchronised as the ``dags-folder``
    bundle, which ``DAG.test`` in Airflow 3 needs (it looks the DAG version up in the metadata DB).
    """
    if run_date is not None:
        dt.date.fromisoformat(run_date)  # ValueError for a malformed date, before Airflow starts
    elif logical_date is None:
        raise ValueError("run_dag needs a run_date, or a logical_date to simulate a scheduled run.")
    folder = Path(dags_folder or os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or DAGS_FOLDER).resolve()
    prepare_airflow_env()

    with _dags_folder(folder), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
        warnings.filterwarnings("ignore", message=".*airflow.utils.operator_helpers.*")
        from airflow.dag_processing.dagbag import DagBag
        from airflow.sdk import timezone

        bag = DagBag(dag_folder=str(folder), bundle_path=folder, bundle_name="dags-folder")
        if bag.import_errors:
            for path, err in bag.import_errors.items():
                print(f"DAG import error in {path}:\n{err}", file=sys.stderr)
        dag = bag.dags.get(dag_id)
        if dag is None:
            raise RuntimeError(f"DAG {dag_id!r} not found in {folder} (see import errors above, if any).")
        now = timezone.utcnow()
        when = logical_date or now
        conf = {"run_date": run_date} if run_date is not None else None
        print(f"== {dag_id}: run_date={run_date or '(scheduled)'} (logical date {when.isoformat()})", flush=True)
        started = time.monotonic()
        from ecredit.core import runlock

        with runlock.in_process_runner():  # a run lock this process leaves between tasks names it
            dr = dag.test(logical_date=when, run_after=now, run_conf=conf)
    _print_summary(dr, time.monotonic() - started)
    return dr


def run_dag_for_date(run_date: str, dag_id: str = DAG_ID, dags_folder: str | os.PathLike | None = None) -> bool:
    """Run the DAG for date ``run_date`` (YYYY-MM-DD) in this process; True only if the run succeeded."""
    dr = run_dag(run_date, dag_id=dag_id, dags_folder=dags_folder)  # prepares the env before importing Airflow
    from airflow.utils.state import DagRunState

    return dr is not None and dr.state == DagRunState.SUCCESS


def backfill(from_date: str | dt.date, to_date: str | dt.date, dag_id: str = DAG_ID,
             dags_folder: str | os.PathLike | None = None) -> bool:
    """Run every date from ``from_date`` to ``to_date`` inclusive, in order; stop at the first failed
    date. Returns True when all dates succeeded."""
    d1 = from_date if isinstance(from_date, dt.date) else dt.date.fromisoformat(from_date)
    d2 = to_date if isinstance(to_date, dt.date) else dt.date.fromisoformat(to_date)
    if d2 < d1:
        raise ValueError(f"backfill: --to {d2} is before --from {d1}.")
    d = d1
    while d <= d2:
        if not run_dag_for_date(d.isoformat(), dag_id=dag_id, dags_folder=dags_folder):
            print(f"== backfill stopped: {d} failed; later dates were not run.", file=sys.stderr, flush=True)
            return False
        d += dt.timedelta(days=1)
    return True


@contextmanager
def _dags_folder(folder: Path):
    """Make the running Airflow use ``folder`` as its DAGs folder (the ``dags-folder`` bundle that
    ``DAG.test`` syncs), restoring the previous folder afterwards."""
    from airflow import settings as af_settings

    before_env = os.environ.get("AIRFLOW__CORE__DAGS_FOLDER")
    before = af_settings.DAGS_FOLDER
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(folder)
    af_settings.DAGS_FOLDER = str(folder)
    try:
        yield
    finally:
        af_settings.DAGS_FOLDER = before
        if before_env is None:
            os.environ.pop("AIRFLOW__CORE__DAGS_FOLDER", None)
        else:
            os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = before_env


def _print_summary(dr, seconds: float) -> None:
    try:
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState

        ok = (TaskInstanceState.SUCCESS, TaskInstanceState.SKIPPED)
        with create_session() as session:
            tis = dr.get_task_instances(session=session)
            bad = sorted(f"{ti.task_id}={getattr(ti.state, 'value', ti.state)}" for ti in tis
                         if ti.state not in ok)
        print(f"== {dr.dag_id} {dr.run_id}: {dr.state} in {seconds:.1f} s"
              + (f"; not successful: {', '.join(bad)}" if bad else ""), flush=True)
    except Exception:  # noqa: BLE001 - a summary must never turn a result into an error
        print(f"== {dr.dag_id} {dr.run_id}: {dr.state} in {seconds:.1f} s", flush=True)


# --------------------------------------------------------------------------------------------------
# UI


def start_ui(port: int = 8080) -> int:
    """Run ``airflow standalone`` (API server + UI, scheduler, DAG processor, triggerer) with the
    project's environment, in the foreground until Ctrl-C. Returns its exit code."""
    home = prepare_airflow_env(migrate=False)  # standalone migrates itself
    env = dict(os.environ)
    env["AIRFLOW__API__PORT"] = str(port)
    if env.get("AIRFLOW__LOGGING__NAMESPACE_LEVELS") == _QUIET_NAMESPACES:
        del env["AIRFLOW__LOGGING__NAMESPACE_LEVELS"]
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")  # this machine only, unless the user says otherwise
    # the task runners reach the API server's execution API at the port actually used
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                   f"http://{env['AIRFLOW__API__HOST']}:{port}/execution/")
    env["PATH"] = _prepend_path_var("PATH", str(Path(sys.executable).parent), dict(env))
    url = f"http://127.0.0.1:{port}"
    pw_file = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    print(f"Starting Airflow (standalone) with AIRFLOW_HOME={home}\n"
          f"  DAGs:     {env['AIRFLOW__CORE__DAGS_FOLDER']}\n"
          f"  UI:       {url}  (ready after about 20 s)\n"
          f"  login:    admin; the password is in {pw_file}\n"
          f"  stop:     Ctrl-C", flush=True)
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


__all__ = [
    "DAG_ID", "SPARK_CONN_ID", "RUN_DATE_TEMPLATE", "EcreditSparkSubmitOperator", "prepare_airflow_env",
    "migrate_db", "run_dag", "run_dag_for_date", "backfill", "start_ui", "spark_master",
    "spark_connection_json", "spark_conf", "spark_child_env", "job_path", "on_task_failure",
    "setting_errors_fail_fast", "writing_stage", "take_run_lock", "release_run_lock", "run_date_of",
]
