"""The in-process runner (``ecredit run`` / ``ecredit backfill``) on tiny DAGs written to a tmp folder.

One DAG has the project's shape in small: ``resolve_run_date`` -> a Python task appending the run date
to a file -> an ``EcreditSparkSubmitOperator`` running a trivial PySpark application from tmp, which
appends what it received (date, master, interpreters, that ``import ecredit`` works). It is run twice
for the same date and once for another; a DAG whose task raises must give False. The timings of a
``DAG.test()`` run and of the trivial spark-submit are printed (``pytest -s``) and recorded as
properties (``--junitxml``).
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ecredit.airflow import runner

SMOKE_DAG = "ecredit_runner_smoke"
PY_ONLY_DAG = "ecredit_runner_python_only"
FAILING_DAG = "ecredit_runner_failing"
FAIL_FAST_DAG = "ecredit_runner_fail_fast"

SPARK_APP = """
import argparse, json, os, sys
from pyspark.sql import SparkSession

p = argparse.ArgumentParser()
p.add_argument("--date", required=True)
p.add_argument("--out", required=True)
a = p.parse_args()
import ecredit  # the repository is on the driver's PYTHONPATH

spark = SparkSession.builder.appName("ecredit-smoke").getOrCreate()
evens = spark.range(10).filter("id % 2 = 0").count()
executor_python = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("sys").executable).collect()[0]
with open(a.out, "a") as f:
    f.write(json.dumps({"date": a.date, "evens": evens, "master": spark.sparkContext.master,
                        "driver_python": sys.executable, "executor_python": executor_python,
                        "driver_host": spark.conf.get("spark.driver.host")}) + "\\n")
spark.stop()
"""

DAG_FILE = """
import pendulum
from airflow.sdk import DAG, task

from ecredit.airflow.env import RESOLVE_TASK_ID
from ecredit.airflow.operators import EcreditSparkSubmitOperator

OUT = {out!r}
APP = {app!r}
ARGS = dict(schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False,
            params={{"run_date": None}}, default_args={{"retries": 0}})


def _write_date(run_date, run_id):
    with open(OUT + "/python.txt", "a") as f:
        f.write(f"{{run_date}} {{run_id}}\\n")


with DAG("{smoke}", **ARGS):
    @task(task_id=RESOLVE_TASK_ID, multiple_outputs=True)
    def resolve(**context):
        return {{"run_date": context["params"]["run_date"], "scheduled": False}}

    @task
    def write_date(run_date, **context):
        _write_date(run_date, context["run_id"])

    resolved = resolve()
    spark = EcreditSparkSubmitOperator(task_id="spark", job=APP, extra_args=["--out", OUT + "/spark.txt"])
    resolved >> write_date(resolved["run_date"]) >> spark

with DAG("{py_only}", **ARGS):
    @task
    def only(**context):
        _write_date(context["params"]["run_date"], context["run_id"])

    only()

def _note_failure(context):
    with open(OUT + "/failures.txt", "a") as f:
        f.write(f"{{context['ti'].task_id}} try={{context['ti'].try_number}} {{context.get('exception')}}\\n")


with DAG("{fail_fast}", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False,
         params={{"run_date": None}},
         default_args={{"retries": 1, "retry_delay": 600, "on_failure_callback": _note_failure}}):
    EcreditSparkSubmitOperator(task_id="spark_without_date", job=APP,
                               run_date="{{{{ ti.xcom_pull(task_ids='nowhere') or '' }}}}")
    EcreditSparkSubmitOperator(task_id="spark_bad_setting", job=APP, run_date="{{{{ params.run_date }}}}")

with DAG("{failing}", **ARGS):
    @task
    def explode():
        raise RuntimeError("this task fails on purpose")

    explode()
"""


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, airflow_home):
    root = tmp_path_factory.mktemp("runner")
    dags, out = root / "dags", root / "out"
    dags.mkdir()
    out.mkdir()
    app = root / "smoke_app.py"
    app.write_text(SPARK_APP)
    (dags / "runner_smoke.py").write_text(
        textwrap.dedent(
            DAG_FILE.format(
                out=str(out),
                app=str(app),
                smoke=SMOKE_DAG,
                py_only=PY_ONLY_DAG,
                failing=FAILING_DAG,
                fail_fast=FAIL_FAST_DAG,
            )
        )
    )
    return {"dags": dags, "out": out}


@pytest.fixture(autouse=True)
def _settings_env(monkeypatch, tmp_path):
    """settings.load() needs a readable rules file; SPARK_MASTER unset means local[*]."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("# placeholder\n")
    monkeypatch.setenv("CREDIT_RULES", str(rules))
    monkeypatch.setenv("CREDIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SPARK_MASTER", raising=False)
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")


