"""What `make demo` prints (`ecredit demo`: ecredit/ops/cli.py `cmd_demo`, the text of
`report.summary`): every number of the summary equals what the warehouse holds, counted here
with plain SQL and, where the warehouse allows, by another route (natural persons by their missing
USCC, orphans by the registry, risk alerts from their own table, rejected deliveries from
dq_result); the paths are where the data is. On the end-to-end data (a rejected delivery, draws) and
the dirty city (quarantined rows by reason), without another demo run; and `ecredit demo` prints
that summary of its last date (its generation and DAG runs replaced by copying a finished run)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ecredit.outputs import report
from tests.integration.conftest import DATES, PII_KEY

pytestmark = pytest.mark.integration
DEPTS = ("amr", "ndrc", "cac", "psb", "commerce", "finance", "gds", "post", "customs")


def use(monkeypatch, root: Path, rules=None):
    """The environment `ecredit demo` sets: CREDIT_DATA_DIR and nothing that overrides it."""
    for var in ("CREDIT_LANDING_DIR", "CREDIT_LAKE_DIR", "CREDIT_OUTBOX_DIR", "CREDIT_WAREHOUSE_URL", "CREDIT_RULES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CREDIT_DATA_DIR", str(root))
    monkeypatch.setenv("CREDIT_PII_KEY", PII_KEY)
    if rules:
        monkeypatch.setenv("CREDIT_RULES", str(rules))


def parse(summary: str) -> dict:
    """The summary's numbers, read back from its text."""
    lines = summary.splitlines()
    out = {}
    m = re.search(r"^operators: (\d+) \((\d+) natural persons", summary, re.M)
    out["operators"], out["natural"] = int(m[1]), int(m[2])
    m = re.search(r"^credit records: (\d+) \((\d+) active at (\S+), (\d+) about operators not in the registry\)", summary, re.M)
    out["records"], out["active"], out["active_at"], out["orphans"] = int(m[1]), int(m[2]), m[3], int(m[4])
    m = re.search(r"^supervision classes at (\S+): A (\d+), B (\d+), C (\d+), D (\d+) \(risk alerts: (\d+)\)", summary, re.M)
    out["classes_at"] = m[1]
    out["classes"] = dict(zip("ABCD", map(int, m.groups()[1:5])))
    out["alerts"] = int(m[6])
    i = lines.index("active records by type:")
    out["by_type"] = {}
    for line in lines[i + 1:]:
        if not line.strip():
            break
        t, n = line.split()
        out["by_type"][t] = int(n)
    i = next(k for k, line in enumerate(lines) if line.startswith("feed status of "))
    out["feed_status_of"] = lines[i][len("feed status of "):-1]
    out["feed_status"] = {}
    for line in lines[i + 2:]:
        if not line.strip():
            break
        dept, status, rows_in, loaded, quarantined = line.split()
        out["feed_status"][dept] = (status, int(rows_in), int(loaded), int(quarantined))
    m = re.search(r"^rows quarantined in all deliveries so far: (\d+)(?: \((.*)\))?$", summary, re.M)
    out["quarantined"] = int(m[1])
    out["by_reason"] = {code: int(n) for code, n in (x.split() for x in m[2].split(", "))} if m[2] else {}
    out["rejected"] = int(re.search(r"^deliveries rejected: (\d+) ", summary, re.M)[1])
    out["paths"] = dict(re.findall(r"^  (warehouse|lake|outbox|data docs|landing) +(\S+)", summary, re.M))
    return out


