"""The DAG's Python tasks. Each function is what one Airflow task calls; the Spark stages are the
applications under ``jobs/`` (submitted with the Spark provider's operator). Nothing here knows
about Airflow objects beyond plain values, so every function is callable from a test.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo

from ecredit.core import settings as settings_mod
from ecredit.core.records import DeliveryStatus

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def resolve_run_date(
    run_date_param: str | None, logical_date: dt.datetime | None, run_after: dt.datetime | None = None
) -> dict:
    """The run date D (operations.md) and whether the run waits for manifests.

    D is the ``run_date`` param when given (runs by hand, backfills, REST triggers); otherwise the
    calendar day before the run's logical date in Asia/Shanghai. Settings are validated here, at
    the first task, so a wrong setting stops the run with one sentence naming it: the variables,
    the whole rules file (``rules.load``: a ``RulesError`` names CREDIT_RULES and the key) and the
    warehouse.
    """
    from ecredit.core import rules
    from ecredit.warehouse import publish

    cfg = settings_mod.load(check_landing=True)
    rules.load(cfg.rules_path)  # a malformed rules file stops the run here, not in nine validate tasks
    publish.connect(cfg).dispose()  # an unreachable or unmigrated warehouse stops the run here, named
    if run_date_param:
        try:
            d = dt.date.fromisoformat(str(run_date_param))
        except ValueError:
            raise settings_mod.SettingError(
                f"The DAG param run_date must be a date YYYY-MM-DD, not {run_date_param!r}."
            ) from None
        return {"run_date": d.isoformat(), "scheduled": False}
    when = logical_date or run_after
    if when is None:
        raise settings_mod.SettingError("The run has neither a run_date param nor a logical date.")
    d = when.astimezone(SHANGHAI).date() - dt.timedelta(days=1)
    return {"run_date": d.isoformat(), "scheduled": True}


def manifest_ready(dept: str, run_date: str, scheduled: bool) -> bool:
    """Sensor poke: True when the department's manifest for D is there, or when the run does not
    wait (by hand) or the deadline has passed (the department is then ``missing``)."""
    from ecredit.ingest import gate as delivery

    return delivery.manifest_ready(settings_mod.load(), dept, dt.date.fromisoformat(run_date), scheduled)


def check_delivery(dept: str, run_date: str) -> dict:
    """Delivery-level gate for the department's delivery dated D (manifest, files, SHA-256, row
    counts, header). Returns the gate result; a bad delivery is a result, never an exception."""
    from ecredit.ingest import gate as delivery

    return delivery.check(settings_mod.load(), dept, dt.date.fromisoformat(run_date))


class DeliveryRejected(Exception):
    """The department's delivery dated D was rejected (the department is marked, the run goes on)."""


def validate(dept: str, run_date: str) -> dict:
    """The verdict on the department's delivery dated D, after ingest: logged with its reasons,
    per-reason counts and warnings; ``DeliveryRejected`` when it was rejected, so the department
    shows as failed in the Airflow UI while the run goes on."""
    from ecredit.core import lake, rules
    from ecredit.quality import verdict as validation

    cfg = settings_mod.load()
    v = validation.verdict(cfg, rules.load(cfg.rules_path), dept, dt.date.fromisoformat(run_date))
    for f in v.files:
        log.info(
            "%s %s: %d rows in, %d loaded, %d quarantined %s",
            dept,
            f.name,
            f.rows_in,
            f.rows_loaded,
            f.rows_quarantined,
            dict(f.per_reason) or "",
        )
    for w in v.warnings:
        log.warning("%s %s: %s", dept, run_date, w)
    quarantined = v.rows_quarantined
    status = v.status.published(quarantined)  # feed_status's words
    summary = {
        "dept": dept,
        "run_date": run_date,
        "status": str(status),
        "reasons": list(v.reasons),
        "warnings": list(v.warnings),
        "rows_quarantined": quarantined,
    }
    if status == DeliveryStatus.PARTIAL:
        log.warning(
            "%s %s: %d rows quarantined (see rejections.csv in the department's outbox)", dept, run_date, quarantined
        )
    log.info(
        "%s: GX results of this delivery: %s (rendered by the data_docs task)",
        dept,
        lake.data_docs_index(cfg, run_date).as_uri(),
    )
    if v.status == DeliveryStatus.REJECTED:
        raise DeliveryRejected(f"{dept}: the delivery of {run_date} is rejected: " + "; ".join(v.reasons))
    if v.status == DeliveryStatus.MISSING:
        log.warning(
            "%s: no complete delivery dated %s: the department is missing; the state keeps its earlier deliveries",
            dept,
            run_date,
        )
    return summary


