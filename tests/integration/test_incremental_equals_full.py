"""An incremental sequence of runs publishes what full runs publish (issue 17 item 4).

One generated city with dirty rows and withdrawals, four run dates across a month's start
(2026-11-30 .. 2026-12-03), run twice in this process through the DAG's stages
(``pipeline.run_stages``: gate, ingest, validate, build, publish, push), each run with its own lake,
warehouse and outbox and the same landing folder:

- **incremental**: each date folded from the checkpoint of the date before, only the touched
  operators scored, the latest state published as change sets, the per-run tables' partitions
  loaded (decisions 0110-0113);
- **full**: each date with ``full=True`` (``ecredit run --full``): every applied delivery folded
  again, everyone scored; its change sets are taken against every row.

On the way psb's delivery of 12-01 is broken in transit (rejected) and amr's delivery of 12-02 (the
registry increment, penalties, lists, spot checks, complaints) is not there: amr is ``missing`` on
12-02. Both warehouses and outboxes must be the same, table for table and row for row (aside: the
columns that name a run or a wall-clock time). Then amr's delivery arrives and both runs take the
dates from 12-02 on again (a backfill that starts mid-sequence: the incremental one folds from the
checkpoint of 12-01); the same comparison holds again, and the late delivery changed the tables.

The dates were chosen so that the window edges happen on days the incremental run scored only
its touched operators (the last test says which edges, computed from the published tables): a
record's window ending, a spot check and a complaint leaving their windows, the verification age
crossing 180 or 365 days, R_NEW's 180 days ending, a licence expiring.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from ecredit import pipeline
from ecredit.core import lake
from ecredit.core import rules as rules_mod
from ecredit.core import settings as settings_mod
from ecredit.warehouse import schema as wh
from tests.helpers import outbox_files, warehouse_snapshot

ROOT = Path(__file__).resolve().parents[2]
DAYS = [dt.date(2026, 11, 30) + dt.timedelta(days=i) for i in range(4)]  # 11-30 .. 12-03
MONTH_START = dt.date(2026, 12, 1)
LATE = ("amr", dt.date(2026, 12, 2))  # missing on its date, arrives before the backfill
REJECTED = ("psb", dt.date(2026, 12, 1))  # its bytes no longer match its manifest
OPERATORS, SEED, DIRTY = 400, 29, 0.04
EDGES_FROM = dt.date(2026, 12, 2)  # the planted edges fall on 12-02 and 12-03


def plant_date(
    landing: Path, dept: str, day: dt.date, name: str, column: str, value: dt.date, used: set, where=None
) -> str:
    """Set ``column`` of one clean row of ``dept``'s file ``name`` dated ``day`` (an operator with a
    USCC not in ``used``, nor named where ``later`` says, the column an ISO date, the columns of ``where`` these values) to
    ``value``, the manifest's hash updated. Returns the operator's USCC (added to ``used``)."""
    import csv
    import hashlib
    import io

    from ecredit.core.feeds import feed

    path = landing / dept / day.isoformat() / name
    encoding = feed(dept, name).encoding
    data = path.read_bytes()
    term = b"\r\n" if b"\r\n" in data else b"\n"
    lines = data.split(term)  # line by line: the generator's dirt includes bytes no codec reads
    header = next(csv.reader([lines[0].decode(encoding)]))
    col, uscc = header.index(column), header.index("统一社会信用代码")
    # an operator that no later delivery of the file names (the generator re-sends its own versions,
    # which would win), nor any delivery of the days the edges fall on (a new row would touch it)
    later = b"".join(
        p.read_bytes()
        for p in landing.glob("*/*/*")
        if (p.name == name and p.parent.name > day.isoformat()) or p.parent.name >= EDGES_FROM.isoformat()
    )
    for n, raw in enumerate(lines[1:], start=1):
        try:
            row = next(csv.reader([raw.decode(encoding.replace("-sig", ""))]))
            ok = len(row) == len(header) and len(row[uscc]) == 18 and row[uscc] not in used
            ok = ok and row[uscc].encode() not in later
            ok = ok and data.count(row[0].encode(encoding.replace("-sig", ""))) == 1  # one version of its key
            ok = ok and all(row[header.index(k)] == v for k, v in (where or {}).items())
            ok = ok and bool(dt.date.fromisoformat(row[col]))
        except (ValueError, StopIteration):
            ok = False
        if ok:
            row[col] = value.isoformat()
            used.add(row[uscc])
            buf = io.StringIO(newline="")
            csv.writer(buf, lineterminator="").writerow(row)
            lines[n] = buf.getvalue().encode(encoding.replace("-sig", ""))
            break
    else:
        raise AssertionError(f"no row of {path} to plant")
    path.write_bytes(term.join(lines))
    manifest_path = path.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8"))
    next(f for f in manifest["files"] if f["name"] == name)["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return row[uscc]


def plant_edges(landing: Path) -> dict:
    """In the first date's deliveries, one operator each whose date-dependent input changes on
    12-02 or 12-03, days when the incremental run carries the untouched operators' scores."""
    days = lambda n, d=dt.date(2026, 12, 3): d - dt.timedelta(days=n)
    first, used = DAYS[0], set()
    return {
        "spot check": plant_date(landing, "amr", first, "spot_checks.csv", "抽查日期", days(1095), used),
        "complaint": plant_date(landing, "amr", first, "complaints.csv", "登记日期", days(365), used),
        "verified 180": plant_date(
            landing, "amr", first, "operators.csv", "最近核验日期", days(180, dt.date(2026, 12, 2)), used
        ),
        "verified 365": plant_date(landing, "amr", first, "operators.csv", "最近核验日期", days(365), used),
        "R_NEW": plant_date(landing, "amr", first, "operators.csv", "成立日期", days(180), used),
        "licence": plant_date(
            landing, "gds", first, "licenses.csv", "有效期至", dt.date(2026, 12, 2), used, {"许可状态": "有效"}
        ),
    }


