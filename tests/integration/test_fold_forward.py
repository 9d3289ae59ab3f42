"""Folding forward gives the answer of folding everything (issue 17, decision 0110).

The session's two cities ran through the real DAG (`ecredit run` for D1, `ecredit backfill` for D2
and D3): each date after the first folded its records from the previous date's checkpoint. Here
the last date (folded from D2's checkpoint, itself folded from D1's) is built again in a copy of
the lake with ``full=True`` (every applied delivery folded, no checkpoint read), and every gold
table (what publish takes, row for row) and the checkpoint's folded rows must be the incremental
run's. The clean city has a delivery rejected in transit on
D2 (the applied files are not the accepted ones); the dirty city has quarantined rows of every
reason and repeated keys. The late-delivery test (`test_late_delivery.py`) covers a backfill that
starts mid-sequence from a checkpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pyarrow.parquet as pq
import pytest

from ecredit.core import lake
from ecredit.core import rules as rules_mod
from ecredit.core import settings as settings_mod
from ecredit.state import build as state
from ecredit.state import fold
from tests.integration.conftest import DATES, REJECTED

DAYS = [dt.date.fromisoformat(d) for d in DATES]
LAST = DAYS[-1]  # folded from D2's checkpoint, itself from D1's: the longest chain of the session


def settings_of(city: dict, data_dir=None) -> settings_mod.Settings:
    env = {k: v for k, v in city["env"].items() if k.startswith("CREDIT_")}
    if data_dir is not None:
        env.update(CREDIT_DATA_DIR=str(data_dir), CREDIT_WAREHOUSE_URL=city["warehouse"])
        env["CREDIT_LANDING_DIR"] = str(city["root"] / "landing")
    return settings_mod.load(env)


def rows_of(folder) -> list[str]:
    """Every row of the Parquet files under ``folder`` as sorted JSON (the partition folders'
    values included), so two folders compare row for row."""
    out = []
    for p in sorted(folder.rglob("*.parquet")):
        parts = {k: v for k, v in (x.split("=", 1) for x in p.relative_to(folder).parts[:-1] if "=" in x)}
        out += [json.dumps({**r, **parts}, sort_keys=True, default=str) for r in pq.read_table(str(p)).to_pylist()]
    return sorted(out)


def gold(cfg, day) -> dict:
    return {name: rows_of(lake.gold_table(cfg, day, name)) for name in state.GOLD_TABLES + state.RUN_TABLES}


@pytest.fixture(scope="module", params=["e2e", "dirty_e2e"])
def rebuilt(request, spark, tmp_path_factory):
    """The city's lake copied, and each date built again in the copy with ``full=True``."""
    city = request.getfixturevalue(request.param)
    ran = settings_of(city)
    root = tmp_path_factory.mktemp(f"full_{request.param}")
    shutil.copytree(ran.lake_dir, root / "lake")
    cfg = settings_of(city, root)
    rules = rules_mod.load(cfg.rules_path)
    markers = {day: lake.read_json(lake.folded_marker(ran, day)) for day in DAYS}
    result = state.build(spark, cfg, rules, LAST, full=True)
    return {"name": request.param, "ran": ran, "full": cfg, "markers": markers, "result": result}


def test_each_date_after_the_first_was_folded_from_the_checkpoint_before(rebuilt):
    markers = rebuilt["markers"]
    assert markers[DAYS[0]]["base"] is None
    for before, day in zip(DAYS, DAYS[1:]):
        assert markers[day]["base"] == before.isoformat(), day
        # the checkpoint names every file it holds: the one before's and the date's own
        assert set(markers[before]["files"]) < set(markers[day]["files"])
        assert any(f"/{day.isoformat()}/" in f for f in markers[day]["files"])
    assert rebuilt["result"]["folded_from"] == "nothing"


def test_each_date_after_the_first_scored_only_its_touched_operators(rebuilt):
    """Decision 0111: the DAG's D2 and D3 carried the untouched operators' scores from the date
    before; the full rebuild scored everyone. Both give the same gold (the next test)."""
    ran = rebuilt["ran"]
    notes = {day: lake.read_json(lake.scored_note(ran, day)) for day in DAYS}
    assert notes[DAYS[0]]["scored"] == "all" and notes[DAYS[0]]["carried_from"] is None
    scored = pq.read_table(str(lake.gold_table(ran, LAST, "operator_score"))).num_rows
    for before, day in zip(DAYS, DAYS[1:]):
        assert notes[day]["carried_from"] == before.isoformat(), (day, notes[day])
        assert notes[day]["scored"] > 0, (day, notes[day])
        if rebuilt["name"] == "e2e":  # 150 operators, ~1 % touched a day (the 70 of the dirty city all are)
            assert notes[day]["scored"] < scored, (day, notes[day])
    assert rebuilt["result"]["rescored"] == "all"
    assert lake.read_json(lake.scored_note(rebuilt["full"], LAST))["why"] == "--full"


def test_a_full_fold_gives_the_same_gold_tables_row_for_row(rebuilt):
    incremental, full = gold(rebuilt["ran"], LAST), gold(rebuilt["full"], LAST)
    differing = [t for t in incremental if incremental[t] != full[t]]
    assert not differing, f"{rebuilt['name']}: {differing}"
    # worth comparing: the state and scores are there
    assert incremental["dim_operator"] and incremental["operator_score"] and incremental["fact_credit_record"]


