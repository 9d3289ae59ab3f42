"""The project's Spark operator: a plain class at module level (see docs/decisions/0091).

This module imports Airflow and the Spark provider: only the DAG file and the Airflow tasks import
it. Everything else of ``ecredit.airflow`` (``env``, ``callbacks``, ``runner``, ``ui``) stays
Airflow-free at import.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk.exceptions import AirflowFailException

from ecredit.airflow.callbacks import mask_settings_secrets
from ecredit.airflow.env import (
    RESOLVE_TASK_ID,
    RUN_DATE_TEMPLATE,
    SPARK_CONN_ID,
    job_path,
    spark_child_env,
    spark_conf,
    spark_conn_env_var,
    spark_connection_json,
)
from ecredit.core import settings as settings_mod

log = logging.getLogger(__name__)


class EcreditSparkSubmitOperator(SparkSubmitOperator):
    """``spark-submit <repo>/jobs/<job> --date <run date>`` against ``SPARK_MASTER``.

    :param job: file name under ``jobs/`` (or an absolute path to a PySpark application).
    :param run_date: the date passed as ``--date`` (templated); by default the ``run_date`` XCom of
        ``resolve_run_date``.
    :param extra_args: further application arguments after ``--date D``.
    :param run_lock: the job writes the lake: it runs under its DAG run's lock
        (``ecredit.core.runlock.holding``; the DAG's ``take_lock`` took it).

    At execute time (in the task process): the run date is read once from the rendered ``--date``
    argument (a missing one fails the task without retrying), the connection ``ecredit_spark`` is
    written into the environment from ``SPARK_MASTER`` (so the hook never defaults to yarn), the
    venv's ``spark-submit`` is put first on PATH, and the child gets SPARK_LOCAL_IP, PYSPARK_PYTHON,
    the project's settings and the repository on PYTHONPATH. A wrong setting fails the task without
    retrying.
    """

    ui_color = "#fce8b2"

    def __init__(
        self,
        *,
        job: str | os.PathLike,
        run_date: str = RUN_DATE_TEMPLATE,
        extra_args: list[str] | tuple[str, ...] = (),
        conn_id: str = SPARK_CONN_ID,
        name: str | None = None,
        run_lock: bool = False,
        **kwargs: Any,
    ) -> None:
        self.run_lock = run_lock
        app = job_path(job)
        kwargs.setdefault("application_args", ["--date", run_date, *extra_args])
        super().__init__(application=str(app), conn_id=conn_id, name=name or f"ecredit-{app.stem}", **kwargs)

    def _run_date(self) -> str | None:
        """The rendered ``--date`` argument, checked once: None when the application takes no
        ``--date``; a value that is not a date fails the task without retrying."""
        args = [str(a) for a in (self.application_args or [])]
        if "--date" not in args:
            return None
        i = args.index("--date")
        date = args[i + 1] if i + 1 < len(args) else ""
        try:
            dt.date.fromisoformat(date)
        except ValueError:
            raise AirflowFailException(
                f"No run date for {self.task_id} (got {date!r}): the task {RESOLVE_TASK_ID} did not succeed."
            ) from None
        return date

    def execute(self, context):
        run_date = self._run_date()  # once per task: the lock and the log use it
        try:
            s = settings_mod.load()
        except settings_mod.SettingError as e:
            raise AirflowFailException(str(e)) from None
        done = {"job": Path(str(self.application)).name, "run_date": run_date}
        if not self.run_lock:
            return self._submit(context, s, run_date, done)
        from ecredit.core import runlock

        try:
            with runlock.holding(s, str(context["run_id"]), run_date, self.task_id):
                return self._submit(context, s, run_date, done)
        except runlock.LockHeld as e:
            raise AirflowFailException(str(e)) from None

    def _submit(self, context, s, run_date: str | None, done: dict):
        os.environ[spark_conn_env_var(self._conn_id)] = spark_connection_json(s.spark_master)
        mask_settings_secrets(s)
        # Merge so our defaults never override what the DAG author passed (idempotent on retry).
        self.conf = {**spark_conf(), **self._jvm_conf(s, run_date), **(self.conf or {})}
        # Spark's classes mapped from the machine's class-data archive, or the archive written at
        # this job's exit (decision 118)
        from ecredit import spark as spark_mod

        archive_option, dump = spark_mod.class_archive(s.jvm_cache_dir)
        driver = "spark.driver.extraJavaOptions"
        self.conf[driver] = spark_mod.with_java_option(self.conf.get(driver, ""), archive_option)
        # The child's environment (the settings, secrets included) goes to the hook only, never
        # into the templated field env_vars: Airflow stores and shows rendered fields (a retry
        # in the same process re-renders the same object), and its masker does not know the
        # name CREDIT_PII_KEY.
        self._child_env = {**spark_child_env(s), **(self.env_vars or {})}
        self._hook = None  # built by super().execute through _get_hook below
        self.log.info("spark-submit %s --date %s on master %s", self.application, run_date or "-", s.spark_master)
        warm_imports()
        succeeded = False
        try:
            super().execute(context)
            succeeded = True
        finally:
            spark_mod.keep_class_archive(dump, succeeded)
        return done  # XCom: downstream joins check that the job succeeded

    @staticmethod
    def _jvm_conf(s, run_date: str | None) -> dict[str, str]:
        """The JVMs' options for the rows the job reads: every accepted delivery dated <= D (the
        manifests' counts; ``ecredit.spark.driver_java_options``), for the driver and, on a
        cluster, the application's executors."""
        if run_date is None:
            return {}
        from ecredit.ingest import gate
        from ecredit.spark import driver_java_options

        rows = sum(int(f["rows"]) for f in gate.accepted_files(s, dt.date.fromisoformat(run_date)))
        java = driver_java_options(rows)
        return {"spark.driver.extraJavaOptions": java, "spark.executor.extraJavaOptions": java}

    def _get_hook(self):
        author_env = self.env_vars
        self.env_vars = getattr(self, "_child_env", None) or author_env
        try:
            return super()._get_hook()
        finally:
            self.env_vars = author_env


# What the tasks after the Spark job import that nothing before it did: Great Expectations (Data
# Docs) alone is 2.5-4 s of imports.
LATER_TASKS_IMPORT = ("ecredit.quality.expectations",)


def warm_imports() -> threading.Thread | None:
    """In a process that runs every task of its DAG run (``ecredit run``: ``runlock``'s in-process
    runner), import what the later tasks need in a thread while this one waits for spark-submit,
    instead of on the critical path after it. Under a scheduler each task is a process of its own
    and nothing is started. Returns the thread, if one was started."""
    from ecredit.core import runlock

    missing = [m for m in LATER_TASKS_IMPORT if m not in sys.modules]
    if not missing or not runlock.runs_every_task():
        return None

    def load():
        for name in missing:
            try:
                importlib.import_module(name)
            except Exception:  # the task that needs it imports it again and fails there, named
                log.debug("warming %s failed", name, exc_info=True)

    thread = threading.Thread(target=load, name="warm-imports", daemon=True)
    thread.start()
    return thread


__all__ = ["EcreditSparkSubmitOperator"]