# The incremental run's lake keeps three run dates (decision 115): 11-30's checkpoint and build are
# deleted after 12-03's publish, and the backfill from 12-02 still folds from 12-01's
KEEP_RUN_DATES = {"incremental": "3", "full": "31"}


def settings_at(root: Path, landing: Path, keep: str) -> settings_mod.Settings:
    return settings_mod.load(
        {
            "CREDIT_LAKE_KEEP_RUN_DATES": keep,
            "CREDIT_DATA_DIR": str(root),
            "CREDIT_LANDING_DIR": str(landing),
            "CREDIT_RULES": str(ROOT / "rules" / "default.yaml"),
            "CREDIT_PII_KEY": "equivalence-pii-key",
            "CREDIT_DRAW_SECRET": "equivalence-draw-secret",
        }
    )


def run_dates(spark, cfg, rules, days, full: bool) -> dict:
    """Run each date; return each date's note on how it was scored, read right after its run (a
    later publish may prune it from the lake)."""
    notes = {}
    for d in days:
        pipeline.run_stages(spark, cfg, d, run_id=f"run-{d}", rules=rules, stages=pipeline.STAGES, full=full)
        notes[d] = lake.read_json(lake.scored_note(cfg, d))
    return notes


def published(cfg) -> dict:
    return {"tables": warehouse_snapshot(cfg.warehouse_url), "outbox": outbox_files(cfg.outbox_dir)}


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    from ecredit.generate import generate

    base = tmp_path_factory.mktemp("incremental_equals_full")
    landing = base / "landing"
    summary = generate(landing, OPERATORS, DAYS, seed=SEED, dirty_rate=DIRTY, progress=lambda m: None)
    planted = plant_edges(landing)
    with open(landing / REJECTED[0] / REJECTED[1].isoformat() / "cases.jsonl", "ab") as f:
        f.write(b'{"case_id": "X-1"}\n')
    held = base / "held"
    shutil.move(landing / LATE[0] / LATE[1].isoformat(), held)
    rules = rules_mod.load(ROOT / "rules" / "default.yaml")
    cfg = {kind: settings_at(base / kind, landing, KEEP_RUN_DATES[kind]) for kind in ("incremental", "full")}
    out: dict = {"summary": summary, "cfg": cfg, "planted": planted}
    for kind, c in cfg.items():
        notes = run_dates(spark, c, rules, DAYS, full=kind == "full")
        kept = lake.run_dates(c)
        chains = {d: lake.checkpoint_chain(c, d) for d in kept}
        out[kind] = {"first": published(c), "scored": notes, "lake_run_dates": kept, "chains": chains}
    shutil.move(held, landing / LATE[0] / LATE[1].isoformat())  # it arrives: both take 11-30 on again
    again = [d for d in DAYS if d >= LATE[1]]
    for kind, c in cfg.items():
        out[kind]["rescored"] = run_dates(spark, c, rules, again, full=kind == "full")
        out[kind]["backfilled"] = published(c)
        out[kind]["folded"] = {d: lake.read_json(lake.folded_marker(c, d)) for d in again}
    return out


def differing(a: dict, b: dict) -> dict:
    """table or file -> a few of the rows one has and the other not."""
    out = {}
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name), b.get(name)
        if x != y:
            if isinstance(x, list) and isinstance(y, list):
                out[name] = sorted(set(x) ^ set(y))[:4]
            else:
                out[name] = "differs"
    return out


