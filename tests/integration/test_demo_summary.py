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
    m = re.search(
        r"^credit records: (\d+) \((\d+) active at (\S+), (\d+) about operators not in the registry\)", summary, re.M
    )
    out["records"], out["active"], out["active_at"], out["orphans"] = int(m[1]), int(m[2]), m[3], int(m[4])
    m = re.search(
        r"^supervision classes at (\S+): A (\d+), B (\d+), C (\d+), D (\d+) \(risk alerts: (\d+)\)", summary, re.M
    )
    out["classes_at"] = m[1]
    out["classes"] = dict(zip("ABCD", map(int, m.groups()[1:5])))
    out["alerts"] = int(m[6])
    i = lines.index("active records by type:")
    out["by_type"] = {}
    for line in lines[i + 1 :]:
        if not line.strip():
            break
        t, n = line.split()
        out["by_type"][t] = int(n)
    i = next(k for k, line in enumerate(lines) if line.startswith("feed status of "))
    out["feed_status_of"] = lines[i][len("feed status of ") : -1]
    out["feed_status"] = {}
    for line in lines[i + 2 :]:
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
            "active_at": str(one("SELECT max(run_date) FROM feed_status")),
            "orphans": one(
                "SELECT count(*) FROM fact_credit_record WHERE operator_key NOT IN "
                "(SELECT operator_key FROM dim_operator)"
            ),
            "classes_at": d,
            "classes": {
                k: one("SELECT count(*) FROM operator_score WHERE run_date = :d AND final_class = :k", d=d, k=k)
                for k in "ABCD"
            },
            "alerts": one("SELECT count(*) FROM risk_alert WHERE run_date = :d", d=d),
            "by_type": dict(
                all_("SELECT record_type, count(*) FROM fact_credit_record WHERE active GROUP BY record_type")
            ),
            "feed_status_of": d,
            "feed_status": {
                r[0]: tuple(r[1:])
                for r in all_(
                    "SELECT dept, status, rows_in, rows_loaded, rows_quarantined FROM feed_status WHERE run_date = :d",
                    d=d,
                )
            },
            "quarantined": one("SELECT count(*) FROM quarantine"),
            "by_reason": dict(reasons),
            "rejected": one(
                "SELECT count(*) FROM (SELECT DISTINCT dept, delivery_date FROM dq_result "
                "WHERE \"check\" = 'delivery_gate' AND NOT success)"
            ),
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
    assert paths == {
        "warehouse": f"sqlite:///{root / 'warehouse.db'}",
        "lake": str(root / "lake"),
        "outbox": str(root / "outbox"),
        "landing": str(root / "landing"),
        "data docs": str(root / "lake" / "data_docs" / DATES[-1] / "index.html"),
    }
    assert Path(paths["data docs"]).is_file() and (Path(paths["outbox"]) / "amr" / DATES[-1]).is_dir()


def test_ecredit_demo_prints_the_summary_of_its_last_date(e2e, monkeypatch, tmp_path, capsys):
    """`ecredit demo` with its generation and DAG runs replaced: the DAG runs are a copy of the
    end-to-end run's data. It runs every date in order and prints report.summary of the last, a
    progress bar for the generation and the runs, and sends what the runs write to its log file."""
    import os

    from ecredit import generate
    from ecredit.airflow import env as airflow_env
    from ecredit.airflow import runner
    from ecredit.ops import cli

    data = tmp_path / "demo"
    calls = []

    def fake_generate(out, operators, dates, seed, dirty_rate, progress=None):
        calls.append(("generate", Path(out), operators, [d.isoformat() for d in dates]))
        for d in dates:  # what the generator says, file by file, once a date is written
            for f in ("operators.csv", "licenses.csv"):
                progress(f"generate: amr {d} {f} 10 rows")

    def fake_run(run_date, *a, console=None, **k):
        calls.append(("run", run_date))
        os.write(1, f"task log chatter of {run_date}\n".encode())  # what Airflow's tasks write
        console.line(f"  a_task  success  1.0 s ({run_date})")
        if len(calls) == 2:  # what the DAG runs would have left
            for sub in ("landing", "lake", "outbox"):
                shutil.copytree(e2e["root"] / sub, data / sub)
            shutil.copy(e2e["root"] / "warehouse.db", data / "warehouse.db")
        return True

    monkeypatch.setattr(generate, "generate", fake_generate)
    monkeypatch.setattr(airflow_env, "prepare_airflow_env", lambda *a, **k: None)
    monkeypatch.setattr(runner, "run_dag_for_date", fake_run)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))  # where the log file goes
    monkeypatch.delenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", raising=False)
    use(monkeypatch, tmp_path / "elsewhere", e2e["rules"])  # the demo points CREDIT_DATA_DIR at --data-dir
    monkeypatch.setenv("CREDIT_LAKE_DIR", str(tmp_path / "not-the-demo's"))  # ... and drops the overrides
    assert cli.main(["demo", "--data-dir", str(data), "--operators", "150", "--dates", ",".join(DATES)]) == 0
    out = capsys.readouterr().out
    assert calls == [("generate", data / "landing", 150, DATES), *(("run", d) for d in DATES)]
    use(monkeypatch, data, e2e["rules"])
    summary = report.summary(dt.date.fromisoformat(DATES[-1]))
    assert summary in out and parse(out) == parse(summary)
    assert f"run report: {(data / 'lake' / 'reports' / DATES[-1] / 'index.html').as_uri()}" in out
    # the console: the log file's name first, a bar per generated date and per run, the task lines
    logs = sorted((tmp_path / "airflow" / "logs" / "console").glob("ecredit-demo-*.log"))
    assert len(logs) == 1 and out.splitlines()[0] == f"demo: Airflow, Spark and GX logs in {logs[0]}"
    bars = [line for line in out.splitlines() if line.startswith("[")]
    assert bars == [
        "[###.......] 1/3 dates generated",
        "[#######...] 2/3 dates generated",
        "[##########] 3/3 dates generated",
        "[###.......] 1/3 dates",
        "[#######...] 2/3 dates",
        "[##########] 3/3 dates",
    ]
    assert all(f"  a_task  success  1.0 s ({d})" in out for d in DATES)
    # ... and the log file: the generator's messages and what the runs wrote, none of it on the console
    logged = logs[0].read_text("utf-8")
    for d in DATES:
        assert f"task log chatter of {d}" in logged and f"task log chatter of {d}" not in out
        assert f"generate: amr {d} operators.csv 10 rows" in logged and "generate: amr" not in out