def data_docs(run_date: str) -> str | None:
    """Render the run's Data Docs (the GX results of every delivery dated D) and log the link."""
    from ecredit.quality import expectations

    d = dt.date.fromisoformat(run_date)
    index = expectations.build_docs(settings_mod.load(), d)
    if index is None:
        log.warning(
            "Data Docs: no delivery dated %s was validated by GX (all missing or rejected at the gate)", run_date
        )
        return None
    log.info("Data Docs for %s: %s", run_date, index.as_uri())
    return index.as_uri()


def take_lock(run_date: str, run_id: str) -> None:
    """The run's lock on its lake (``ecredit.core.runlock``): taken before the first writing task, waited
    for at most ``CREDIT_LOCK_TIMEOUT`` seconds while another run holds it (then ``LockHeld``, one
    sentence naming that run). The PII key's check of ``settings.load`` runs again under the lock:
    a run that held it may have made the parsed rows since this run's first task."""
    from ecredit.core import runlock

    cfg = settings_mod.load(check_landing=True)
    runlock.acquire(cfg, run_id, run_date, cfg.lock_timeout)
    try:
        settings_mod.load(check_landing=True)
    except settings_mod.SettingError:
        runlock.release(cfg, run_id)
        raise


def release_lock(run_id: str) -> bool:
    """Give the run's lock back (the DAG's teardown, once every task of the run is done)."""
    from ecredit.core import runlock

    return runlock.release(settings_mod.load(), run_id)


def holding_lock(run_date: str | None, run_id: str, task: str):
    """Context manager for a writing task: it works under its run's lock (``runlock.holding``)."""
    from ecredit.core import runlock

    return runlock.holding(settings_mod.load(), run_id, run_date, task)


def publish(run_date: str, run_id: str) -> dict:
    """Publish D's gold layer to the warehouse in one transaction; record the attempt; then prune
    the lake's older run dates (``publish_and_prune``)."""
    return publish_and_prune(settings_mod.load(), dt.date.fromisoformat(run_date), run_id)


def publish_and_prune(cfg, run_date: dt.date, run_id: str) -> dict:
    """``publish_run``, then, once it succeeded, the lake's ``state/`` and ``gold/`` folders of the
    run dates before D beyond the newest ``CREDIT_LAKE_KEEP_RUN_DATES`` deleted (decision 115): the
    lake's cost per run date stays bounded; the warehouse keeps every run (warehouse.md)."""
    from ecredit.core import lake
    from ecredit.warehouse import publish as publish_mod

    out = publish_mod.publish_run(cfg, run_date, run_id)
    gone = lake.prune_run_dates(cfg, run_date, cfg.lake_keep_run_dates)
    if gone:
        log.info("lake: deleted state/ and gold/ of %d run date(s) from %s to %s", len(gone), gone[0], gone[-1])
    out["lake_pruned"] = [d.isoformat() for d in gone]
    return out


def push(run_date: str) -> dict:
    """Write the outbox files of D."""
    from ecredit.outputs import outbox

    return outbox.push(settings_mod.load(), dt.date.fromisoformat(run_date))


def report(run_date: str) -> str:
    """Write the run's HTML report (classes, feed status, class changes, Data Docs) and log the link."""
    from ecredit.outputs import report as report_mod

    path = report_mod.html_report(dt.date.fromisoformat(run_date))
    log.info("Run report for %s: %s", run_date, path.as_uri())
    return path.as_uri()


def clear_reason(reason: str) -> str:
    """The failure's reason with what matters first. A Spark task's exception is the Spark
    provider's ``Cannot execute: <command>. Error code is: N.`` followed by the application's last
    output lines: a killed application (137 = 128 + SIGKILL) is said so, and the application's own
    last exception line (``...Error: one sentence``) is put in front."""
    import re

    head = []
    if re.search(r"Error code is: (137|-9)\b", reason):
        head.append(
            "the Spark application was killed (SIGKILL: out of memory, kill -9 or a lost machine); "
            "files it parsed without writing their done-markers are parsed again by a rerun of the date"
        )
    if "Last spark-submit output:" in reason:
        tail = reason.split("Last spark-submit output:", 1)[1].splitlines()
        raised = [ln.strip() for ln in tail if re.match(r"^\s*[\w.]+(Error|Exception|Full|Damaged): ", ln)]
        if raised:
            head.append(raised[-1])
    return "; ".join(head + [reason]) if head else reason