def test_the_incremental_run_folded_and_scored_incrementally(runs):
    """The comparison means something: the incremental run carried scores on the dates within a
    month, scored everyone on the month's first day, and its backfill folded from 12-01's checkpoint;
    the full run scored everyone every day."""
    inc, full = runs["incremental"], runs["full"]
    notes = inc["scored"]
    # the incremental lake kept three run dates and the dates their checkpoints' chains read
    # (decision 117: 11-30's full checkpoint stays while a kept delta is built on it), the full one all
    newest = DAYS[-3:]
    kept = set(newest) | {m for d in newest for m in inc["chains"][d]}
    assert inc["lake_run_dates"] == sorted(kept, reverse=True)
    assert all(inc["chains"][d] and inc["chains"][d][-1] == d for d in newest)
    assert full["lake_run_dates"] == sorted(DAYS, reverse=True)
    assert notes[DAYS[0]]["scored"] == "all"
    assert notes[MONTH_START]["scored"] == "all"
    carried = [d for d in DAYS[1:] if d != MONTH_START]
    assert carried, "the sequence has days within a month"
    for d in carried:
        assert notes[d]["carried_from"] == (d - dt.timedelta(days=1)).isoformat(), (d, notes[d])
        assert isinstance(notes[d]["scored"], int) and 0 < notes[d]["scored"] < OPERATORS, (d, notes[d])
    assert all(n["scored"] == "all" for n in full["scored"].values())
    assert inc["folded"][LATE[1]]["base"] == (LATE[1] - dt.timedelta(days=1)).isoformat()
    assert all(m["base"] is None for m in full["folded"].values())


def test_the_sequence_had_a_rejected_and_a_missing_delivery(runs):
    status = {
        (r["run_date"], r["dept"]): r["status"]
        for r in map(json.loads, runs["incremental"]["first"]["tables"]["feed_status"])
    }
    assert status.pop((LATE[1].isoformat(), LATE[0])) == "missing"
    assert status.pop((REJECTED[1].isoformat(), REJECTED[0])) == "rejected"
    assert len(status) == len(DAYS) * 9 - 2 and set(status.values()) <= {"ok", "partial"}, status
    # records withdrawn by a later delivery, and dirty rows set aside
    records = [json.loads(r) for r in runs["incremental"]["first"]["tables"]["fact_credit_record"]]
    assert any(r["withdrawn"] and r["source_delivery_date"] > DAYS[0].isoformat() for r in records)
    assert runs["incremental"]["first"]["tables"]["quarantine"]


def test_every_published_table_and_outbox_file_is_the_full_runs(runs):
    inc, full = runs["incremental"]["first"], runs["full"]["first"]
    assert set(inc["tables"]) == set(wh.metadata.tables) - set(wh.BOOKKEEPING_TABLES)
    assert not differing(inc["tables"], full["tables"])
    assert not differing(inc["outbox"], full["outbox"])
    # worth comparing: every date's scores, and rows in the tables the state and the scores make
    scored_dates = {r.split('"run_date": "')[1][:10] for r in inc["tables"]["operator_score"]}
    assert scored_dates == {d.isoformat() for d in DAYS}
    for t in ("dim_operator", "fact_credit_record", "fact_license", "quarantine", "supervision_measure"):
        assert inc["tables"][t], t


def test_after_a_backfill_from_mid_sequence_every_table_is_still_the_full_runs(runs):
    inc, full = runs["incremental"]["backfilled"], runs["full"]["backfilled"]
    assert not differing(inc["tables"], full["tables"])
    assert not differing(inc["outbox"], full["outbox"])
    # and the late delivery changed what was published
    changed = differing(runs["incremental"]["first"]["tables"], inc["tables"])
    assert {"feed_status", "fact_credit_record", "operator_score"} <= set(changed), sorted(changed)


def test_the_window_edges_fell_on_days_the_incremental_run_carried_scores(runs):
    """Computed from the published tables: on the days the incremental run scored only its touched
    operators, date-dependent inputs changed for operators without a new row that day."""
    rules = rules_mod.load(ROOT / "rules" / "default.yaml")
    carried = {d for d, n in runs["incremental"]["scored"].items() if n["scored"] != "all"}
    tables = {t: [json.loads(r) for r in rows] for t, rows in runs["full"]["backfilled"]["tables"].items()}
    day = dt.date.fromisoformat

    def on(value, plus=0):
        return value is not None and day(value) + dt.timedelta(days=plus) in carried

    p_id, p_q = rules.get("identity"), rules.get("quality_score")
    new_days = rules.get("class_rules")["R_NEW"]["established_days"]
    ops = tables["dim_operator"]
    edges = {
        "a record's window ends": [
            r for r in tables["fact_credit_record"] if not r["withdrawn"] and on(r["active_until"], 1)
        ],
        "a spot check leaves its window": [
            r for r in tables["fact_spot_check"] if on(r["check_date"], p_q["spot_check_days"])
        ],
        "a complaint leaves its window": [
            r for r in tables["fact_complaint"] if on(r["registered_date"], p_q["complaint_days"])
        ],
        "the verification age crosses 180 or 365 days": [
            r
            for r in ops
            if on(r["last_verified_date"], p_id["verified_recent_days"])
            or on(r["last_verified_date"], p_id["verified_days"])
        ],
        "R_NEW's days end": [r for r in ops if on(r["established_date"], new_days)],
        "a licence expires": [r for r in tables["fact_license"] if on(r["valid_to"], 1)],
    }
    print({k: len(v) for k, v in edges.items()}, sorted(carried))
    assert all(edges.values()), {k: len(v) for k, v in edges.items()}
