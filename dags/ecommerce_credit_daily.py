"""
# ecommerce_credit_daily

Credit supervision of Guangzhou e-commerce operators: the nine departments' daily deliveries in,
operator state, credit classes and inspection plans out.

**Schedule.** Daily at 02:00 Asia/Shanghai. The run date **D** is the `run_date` param when the run
is given one (`ecredit run --date D`, backfills, REST triggers with `conf: {"run_date": "YYYY-MM-DD"}`);
a scheduled run has none and processes the day before its trigger day: the 02:00 run of day X
processes X - 1, whose deliveries arrived overnight. A run processes the deliveries dated <= D.

**Tasks.**

1. `resolve_run_date` - works out D, validates the settings and the whole rules file (a wrong
   setting stops the run here with one sentence naming it). It is the run's setup task: when it
   fails, no other task runs (all upstream_failed).
2. One group per department (`amr`, `ndrc`, `cac`, `psb`, `commerce`, `finance`, `gds`, `post`,
   `customs`):
   - `wait_for_manifest` - a scheduled run waits (rescheduling every minute) until the department's
     manifest for D is there or `CREDIT_MANIFEST_DEADLINE` passes (the department is then `missing`);
     a run by hand does not wait;
   - `check_delivery` - the delivery-level gate (manifest, files, SHA-256, row counts, header).
   Then `validate` (after `ingest_and_build`), mapped over the departments, one instance named by
   each: the verdict on the parsed delivery: quarantined rows per reason, more than 20 % of a file
   quarantined rejects the delivery, volume warnings. A rejected delivery shows as a failed
   `validate [dept]`, a missing one as skipped; `departments_validated` joins them and the run goes
   on on the earlier deliveries (the state build leaves a rejected delivery out by the same
   verdict). A department's trouble marks that department and never blocks the run.
3. `take_lock` (setup) - the run's lock on its lake and warehouse: one run at a time writes them
   (`ecredit.core.runlock`). While another run holds it, this run waits at most `CREDIT_LOCK_TIMEOUT`
   seconds, then stops with one sentence naming that run. The writing tasks below hold it while
   they work; `release_lock` (teardown) gives it back once every task of the run is done, whatever
   their outcome.
4. `ingest_and_build` (Spark, `jobs/ingest_and_build.py --date D`, one application: the JVM starts
   once a date) - ingest: parse every delivery dated <= D not parsed before, run its feed's Great
   Expectations suite (`expectations/`) on it, land rows and quarantine; then the state build:
   the records folded forward from the last usable checkpoint (the `full` param, `ecredit run
   --date D --full`, folds every delivery again), operator state, scores, classes, inspection plans.
5. `data_docs` (after the verdicts) - renders the Great Expectations results of the deliveries
   dated D as one Data Docs site, `$CREDIT_LAKE_DIR/data_docs/D/index.html`; its log gives the link.
6. `publish` - D's gold layer to the warehouse in one transaction; its outlets are the published
   tables as Assets (`ecredit://warehouse/<table>`).
7. `push` - the outbox files for the departments; `report` - the run report,
   `$CREDIT_LAKE_DIR/reports/D/index.html` (classes and their change, feed status, class changes,
   Data Docs link); its log gives the link.

Every task retries once after 30 s and has an execution timeout; a failed task is recorded in the
warehouse's `pipeline_run` table. Spark jobs run against `SPARK_MASTER` (default `local[*]`).
The logic lives in the `ecredit` package (`ecredit.pipeline`, `jobs/`); this file is wiring only.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import DAG, Asset, CronTriggerTimetable, Param, TaskGroup, TriggerRule, task

from ecredit import pipeline
from ecredit.airflow.callbacks import (
    on_task_failure,
    release_run_lock,
    setting_errors_fail_fast,
    take_run_lock,
    writing_stage,
)
from ecredit.airflow.env import DAG_ID, FULL_TEMPLATE, RESOLVE_TASK_ID
from ecredit.airflow.operators import EcreditSparkSubmitOperator
from ecredit.core import feeds
from ecredit.core.settings import MAX_LOCK_TIMEOUT

SHANGHAI = "Asia/Shanghai"
# the warehouse tables a run publishes, as Airflow Assets (their lineage shows in the UI)
PUBLISHED_TABLES = (
    "dim_operator",
    "fact_credit_record",
    "fact_license",
    "fact_spot_check",
    "fact_complaint",
    "operator_score",
    "supervision_measure",
    "serious_dishonest_list",
    "dishonest_list_change",
    "risk_alert",
    "inspection_plan",
    "inspection_draw",
    "inspection_draw_input",
    "draw_commitment",
    "inspector",
    "feed_status",
    "dq_result",
    "quarantine",
)

default_args = {
    "owner": "ecredit",
    "retries": 1,
    "retry_delay": dt.timedelta(seconds=30),
    "execution_timeout": dt.timedelta(minutes=30),
    "on_failure_callback": on_task_failure,
}

with DAG(
    dag_id=DAG_ID,
    description="Department deliveries in; operator state, credit classes and inspection plans out.",
    schedule=CronTriggerTimetable("0 2 * * *", timezone=SHANGHAI),
    start_date=pendulum.datetime(2024, 1, 1, tz=SHANGHAI),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    params={
        "run_date": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            title="Run date D (YYYY-MM-DD)",
            description="The date to process; leave empty for a scheduled run (D = the day before).",
        ),
        "full": Param(
            False,
            type="boolean",
            title="Fold everything again (--full)",
            description="Fold every applied delivery dated <= D instead of starting from the last checkpoint.",
        ),
    },
    doc_md=__doc__,
    tags=["ecredit"],
) as dag:

    @task(task_id=RESOLVE_TASK_ID, multiple_outputs=True)
    def resolve_run_date(**context) -> dict:
        dag_run = context.get("dag_run")
        with setting_errors_fail_fast():
            return pipeline.resolve_run_date(
                (context.get("params") or {}).get("run_date"),
                context.get("logical_date"),
                getattr(dag_run, "run_after", None),
            )

    @task.sensor(
        task_id="wait_for_manifest",
        mode="reschedule",
        poke_interval=60,
        timeout=6 * 3600,
        execution_timeout=dt.timedelta(minutes=10),
    )
    def wait_for_manifest(dept: str, run_date: str, scheduled: bool) -> bool:
        with setting_errors_fail_fast():
            return pipeline.manifest_ready(dept, run_date, scheduled)

    @task(task_id="check_delivery", execution_timeout=dt.timedelta(minutes=30))
    def check_delivery(dept: str, run_date: str) -> dict:
        with setting_errors_fail_fast():
            return pipeline.check_delivery(dept, run_date)

    @task(
        task_id="validate",
        execution_timeout=dt.timedelta(minutes=15),
        map_index_template="{{ task.op_kwargs['dept'] }}",
    )
    def validate(dept: str, run_date: str) -> dict:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        with setting_errors_fail_fast():
            try:
                result = pipeline.validate(dept, run_date)
            except pipeline.DeliveryRejected as e:
                raise AirflowFailException(str(e)) from None  # the department shows red; the run goes on
        if result["status"] == "missing":
            raise AirflowSkipException(f"{dept}: no complete delivery dated {run_date} (missing)")
        return result

    @task(task_id="departments_validated", trigger_rule=TriggerRule.ALL_DONE, execution_timeout=dt.timedelta(minutes=5))
    def departments_validated(**context) -> None:
        """Joins the departments whatever their verdict; goes on only if the Spark job succeeded."""
        from airflow.sdk.exceptions import AirflowFailException

        if not context["ti"].xcom_pull(task_ids="ingest_and_build"):
            raise AirflowFailException("ingest_and_build did not succeed: nothing is published from partial data")

    # setup and teardown: the run's lock on its lake, from the first writing task until every task of
    # the run is done, whatever their outcome (ecredit.core.runlock); the writing tasks hold it while they work
    @task(
        task_id="take_lock",
        trigger_rule=TriggerRule.ALL_DONE,
        execution_timeout=dt.timedelta(seconds=MAX_LOCK_TIMEOUT + 600),
    )
    def take_lock(**context) -> None:
        take_run_lock(context)

    @task(task_id="release_lock", execution_timeout=dt.timedelta(minutes=5))
    def release_lock(**context) -> bool:
        return release_run_lock(context)

    @task(task_id="data_docs", execution_timeout=dt.timedelta(minutes=15))
    def data_docs(run_date: str, **context) -> str | None:
        with writing_stage(context, run_date):
            return pipeline.data_docs(run_date)

    @task(
        task_id="publish",
        execution_timeout=dt.timedelta(minutes=30),
        outlets=[Asset(name=t, uri=f"ecredit://warehouse/{t}", group="ecredit-warehouse") for t in PUBLISHED_TABLES],
    )
    def publish(run_date: str, **context) -> dict:
        with writing_stage(context, run_date):
            return pipeline.publish(run_date, context["run_id"])

    @task(task_id="report", execution_timeout=dt.timedelta(minutes=15))
    def report(run_date: str, **context) -> str:
        with writing_stage(context, run_date):
            return pipeline.report(run_date)

    @task(task_id="push", execution_timeout=dt.timedelta(minutes=15))
    def push(run_date: str, **context) -> dict:
        with writing_stage(context, run_date):
            return pipeline.push(run_date)

    # a setup task: its failure (a wrong setting) leaves every later task upstream_failed, the
    # all_done ones (take_lock, departments_validated) too; its direct downstream must be all_success,
    # so the Spark job follows it through the departments' checks
    resolved = resolve_run_date().as_setup()

    checked_all = []
    for dept, dept_name in feeds.DEPARTMENTS.items():
        with TaskGroup(group_id=dept, tooltip=dept_name):
            waited = wait_for_manifest(dept, resolved["run_date"], resolved["scheduled"])
            checked = check_delivery(dept, resolved["run_date"])
            waited >> checked
        checked_all.append(checked)
    # one verdict per department, after the shared Spark job: a task mapped over the departments and
    # named by them (a group holding it would make group -> ingest_and_build -> group a cycle in the graph)
    validated_all = validate.partial(run_date=resolved["run_date"]).expand(dept=list(feeds.DEPARTMENTS))

    # take_lock is all_done: a department's failure never blocks the run. The run date reaches the
    # Spark job as `--date {{ resolve_run_date's XCom }}` (EcreditSparkSubmitOperator's default
    # run_date template).
    # the run's Spark work in one application: the JVM starts once a date (issue 16)
    ingest_and_build = EcreditSparkSubmitOperator(
        task_id="ingest_and_build",
        job="ingest_and_build.py",
        extra_args=["--full", FULL_TEMPLATE],
        run_lock=True,
        execution_timeout=dt.timedelta(hours=4),
    )
    published = publish(resolved["run_date"])
    pushed = push(resolved["run_date"])
    reported = report(resolved["run_date"])
    docs = data_docs(resolved["run_date"])
    locked = take_lock().as_setup()

    joined = departments_validated()
    checked_all >> locked >> ingest_and_build >> validated_all >> joined
    ingest_and_build >> joined >> published >> [pushed, reported]
    joined >> docs
    [pushed, reported, docs] >> release_lock().as_teardown(setups=locked)
