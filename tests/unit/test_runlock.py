"""The run lock and the warehouse lock (``ecredit/core/runlock.py``): acquire, contend, the timeout's
sentence, dead holders, the writing tasks' hold with its heartbeat, and ``CREDIT_LOCK_TIMEOUT``."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ecredit.core import runlock
from ecredit.core import settings as settings_mod

ROOT = Path(__file__).resolve().parents[2]
D = "2026-11-01"


@pytest.fixture
def cfg(tmp_path):
    return settings_mod.load({"CREDIT_DATA_DIR": str(tmp_path), "CREDIT_PII_KEY": "k", "CREDIT_DRAW_SECRET": "s"})


def lease(cfg) -> dict:
    return json.loads(runlock.lease_path(cfg).read_text("utf-8"))


def plant(cfg, **fields) -> dict:
    """A lease as another run left it: live by default (this process, a fresh heartbeat)."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    h = {
        "run_id": "scheduled__other",
        "run_date": "2026-10-31",
        "host": socket.gethostname(),
        "since": now,
        "heartbeat": now,
        "processes": {"ingest": runlock._process(os.getpid())},
        **fields,
    }
    runlock.lease_path(cfg).parent.mkdir(parents=True, exist_ok=True)
    runlock.lease_path(cfg).write_text(json.dumps(h), "utf-8")
    return h


def ago(seconds: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)).isoformat(timespec="seconds")


def ended_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# ---------------------------------------------------------------- acquire and release


def test_acquire_when_free_names_the_run_and_is_reentrant_for_it(cfg):
    runlock.acquire(cfg, "manual__a", D, 0)
    h = lease(cfg)
    assert (h["run_id"], h["run_date"], h["host"]) == ("manual__a", D, socket.gethostname())
    assert h["processes"] == {}  # a scheduler's take_lock process ends at once: the lease names no process
    since = h["since"]
    time.sleep(1.1)
    runlock.acquire(cfg, "manual__a", D, 0)  # its own run passes at once, keeping when it took it
    assert lease(cfg)["since"] == since and lease(cfg)["heartbeat"] > since
    assert runlock.release(cfg, "manual__b") is False  # not its lock: left alone
    assert lease(cfg)["run_id"] == "manual__a"
    assert runlock.release(cfg, "manual__a") is True
    assert runlock.holder(cfg) is None
    runlock.acquire(cfg, "manual__b", D, 0)
    assert lease(cfg)["run_id"] == "manual__b"


def test_the_in_process_runner_is_named_so_that_its_death_frees_the_lock(cfg):
    with runlock.in_process_runner():
        runlock.acquire(cfg, "manual__a", D, 0)
    assert lease(cfg)["processes"] == {
        "runner": {"pid": os.getpid(), "start": runlock._start_time(os.getpid()), "host": socket.gethostname()}
    }


def test_a_second_run_waits_the_timeout_then_stops_with_one_sentence_naming_the_holder(cfg):
    runlock.acquire(cfg, "manual__first", D, 0)
    first = lease(cfg)
    t0 = time.monotonic()
    with pytest.raises(runlock.LockHeld) as e:
        runlock.acquire(cfg, "manual__second", "2026-11-02", 3)
    waited = time.monotonic() - t0
    assert 3 <= waited < 8
    msg = str(e.value)
    assert msg == (
        f"another run holds the lock on the lake {cfg.lake_dir}: run manual__first (date {D}, pid -, "
        f"host {socket.gethostname()}, since {first['since'].replace('+00:00', 'Z')}); this run waited 3 s "
        "(CREDIT_LOCK_TIMEOUT) and stops: rerun the date once that run has finished."
    )
    assert msg.count(". ") == 0 and msg.endswith(".")  # one sentence
    assert lease(cfg)["run_id"] == "manual__first"  # the holder keeps it
    with pytest.raises(runlock.LockHeld, match=r"; this run stops: rerun"):
        runlock.acquire(cfg, "manual__second", "2026-11-02", 0)


def test_a_waiting_run_gets_the_lock_when_the_holder_releases_it(cfg):
    runlock.acquire(cfg, "manual__first", D, 0)
    code = textwrap.dedent(f"""
        import time
        from ecredit.core import runlock
        from ecredit.core import settings
        cfg = settings.load({{"CREDIT_DATA_DIR": {str(cfg.lake_dir.parent)!r}}})
        time.sleep(2)
        assert runlock.release(cfg, "manual__first")
    """)
    p = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    t0 = time.monotonic()
    runlock.acquire(cfg, "manual__second", D, 60)
    assert time.monotonic() - t0 < 30
    assert p.wait(30) == 0
    assert lease(cfg)["run_id"] == "manual__second"