def _task_durations(dr) -> dict[str, float]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: float(ti.duration or 0) for ti in dr.get_task_instances(session=session)}


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_python_and_spark_tasks_run_and_a_date_can_be_rerun(smoke, record_property):
    out = smoke["out"]
    timings = []
    run_ids = []
    for date in ("2024-05-01", "2024-05-01", "2024-05-02"):
        t0 = time.monotonic()
        dr = runner.run_dag(date, dag_id=SMOKE_DAG, dags_folder=smoke["dags"])
        wall = time.monotonic() - t0
        assert str(getattr(dr.state, "value", dr.state)) == "success", f"{date}: {dr.state}"
        durations = _task_durations(dr)
        timings.append({"date": date, "wall_s": round(wall, 2), **{k: round(v, 2) for k, v in durations.items()}})
        run_ids.append(dr.run_id)

    assert len(set(run_ids)) == 3, run_ids  # every call is a distinct DAG run

    py_lines = _lines(out / "python.txt")
    assert [line.split()[0] for line in py_lines] == ["2024-05-01", "2024-05-01", "2024-05-02"]
    assert [line.split()[1] for line in py_lines] == run_ids

    spark_rows = [json.loads(line) for line in _lines(out / "spark.txt")]
    assert [r["date"] for r in spark_rows] == ["2024-05-01", "2024-05-01", "2024-05-02"]
    for r in spark_rows:
        assert r["evens"] == 5
        assert r["master"] == "local[*]"
        assert r["driver_host"] == "127.0.0.1"
        assert r["driver_python"] == sys.executable
        assert r["executor_python"] == sys.executable

    spark_s = [t["spark"] for t in timings]
    overhead = [round(t["wall_s"] - t["spark"] - t["resolve_run_date"] - t["write_date"], 2) for t in timings]
    record_property("runner_timings", json.dumps(timings))
    print(
        f"\n[timings] runs: {json.dumps(timings)}"
        f"\n[timings] spark-submit (trivial app): {spark_s} s"
        f"\n[timings] DAG.test overhead beyond task work: {overhead} s"
    )


def test_python_only_run_timing_and_bool_result(smoke, record_property):
    assert runner.run_dag_for_date("2024-06-01", dag_id=PY_ONLY_DAG, dags_folder=smoke["dags"])
    t0 = time.monotonic()
    assert runner.run_dag_for_date("2024-06-02", dag_id=PY_ONLY_DAG, dags_folder=smoke["dags"])
    wall = time.monotonic() - t0
    record_property("python_only_run_s", round(wall, 3))
    print(f"\n[timings] one DAG.test() run of a one-task Python DAG (warm process): {wall:.2f} s")


def test_a_failing_dag_returns_false(smoke):
    assert runner.run_dag_for_date("2024-05-01", dag_id=FAILING_DAG, dags_folder=smoke["dags"]) is False


def test_no_run_date_or_a_wrong_setting_fails_the_spark_task_at_once(smoke, monkeypatch):
    """A missing run date, and SPARK_MASTER=bogus (a SettingError), fail the Spark task without its
    retry (10 min away); the on_failure_callback runs once per task with the one-sentence reason."""
    monkeypatch.setenv("SPARK_MASTER", "bogus")
    t0 = time.monotonic()
    ok = runner.run_dag_for_date("2024-05-01", dag_id=FAIL_FAST_DAG, dags_folder=smoke["dags"])
    assert ok is False
    assert time.monotonic() - t0 < 60
    failures = sorted(_lines(smoke["out"] / "failures.txt"))
    assert len(failures) == 2, failures
    assert failures[0].startswith("spark_bad_setting try=1 ") and "SPARK_MASTER" in failures[0]
    assert failures[1].startswith("spark_without_date try=1 ") and "No run date" in failures[1]


def test_backfill_runs_in_order_and_stops_at_the_first_failure(smoke):
    before = _lines(smoke["out"] / "python.txt")
    assert runner.backfill("2024-07-01", "2024-07-03", dag_id=PY_ONLY_DAG, dags_folder=smoke["dags"])
    added = _lines(smoke["out"] / "python.txt")[len(before) :]
    assert [line.split()[0] for line in added] == ["2024-07-01", "2024-07-02", "2024-07-03"]

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        n_before = len(DagRun.find(dag_id=FAILING_DAG, session=session))
    assert runner.backfill("2024-07-01", "2024-07-03", dag_id=FAILING_DAG, dags_folder=smoke["dags"]) is False
    with create_session() as session:
        assert len(DagRun.find(dag_id=FAILING_DAG, session=session)) == n_before + 1  # stopped after one


def test_a_malformed_date_is_refused_before_airflow_runs(smoke):
    with pytest.raises(ValueError):
        runner.run_dag_for_date("2024-13-01", dag_id=PY_ONLY_DAG, dags_folder=smoke["dags"])


CONSOLE_RUN = """
import sys
from ecredit.airflow import runner

with runner.output_to_log_file(sys.argv[1]) as console:
    print("printed inside: to the log file")
    ok = runner.run_dag_for_date("2024-08-01", dag_id=sys.argv[2], dags_folder=sys.argv[3], console=console)
print("after:", "success" if ok else "FAILED")
"""


def test_the_console_has_one_line_per_task_and_the_log_file_the_rest(smoke, tmp_path):
    """What `ecredit run` does around the runner, in a process of its own (the file descriptors 1 and
    2 are redirected): the console gets the one line per task and the summary only; the log file
    gets Airflow's task logs, the operator's log and the spark-submit output (Spark's own lines)."""
    import os
    import subprocess

    log = tmp_path / "logs" / "run.log"
    proc = subprocess.run(
        [sys.executable, "-c", CONSOLE_RUN, str(log), SMOKE_DAG, str(smoke["dags"])],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{SMOKE_DAG} 2024-08-01:"
    tasks = [line.split() for line in lines[1:4]]
    assert [t[0] for t in tasks] == ["resolve_run_date", "write_date", "spark"]  # in the order they ran
    for t in tasks:
        assert t[1] == "success" and float(t[2]) >= 0 and t[3] == "s", t
    assert lines[4].startswith(f"== {SMOKE_DAG} manual__") and ": success in " in lines[4]
    assert lines[5:] == ["after: success"], lines
    assert proc.stderr == ""
    text = log.read_text("utf-8", "replace")
    assert "printed inside: to the log file" in text
    assert "starting task_id=spark" in text  # Airflow's test runner
    submit = next(line for line in text.splitlines() if "Spark-Submit cmd: spark-submit" in line)  # the hook's
    assert "--date 2024-08-01" in submit
    assert "SparkContext: Running Spark version" in text  # the application's own output, from the child
