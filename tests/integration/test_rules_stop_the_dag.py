"""Issue 14 item 2, the whole DAG: a run with a malformed rules file fails at its first task,
``resolve_run_date``, with one sentence naming CREDIT_RULES and the key; no other task runs (every
other one is upstream_failed: no red ``validate``, no ``ingest_and_build``), and the
failure is the one row of ``pipeline_run``. The run goes through the DAG as the scheduler would
start it (``ecredit run`` itself refuses such a file before any task: tests/unit/test_rules_fail_fast.py).
An empty landing zone keeps it cheap (a few seconds)."""

from __future__ import annotations

import os

from sqlalchemy import create_engine, select

from ecredit.airflow import runner
from ecredit.core.settings import DEFAULT_RULES
from ecredit.warehouse import schema as wh


def test_a_malformed_rules_file_stops_the_run_at_its_first_task(tmp_path, monkeypatch, airflow_home):
    from airflow.utils.session import create_session

    for k in [k for k in os.environ if k.startswith("CREDIT_")]:
        monkeypatch.delenv(k)
    data = tmp_path / "data"
    (data / "landing").mkdir(parents=True)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        open(DEFAULT_RULES, encoding="utf-8")
        .read()
        .replace("{1: 20, 2: 60, 3: 150, 4: 400}", "{1: 20, 2: 60, 3: abc, 4: 400}"),
        "utf-8",
    )
    monkeypatch.setenv("CREDIT_DATA_DIR", str(data))
    monkeypatch.setenv("CREDIT_RULES", str(rules))
    sentence = f"CREDIT_RULES ({rules}): conduct.points_by_severity.3 must be an integer, not 'abc'."

    dr = runner.run_dag("2026-11-03")
    with create_session() as session:
        states = {
            (ti.task_id, ti.map_index): str(getattr(ti.state, "value", ti.state))
            for ti in dr.get_task_instances(session=session)
        }
    assert str(getattr(dr.state, "value", dr.state)) == "failed"
    assert states.pop(("resolve_run_date", -1)) == "failed"
    assert ("validate", 0) in states and ("ingest_and_build", -1) in states
    assert set(states.values()) == {"upstream_failed"}, {k: v for k, v in states.items() if v != "upstream_failed"}

    eng = create_engine(f"sqlite:///{data / 'warehouse.db'}")
    with eng.connect() as c:
        runs = [dict(r._mapping) for r in c.execute(select(wh.pipeline_run))]
    eng.dispose()
    assert len(runs) == 1, runs
    assert runs[0]["status"] == "failed" and str(runs[0]["run_date"]) == "2026-11-03"
    assert runs[0]["reason"] == f"resolve_run_date: {sentence}"
