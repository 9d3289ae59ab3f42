"""The in-process runner of ``ecredit run``, ``ecredit backfill`` and ``ecredit demo``, and their quiet
console; importing it does **not** import Airflow.

- :func:`run_dag` / :func:`run_dag_for_date` / :func:`backfill` - run the DAG in this process through
  Airflow's own test runner (``DAG.test``). Each run ends with one line per task (name, state,
  seconds) and the run's summary line on the console; a backfill adds a progress bar.
- :func:`output_to_log_file` - everything else the process writes (Airflow's, Spark's and Great
  Expectations' logs, the task logs, the spark-submit output, ``print()``) goes to a log file, at the
  level of the file descriptors 1 and 2, so child processes are caught too; the short lines go to
  the real console (docs/decisions/0092).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ecredit.airflow.env import DAG_ID, DAGS_FOLDER, PROJECT_ROOT, prepare_airflow_env

# --------------------------------------------------------------------------------------------------
# The console


class Console:
    """Where the short lines go: one per task, a run's summary, progress bars. ``stream`` None means
    ``sys.stdout`` as it is when a line is written."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def line(self, text: str = "") -> None:
        print(text, file=self.stream or sys.stdout, flush=True)

    def bar(self, done: int, total: int, what: str) -> None:
        self.line(progress_bar(done, total, what))


def progress_bar(done: int, total: int, what: str = "dates", width: int = 10) -> str:
    """``[###.......] 1/3 dates``: plain text, one line per step (a log or a pipe shows it as is)."""
    filled = width if total <= 0 else min(width, round(width * done / total))
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}"


class GenerationProgress:
    """``progress`` callback for ``ecredit.generate.generate``: every message goes to ``sys.stderr``
    (the log file, inside :func:`output_to_log_file`); the console gets a bar line each time a
    date's files are written (the generator writes them date by date, in order)."""

    def __init__(self, console: Console, dates: Iterable[dt.date | str]) -> None:
        self.console = console
        self.dates = [str(d) for d in dates]
        self.done: set[str] = set()

    def __call__(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)
        parts = message.split()
        # "generate: <dept> <date> <file> <rows> rows", once per file after its date was generated
        if len(parts) >= 3 and parts[2] in self.dates and parts[2] not in self.done:
            self.done.add(parts[2])
            self.console.bar(len(self.done), len(self.dates), "dates generated")