def test_ecredit_run_and_backfill_print_one_line_per_task_and_log_the_rest(e2e):
    """The end-to-end fixture's `ecredit run` and `ecredit backfill` (real DAG, spark-submit, GX): the
    console has the log file's name, one line per task instance of each run (name, state, seconds),
    the run's summary, a bar per date of the backfill and the result; the Airflow task logs, the
    Spark applications' output and the Great Expectations output are in the log file."""
    from tests.integration.conftest import log_file

    want = {
        "resolve_run_date",
        "take_lock",
        "ingest_and_build",
        "departments_validated",
        "data_docs",
        "publish",
        "push",
        "report",
        "release_lock",
    }
    want |= {f"{d}.{t}" for d in DEPTS for t in ("wait_for_manifest", "check_delivery")}
    want |= {f"validate[{d}]" for d in DEPTS}
    for args, dates in (
        (f"run --date {DATES[0]}", DATES[:1]),
        (f"backfill --from {DATES[1]} --to {DATES[-1]}", DATES[1:]),
    ):
        proc = e2e["runs"][args]["proc"]
        lines = proc.stdout.splitlines()
        name = args.split()[0]
        path = log_file(proc)
        assert path.is_file() and path.name.startswith(f"ecredit-{name}-") and path.parent.name == "console"
        assert lines[0].startswith(f"ecredit {name} ") and lines[-1].endswith(": success"), lines
        at = 1
        for i, d in enumerate(dates):
            assert lines[at] == f"ecommerce_credit_daily {d}:", lines[at]
            tasks = lines[at + 1 : at + 1 + len(want)]
            got = {}
            for line in tasks:
                task, state, seconds, unit = line.split()
                assert unit == "s" and float(seconds) >= 0, line
                got[task] = state
            assert set(got) == want, sorted(set(got) ^ want)
            assert got["resolve_run_date"] == got["publish"] == got["release_lock"] == "success", got
            at += 1 + len(want)
            assert lines[at].startswith("== ecommerce_credit_daily manual__") and ": success in " in lines[at]
            at += 1
            if name == "backfill":
                filled = "#" * round(10 * (i + 1) / len(dates))
                assert lines[at] == f"[{filled:.<10}] {i + 1}/{len(dates)} dates", lines[at]
                at += 1
        assert lines[at:] == [lines[-1]], lines[at:]  # nothing else on the console
        assert len(proc.stderr.splitlines()) < 5, proc.stderr[-3000:]
        logged = path.read_text("utf-8", "replace")
        for d in dates:
            assert "starting task_id=ingest" in logged and f"--date {d}" in logged
        assert "Spark-Submit cmd: spark-submit" in logged and "SparkContext" in logged
        assert "great_expectations" in logged.lower() or "expectation" in logged.lower()
        for task in want:  # every task's own log is in the file (Airflow's test runner marks its end)
            assert f"end task task_id={task.split('[')[0]} " in logged, task
        assert len(logged.splitlines()) > 5 * len(lines)  # the bulk is in the log file (about 9x on two dates)
        assert not any(" [info " in line or " WARN " in line or "INFO" in line for line in lines), lines
