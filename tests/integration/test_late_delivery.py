"""A late delivery taken in by `ecredit backfill` (warehouse.md, Guarantees: "A late or corrected
delivery is taken in by re-running its date and the dates after it in order (`ecredit backfill
--from D1 --to D2`), which gives the same tables as if it had arrived on time").

The on-time city is the session's dirty one (`dirty_e2e`: 70 operators, three dates, dirty rows).
Here the same deliveries run again from the state after D1, but amr's delivery of D2 (its registry
increment, penalties, lists, spot checks and complaints) is not there when D2 and D3 run: its folder
is absent, amr is `missing` for D2. Then it arrives, and `ecredit backfill --from D2 --to D3` runs
both dates again. Every warehouse table and every outbox file must then be what the on-time run
published. Aside, because they legitimately differ: `pipeline_run` (one row per attempt), the
`run_id` of the run that validated a delivery, attempt ids and timestamps.

The default rules draw a plan on the first of a month only, so no draw date is rerun here (a rerun
draw date keeps every version of its plan: `inspection_plan` and `inspection_draw` are compared
like every other table, and are empty on these dates)."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import create_engine, text

from ecredit.warehouse import schema as wh
from tests.helpers import outbox_files
from tests.helpers import warehouse_snapshot as snapshot
from tests.integration.conftest import DATES, run_cli

LATE = ("amr", DATES[1])  # the delivery that comes late


def outbox(root) -> dict:
    return outbox_files(root / "outbox")


def differing(a: dict, b: dict) -> set:
    return {t for t in a if a[t] != b[t]}


@pytest.fixture(scope="module")
def late(dirty_e2e, tmp_path_factory):
    on_time = dirty_e2e
    root = tmp_path_factory.mktemp("late")
    for sub in ("lake", "outbox"):
        shutil.copytree(on_time["after_first"] / sub, root / sub)
    shutil.copy(on_time["after_first"] / "warehouse.db", root / "warehouse.db")
    shutil.copytree(on_time["root"] / "landing", root / "landing")
    held = tmp_path_factory.mktemp("held") / "delivery"
    shutil.move(root / "landing" / LATE[0] / LATE[1], held)  # not there when D2 and D3 run
    env = {**on_time["env"], "CREDIT_DATA_DIR": str(root), "AIRFLOW_HOME": str(root / "airflow")}
    url = f"sqlite:///{root / 'warehouse.db'}"
    procs = [run_cli(["backfill", "--from", DATES[1], "--to", DATES[-1]], env)]
    assert procs[-1].returncode == 0, procs[-1].stdout[-4000:] + procs[-1].stderr[-3000:]
    before = {"tables": snapshot(url), "outbox": outbox(root)}
    shutil.move(held, root / "landing" / LATE[0] / LATE[1])  # it arrives
    procs.append(run_cli(["backfill", "--from", DATES[1], "--to", DATES[-1]], env))
    assert procs[-1].returncode == 0, procs[-1].stdout[-4000:] + procs[-1].stderr[-3000:]
    return {
        "root": root,
        "url": url,
        "before": before,
        "tables": snapshot(url),
        "outbox": outbox(root),
        "on_time": {"tables": snapshot(on_time["warehouse"]), "outbox": outbox(on_time["root"])},
    }


def query(url, sql, **params):
    with create_engine(url).connect() as c:
        return [dict(r._mapping) for r in c.execute(text(sql), params)]


def test_the_delivery_was_missing_and_the_tables_differed(late, dirty_e2e):
    """Before it arrived, amr was `missing` on D2 and the tables were not the on-time ones: the
    comparison below means something."""
    status = {
        json.loads(r)["dept"]: json.loads(r)["status"]
        for r in late["before"]["tables"]["feed_status"]
        if json.loads(r)["run_date"] == LATE[1]
    }
    assert status[LATE[0]] == "missing"
    assert {"feed_status", "fact_credit_record", "operator_score", "dq_result"} <= differing(
        late["before"]["tables"], late["on_time"]["tables"]
    )
    assert f"{LATE[0]}/{LATE[1]}/rejections.csv" not in late["before"]["outbox"]
    # the late delivery has rows of its own to quarantine and to apply
    dirty = dirty_e2e["summary"]["dirty_files"][LATE[0]]
    assert sum(n for by_date in dirty.values() for n in by_date.get(LATE[1], {}).values()) > 0


def test_after_the_backfill_every_table_is_as_if_it_had_come_on_time(late):
    got, want = late["tables"], late["on_time"]["tables"]
    assert set(got) == set(want) == set(wh.metadata.tables) - set(wh.BOOKKEEPING_TABLES)
    for t in want:
        assert got[t] == want[t], (t, sorted(set(got[t]) ^ set(want[t]))[:6])
    q = [json.loads(r) for r in got["quarantine"]]
    assert any((r["dept"], r["delivery_date"]) == LATE for r in q)  # validated by the backfill
    assert all(
        len(want[t]) > 0
        for t in (
            "dim_operator",
            "fact_credit_record",
            "operator_score",
            "quarantine",
            "dq_result",
            "supervision_measure",
            "serious_dishonest_list",
        )
    )


def test_after_the_backfill_the_outbox_is_as_if_it_had_come_on_time(late):
    assert sorted(late["outbox"]) == sorted(late["on_time"]["outbox"])
    for name, data in late["on_time"]["outbox"].items():
        assert late["outbox"][name] == data, name
    assert f"{LATE[0]}/{LATE[1]}/rejections.csv" in late["outbox"]


def test_every_attempt_was_recorded(late):
    runs = query(late["url"], "SELECT run_date, status, warnings FROM pipeline_run ORDER BY attempt_id")
    assert [(str(r["run_date"]), r["status"]) for r in runs] == [
        (DATES[0], "success"),
        (DATES[1], "success"),
        (DATES[2], "success"),
        (DATES[1], "success"),
        (DATES[2], "success"),
    ]
    assert f"{LATE[0]}: delivery of {LATE[1]} is missing" in runs[1]["warnings"]
    assert f"{LATE[0]}: delivery of {LATE[1]} is missing" not in runs[3]["warnings"]
