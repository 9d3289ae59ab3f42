"""What the DAG's tasks call around their work, and the tasks' failure callback; importing it does
**not** import Airflow (each function imports what it needs of Airflow when it runs, in a task).

- :func:`setting_errors_fail_fast`, :func:`writing_stage` - a wrong setting, or another run's lock,
  fails the task at once with one sentence and no retry; a writing task works under its run's lock.
- :func:`take_run_lock` / :func:`release_run_lock` - the DAG's setup and teardown tasks.
- :func:`resolved_run_date` - D as ``resolve_run_date`` worked it out, for a task that needs it and
  does not get it as an argument (computed once per task; see docs/decisions/0091).
- :func:`on_task_failure` - records a failed attempt in the warehouse's ``pipeline_run``.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager

from ecredit.airflow.env import RESOLVE_TASK_ID
from ecredit.core import feeds
from ecredit.core import settings as settings_mod

log = logging.getLogger(__name__)


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
    except Exception:  # noqa: BLE001, S110 - a wrong setting is reported by the task itself
        pass


def take_run_lock(context) -> None:
    """The DAG's setup task ``take_lock``: the run's lock on its lake, once the gates are done and
    before ``ingest`` (``pipeline.take_lock``). Another run's lock, held longer than
    ``CREDIT_LOCK_TIMEOUT``, fails the task without a retry with one sentence naming that run."""
    from airflow.sdk.exceptions import AirflowFailException

    from ecredit import pipeline
    from ecredit.core import runlock

    run_date = resolved_run_date(context)
    if not run_date:
        raise AirflowFailException(f"No run date: the task {RESOLVE_TASK_ID} did not succeed; no lock is taken.")
    with setting_errors_fail_fast():
        try:
            pipeline.take_lock(run_date, str(context["run_id"]))
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


def resolved_run_date(context) -> str | None:
    """D of the running DAG run as ``resolve_run_date`` worked it out (its XCom), else None. A task
    that needs D and does not get it as an argument calls this once."""
    got = context["ti"].xcom_pull(task_ids=RESOLVE_TASK_ID)
    return str(got["run_date"]) if isinstance(got, dict) and got.get("run_date") else None


def run_date_of(context) -> str | None:
    """D of the running DAG run for the failure callback: the resolve task's XCom, else the
    ``run_date`` param, else None. Never raises."""
    try:
        got = resolved_run_date(context)
        if got:
            return got
    except Exception:  # noqa: BLE001, S110 - best effort, used from the failure callback
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
        pipeline.record_failure(
            run_date_of(context),
            str(context.get("run_id") or getattr(ti, "run_id", "")),
            task_id,
            str(exc) if exc is not None else "failed",
        )
    except Exception:
        log.warning("Could not record the failure of this task in pipeline_run", exc_info=True)
