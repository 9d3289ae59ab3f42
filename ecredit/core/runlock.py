"""One run at a time writes a lake and its warehouse.

Two DAG runs writing the same lake and warehouse together (``ecredit backfill`` by hand while the
scheduler's daily run works, or two ``ecredit run``) would interleave their parses, state builds
and publishes. Two locks keep them apart:

- **The run lock** (a lease on the lake, ``lake/runs/lock.json``) is owned by a DAG *run*, not by
  a process: the tasks of one run are separate processes under the scheduler (and spark-submit
  children of them). The DAG's setup task ``take_lock`` acquires it for its run id, waiting at most
  ``CREDIT_LOCK_TIMEOUT`` seconds for another run to finish, and then stops with one sentence naming
  the holder; every writing task of the run (``ingest``, ``build_state``, ``data_docs``,
  ``publish``, ``push``, ``report``) holds it while it works (:func:`holding`: its run id passes,
  another run's is refused at once) and keeps it alive with a heartbeat; the teardown task
  ``release_lock`` gives it back once every task of the run is done, whatever their outcome.
  A holder is dead, and its lease is taken over, when its last sign of life (taking the lease, a
  heartbeat every :data:`HEARTBEAT` seconds while one of its tasks runs, the end of a task) is
  older than :data:`LEASE_TTL`, or at once when every process it names is on this host and has
  ended (the in-process runner of ``ecredit run``, for the whole run; each writing task's own
  process while that task works). Between two tasks under the scheduler it names no process, and
  only the TTL applies.
  The lease is a small JSON file replaced atomically; the read-decide-write of every change is
  serialised by ``flock`` on ``lake/runs/lock`` (held for milliseconds, released by the kernel
  when its process dies), so there is no stale mutex either.
- **The warehouse lock** is held by the stage that writes the warehouse (publish's transaction):
  on PostgreSQL a transaction-level advisory lock (``pg_advisory_xact_lock``; PostgreSQL releases
  it with the transaction, or when the session dies), on the embedded default an ``flock`` on
  ``<warehouse file>.lock`` (released when the process dies). It keeps apart two runs that share
  the warehouse but not the lake, which the run lock does not see.

Gate results (``lake/gates``) need no lock: a gate result is a pure function of the delivery,
stored under its manifest's SHA-256 and written through a rename, so two runs checking the same
delivery write the same bytes.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ecredit.core import lake
from ecredit.core.files import exclusive, write_json_atomic
from ecredit.core.settings import Settings

log = logging.getLogger(__name__)

LEASE_TTL = 600.0  # seconds without a sign of life after which a holder is dead
HEARTBEAT = 30.0  # seconds between two signs of life while a task of the holder runs
POLL = 2.0  # seconds between two looks at a lock held by another run
PG_LOCK_KEY = 0x6563726564697431  # "ecredit1": the advisory lock of a warehouse's writing stage

_runner_pid: int | None = None  # the in-process runner (ecredit run) owns every task of its runs


class LockHeld(RuntimeError):
    """Another run holds a lock this run needs; the message is one sentence naming that run."""


@dataclass
class Holder:
    run_id: str
    run_date: str | None
    host: str  # where it last showed a sign of life
    since: str  # ISO UTC: when the run took the lock
    heartbeat: str  # ISO UTC: its last sign of life
    # the processes whose end is the holder's end: the in-process runner ("runner") for the whole
    # run, and each writing task at work, by task id: {"pid", "start" (/proc start time), "host"}
    processes: dict = field(default_factory=dict)

    @classmethod
    def of(cls, d: dict) -> Holder:
        h = cls(**{k: d.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]  # the lease file's JSON
        h.processes = dict(h.processes or {})
        return h


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]  # field 22 of proc(5)


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    if state in ("Z", "X"):  # a zombie has ended; only its exit status is left
        return False
    return start is None or _start_time(pid) in (None, start)  # else the pid was reused


def _process(pid: int) -> dict:
    return {"pid": pid, "start": _start_time(pid), "host": socket.gethostname()}


def dead_because(h: Holder, now: dt.datetime | None = None) -> str | None:
    """Why the holder is dead (its lease may be taken over), or None while it is alive: no sign of
    life for ``LEASE_TTL`` seconds, or every process it names is on this host and has ended."""
    now = now or _now()
    try:
        age = (now - dt.datetime.fromisoformat(h.heartbeat)).total_seconds()
    except (TypeError, ValueError):
        return "its lease is unreadable"
    if age > LEASE_TTL:
        return f"no sign of life for {age:.0f} s (more than {LEASE_TTL:.0f} s)"
    procs = list(h.processes.values())
    here = socket.gethostname()
    if procs and all(p.get("host") == here and not _alive(int(p["pid"]), p.get("start")) for p in procs):
        return f"its process {', '.join(dict.fromkeys(str(p['pid']) for p in procs))} on {here} has ended"
    return None


def describe(h: Holder) -> str:
    pids = ", ".join(dict.fromkeys(str(p["pid"]) for p in h.processes.values())) or "-"
    since = h.since.replace("+00:00", "Z")
    return f"run {h.run_id} (date {h.run_date or '-'}, pid {pids}, host {h.host}, since {since})"


# --------------------------------------------------------------------------------------------------
# The run lock: a lease on the lake


def lease_path(settings: Settings) -> Path:
    return lake.lease_file(settings)


@contextmanager
def _mutex(settings: Settings):
    """The lease's read-decide-write, one process at a time (flock: released if the process dies)."""
    with exclusive(lake.lease_mutex(settings)):
        yield


