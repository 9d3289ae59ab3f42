"""Two runs at once on one lake and warehouse (issue 14, item 10): ``ecredit run`` twice, started
together on the same data folder and Airflow home, gives the tables of a sequential run; a run
that finds the lock held longer than ``CREDIT_LOCK_TIMEOUT`` stops at ``take_lock`` with one
sentence naming the holder, recorded in ``pipeline_run``, having written nothing.

Small on purpose: 60 operators, one date. The pair costs three Spark applications (the second run
finds every file parsed and starts no ingest), the sequential reference two."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, select

from ecredit.core import runlock
from ecredit.core import settings as settings_mod
from ecredit.ingest import load as ingest
from ecredit.warehouse import schema as wh

ROOT = Path(__file__).resolve().parents[2]
ECREDIT = Path(sys.executable).parent / "ecredit"
D1 = "2026-11-01"
OPERATORS, SEED = 60, 23


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    from ecredit.generate import generate

    out = tmp_path_factory.mktemp("lock-landing") / "landing"
    # dirty rows, so that quarantine and rejections.csv hold rows to compare
    generate(out, OPERATORS, [dt.date.fromisoformat(D1)], seed=SEED, dirty_rate=0.02, progress=lambda m: None)
    return out


def folder(landing: Path, root: Path) -> dict:
    """A data folder holding a copy of the deliveries; the environment of an `ecredit` there."""
    root.mkdir(parents=True)
    shutil.copytree(landing, root / "landing")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_", "AIRFLOW"))}
    env.update(
        CREDIT_DATA_DIR=str(root),
        CREDIT_PII_KEY="lock-pii-key",
        CREDIT_DRAW_SECRET="lock-draw-secret",
        AIRFLOW_HOME=str(root / "airflow"),
        SPARK_LOCAL_IP="127.0.0.1",
    )
    return env


def ecredit(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(ECREDIT), *args], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def output(console: Path) -> str:
    """What a run wrote: its console (the file it was sent to) and the log file the console names
    on its first line (the Airflow, Spark and GX logs, the lock's messages among them)."""
    text = console.read_text("utf-8", "replace")
    first = text.splitlines()[0] if text else ""
    if " logs in " in first and first.endswith(".log") and Path(first.rsplit(" logs in ", 1)[1]).is_file():
        text += Path(first.rsplit(" logs in ", 1)[1]).read_text("utf-8", "replace")
    return text


def settings_of(env: dict) -> settings_mod.Settings:
    return settings_mod.load({k: v for k, v in env.items() if k.startswith("CREDIT_")})


def snapshot(url: str) -> dict:
    """Every warehouse table but pipeline_run, row for row, without the validation tables' run_id."""
    out = {}
    with create_engine(url).connect() as c:
        for name, t in wh.metadata.tables.items():
            if name not in wh.BOOKKEEPING_TABLES:
                cols = [col for col in t.columns if col.name != "run_id"]
                out[name] = sorted(
                    json.dumps(dict(r._mapping), sort_keys=True, default=str) for r in c.execute(select(*cols))
                )
    return out


def runs(url: str) -> list[dict]:
    with create_engine(url).connect() as c:
        return [dict(r._mapping) for r in c.execute(select(wh.pipeline_run).order_by(wh.pipeline_run.c.attempt_id))]


def task_times(log: str, what: str = "end task") -> dict[str, dt.datetime]:
    """When each task of an in-process run ended (or started: ``what="starting"``), from the test
    runner's '[DAG TEST] end task task_id=…' lines."""
    out = {}
    for m in re.finditer(rf"^(\S+Z) \[\w+ *\] \[DAG TEST\] {what} task_id=(\S+)", log, re.M):
        out[m.group(2)] = dt.datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
    return out


def test_a_run_stops_with_one_sentence_while_another_run_holds_the_lock(landing, tmp_path):
    env = folder(landing, tmp_path / "data")
    cfg = settings_of(env)
    holder = "scheduled__2026-11-01T18:00:00+00:00"
    with runlock.in_process_runner():  # this process is the holder, alive all along
        runlock.acquire(cfg, holder, "2026-10-31", 0)
    since = runlock.holder(cfg).since.replace("+00:00", "Z")
    log = tmp_path / "run.log"
    t0 = time.monotonic()
    rc = ecredit(["run", "--date", D1], {**env, "CREDIT_LOCK_TIMEOUT": "5"}, log).wait(900)
    text = output(log)
    assert rc == 1, text[-4000:]
    sentence = (
        f"another run holds the lock on the lake {cfg.lake_dir}: run {holder} (date 2026-10-31, "
        f"pid {os.getpid()}, host {socket.gethostname()}, since {since}); this run waited 5 s "
        "(CREDIT_LOCK_TIMEOUT) and stops: rerun the date once that run has finished."
    )
    assert sentence in text, text[-4000:]
    failed = [r for r in runs(cfg.warehouse_url) if r["status"] == "failed"]
    assert [(r["run_date"], r["reason"]) for r in failed] == [(dt.date.fromisoformat(D1), "take_lock: " + sentence)]
    assert not any(r["status"] == "success" for r in runs(cfg.warehouse_url))
    # nothing was written: no parsed rows, no gold, nothing published, no outbox; the holder keeps its lock
    assert not ingest.rows_path(cfg).exists() and not (cfg.lake_dir / "gold").exists()
    assert not cfg.outbox_dir.exists()
    assert all(rows == [] for rows in snapshot(cfg.warehouse_url).values())
    assert runlock.holder(cfg).run_id == holder
    assert runlock.release(cfg, holder)
    print(f"\na run stopped by a held lock: {time.monotonic() - t0:.0f} s")


def test_two_runs_started_together_give_the_tables_of_a_sequential_run(landing, tmp_path):
    t0 = time.monotonic()
    ref_env = folder(landing, tmp_path / "sequential")
    assert ecredit(["run", "--date", D1], ref_env, tmp_path / "sequential.log").wait(1800) == 0, (
        tmp_path / "sequential.log"
    ).read_text("utf-8", "replace")[-4000:]
    t1 = time.monotonic()

    env = folder(landing, tmp_path / "together")
    cfg = settings_of(env)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    procs = [ecredit(["run", "--date", D1], env, log) for log in logs]
    rcs = [p.wait(2400) for p in procs]
    texts = [output(log) for log in logs]
    assert rcs == [0, 0], "\n\n".join(t[-4000:] for t in texts)

    # one run waited for the other: its take_lock ended after the other's release_lock
    waited = [
        i for i, t in enumerate(texts) if re.search(r"is locked by run manual__\S+ \(date 2026-11-01, pid \d+", t)
    ]
    assert len(waited) == 1, "neither or both runs waited for the lock"
    second, first = task_times(texts[waited[0]]), task_times(texts[1 - waited[0]])
    assert second["take_lock"] > first["release_lock"] > first["publish"]
    # it found every file parsed: its Spark job parsed nothing again (one application per date,
    # decision 98: the state build runs in it whatever ingest had to do)
    assert f"every accepted delivery dated <= {D1} is parsed already" in texts[waited[0]]
    assert re.search(r"'files_parsed': [1-9]", texts[1 - waited[0]]) and "is parsed already" not in texts[1 - waited[0]]
    assert runlock.holder(cfg) is None  # both gave it back

    url = cfg.warehouse_url
    assert [r["status"] for r in runs(url)] == ["success", "success"]
    parsed = pq.read_table(str(ingest.rows_path(cfg)), columns=["file_sha", "source_line"]).to_pylist()
    assert len(parsed) == len({(r["file_sha"], r["source_line"]) for r in parsed})  # no row parsed twice
    got, want = snapshot(url), snapshot(settings_of(ref_env).warehouse_url)
    # (one date: the draw's commitment is published, its plan comes with a later date)
    for table in ("dim_operator", "operator_score", "quarantine", "draw_commitment", "dq_result"):
        assert want[table], f"{table} is empty: nothing to compare"
    for table in want:
        assert got[table] == want[table], table
    # and the files pushed to the departments
    outbox = {p.relative_to(cfg.outbox_dir): p.read_bytes() for p in cfg.outbox_dir.rglob("*") if p.is_file()}
    ref_outbox = settings_of(ref_env).outbox_dir
    assert outbox and outbox == {
        p.relative_to(ref_outbox): p.read_bytes() for p in ref_outbox.rglob("*") if p.is_file()
    }
    print(f"\nsequential run {t1 - t0:.0f} s; two runs together {time.monotonic() - t1:.0f} s")


LOCK_DAG = """
import json

import pendulum
from airflow.sdk import DAG, task

from ecredit.core import runlock
from ecredit.core import settings
from ecredit.airflow.callbacks import release_run_lock, take_run_lock, writing_stage
from ecredit.airflow.env import RESOLVE_TASK_ID

OUT = {out!r}

for dag_id, fail in (("ecredit_lock_ok", False), ("ecredit_lock_failing", True)):
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False,
             params={{"run_date": None}}, default_args={{"retries": 0}}):
        @task(task_id=RESOLVE_TASK_ID, multiple_outputs=True)
        def resolve(**context):
            return {{"run_date": context["params"]["run_date"], "scheduled": False}}

        @task(task_id="take_lock")
        def take(**context):
            take_run_lock(context)

        @task(task_id="write")
        def write(run_date, fail=fail, **context):
            with writing_stage(context, run_date):
                h = runlock.holder(settings.load())
                with open(OUT, "a") as f:
                    f.write(json.dumps({{"run_id": context["run_id"], "holder": h.run_id,
                                        "pids": {{k: p["pid"] for k, p in h.processes.items()}}}}) + "\\n")
                if fail:
                    raise RuntimeError("the writing task fails")

        @task(task_id="release_lock")
        def release(**context):
            return release_run_lock(context)

        resolved = resolve()
        locked = take().as_setup()
        resolved >> locked >> write(resolved["run_date"]) >> release().as_teardown(setups=locked)
"""


def test_the_lock_is_given_back_when_the_run_fails_and_never_taken_from_another_run(
    tmp_path, airflow_home, monkeypatch
):
    """The DAG's pattern in small, in-process (Airflow's setup and teardown with the project's
    take_run_lock, writing_stage and release_run_lock): the writing task works under its run's
    lock; the teardown gives it back when the task failed; a run that finds the lock held stops at
    take_lock and its teardown leaves the holder's lock alone."""
    from ecredit.airflow import runner

    dags, out = tmp_path / "dags", tmp_path / "seen.jsonl"
    dags.mkdir()
    (dags / "lock_dags.py").write_text(LOCK_DAG.format(out=str(out)))
    for k in [k for k in os.environ if k.startswith("CREDIT_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("CREDIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CREDIT_LOCK_TIMEOUT", "1")
    (tmp_path / "data" / "landing").mkdir(parents=True)
    cfg = settings_mod.load()

    dr = runner.run_dag("2024-05-01", dag_id="ecredit_lock_ok", dags_folder=dags)
    assert str(getattr(dr.state, "value", dr.state)) == "success"
    dr2 = runner.run_dag("2024-05-01", dag_id="ecredit_lock_failing", dags_folder=dags)
    assert str(getattr(dr2.state, "value", dr2.state)) == "failed"  # the teardown's success is not the run's
    seen = [json.loads(line) for line in out.read_text().splitlines()]
    me = os.getpid()  # the in-process runner, and the writing task's process
    assert seen == [
        {"run_id": dr.run_id, "holder": dr.run_id, "pids": {"runner": me, "write": me}},
        {"run_id": dr2.run_id, "holder": dr2.run_id, "pids": {"runner": me, "write": me}},
    ]
    assert runlock.holder(cfg) is None  # both runs gave it back, the failed one too

    runlock.acquire(cfg, "scheduled__holder", "2024-04-30", 0, task="ingest")  # names this live process
    assert runner.run_dag_for_date("2024-05-01", dag_id="ecredit_lock_ok", dags_folder=dags) is False
    assert len(out.read_text().splitlines()) == 2  # the writing task never ran
    assert runlock.holder(cfg).run_id == "scheduled__holder"