def test_runs_racing_for_a_free_lock_get_it_once(cfg):
    """Six processes acquire at the same instant without waiting: exactly one wins (the flock'd
    read-decide-write), the others are told who did."""
    at = time.time() + 3
    code = textwrap.dedent(f"""
        import sys, time
        from ecredit.core import runlock
        from ecredit.core import settings
        cfg = settings.load({{"CREDIT_DATA_DIR": {str(cfg.lake_dir.parent)!r}}})
        time.sleep(max(0, {at} - time.time()))
        try:
            runlock.acquire(cfg, "run-" + sys.argv[1], "{D}", 0)
            print("won")
        except runlock.LockHeld as e:
            print("lost", e)
    """)
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", code, str(i)],
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for i in range(6)
    ]
    outs = [p.communicate(60)[0].strip() for p in procs]
    winners = [i for i, o in enumerate(outs) if o == "won"]
    assert len(winners) == 1, outs
    assert lease(cfg)["run_id"] == f"run-{winners[0]}"
    assert all(
        o.startswith("lost another run holds the lock") and f"run run-{winners[0]} " in o
        for i, o in enumerate(outs)
        if i != winners[0]
    ), outs


# ---------------------------------------------------------------- dead holders


def test_a_holder_silent_longer_than_the_ttl_is_dead(cfg):
    plant(
        cfg,
        host="another-host",
        processes={"ingest": {"pid": 12345, "start": None, "host": "another-host"}},
        heartbeat=ago(runlock.LEASE_TTL + 5),
    )
    runlock.acquire(cfg, "manual__b", D, 0)
    assert lease(cfg)["run_id"] == "manual__b"


def here(pid: int, start: str | None = None) -> dict:
    return {"pid": pid, "start": start, "host": socket.gethostname()}


def test_a_holder_whose_processes_ended_on_this_host_is_dead_at_once(cfg):
    plant(cfg, processes={"runner": here(ended_pid()), "data_docs": here(ended_pid())})
    runlock.acquire(cfg, "manual__b", D, 0)
    assert lease(cfg)["run_id"] == "manual__b"


def test_a_holder_is_alive_while_one_of_its_processes_is(cfg):
    """build_state and data_docs run side by side under the scheduler: data_docs' process ending
    (or being killed) while build_state works does not free the lock."""
    p = subprocess.Popen(["sleep", "60"])
    try:
        plant(cfg, processes={"data_docs": here(ended_pid()), "build_state": here(p.pid, runlock._start_time(p.pid))})
        with pytest.raises(runlock.LockHeld, match=r"\(date 2026-10-31, pid \d+, \d+, host "):
            runlock.acquire(cfg, "manual__b", D, 0)
        # a process on another host cannot be looked at: only the TTL decides there
        plant(cfg, processes={"data_docs": here(ended_pid()), "build_state": {"pid": 1, "start": None, "host": "h2"}})
        with pytest.raises(runlock.LockHeld):
            runlock.acquire(cfg, "manual__b", D, 0)
    finally:
        p.kill()
        p.wait()