def warehouse_says(url: str, d: str) -> dict:
    """The same numbers, counted here."""
    with create_engine(url).connect() as c:
        def one(sql, **p):
            return c.execute(text(sql), p).scalar()

        def all_(sql, **p):
            return [tuple(r) for r in c.execute(text(sql), p)]

        reasons = Counter(code for (rs,) in all_("SELECT reasons FROM quarantine") for code in rs.split(","))
        return {
            "operators": one("SELECT count(*) FROM dim_operator"),
            "natural": one("SELECT count(*) FROM dim_operator WHERE uscc IS NULL"),
            "records": one("SELECT count(*) FROM fact_credit_record"),
            "active": one("SELECT count(*) FROM fact_credit_record WHERE active"),
            "active_at": str(one("SELECT max(updated_run_date) FROM dim_operator")),
            "orphans": one("SELECT count(*) FROM fact_credit_record WHERE operator_key NOT IN "
                           "(SELECT operator_key FROM dim_operator)"),
            "classes_at": d,
            "classes": {k: one("SELECT count(*) FROM operator_score WHERE run_date = :d AND final_class = :k", d=d, k=k)
                        for k in "ABCD"},
            "alerts": one("SELECT count(*) FROM risk_alert WHERE run_date = :d", d=d),
            "by_type": dict(all_("SELECT record_type, count(*) FROM fact_credit_record WHERE active GROUP BY record_type")),
            "feed_status_of": d,
            "feed_status": {r[0]: tuple(r[1:]) for r in all_(
                "SELECT dept, status, rows_in, rows_loaded, rows_quarantined FROM feed_status WHERE run_date = :d", d=d)},
            "quarantined": one("SELECT count(*) FROM quarantine"),
            "by_reason": dict(reasons),
            "rejected": one("SELECT count(*) FROM (SELECT DISTINCT dept, delivery_date FROM dq_result "
                            "WHERE \"check\" = 'delivery_gate' AND NOT success)"),
        }


@pytest.mark.parametrize("city", ["e2e", "dirty_e2e"])
def test_the_summary_is_what_the_warehouse_holds(request, monkeypatch, city):
    run = request.getfixturevalue(city)
    root = run["root"]
    use(monkeypatch, root, run.get("rules"))
    got = parse(report.summary(dt.date.fromisoformat(DATES[-1])))
    paths = got.pop("paths")
    want = warehouse_says(run["warehouse"], DATES[-1])
    assert got == want
    assert set(got["feed_status"]) == set(DEPTS) and sum(got["classes"].values()) > 50
    assert got["rejected"] == (1 if city == "e2e" else 0)
    if city == "dirty_e2e":  # every reason code the city holds, with its rows
        assert got["quarantined"] > 50 and len(got["by_reason"]) >= 6
    assert paths == {"warehouse": f"sqlite:///{root / 'warehouse.db'}", "lake": str(root / "lake"),
                     "outbox": str(root / "outbox"), "landing": str(root / "landing"),
                     "data docs": str(root / "lake" / "data_docs" / DATES[-1] / "index.html")}
    assert Path(paths["data docs"]).is_file() and (Path(paths["outbox"]) / "amr" / DATES[-1]).is_dir()


def test_ecredit_demo_prints_the_summary_of_its_last_date(e2e, monkeypatch, tmp_path, capsys):
    """`ecredit demo` with its generation and DAG runs replaced: the DAG runs are a copy of the
    end-to-end run's data. It runs every date in order and prints report.summary of the last."""
    from ecredit import generate
    from ecredit.airflow import support as airflow_support
    from ecredit.ops import cli

    data = tmp_path / "demo"
    calls = []

    def fake_generate(out, operators, dates, seed, dirty_rate, progress=None):
        calls.append(("generate", Path(out), operators, [d.isoformat() for d in dates]))

    def fake_run(run_date, *a, **k):
        calls.append(("run", run_date))
        if len(calls) == 2:  # what the DAG runs would have left
            for sub in ("landing", "lake", "outbox"):
                shutil.copytree(e2e["root"] / sub, data / sub)
            shutil.copy(e2e["root"] / "warehouse.db", data / "warehouse.db")
        return True

    monkeypatch.setattr(generate, "generate", fake_generate)
    monkeypatch.setattr(airflow_support, "prepare_airflow_env", lambda *a, **k: None)
    monkeypatch.setattr(airflow_support, "run_dag_for_date", fake_run)
    use(monkeypatch, tmp_path / "elsewhere", e2e["rules"])  # the demo points CREDIT_DATA_DIR at --data-dir
    monkeypatch.setenv("CREDIT_LAKE_DIR", str(tmp_path / "not-the-demo's"))  # ... and drops the overrides
    assert cli.main(["demo", "--data-dir", str(data), "--operators", "150", "--dates", ",".join(DATES)]) == 0
    out = capsys.readouterr().out
    assert calls == [("generate", data / "landing", 150, DATES), *(("run", d) for d in DATES)]
    use(monkeypatch, data, e2e["rules"])
    summary = report.summary(dt.date.fromisoformat(DATES[-1]))
    assert summary in out and parse(out) == parse(summary)
    assert f"run report: {(data / 'lake' / 'reports' / DATES[-1] / 'index.html').as_uri()}" in out
