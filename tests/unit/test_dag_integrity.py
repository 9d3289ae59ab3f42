"""The DAG file parses, has the shape operations.md describes, and the Spark master is resolved right.

Nothing here runs a task or Spark. The Airflow environment lives in a temporary AIRFLOW_HOME for the
whole session (see ``airflow_home``).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ecredit.airflow import callbacks
from ecredit.airflow import env as airflow_env
from ecredit.core import feeds
from ecredit.core.settings import PROJECT_ROOT

DAGS = PROJECT_ROOT / "dags"


@pytest.fixture(scope="session")
def dagbag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="session")
def dag(dagbag):
    return dagbag.dags[airflow_env.DAG_ID]


@pytest.fixture()
def rules_file(tmp_path) -> Path:
    p = tmp_path / "rules.yaml"
    p.write_text("# placeholder rules for settings.load()\n")
    return p


def test_dags_folder_loads_without_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert airflow_env.DAG_ID in dagbag.dags


def test_one_group_per_department_with_wait_and_check(dag):
    assert len(feeds.DEPARTMENTS) == 9
    groups = dag.task_group.children
    for dept, name in feeds.DEPARTMENTS.items():
        assert dept in groups, dept
        group = groups[dept]
        assert group.tooltip == name
        assert set(group.children) == {f"{dept}.wait_for_manifest", f"{dept}.check_delivery"}
        wait = dag.get_task(f"{dept}.wait_for_manifest")
        check = dag.get_task(f"{dept}.check_delivery")
        assert check.task_id in wait.downstream_task_ids
        assert "resolve_run_date" in wait.upstream_task_ids
        assert wait.mode == "reschedule" and wait.poke_interval == 60
        assert wait.timeout >= 3 * 3600
        assert "take_lock" in check.downstream_task_ids
    validate = dag.get_task("validate")  # mapped over the departments, each instance named by one
    assert "ingest_and_build" in validate.upstream_task_ids
    assert validate.downstream_task_ids == {"departments_validated"}
    assert validate.op_kwargs_expand_input.value["dept"] == list(feeds.DEPARTMENTS)
    assert validate.map_index_template == "{{ task.op_kwargs['dept'] }}"


def test_task_groups_form_no_cycle_in_the_graph_view(dag):
    """The UI draws groups as nodes: a group upstream and downstream of the same task is a cycle
    and the graph view fails (it did when validate lived in the department groups)."""
    edges = set()
    top = {}
    for t in dag.tasks:
        top[t.task_id] = t.task_id.split(".", 1)[0]
    for t in dag.tasks:
        for d in t.downstream_task_ids:
            if top[t.task_id] != top[d]:
                edges.add((top[t.task_id], top[d]))
    seen, stack = set(), set()

    def visit(n):
        if n in stack:
            raise AssertionError(f"cycle through {n}")
        if n in seen:
            return
        stack.add(n)
        for a, b in edges:
            if a == n:
                visit(b)
        stack.discard(n)
        seen.add(n)

    for n in set(top.values()):
        visit(n)


def test_spark_tasks_use_the_spark_provider_operator(dag):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    spark_tasks = [t for t in dag.tasks if isinstance(t, SparkSubmitOperator)]
    # one Spark application per run: the JVM starts once a date (issue 16)
    assert [t.task_id for t in spark_tasks] == ["ingest_and_build"]
    for task_id, job in (("ingest_and_build", "ingest_and_build.py"),):
        t = dag.get_task(task_id)
        assert isinstance(t, SparkSubmitOperator), task_id
        from ecredit.airflow.operators import EcreditSparkSubmitOperator

        assert isinstance(t, EcreditSparkSubmitOperator)
        assert Path(t.application) == PROJECT_ROOT / "jobs" / job
        assert t.application_args[0] == "--date"
        assert "resolve_run_date" in t.application_args[1] and "{{" in t.application_args[1]
        assert t.application_args[2:] == ["--full", airflow_env.FULL_TEMPLATE]
        assert t._conn_id == airflow_env.SPARK_CONN_ID
        assert t.run_lock is True  # the job writes the lake: under its run's lock
    # a department's failure never blocks the run: the lock is taken whatever the gates say
    assert str(dag.get_task("take_lock").trigger_rule) in ("all_done", "TriggerRule.ALL_DONE")


def test_order_of_the_main_line(dag):
    # take_lock follows resolve_run_date through the departments' checks (a setup task's direct
    # downstream must be all_success, and take_lock is all_done); ingest follows take_lock
    assert dag.get_task("take_lock").upstream_task_ids == {f"{d}.check_delivery" for d in feeds.DEPARTMENTS}
    assert dag.get_task("ingest_and_build").upstream_task_ids == {"take_lock"}
    assert dag.get_task("validate").upstream_task_ids - {"resolve_run_date"} == {"ingest_and_build"}
    joined = dag.get_task("departments_validated")
    assert joined.upstream_task_ids == {"ingest_and_build", "validate"}
    assert str(joined.trigger_rule) in ("all_done", "TriggerRule.ALL_DONE")  # a rejected department never blocks
    # the Data Docs are rendered once every department's verdict is in, beside publish
    assert dag.get_task("data_docs").upstream_task_ids - {"resolve_run_date"} == {"departments_validated"}
    # publish and push also read D from resolve_run_date's XCom (an XComArg edge)
    assert dag.get_task("publish").upstream_task_ids - {"resolve_run_date"} == {"departments_validated"}
    assert dag.get_task("push").upstream_task_ids - {"resolve_run_date"} == {"publish"}
    assert dag.get_task("report").upstream_task_ids - {"resolve_run_date"} == {"publish"}
    assert dag.get_task("resolve_run_date").upstream_task_ids == set()


def test_a_failed_first_task_stops_every_other_task(dag):
    """resolve_run_date is the run's setup task: when it fails (a wrong setting), every task after
    it is upstream_failed, the all_done ones (ingest, departments_validated) included."""
    first = dag.get_task("resolve_run_date")
    assert first.is_setup and not first.is_teardown
    assert first.get_flat_relative_ids(upstream=False) == {t.task_id for t in dag.tasks} - {first.task_id}
    for t in first.downstream_list:
        assert str(t.trigger_rule) in ("all_success", "TriggerRule.ALL_SUCCESS"), t.task_id


def test_the_run_lock_spans_every_writing_task(dag):
    """take_lock (setup) before the first writing task; release_lock (teardown) after the last,
    run whatever the tasks between them did; its outcome is not the run's (Airflow's teardown)."""
    from ecredit.core.settings import MAX_LOCK_TIMEOUT

    take, release = dag.get_task("take_lock"), dag.get_task("release_lock")
    assert take.is_setup and release.is_teardown and not release.on_failure_fail_dagrun
    assert release.upstream_task_ids == {"take_lock", "push", "report", "data_docs"}
    assert str(release.trigger_rule) in ("all_done_setup_success", "TriggerRule.ALL_DONE_SETUP_SUCCESS")
    between = take.get_flat_relative_ids(upstream=False) & release.get_flat_relative_ids(upstream=True)
    assert {"ingest_and_build", "validate", "data_docs", "publish", "push", "report"} <= between
    assert take.execution_timeout.total_seconds() > MAX_LOCK_TIMEOUT  # a wait never ends as a task timeout


def test_every_task_has_retries_timeout_and_failure_callback(dag):
    for t in dag.tasks:
        assert t.retries >= 1, t.task_id
        assert t.retry_delay <= dt.timedelta(minutes=5), t.task_id
        assert isinstance(t.execution_timeout, dt.timedelta) and t.execution_timeout > dt.timedelta(0), t.task_id
        got = t.on_failure_callback
        got = got if isinstance(got, list) else [got]
        assert callbacks.on_task_failure in got, t.task_id


def test_schedule_is_0200_shanghai_and_params(dag):
    tt = dag.timetable
    assert type(tt).__name__ == "CronTriggerTimetable"
    assert tt.expression == "0 2 * * *"
    assert str(getattr(tt.timezone, "name", tt.timezone)) == "Asia/Shanghai"
    assert dag.catchup is False
    assert dag.params["run_date"] is None
    assert (dag.doc_md or "").strip()
    assert "run_date" in dag.doc_md


def test_the_dag_serializes(dag):
    from airflow.serialization.serialized_objects import DagSerialization

    data = DagSerialization.serialize_dag(dag)
    assert data["dag_id"] == airflow_env.DAG_ID


def test_failure_callback_never_raises(monkeypatch):
    from ecredit import pipeline

    def boom(*a, **k):
        raise RuntimeError("warehouse down")

    monkeypatch.setattr(pipeline, "record_failure", boom)
    callbacks.on_task_failure({})  # no ti, no run id: still quiet
    callbacks.on_task_failure({"run_id": "r", "exception": ValueError("x"), "params": {"run_date": "2024-05-01"}})


@pytest.mark.parametrize("module", ["env", "callbacks", "runner", "ui"])
def test_importing_the_airflow_glue_does_not_import_airflow(module):
    """Only the DAG file and the tasks import ``ecredit.airflow.operators`` (which imports Airflow);
    the CLI imports the rest before it has set Airflow's configuration."""
    code = f"import sys, ecredit.airflow.{module}; print('airflow' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
        env={**_clean_env(), "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert out.stdout.strip() == "False", out.stderr


def test_the_operator_is_a_plain_module_level_class(dag):
    from ecredit.airflow import operators

    cls = operators.EcreditSparkSubmitOperator
    assert cls.__module__ == "ecredit.airflow.operators" and cls.__qualname__ == "EcreditSparkSubmitOperator"
    assert type(dag.get_task("ingest_and_build")) is cls


def test_the_operator_reads_the_run_date_once_and_fails_fast_without_one(dag):
    from airflow.sdk.exceptions import AirflowFailException

    from ecredit.airflow.operators import EcreditSparkSubmitOperator

    op = EcreditSparkSubmitOperator(task_id="t", job="ingest.py", run_date="2026-11-03")
    assert op._run_date() == "2026-11-03"
    with pytest.raises(AirflowFailException, match="No run date for u"):
        EcreditSparkSubmitOperator(task_id="u", job="ingest.py", run_date="")._run_date()
    assert EcreditSparkSubmitOperator(task_id="v", job="ingest.py", application_args=["--x"])._run_date() is None


def test_resolved_run_date_and_run_date_of():
    class TI:
        def __init__(self, got):
            self.got = got

        def xcom_pull(self, task_ids):
            assert task_ids == "resolve_run_date"
            return self.got

    assert callbacks.resolved_run_date({"ti": TI({"run_date": "2026-11-03", "scheduled": False})}) == "2026-11-03"
    assert callbacks.resolved_run_date({"ti": TI(None)}) is None
    assert callbacks.run_date_of({"ti": TI(None), "params": {"run_date": "2026-11-02"}}) == "2026-11-02"
    assert callbacks.run_date_of({}) is None


def _clean_env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SPARK_MASTER"))}


# --- Spark master resolution -----------------------------------------------------------------------


def test_spark_master_defaults_to_local_and_follows_SPARK_MASTER(rules_file):
    assert airflow_env.spark_master({"CREDIT_RULES": str(rules_file)}) == "local[*]"
    env = {"CREDIT_RULES": str(rules_file), "SPARK_MASTER": "spark://127.0.0.1:7077"}
    assert airflow_env.spark_master(env) == "spark://127.0.0.1:7077"


@pytest.mark.parametrize("master", ["local[*]", "local[2]", "spark://127.0.0.1:7077"])
def test_the_spark_hook_passes_the_master_through(airflow_home, monkeypatch, master):
    """The connection we write makes the provider's hook say ``--master <SPARK_MASTER>`` (never yarn)."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    conn_json = airflow_env.spark_connection_json(master)
    assert json.loads(conn_json) == {"conn_type": "spark", "host": master}
    monkeypatch.setenv(airflow_env.spark_conn_env_var(), conn_json)
    hook = SparkSubmitHook(conn_id=airflow_env.SPARK_CONN_ID, conf=airflow_env.spark_conf())
    assert hook._connection["master"] == master
    assert hook._connection["deploy_mode"] is None  # client mode: env vars reach the driver
    cmd = hook._build_spark_submit_command("/x/app.py")
    assert cmd[0] == "spark-submit"
    assert cmd[cmd.index("--master") + 1] == master
    assert "spark.driver.host=127.0.0.1" in cmd


def test_child_env_uses_the_venv_spark_submit_and_python(rules_file):
    from ecredit.core import settings

    s = settings.load({"CREDIT_RULES": str(rules_file)})
    env = airflow_env.spark_child_env(s)
    first_on_path = Path(env["PATH"].split(":")[0])
    assert (first_on_path / "spark-submit").is_file()
    assert env["PYSPARK_PYTHON"] == sys.executable
    assert env["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert str(PROJECT_ROOT) in env["PYTHONPATH"].split(":")
    assert env["CREDIT_RULES"] == str(rules_file)
    assert env["SPARK_MASTER"] == "local[*]"


def test_job_path_resolves_under_jobs():
    assert airflow_env.job_path("ingest.py") == PROJECT_ROOT / "jobs" / "ingest.py"
    assert airflow_env.job_path("/abs/app.py") == Path("/abs/app.py")


def test_failure_callback_records_pipeline_failures_not_department_ones(monkeypatch):
    from types import SimpleNamespace

    from ecredit import pipeline

    calls = []
    monkeypatch.setattr(pipeline, "record_failure", lambda *a: calls.append(a))
    callbacks.on_task_failure(
        {
            "ti": SimpleNamespace(task_id="validate"),
            "run_id": "r",
            "exception": ValueError("rejected"),
            "params": {"run_date": "2026-11-02"},
        }
    )
    assert calls == []
    callbacks.on_task_failure(
        {
            "ti": SimpleNamespace(task_id="build_state"),
            "run_id": "r",
            "exception": ValueError("boom"),
            "params": {"run_date": "2026-11-02"},
        }
    )
    assert len(calls) == 1 and calls[0][2] == "build_state"


def test_publish_declares_the_published_tables_as_assets(dag):
    from ecredit.warehouse import schema as warehouse

    uris = {a.uri for a in dag.get_task("publish").outlets}
    want = {f"ecredit://warehouse/{t}" for t in warehouse.metadata.tables if t not in warehouse.BOOKKEEPING_TABLES}
    assert uris == want


def test_a_small_job_runs_its_driver_jvm_with_c1_only(tmp_path, monkeypatch):
    """The Spark task sizes the driver's JVM by the rows the job reads (every accepted delivery
    dated <= D, by the manifests): C1 only up to ``ecredit.spark.C1_MAX_ROWS``, the JVM's defaults
    above it and for an application without ``--date``."""
    from ecredit import spark as spark_mod
    from ecredit.airflow.operators import EcreditSparkSubmitOperator
    from ecredit.core import settings as settings_mod
    from ecredit.generate import generate
    from ecredit.ingest import gate

    d1, d2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
    generate(tmp_path / "landing", 30, [d1, d2], seed=3, progress=lambda m: None)
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(tmp_path), "CREDIT_PII_KEY": "k"})
    for dept in feeds.DEPARTMENTS:
        gate.check(cfg, dept, d1)
    rows_d1 = sum(f["rows"] for f in gate.accepted_files(cfg, d1))
    assert rows_d1 > 0
    conf = EcreditSparkSubmitOperator._jvm_conf
    small = "-XX:TieredStopAtLevel=1"
    big = "-XX:-DontCompileHugeMethods"  # a big job's JVM compiles Spark's huge generated methods

    def both(java: str) -> dict:
        return {"spark.driver.extraJavaOptions": java, "spark.executor.extraJavaOptions": java}

    assert conf(cfg, d1.isoformat()) == both(small)
    assert conf(cfg, None) == {}
    monkeypatch.setattr(spark_mod, "C1_MAX_ROWS", rows_d1 - 1)
    assert conf(cfg, d1.isoformat()) == both(big)
    monkeypatch.setattr(spark_mod, "C1_MAX_ROWS", rows_d1)
    assert conf(cfg, d1.isoformat()) == both(small)
    assert spark_mod.driver_java_options(None) == big
    assert spark_mod.driver_java_options(10**9) == big


def test_a_small_job_runs_without_code_generation_and_adaptive_execution():
    """``spark.tuning_for``: below ``SMALL_ROWS`` no whole-stage code generation and no adaptive
    query execution (they cost more than they save there); ``tune`` turns both back on for a
    bigger stage of the same application."""
    from ecredit import spark as spark_mod

    small = spark_mod.tuning_for(10_000)
    assert small["spark.sql.codegen.wholeStage"] == "false" and small["spark.sql.adaptive.enabled"] == "false"
    assert small["spark.sql.shuffle.partitions"] == "1"
    big = spark_mod.tuning_for(spark_mod.SMALL_ROWS)
    assert "spark.sql.codegen.wholeStage" not in big and "spark.sql.adaptive.enabled" not in big

    class Conf:
        def __init__(self):
            self.values = {}

        def set(self, k, v):
            self.values[k] = v

    class Session:
        conf = Conf()

    s = Session()
    spark_mod.tune(s, 10_000)  # type: ignore[arg-type]
    assert s.conf.values["spark.sql.adaptive.enabled"] == "false"
    spark_mod.tune(s, spark_mod.SMALL_ROWS)  # type: ignore[arg-type]
    assert s.conf.values["spark.sql.adaptive.enabled"] == "true"
    assert s.conf.values["spark.sql.codegen.wholeStage"] == "true"


def test_later_tasks_imports_are_warmed_only_by_an_in_process_runner(tmp_path, monkeypatch):
    """While an in-process run (``ecredit run``) waits for spark-submit, a thread imports what the
    later tasks need (Great Expectations for the Data Docs); a task process of a scheduler starts
    nothing."""
    from ecredit.airflow import operators
    from ecredit.core import runlock

    name = f"warm_probe_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(operators, "LATER_TASKS_IMPORT", (name,))
    assert operators.warm_imports() is None and name not in sys.modules  # not an in-process runner
    with runlock.in_process_runner():
        thread = operators.warm_imports()
        assert thread is not None
        thread.join(30)
    assert sys.modules[name].LOADED is True
    with runlock.in_process_runner():
        assert operators.warm_imports() is None  # imported already: nothing to do
    monkeypatch.undo()
    assert "ecredit.quality.expectations" in operators.LATER_TASKS_IMPORT


@pytest.mark.parametrize("params,want", [({"full": True}, "true"), ({"full": False}, "false"), ({}, "false")])
def test_the_full_param_reaches_the_spark_job(dag, params, want):
    """`ecredit run --date D --full` puts ``full`` in the run's conf; the job gets ``--full true``
    (and its argument parser turns it into a bool, see jobs/_common.py)."""
    import jinja2

    assert dag.params["full"] is False
    assert jinja2.Template(airflow_env.FULL_TEMPLATE).render(params=params) == want


@pytest.mark.parametrize(
    "argv,full",
    [([], False), (["--full"], True), (["--full", "true"], True), (["--full", "false"], False)],
)
def test_the_jobs_read_full(monkeypatch, argv, full):
    sys.path.insert(0, str(PROJECT_ROOT / "jobs"))
    try:
        import _common
    finally:
        sys.path.remove(str(PROJECT_ROOT / "jobs"))
    monkeypatch.setattr(sys, "argv", ["job", "--date", "2026-11-03", *argv])
    args = _common.parse_args("a job")
    assert args.full is full and str(args.date) == "2026-11-03"