def holder(settings: Settings) -> Holder | None:
    """Who holds the run lock of the settings' lake (None: nobody)."""
    try:
        return Holder.of(json.loads(lease_path(settings).read_text("utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, AttributeError):
        # only a writer killed mid-write leaves this (it writes through a rename): nobody alive holds it
        log.warning("the run lock %s is unreadable; taken as free", lease_path(settings))
        return None


def _write(settings: Settings, h: Holder) -> None:
    write_json_atomic(lease_path(settings), asdict(h), pretty=True)


def _try_take(settings: Settings, run_id: str, run_date: str | None, task: str | None) -> Holder | None:
    """Take or renew the lease for ``run_id`` unless another live run holds it; returns that run's
    holder when it does, else None."""
    now = _now()
    with _mutex(settings):
        h = holder(settings)
        if h is not None and h.run_id != run_id:
            why = dead_because(h, now)
            if why is None:
                return h
            log.warning("the run lock of %s is taken over from %s: %s", settings.lake_dir, describe(h), why)
            h = None
        procs = dict(h.processes) if h else {}
        runner = _lasting_pid()
        if runner:
            procs["runner"] = _process(runner)
        if task:
            procs[task] = _process(os.getpid())
        _write(
            settings,
            Holder(
                run_id=run_id,
                run_date=run_date or (h.run_date if h else None),
                host=socket.gethostname(),
                since=h.since if h else _iso(now),
                heartbeat=_iso(now),
                processes=procs,
            ),
        )
    return None


def _lasting_pid() -> int | None:
    """The process whose end is the run's end between its tasks: the in-process runner's (under
    the scheduler, none: each task is a process of its own)."""
    return _runner_pid if _runner_pid == os.getpid() else None


def runs_every_task() -> bool:
    """True in a process that runs every task of its DAG runs (``in_process_runner``)."""
    return _lasting_pid() is not None


def acquire(settings: Settings, run_id: str, run_date: str | None, timeout: float, *, task: str | None = None) -> None:
    """Take the run lock for ``run_id`` (at once if it holds it already), waiting at most
    ``timeout`` seconds while another live run holds it; then ``LockHeld`` naming that run.
    With ``task``, the lease names this process as that task's until :func:`holding` ends."""
    deadline = time.monotonic() + max(0.0, timeout)
    told = None
    while True:
        other = _try_take(settings, run_id, run_date, task)
        if other is None:
            if told is not None:
                log.info("the run lock of %s is this run's now (%s had it)", settings.lake_dir, describe(told))
            return
        left = deadline - time.monotonic()
        if left <= 0:
            waited = (
                f"this run waited {timeout:.0f} s (CREDIT_LOCK_TIMEOUT) and stops" if timeout > 0 else "this run stops"
            )
            raise LockHeld(
                f"another run holds the lock on the lake {settings.lake_dir}: {describe(other)}; "
                f"{waited}: rerun the date once that run has finished."
            )
        if told is None or told.run_id != other.run_id:
            log.warning(
                "the lake %s is locked by %s: waiting up to %.0f s more for it",
                settings.lake_dir,
                describe(other),
                left,
            )
            told = other
        time.sleep(min(POLL, left))


def release(settings: Settings, run_id: str) -> bool:
    """Give the run lock back if ``run_id`` holds it; True when it did."""
    with _mutex(settings):
        h = holder(settings)
        if h is None or h.run_id != run_id:
            return False
        lease_path(settings).unlink(missing_ok=True)
    log.info("the run lock of %s is released by run %s", settings.lake_dir, run_id)
    return True


def _sign_of_life(settings: Settings, run_id: str, task: str, *, end: bool) -> str | None:
    """Renew ``run_id``'s lease (at the task's end, it stops naming the task's process); returns
    why it cannot when the run lost it."""
    with _mutex(settings):
        h = holder(settings)
        if h is None:
            return "its lease is gone"
        if h.run_id != run_id:
            return f"{describe(h)} holds it now"
        h.heartbeat, h.host = _iso(_now()), socket.gethostname()
        if end:
            h.processes.pop(task, None)
        _write(settings, h)
    return None


@contextmanager
def in_process_runner():
    """Marks this process as running every task of its DAG runs (``ecredit run``, ``DAG.test``):
    the lease names it between two tasks too, so its death frees the lock at once."""
    global _runner_pid
    before, _runner_pid = _runner_pid, os.getpid()
    try:
        yield
    finally:
        _runner_pid = before


@contextmanager
def holding(settings: Settings, run_id: str, run_date: str | None, task: str):
    """A writing task of run ``run_id``: holds the run lock while it works (taken if free or its
    holder dead, never waited for: its run's ``take_lock`` did the waiting), with a heartbeat; at
    its end the lease stays with the run until ``release_lock``. ``LockHeld`` when another run
    holds it, or when this run lost it while the task worked (possible only after
    ``LEASE_TTL`` seconds without a heartbeat)."""
    acquire(settings, run_id, run_date, 0, task=task)
    stop = threading.Event()
    lost: list[str] = []

    def beat():
        while not stop.wait(HEARTBEAT):
            try:
                why = _sign_of_life(settings, run_id, task, end=False)
            except OSError as e:
                log.warning("the run lock's heartbeat failed: %s", e)
                continue
            if why is not None:
                lost.append(why)
                log.error("this run lost the lock on the lake %s while %s ran: %s", settings.lake_dir, task, why)
                return

    t = threading.Thread(target=beat, name=f"ecredit-lock-{task}", daemon=True)
    t.start()
    try:
        yield
    except BaseException:
        stop.set()
        t.join()
        if not lost:  # the task failed; the lease stays with the run (a retry, the teardown)
            try:
                _sign_of_life(settings, run_id, task, end=True)
            except OSError as e:
                log.warning("the run lock's last sign of life failed: %s", e)
        raise
    stop.set()
    t.join()
    why = lost[0] if lost else _sign_of_life(settings, run_id, task, end=True)
    if why is not None:
        raise LockHeld(
            f"this run lost the lock on the lake {settings.lake_dir} while {task} ran: {why}; rerun the date."
        )


# --------------------------------------------------------------------------------------------------
# The warehouse lock: held by the stage that writes the warehouse


def _sqlite_lock_path(url) -> Path | None:
    db = url.database
    return Path(db + ".lock") if db and db != ":memory:" and not db.startswith("file:") else None


def _pg_holder(conn) -> str:
    row = conn.exec_driver_sql(
        "SELECT a.application_name, a.pid, a.client_addr, a.xact_start FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.classid = %(hi)s::oid AND l.objid = %(lo)s::oid AND l.pid <> pg_backend_pid()",
        {"hi": PG_LOCK_KEY >> 32, "lo": PG_LOCK_KEY & 0xFFFFFFFF},
    ).first()
    if row is None:
        return "a session that has just ended"
    name = row.application_name or ""
    what = name.removeprefix("ecredit ") if name.startswith("ecredit ") else f"an unnamed session ({name!r})"
    since = (
        row.xact_start.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        if row.xact_start
        else "-"
    )
    return f"{what} (server pid {row.pid}, client {row.client_addr or 'local'}, since {since})"


@contextmanager
def writing_warehouse(eng, run_id: str, run_date: str, timeout: float):
    """The warehouse's writing transaction (a connection in ``eng.begin()``), under the warehouse's
    lock: waits at most ``timeout`` seconds for another run's, then ``LockHeld`` naming it."""
    deadline = time.monotonic() + max(0.0, timeout)
    where = eng.url.render_as_string(hide_password=True)

    def stop(who: str):
        return LockHeld(
            f"another run holds the lock on the warehouse {where}: {who}; this run waited "
            f"{timeout:.0f} s (CREDIT_LOCK_TIMEOUT) and stops: rerun the date once that run has finished."
        )

    if eng.dialect.name == "postgresql":
        with eng.begin() as conn:
            # application_name names the holder to a waiting run (pg_stat_activity; at most 63 bytes)
            conn.exec_driver_sql(
                "SELECT set_config('application_name', %(n)s, true)",
                {"n": f"ecredit run {run_id} (date {run_date})"[:63]},
            )
            told = False
            while not conn.exec_driver_sql("SELECT pg_try_advisory_xact_lock(%(k)s)", {"k": PG_LOCK_KEY}).scalar():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise stop(_pg_holder(conn))
                if not told:
                    log.warning(
                        "the warehouse %s is locked by %s: waiting up to %.0f s for it", where, _pg_holder(conn), left
                    )
                    told = True
                time.sleep(min(POLL, left))
            yield conn
        return
    path = _sqlite_lock_path(eng.url)
    if path is None:
        with eng.begin() as conn:
            yield conn
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                try:
                    h = describe(Holder.of(json.loads(path.read_text("utf-8"))))
                except (OSError, ValueError, TypeError, AttributeError):
                    h = "a run that has not said who it is yet"
                left = deadline - time.monotonic()
                if left <= 0:
                    raise stop(h) from None
                if not told:
                    log.warning("the warehouse %s is locked by %s: waiting up to %.0f s for it", where, h, left)
                    told = True
                time.sleep(min(POLL, left))
        now = _iso(_now())
        me = os.getpid()
        text = json.dumps(
            asdict(
                Holder(
                    run_id=run_id,
                    run_date=run_date,
                    host=socket.gethostname(),
                    since=now,
                    heartbeat=now,
                    processes={"publish": _process(me)},
                )
            )
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode("utf-8"), 0)
        with eng.begin() as conn:
            yield conn
    finally:
        os.close(fd)  # releases the flock