def test_a_zombie_or_a_reused_pid_is_not_the_holder(cfg):
    z = subprocess.Popen(["true"])  # exits and stays a zombie until waited for
    for _ in range(100):
        if Path(f"/proc/{z.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.05)
    h = runlock.Holder.of(plant(cfg, processes={"ingest": here(z.pid)}))
    assert runlock.dead_because(h) == f"its process {z.pid} on {socket.gethostname()} has ended"
    z.wait()
    h = runlock.Holder.of(plant(cfg, processes={"ingest": here(os.getpid(), "1")}))  # this pid, another start
    assert runlock.dead_because(h) is not None


def test_a_live_holder_is_waited_for(cfg):
    p = subprocess.Popen(["sleep", "60"])
    try:
        plant(cfg, processes={"ingest": here(p.pid, runlock._start_time(p.pid))})
        with pytest.raises(runlock.LockHeld, match=rf"run scheduled__other \(date 2026-10-31, pid {p.pid}, "):
            runlock.acquire(cfg, "manual__b", D, 0)
        # another host's process cannot be looked at: only the TTL decides there
        plant(
            cfg,
            host="another-host",
            processes={"ingest": {"pid": ended_pid(), "start": None, "host": "another-host"}},
            heartbeat=ago(runlock.LEASE_TTL - 60),
        )
        with pytest.raises(runlock.LockHeld, match=r"host another-host"):
            runlock.acquire(cfg, "manual__b", D, 0)
    finally:
        p.kill()
        p.wait()


def test_an_unreadable_lease_is_free(cfg):
    runlock.lease_path(cfg).parent.mkdir(parents=True)
    runlock.lease_path(cfg).write_text('{"run_id": "manual__a", "hea', "utf-8")
    runlock.acquire(cfg, "manual__b", D, 0)
    assert lease(cfg)["run_id"] == "manual__b"


# ---------------------------------------------------------------- writing tasks


def test_a_writing_task_of_the_holding_run_passes_and_names_its_process_while_it_works(cfg):
    runlock.acquire(cfg, "manual__a", D, 0)
    with runlock.holding(cfg, "manual__a", D, "ingest"):
        h = lease(cfg)
        assert (h["run_id"], h["processes"]) == (
            "manual__a",
            {"ingest": here(os.getpid(), runlock._start_time(os.getpid()))},
        )
    h = lease(cfg)  # between tasks the lease stays with the run, naming no process (scheduler)
    assert (h["run_id"], h["processes"]) == ("manual__a", {})
    with runlock.in_process_runner():
        with runlock.holding(cfg, "manual__a", D, "publish"):
            assert set(lease(cfg)["processes"]) == {"runner", "publish"}
            assert f"(date {D}, pid {os.getpid()}, host " in runlock.describe(runlock.holder(cfg))  # named once
    assert set(lease(cfg)["processes"]) == {"runner"}  # the in-process runner stays named


def test_a_writing_task_of_another_run_is_refused_at_once(cfg):
    runlock.acquire(cfg, "manual__a", D, 0)
    t0 = time.monotonic()
    with pytest.raises(runlock.LockHeld, match=r"run manual__a \(date 2026-11-01, .*this run stops"):
        with runlock.holding(cfg, "manual__b", D, "publish"):
            raise AssertionError("the task must not run")
    assert time.monotonic() - t0 < 2


def test_a_failing_task_leaves_the_lock_with_its_run(cfg):
    runlock.acquire(cfg, "manual__a", D, 0)
    with pytest.raises(ZeroDivisionError):
        with runlock.holding(cfg, "manual__a", D, "build_state"):
            1 / 0
    assert (lease(cfg)["run_id"], lease(cfg)["processes"]) == ("manual__a", {})


def test_the_heartbeat_keeps_a_long_task_alive(cfg, monkeypatch):
    monkeypatch.setattr(runlock, "HEARTBEAT", 0.05)
    runlock.acquire(cfg, "manual__a", D, 0)
    with runlock.holding(cfg, "manual__a", D, "ingest"):
        h = lease(cfg)
        h["heartbeat"] = ago(runlock.LEASE_TTL + 100)  # as if the task had run for longer than the TTL
        runlock.lease_path(cfg).write_text(json.dumps(h), "utf-8")
        time.sleep(0.5)
        assert runlock.dead_because(runlock.Holder.of(lease(cfg))) is None
        with pytest.raises(runlock.LockHeld):
            runlock.acquire(cfg, "manual__b", D, 0)


@pytest.mark.parametrize("heartbeat", [0.05, 3600])
def test_a_task_that_lost_the_lock_fails(cfg, monkeypatch, heartbeat):
    monkeypatch.setattr(runlock, "HEARTBEAT", heartbeat)
    runlock.acquire(cfg, "manual__a", D, 0)
    with pytest.raises(
        runlock.LockHeld,
        match=r"^this run lost the lock on the lake .* while ingest ran: "
        r"run scheduled__other \(date 2026-10-31, .*holds it now; rerun the date\.$",
    ):
        with runlock.holding(cfg, "manual__a", D, "ingest"):
            plant(cfg)  # taken over, as after LEASE_TTL seconds without a heartbeat
            time.sleep(0.3)
    assert lease(cfg)["run_id"] == "scheduled__other"  # the other run's lease is left alone


# ---------------------------------------------------------------- the warehouse lock


def test_the_embedded_warehouse_is_written_by_one_run_at_a_time(cfg):
    from ecredit.warehouse import schema as wh

    code = textwrap.dedent(f"""
        import sys, time
        from ecredit.core import runlock
        from ecredit.warehouse import schema as warehouse
        eng = warehouse.engine_for({cfg.warehouse_url!r})
        with runlock.writing_warehouse(eng, "manual__holder", "{D}", 0) as conn:
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
            print("held", flush=True)
            sys.stdin.readline()
    """)
    cfg.warehouse_url  # sqlite:///<tmp>/warehouse.db
    p = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert p.stdout.readline().strip() == "held"
        eng = wh.engine_for(cfg.warehouse_url)
        t0 = time.monotonic()
        with pytest.raises(runlock.LockHeld) as e:
            with runlock.writing_warehouse(eng, "manual__second", D, 2):
                raise AssertionError("not while the other run writes")
        assert time.monotonic() - t0 >= 2
        assert str(e.value).startswith(
            f"another run holds the lock on the warehouse {cfg.warehouse_url}: "
            f"run manual__holder (date {D}, pid {p.pid}, host {socket.gethostname()}, since "
        )
        assert str(e.value).endswith(
            "; this run waited 2 s (CREDIT_LOCK_TIMEOUT) and stops: rerun the date once that run has finished."
        )
    finally:
        p.communicate("\n", timeout=30)
    with runlock.writing_warehouse(eng, "manual__second", D, 0) as conn:  # free once the holder is done
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    p = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", code],
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert p.stdout.readline().strip() == "held"
    p.kill()  # a killed holder: the kernel drops its flock
    p.wait()
    with runlock.writing_warehouse(eng, "manual__third", D, 0) as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1


def test_the_postgresql_warehouse_is_written_by_one_run_at_a_time():
    from sqlalchemy import create_engine

    from tests.helpers import new_pg_database

    with new_pg_database("ecredit_lock") as url:
        one, two = create_engine(url), create_engine(url)
        try:
            with runlock.writing_warehouse(one, "manual__holder", D, 0):
                t0 = time.monotonic()
                with pytest.raises(runlock.LockHeld) as e:
                    with runlock.writing_warehouse(two, "manual__second", D, 2):
                        raise AssertionError("not while the other run writes")
                assert time.monotonic() - t0 >= 2
                msg = str(e.value)
                assert msg.startswith(
                    f"another run holds the lock on the warehouse {url}: run manual__holder (date {D}) (server pid "
                ), msg
                assert msg.endswith(
                    "; this run waited 2 s (CREDIT_LOCK_TIMEOUT) and stops: rerun the date once that run has finished."
                )
            with runlock.writing_warehouse(two, "manual__second", D, 0):  # the commit released it
                pass
            with pytest.raises(RuntimeError):
                with runlock.writing_warehouse(one, "manual__holder", D, 0):
                    raise RuntimeError("publish failed")
            with runlock.writing_warehouse(two, "manual__second", D, 0):  # and so did the rollback
                pass
        finally:
            one.dispose()
            two.dispose()


# ---------------------------------------------------------------- the setting


@pytest.mark.parametrize(
    "value, want", [(None, 3600), ("", 3600), ("0", 0), ("90", 90), (" 120 ", 120), ("21600", 21600)]
)
def test_lock_timeout_setting(tmp_path, value, want):
    env = {"CREDIT_DATA_DIR": str(tmp_path), **({"CREDIT_LOCK_TIMEOUT": value} if value is not None else {})}
    s = settings_mod.load(env)
    assert s.lock_timeout == want
    assert s.as_env()["CREDIT_LOCK_TIMEOUT"] == str(want)


@pytest.mark.parametrize("value", ["-1", "1.5", "ten", "21601", "1e3", "9999999"])
def test_a_wrong_lock_timeout_is_one_sentence_naming_it(tmp_path, value):
    with pytest.raises(settings_mod.SettingError) as e:
        settings_mod.load({"CREDIT_DATA_DIR": str(tmp_path), "CREDIT_LOCK_TIMEOUT": value})
    assert str(e.value) == (f"CREDIT_LOCK_TIMEOUT must be a whole number of seconds from 0 to 21600, not {value!r}.")


def test_two_runs_started_together_on_a_fresh_airflow_home_migrate_it_once(tmp_path):
    """`ecredit run` prepares Airflow's metadata DB before its DAG; two started together on a fresh
    AIRFLOW_HOME both created the tables and one failed ('table ... already exists'); three
    processes make the race near certain without the fix (it failed 3 times in 4 with two)."""
    at = time.time() + 4
    code = textwrap.dedent(f"""
        import time
        from ecredit.airflow import env as airflow_env
        time.sleep(max(0, {at} - time.time()))
        airflow_env.prepare_airflow_env({str(tmp_path / "airflow")!r})
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", code],
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**env, "PYTHONPATH": str(ROOT)},
        )
        for _ in range(3)
    ]
    outs = [p.communicate(300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    assert [out.strip() for out, _ in outs] == ["ok", "ok", "ok"]


@pytest.mark.parametrize("value, want", [(None, 31), ("", 31), ("1", 1), (" 7 ", 7), ("3660", 3660)])
def test_lake_keep_run_dates_setting(tmp_path, value, want):
    env = {"CREDIT_DATA_DIR": str(tmp_path), **({"CREDIT_LAKE_KEEP_RUN_DATES": value} if value is not None else {})}
    s = settings_mod.load(env)
    assert s.lake_keep_run_dates == want
    assert s.as_env()["CREDIT_LAKE_KEEP_RUN_DATES"] == str(want)


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "month", "3661", "99999"])
def test_a_wrong_lake_keep_run_dates_is_one_sentence_naming_it(tmp_path, value):
    with pytest.raises(settings_mod.SettingError) as e:
        settings_mod.load({"CREDIT_DATA_DIR": str(tmp_path), "CREDIT_LAKE_KEEP_RUN_DATES": value})
    assert str(e.value) == (
        f"CREDIT_LAKE_KEEP_RUN_DATES must be a whole number of run dates from 1 to 3660, not {value!r}."
    )