def log_file_path(command: str, now: dt.datetime | None = None) -> Path:
    """``$AIRFLOW_HOME/logs/console/ecredit-<command>-<UTC time>.log`` (beside the task logs, where
    ``ecredit scan-pii`` searches)."""
    home = Path(os.environ.get("AIRFLOW_HOME") or PROJECT_ROOT / ".airflow").expanduser()
    logs = Path(os.environ.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER") or home / "logs").expanduser()
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    return logs / "console" / f"ecredit-{command}-{stamp}.log"


@contextmanager
def output_to_log_file(path: str | os.PathLike) -> Iterator[Console]:
    """Send everything written to the file descriptors 1 and 2 (Airflow's task logs, logging handlers
    on the standard streams, child processes) and to ``sys.stdout``/``sys.stderr`` to ``path``,
    appended; yield a :class:`Console` that writes to the real console. Restored on exit.

    The console is a duplicate of the file descriptor 1 as it was, or, when ``sys.stdout`` is not
    that descriptor (a test capturing it), that ``sys.stdout`` object."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    old_streams = (sys.stdout, sys.stderr)
    for s in old_streams:
        try:
            s.flush()
        except Exception:  # noqa: BLE001, S110 - a closed or odd stream
            pass
    try:
        on_fd1 = sys.stdout.fileno() == 1
    except Exception:  # noqa: BLE001 - io.UnsupportedOperation for a capturing object
        on_fd1 = False
    saved = (os.dup(1), os.dup(2))
    console_stream = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace") if on_fd1 else None
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    log_text = open(log_fd, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        sys.stdout = sys.stderr = log_text
        yield Console(console_stream or old_streams[0])
    finally:
        for s in (sys.stdout, sys.stderr, *old_streams):
            try:
                s.flush()
            except Exception:  # noqa: BLE001, S110 - a closed or odd stream
                pass
        sys.stdout, sys.stderr = old_streams
        log_text.close()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log_fd):
            os.close(fd)
        if console_stream is not None:
            console_stream.close()


# --------------------------------------------------------------------------------------------------
# Running the DAG in-process


def run_dag(
    run_date: str | None,
    dag_id: str = DAG_ID,
    dags_folder: str | os.PathLike | None = None,
    *,
    logical_date: dt.datetime | None = None,
    console: Console | None = None,
    full: bool = False,
):
    """Run ``dag_id`` once through ``DAG.test()`` in this process; return the finished ``DagRun``.

    ``run_date`` (YYYY-MM-DD) goes in as ``conf = {"run_date": D}`` (and ``"full": true`` with
    ``full``: the state is folded from every delivery, not from the last checkpoint). Every call parses the DAG folder
    afresh (``DAG.test`` renders templates into the very task objects it runs, so a DAG object must
    not be reused) and creates a new run with run id ``manual__<now>`` and logical date = now.
    ``DAG.test`` *deletes* an earlier run with the same logical date, so the date travels in the conf
    and the logical date stays unique. ``run_date=None`` with an explicit aware ``logical_date``
    simulates a scheduled run (D = the day before ``logical_date`` in Asia/Shanghai); such a run
    replaces any earlier run at that logical date. The folder is synchronised as the ``dags-folder``
    bundle, which ``DAG.test`` in Airflow 3 needs (it looks the DAG version up in the metadata DB).

    The run's header goes to ``sys.stdout`` (the log file, inside :func:`output_to_log_file`); one
    line per task and the summary go to ``console`` (default: ``sys.stdout``).
    """
    console = console or Console()
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
                last = (str(err).strip().splitlines() or [""])[-1]
                console.line(f"DAG import error in {path}: {last}")
        dag = bag.dags.get(dag_id)
        if dag is None:
            raise RuntimeError(f"DAG {dag_id!r} not found in {folder} (see import errors above, if any).")
        now = timezone.utcnow()
        when = logical_date or now
        conf: dict[str, str | bool] | None = {"run_date": run_date} if run_date is not None else None
        if full:
            conf = {**(conf or {}), "full": True}
        print(f"== {dag_id}: run_date={run_date or '(scheduled)'} (logical date {when.isoformat()})", flush=True)
        started = time.monotonic()
        from ecredit.core import runlock

        with runlock.in_process_runner():  # a run lock this process leaves between tasks names it
            dr = dag.test(logical_date=when, run_after=now, run_conf=conf)
    _print_tasks_and_summary(dr, time.monotonic() - started, console, run_date)
    return dr


def run_dag_for_date(
    run_date: str,
    dag_id: str = DAG_ID,
    dags_folder: str | os.PathLike | None = None,
    *,
    console: Console | None = None,
    full: bool = False,
) -> bool:
    """Run the DAG for date ``run_date`` (YYYY-MM-DD) in this process; True only if the run succeeded.
    ``full``: fold every applied delivery again (``ecredit run --date D --full``)."""
    # run_dag prepares the env before importing Airflow
    dr = run_dag(run_date, dag_id=dag_id, dags_folder=dags_folder, console=console, full=full)
    from airflow.utils.state import DagRunState

    return dr is not None and dr.state == DagRunState.SUCCESS


def backfill(
    from_date: str | dt.date,
    to_date: str | dt.date,
    dag_id: str = DAG_ID,
    dags_folder: str | os.PathLike | None = None,
    *,
    console: Console | None = None,
) -> bool:
    """Run every date from ``from_date`` to ``to_date`` inclusive, in order; stop at the first failed
    date. Returns True when all dates succeeded. A progress bar line follows each date."""
    console = console or Console()
    d1 = from_date if isinstance(from_date, dt.date) else dt.date.fromisoformat(from_date)
    d2 = to_date if isinstance(to_date, dt.date) else dt.date.fromisoformat(to_date)
    if d2 < d1:
        raise ValueError(f"backfill: --to {d2} is before --from {d1}.")
    total = (d2 - d1).days + 1
    for i in range(total):
        d = d1 + dt.timedelta(days=i)
        if not run_dag_for_date(d.isoformat(), dag_id=dag_id, dags_folder=dags_folder, console=console):
            print(f"== backfill stopped: {d} failed; later dates were not run.", file=sys.stderr, flush=True)
            console.line(f"backfill stopped: {d} failed; later dates were not run.")
            return False
        console.bar(i + 1, total, "dates")
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


def _state(value) -> str:
    return str(getattr(value, "value", value) or "none")


def task_lines(tis) -> list[str]:
    """One line per task instance, in the order they started (not started last): name (a mapped
    instance with its index name, ``validate[amr]``), state, seconds."""
    far = dt.datetime.max.replace(tzinfo=dt.UTC)

    def key(ti):
        start = ti.start_date or far
        return (start if start.tzinfo else start.replace(tzinfo=dt.UTC), ti.task_id, ti.map_index)

    rows = []
    for ti in sorted(tis, key=key):
        name = ti.task_id
        if ti.map_index is not None and ti.map_index >= 0:
            name += f"[{getattr(ti, 'rendered_map_index', None) or ti.map_index}]"
        rows.append((name, _state(ti.state), float(ti.duration or 0)))
    width = max((len(n) for n, _, _ in rows), default=0)
    return [f"  {n:<{width}}  {s:<15} {sec:7.1f} s" for n, s, sec in rows]


def _print_tasks_and_summary(dr, seconds: float, console: Console, run_date: str | None) -> None:
    console.line(f"{dr.dag_id} {run_date or '(scheduled)'}:")
    try:
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState

        ok = (TaskInstanceState.SUCCESS, TaskInstanceState.SKIPPED)
        with create_session() as session:
            tis = dr.get_task_instances(session=session)
            lines = task_lines(tis)
            bad = sorted(f"{ti.task_id}={_state(ti.state)}" for ti in tis if ti.state not in ok)
        for line in lines:
            console.line(line)
        console.line(
            f"== {dr.dag_id} {dr.run_id}: {dr.state} in {seconds:.1f} s"
            + (f"; not successful: {', '.join(bad)}" if bad else "")
        )
    except Exception:  # noqa: BLE001 - a summary must never turn a result into an error
        console.line(f"== {dr.dag_id} {dr.run_id}: {dr.state} in {seconds:.1f} s")


__all__ = [
    "Console",
    "GenerationProgress",
    "progress_bar",
    "log_file_path",
    "output_to_log_file",
    "run_dag",
    "run_dag_for_date",
    "backfill",
    "task_lines",
]