def checkpoint_rows(spark, cfg, day) -> list[str]:
    """The records in force that D's checkpoint holds (a delta's read with its chain), as sorted
    JSON, so two checkpoints compare row for row."""
    return sorted(
        json.dumps(r.asDict(), sort_keys=True, default=str) for r in fold.checkpoint_rows(spark, cfg, day).collect()
    )


def test_a_full_fold_gives_the_same_folded_rows(rebuilt, spark):
    """The clean city's D2 wrote a delta checkpoint (decision 0117): only the records its files
    touched, on D1's full one. A date is full when its chain would pass its share of the full one's
    rows (the small cities' days are large against their history). Read with its chain, D3's
    checkpoint holds the full fold's records."""
    markers = rebuilt["markers"]
    kinds = [markers[d]["kind"] for d in DAYS]
    assert kinds[0] == "full", (rebuilt["name"], kinds)
    if rebuilt["name"] == "e2e":  # 150 operators, ~1 % touched a day (the 70 of the dirty city all are)
        assert kinds[1] == "delta", kinds
        assert markers[DAYS[1]]["rows"] < markers[DAYS[0]]["rows"]  # the delta: the day's records only
    # the chain: the last full checkpoint, then every date after it
    start = max(i for i, k in enumerate(kinds) if k == "full")
    assert [m["date"] for m in markers[LAST]["chain"]] == [d.isoformat() for d in DAYS[start:]]
    a = checkpoint_rows(spark, rebuilt["ran"], LAST)
    b = checkpoint_rows(spark, rebuilt["full"], LAST)
    assert a == b, rebuilt["name"]
    assert lake.read_json(lake.folded_marker(rebuilt["full"], LAST))["kind"] == "full"
    assert len(a) > 0


def test_the_rejected_delivery_is_in_no_checkpoint(e2e):
    cfg = settings_of(e2e)
    dept, date = REJECTED
    for day in DAYS:
        files = lake.read_json(lake.folded_marker(cfg, day))["files"]
        held = {f.split("/")[0] for f in files if f.split("/")[1] == date}
        assert not any(feed.startswith(dept + ".") for feed in held), day
        # the other departments' deliveries of that date are held from that date on
        assert (len(held) > 0) == (day >= dt.date.fromisoformat(date)), day


def test_each_date_after_the_first_published_only_the_latest_states_changes(rebuilt):
    """Decision 0112: the DAG's D2 and D3 applied their change sets (taken against the date before,
    the build the warehouse held) to the latest-state tables, which then hold exactly D3's gold
    row for row; the change sets hold fewer rows than the state."""
    from sqlalchemy import create_engine, select

    from ecredit.state import changes
    from ecredit.warehouse import schema as wh

    ran, city = rebuilt["ran"], rebuilt["ran"].warehouse_url
    with create_engine(city).connect() as c:
        runs: dict = {}  # the DAG's run of each date: its first success (other tests publish again)
        for r in c.execute(
            select(wh.pipeline_run).where(wh.pipeline_run.c.status == "success").order_by(wh.pipeline_run.c.attempt_id)
        ):
            runs.setdefault(str(r.run_date), json.loads(r.counts))
        held = {
            t.name: sorted(
                json.dumps(dict(r._mapping), sort_keys=True, default=str) for r in c.execute(select(*t.columns))
            )
            for t in wh.LATEST_STATE_TABLES
        }
    assert runs[DAYS[0].isoformat()]["latest_state"].startswith("replaced")
    state_rows = sum(len(v) for v in held.values())
    for before, day in zip(DAYS, DAYS[1:]):
        assert runs[day.isoformat()]["latest_state"] == f"changes against {before}", runs[day.isoformat()]
        marker = lake.read_json(lake.changes_marker(ran, day))
        assert marker["against"] == before.isoformat() and marker["build"] == lake.build_id(ran, before)
        assert marker["compared"] == "touched operators", marker
        changed = sum(c["rows"] for c in marker["counts"].values())
        assert 0 < changed < state_rows, (day, marker["counts"])
    for name in held:
        cols = changes.columns_of(name)
        table = pq.read_table(str(lake.gold_table(ran, LAST, name)), columns=cols).to_pylist()
        want = sorted(json.dumps(r, sort_keys=True, default=str) for r in table)
        assert held[name] == want, name


def test_comparing_only_the_touched_operators_gives_the_change_sets_of_comparing_every_row(rebuilt):
    """The DAG's D3 compared only the rows of its touched operators with D2's gold; the --full
    rebuild of D3 (no checkpoint: no touched operators) compared every row. Their change sets are
    the same, row for row."""
    from ecredit.state import changes

    full = lake.read_json(lake.changes_marker(rebuilt["full"], LAST))
    assert full["compared"] == "all" and full["against"] == DAYS[-2].isoformat()
    for name in state.GOLD_TABLES:
        table = lake.change_table(name)
        a = rows_of(lake.gold_table(rebuilt["ran"], LAST, table))
        b = rows_of(lake.gold_table(rebuilt["full"], LAST, table))
        assert a == b, (rebuilt["name"], table)
    assert sum(c["rows"] for c in full["counts"].values()) > 0
    assert set(full["counts"]) == set(state.GOLD_TABLES) == {t.name for t in changes.wh.LATEST_STATE_TABLES}