def record_failure(run_date: str | None, run_id: str, task_id: str, reason: str) -> None:
    """Failure callback: append the failed attempt to ``pipeline_run`` (when the warehouse is
    down, ``publish.record_failed_run`` keeps it in the lake until it is back)."""
    from ecredit.warehouse import publish as publish_mod

    publish_mod.record_failed_run(settings_mod.load(), run_date, run_id, f"{task_id}: {clear_reason(reason)}")


#: The DAG's stages that write, in the DAG's order, as :func:`run_stages` runs them in one process.
STAGES = ("gate", "ingest", "validate", "build", "publish", "push")
#: What :func:`run_stages` runs unless told: the gates, ingest, the state build, publish, the outbox
#: (the verdicts of ``validate`` only read; the bench adds them).
DEFAULT_STAGES = ("gate", "ingest", "build", "publish", "push")


def run_stages(
    spark,
    cfg: settings_mod.Settings,
    run_date: dt.date,
    *,
    run_id: str | None = None,
    rules=None,
    depts=None,
    stages=DEFAULT_STAGES,
    until: str | None = None,
    around=None,
    after=None,
    full: bool = False,
) -> dict:
    """The DAG's stages for D in this process and one Spark session, without Airflow (tests, the
    bench): the same functions the DAG's tasks and Spark jobs call, in the DAG's order
    ``gate -> ingest -> validate -> build -> publish -> push``. Written once here (issue 15).

    :param run_id: ``pipeline_run``'s run id for publish (default ``run-<D>``).
    :param rules: the rules (default ``rules.load(cfg.rules_path)``), for ``validate`` and ``build``.
    :param depts: the departments gated and judged (default all of ``feeds.DEPARTMENTS``).
    :param stages: which of :data:`STAGES` to run (in :data:`STAGES`' order whatever the order given).
    :param until: stop after this stage.
    :param around: ``around(stage)`` -> a context manager wrapped around each stage (timing, patches).
    :param after: ``after(stage, result)`` called once a stage is done, before the next (a test
        asserts the gates' verdicts there, before ingest runs).
    :param full: the build folds every applied delivery and scores everyone (``ecredit run --full``).

    Returns ``{stage: result}``: ``gate`` and ``validate`` ``{dept: gate result / verdict}``,
    ``ingest`` ``ingest.run``'s, ``build`` ``state.build``'s, ``publish`` ``publish.publish_run``'s,
    ``push`` ``outbox.push``'s. A gate's verdict is a result, never an exception: the caller checks it.
    """
    from contextlib import nullcontext

    from ecredit.core import feeds
    from ecredit.core import rules as rules_mod

    unknown = set(stages) - set(STAGES) | ({until} - set(STAGES) if until else set())
    if unknown:
        raise ValueError(f"run_stages: unknown stage(s) {sorted(unknown)}; the stages are {STAGES}")
    wanted = [s for s in STAGES if s in stages]
    if until:
        wanted = [s for s in wanted if STAGES.index(s) <= STAGES.index(until)]
    depts = tuple(depts or feeds.DEPARTMENTS)
    rule_set = rules
    if rule_set is None and ({"validate", "build"} & set(wanted)):
        rule_set = rules_mod.load(cfg.rules_path)
    around = around or (lambda stage: nullcontext())
    out: dict = {}
    for stage in wanted:
        with around(stage):
            if stage == "gate":
                from ecredit.ingest import gate

                out[stage] = {dept: gate.check(cfg, dept, run_date) for dept in depts}
            elif stage == "ingest":
                from ecredit.ingest import load

                out[stage] = load.run(spark, cfg, run_date)
            elif stage == "validate":
                from ecredit.quality import verdict

                out[stage] = {dept: verdict.verdict(cfg, rule_set, dept, run_date) for dept in depts}
            elif stage == "build":
                from ecredit.state import build

                out[stage] = build.build(spark, cfg, rule_set, run_date, full=full)
            elif stage == "publish":
                out[stage] = publish_and_prune(cfg, run_date, run_id or f"run-{run_date}")
            else:
                from ecredit.outputs import outbox

                out[stage] = outbox.push(cfg, run_date)
        if after is not None:
            after(stage, out[stage])
    return out
