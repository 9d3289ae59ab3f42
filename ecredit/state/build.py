"""The state as of run date D: the latest-wins fold of every applied delivery dated <= D, mapped to
the canonical model (operators, credit records with record type / severity / active window,
evaluations, spot checks, complaints, licences, inspectors).

Every function from ``fold`` on takes and returns DataFrames (no I/O) and is tested on small
DataFrames; ``build`` reads the parsed rows and writes ``lake/state/<D>/`` and ``lake/gold/<D>/``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from contextlib import contextmanager
from functools import reduce
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ecredit.core import lake
from ecredit.core.feeds import CREDIT, FEEDS
from ecredit.core.rules import SEVERITIES, Rules, to_decimal
from ecredit.core.settings import Settings
from ecredit.ingest import load as ingest
from ecredit.quality import verdict as validation
from ecredit.scoring import draw
from ecredit.scoring import score as scoring
from ecredit.state import changes, rescore
from ecredit.state import fold as fold_mod
from ecredit.warehouse import publish
from ecredit.warehouse import schema as wh

log = logging.getLogger(__name__)

AMOUNT = T.DecimalType(20, 2)
RECORD_COLUMNS = [
    "record_key",
    "operator_key",
    "dept",
    "feed_id",
    "record_type",
    "polarity",
    "severity",
    "event_date",
    "active_until",
    "withdrawn",
    "amount_yuan",
    "source_delivery_date",
    "source_line",
]


# ---------------------------------------------------------------- reading and folding


def _feed(folded: fold_mod.Folded, feed_id: str) -> DataFrame:
    """One feed's folded rows (``fold.folded_state``'s, or any rows with one version per record
    key) with its own columns only: a feed's ~15 columns of the wide row's ~90."""
    return fold_mod.feed_rows(folded, next(x for x in FEEDS if x.feed_id == feed_id))


def _date(c: str) -> Column:
    return F.to_date(F.col(c))


def _lookup(table: dict, field: str, column: str) -> Column:
    pairs = []
    for value, spec in table.items():
        v = spec.get(field, "negative" if field == "polarity" else None)
        pairs += [F.lit(value), F.lit(v)]
    return F.create_map(*pairs)[F.col(column)] if pairs else F.lit(None)


def _days(c: Column, n) -> Column:
    return F.date_add(c, F.lit(n) if not isinstance(n, Column) else n)


# ---------------------------------------------------------------- credit records (scoring.md §1)


def _base(df: DataFrame, rules: Rules, feed_id: str, type_column: str, event: Column) -> DataFrame:
    table = rules.record_type_table(feed_id)
    dept, stem = feed_id.split(".")
    return (
        df.withColumn("record_key", F.concat(F.lit(f"{dept}:{stem}:"), F.col("key_str")))
        .withColumn("record_type", _lookup(table, "type", type_column))
        .withColumn("polarity", _lookup(table, "polarity", type_column))
        .withColumn("severity", _lookup(table, "severity", type_column).cast("int"))
        .withColumn("event_date", event)
        .withColumn("source_delivery_date", _date("delivery_date"))
    )


def _default_until(rules: Rules) -> Column:
    days = F.create_map(*[x for s in SEVERITIES for x in (F.lit(s), F.lit(rules.default_window(s)))])
    return F.date_add(F.col("event_date"), (days[F.col("severity")] - 1).cast("int"))


def _finish(df: DataFrame, withdrawn: Column, until: Column, amount: Column | None = None) -> DataFrame:
    return (
        df.withColumn("withdrawn", F.coalesce(withdrawn, F.lit(False)))
        .withColumn("active_until", until)
        .withColumn("amount_yuan", (amount if amount is not None else F.lit(None)).cast(AMOUNT))
        .select(*RECORD_COLUMNS)
    )


def _bump(sev: Column, cond: Column, by: int) -> Column:
    """severity + ``by`` (the rules file's bump) where ``cond`` holds, never past the scale's top."""
    return F.when(cond, F.least(F.lit(SEVERITIES[-1]), sev + F.lit(int(by)))).otherwise(sev)


def penalties(folded: fold_mod.Folded, rules: Rules) -> DataFrame:
    p = rules.get("penalties")
    df = _base(_feed(folded, "amr.penalties"), rules, "amr.penalties", "violation_type", _date("decision_date"))
    light = F.col("penalty_category").isin(p["light_categories"])
    heavy = F.col("penalty_category").isin(p["heavy_categories"])
    amount = F.col("amount_10k_yuan").cast(T.DecimalType(24, 4)) * F.lit(10000)
    sev = (
        F.when(light, F.lit(int(p["light_severity"])))
        .when(heavy, F.lit(int(p["heavy_severity"])))
        .otherwise(F.col("severity"))
    )
    sev = _bump(
        sev,
        F.coalesce(amount >= F.lit(to_decimal(p["large_amount_yuan"])), F.lit(False)),
        p["large_amount_severity_bump"],
    )
    until = (
        F.when(F.col("publicity_end").isNotNull(), _date("publicity_end"))
        .when(light, _days(F.col("event_date"), p["light_window_days"] - 1))
        .otherwise(_days(F.col("event_date"), p["window_days"] - 1))
    )
    return _finish(df.withColumn("severity", sev), F.col("status") == "撤销", until, amount)


def amr_lists(folded: fold_mod.Folded, rules: Rules) -> DataFrame:
    df = _base(_feed(folded, "amr.lists"), rules, "amr.lists", "list_type", _date("listed_date"))
    off = F.date_sub(_date("removed_date"), 1)  # 移出日期 is the first day off the list
    auto = _days(F.col("event_date"), rules.get("lists.serious_max_days") - 1)
    serious = F.col("record_type") == "LIST_SERIOUS"
    until = F.when(serious, F.when(off.isNull(), auto).otherwise(F.least(off, auto))).otherwise(off)
    return _finish(df, F.lit(False), until)


def ndrc_lists(folded: fold_mod.Folded, rules: Rules) -> DataFrame:
    df = _base(_feed(folded, "ndrc.credit_lists"), rules, "ndrc.credit_lists", "list_type", _date("start_date"))
    return _finish(df, F.lit(False), F.date_sub(_date("end_date"), 1))


def cac(folded: fold_mod.Folded, rules: Rules) -> DataFrame:
    df = _base(_feed(folded, "cac.pi_violations"), rules, "cac.pi_violations", "violation_type", _date("found_date"))
    rectified = F.coalesce(F.col("rectification_status") == "已整改", F.lit(False))  # null = 未整改
    df = df.withColumn("severity", _bump(F.col("severity"), ~rectified, rules.get("cac.unrectified_severity_bump")))
    until = F.when(rectified, _days(F.col("event_date"), rules.get("cac.rectified_window_days") - 1))
    return _finish(df, F.col("withdrawn") == "是", until)


def psb(folded: fold_mod.Folded, rules: Rules) -> DataFrame:
    df = _base(_feed(folded, "psb.cases"), rules, "psb.cases", "case_type", _date("filed_at_date"))
    return _finish(df, F.col("status") == "撤案", _default_until(rules))


def _simple(
    folded: fold_mod.Folded,
    rules: Rules,
    feed_id: str,
    type_column: str,
    event: str,
    withdrawn: Column,
    amount: str | None,
) -> DataFrame:
    df = _base(_feed(folded, feed_id), rules, feed_id, type_column, _date(event))
    return _finish(df, withdrawn, _default_until(rules), F.col(amount) if amount else None)


def customs_violations(folded: fold_mod.Folded, rules: Rules) -> DataFrame:
    df = _base(
        _feed(folded, "customs.violations"), rules, "customs.violations", "violation_type", _date("decision_date")
    )
    amount = F.col("amount_yuan").cast(AMOUNT)
    p = rules.get("customs_violations")
    big = F.coalesce(amount >= F.lit(to_decimal(p["large_amount_yuan"])), F.lit(False))
    df = df.withColumn("severity", _bump(F.col("severity"), big, p["large_amount_severity_bump"]))
    return _finish(df, F.col("withdrawn") == "true", _default_until(rules), amount)


def customs_credit(folded: fold_mod.Folded, rules: Rules) -> DataFrame:
    """Every version is kept; the level in force at D is the one with the latest EFFECTIVE_DATE
    <= D. A version counts from its date until the day before the next version's date."""
    df = _base(
        _feed(folded, "customs.enterprise_credit"),
        rules,
        "customs.enterprise_credit",
        "credit_level",
        _date("effective_date"),
    )
    nxt = F.lead("event_date").over(Window.partitionBy("operator_key").orderBy("event_date"))
    df = df.withColumn("active_until", F.date_sub(nxt, 1)).filter(F.col("record_type").isNotNull())
    return _finish(df, F.lit(False), F.col("active_until"))


def credit_records(folded: fold_mod.Folded, rules: Rules) -> DataFrame:
    """All credit records of the state, timeless: activity at D is added by ``with_activity``."""
    parts = [
        penalties(folded, rules),
        amr_lists(folded, rules),
        ndrc_lists(folded, rules),
        cac(folded, rules),
        psb(folded, rules),
        _simple(
            folded, rules, "commerce.breaches", "breach_type", "decided_date", F.col("withdrawn") == "是", "amount_yuan"
        ),
        _simple(
            folded,
            rules,
            "finance.finance_risk",
            "risk_type",
            "decided_date",
            F.col("status") == "已结清",
            "amount_yuan",
        ),
        _simple(
            folded,
            rules,
            "post.express_violations",
            "violation_type",
            "handled_date",
            F.col("withdrawn") == "是",
            "amount_yuan",
        ),
        customs_violations(folded, rules),
        customs_credit(folded, rules),
    ]
    assert {f.feed_id for f in FEEDS if f.table == CREDIT} == {
        "amr.penalties",
        "amr.lists",
        "ndrc.credit_lists",
        "cac.pi_violations",
        "psb.cases",
        "commerce.breaches",
        "finance.finance_risk",
        "post.express_violations",
        "customs.violations",
        "customs.enterprise_credit",
    }
    return reduce(DataFrame.unionByName, parts)


def with_activity(records: DataFrame, operators: DataFrame, run_date: dt.date) -> DataFrame:
    """``active`` at D, ``in_registry``, and active_until null for a record that never counts."""
    d = F.lit(run_date)
    until = F.when(F.col("withdrawn"), F.lit(None).cast("date")).otherwise(F.col("active_until"))
    keys = operators.select("operator_key").distinct().withColumn("in_registry", F.lit(True))
    return (
        records.withColumn("active_until", until)
        .withColumn(
            "active",
            ~F.col("withdrawn")
            & (F.col("event_date") <= d)
            & (F.col("active_until").isNull() | (d <= F.col("active_until"))),
        )
        .join(keys, "operator_key", "left")
        .withColumn("in_registry", F.coalesce("in_registry", F.lit(False)))
    )


# ---------------------------------------------------------------- the other canonical tables


def operators(folded: fold_mod.Folded) -> DataFrame:
    return _feed(folded, "amr.operators").select(
        "operator_key",
        "uscc",
        "name",
        "subject_type",
        "district_code",
        "platform",
        "shop_url",
        "registration_status",
        "license_displayed",
        _date("last_verified_date").alias("last_verified_date"),
        _date("established_date").alias("established_date"),
        "natural_person",
        _date("delivery_date").alias("source_delivery_date"),
        "source_line",
    )


def _source() -> list:
    """The current version's origin: its delivery date and line."""
    return [_date("delivery_date").alias("source_delivery_date"), "source_line"]


def licences(folded: fold_mod.Folded) -> DataFrame:
    return _feed(folded, "gds.licenses").select(
        "operator_key",
        "licence_no",
        "licence_name",
        _date("valid_from").alias("valid_from"),
        _date("valid_to").alias("valid_to"),
        "licence_status",
        *_source(),
    )


def evaluations(folded: fold_mod.Folded) -> DataFrame:
    dec = T.DecimalType(7, 3)
    return _feed(folded, "commerce.evaluations").select(
        "operator_key",
        "platform",
        F.to_date(F.concat("eval_month", F.lit("-01"))).alias("eval_month"),
        *[
            F.col(c).cast(dec).alias(c)
            for c in ("overall_satisfaction", "product_quality", "brand_reputation", "after_sales")
        ],
        F.col("review_count").cast("long").alias("review_count"),
        F.col("deleted_review_count").cast("long").alias("deleted_review_count"),
    )


def spot_checks(folded: fold_mod.Folded) -> DataFrame:
    return _feed(folded, "amr.spot_checks").select(
        "operator_key", "check_no", "product_category", "result", _date("check_date").alias("check_date"), *_source()
    )


def complaints(folded: fold_mod.Folded) -> DataFrame:
    return _feed(folded, "amr.complaints").select(
        "operator_key",
        "complaint_no",
        "complaint_category",
        _date("registered_date").alias("registered_date"),
        "handling_status",
        "advance_compensation",
        *_source(),
    )


def facts(lic: DataFrame, spot: DataFrame, compl: DataFrame) -> dict[str, DataFrame]:
    """``fact_license``, ``fact_spot_check``, ``fact_complaint`` (warehouse.md): every licence, spot
    check and complaint of the state, the feed's columns with operator_key for the identifiers
    (the complainant's name and phone never leave ingestion), and the current version's origin."""
    return {
        "fact_license": lic.select(
            F.col("licence_no").alias("license_no"),
            "operator_key",
            F.col("licence_name").alias("license_name"),
            "valid_from",
            "valid_to",
            F.col("licence_status").alias("license_status"),
            "source_delivery_date",
            "source_line",
        ),
        "fact_spot_check": spot.select(
            "check_no",
            "operator_key",
            "product_category",
            "result",
            "check_date",
            "source_delivery_date",
            "source_line",
        ),
        "fact_complaint": compl.select(
            "complaint_no",
            "operator_key",
            "complaint_category",
            "registered_date",
            "handling_status",
            "advance_compensation",
            "source_delivery_date",
            "source_line",
        ),
    }


def inspectors(folded: fold_mod.Folded) -> DataFrame:
    return _feed(folded, "amr.inspectors").select("inspector_id", "name", "certificate_no", "unit", "on_duty")


# dim_operator's columns taken from the registry as they are (warehouse.md); the two after them are computed
REGISTRY_COLUMNS = [c.name for c in wh.dim_operator.columns if c.name not in ("valid_licenses", "updated_run_date")]


def dim_operator(ops: DataFrame, lic: DataFrame, run_date: dt.date) -> DataFrame:
    """The registry with each operator's count of valid licences at D, and ``updated_run_date``
    (decision 112): the latest date behind the row, of its registry version's delivery, its
    licences' deliveries, and the days its 有效 licences became valid (有效期自) or expired (the day
    after 有效期至) up to D. The row can have changed on no other day (a licence delivered again
    under another operator is the exception: the first operator's date stays)."""
    d = F.lit(run_date)
    effective = lic.filter(F.col("licence_status") == "有效")
    valid = (
        effective.filter((F.col("valid_from") <= d) & (F.col("valid_to").isNull() | (d <= F.col("valid_to"))))
        .groupBy("operator_key")
        .agg(F.count(F.lit(1)).alias("valid_licenses"))
    )
    expired = F.date_add(F.col("valid_to"), 1)
    licence_since = (
        lic.select("operator_key", F.col("source_delivery_date").alias("since"))
        .unionByName(
            effective.filter(F.col("valid_from") <= d).select("operator_key", F.col("valid_from").alias("since"))
        )
        .unionByName(effective.filter(expired <= d).select("operator_key", expired.alias("since")))
        .groupBy("operator_key")
        .agg(F.max("since").alias("licence_since"))
    )
    return (
        ops.join(valid, "operator_key", "left")
        .join(licence_since, "operator_key", "left")
        .select(
            *REGISTRY_COLUMNS,
            F.coalesce("valid_licenses", F.lit(0)).cast("int").alias("valid_licenses"),
            F.greatest("source_delivery_date", F.coalesce("licence_since", "source_delivery_date")).alias(
                "updated_run_date"
            ),
        )
    )


# ---------------------------------------------------------------- the job


def state_dir(settings: Settings, run_date: dt.date) -> Path:
    return lake.state_dir(settings, run_date)


def gold_dir(settings: Settings, run_date: dt.date) -> Path:
    return lake.gold_dir(settings, run_date)


STATE_TABLES = ("licences", "evaluations", "spot_checks", "complaints", "inspectors")
# what publish takes from gold/<D>/: the latest state, and the run date's rows of scoring.md
GOLD_TABLES = ("dim_operator", "fact_credit_record", "fact_license", "fact_spot_check", "fact_complaint")
RUN_TABLES = (
    "operator_score",
    "supervision_measure",
    "serious_dishonest_list",
    "dishonest_list_change",
    "risk_alert",
    "inspector",
    "inspection_plan",
    "inspection_draw",
    "draw_commitment",
)
BUILT_MARKER = lake.BUILT_MARKER  # written last by build: gold/<D>/ is whole (publish refuses it otherwise)
# the readers of gold (pyarrow on the driver: publish, the outbox and the draw check need no Spark)
gold_batches = lake.gold_batches
gold_arrow_batches = lake.gold_arrow_batches
gold_rows = lake.gold_rows
GOLD_BATCH = lake.GOLD_BATCH


# ---------------------------------------------------------------- the published past (the warehouse)


@contextmanager
def published(settings: Settings):
    """A connection to the warehouse, for reading what was published: the previous run date's
    rows and the draw commitments come from there (warehouse.md), never from lake markers that a
    kill after publish's commit can leave unwritten."""

    eng = publish.connect(settings)
    try:
        with eng.connect() as conn:
            yield conn
    finally:
        eng.dispose()


def _arrow_type(column):
    import pyarrow as pa
    from sqlalchemy import Boolean, Date, Integer, String

    for sa_type, pa_type in ((Boolean, pa.bool_()), (Date, pa.date32()), (Integer, pa.int32()), (String, pa.string())):
        if isinstance(column.type, sa_type):
            return pa_type
    raise TypeError(f"no Arrow type for {column} ({column.type})")


def published_frame(spark: SparkSession, conn, table: str, run_date: dt.date, columns: list[str]) -> DataFrame:
    """The published rows of a per-run table for ``run_date``, ``columns`` only, as a DataFrame
    (streamed from the warehouse in batches, handed to Spark as Arrow)."""
    import pyarrow as pa
    from sqlalchemy import select

    t = wh.metadata.tables[table]
    schema = pa.schema([(c, _arrow_type(t.c[c])) for c in columns])
    result = conn.execution_options(stream_results=True, yield_per=GOLD_BATCH * 20).execute(
        select(*[t.c[c] for c in columns]).where(t.c.run_date == run_date)
    )
    batches = [
        pa.RecordBatch.from_pylist([dict(zip(columns, r)) for r in part], schema=schema) for part in result.partitions()
    ]
    return spark.createDataFrame(pa.Table.from_batches(batches, schema=schema))


def previous_state(
    spark: SparkSession, conn, run_date: dt.date
) -> tuple[dt.date | None, DataFrame | None, DataFrame | None]:
    """(P, P's final classes, P's serious-dishonesty list) for P the latest run date before D that
    was published (``publish.previous_published_date``), from its published rows; Nones when no
    earlier date was published."""

    prev = publish.previous_published_date(conn, run_date)
    if prev is None:
        return None, None, None
    return (
        prev,
        published_frame(spark, conn, "operator_score", prev, ["operator_key", "final_class"]),
        published_frame(spark, conn, "serious_dishonest_list", prev, ["operator_key", "record_type"]),
    )


def published_commitment(conn, draw_date: dt.date) -> dict | None:
    """The commitment to the draw of ``draw_date`` that a run of an earlier run date published
    (``salt_sha256``, ``published_run_date``), or None."""
    from sqlalchemy import select

    t = wh.draw_commitment
    row = (
        conn.execute(
            select(t.c.salt_sha256, t.c.published_run_date).where(
                (t.c.draw_date == draw_date) & (t.c.published_run_date < draw_date)
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def inspector_roster(insp: DataFrame, run_date: dt.date) -> DataFrame:
    """``inspector`` for D: the roster as delivered (在岗 null reads 否); no certificate numbers."""
    return insp.select(
        F.lit(run_date).alias("run_date"),
        "inspector_id",
        "name",
        "unit",
        F.coalesce(F.col("on_duty") == "是", F.lit(False)).alias("on_duty"),
    )


PLAN_SCHEMA = (
    "run_date date, operator_key string, seed string, final_class string, inspector_ids string, onsite_required boolean"
)
DRAW_SCHEMA = "run_date date, salt string, salt_sha256 string, seed string, counts string"
COMMITMENT_SCHEMA = "draw_date date, salt_sha256 string, published_run_date date"


def inspection_plan(
    spark: SparkSession,
    settings: Settings,
    rules: Rules,
    run_date: dt.date,
    scores: DataFrame,
    roster: DataFrame,
    committed: dict | None,
    listed: DataFrame | None = None,
) -> tuple[DataFrame, DataFrame, DataFrame, list[str]]:
    """scoring.md §5 on the driver (``ecredit.scoring.draw``): the commitment to the next draw date, and on
    a draw date whose salt (from CREDIT_DRAW_SECRET) is the one ``committed`` to by an earlier
    run (``published_commitment``), the plan and the revealed draw; with warnings. No commitment,
    or one the secret does not give: no plan, and a warning saying why. An operator of ``listed``
    (the serious-dishonesty list of D) is inspected on site whatever its class (lifecycle.md §3)."""

    schedule, ratios, onsite = draw.parameters(rules)
    warnings: list[str] = []
    nxt = draw.next_draw_date(run_date, schedule)
    commitment = [(nxt, draw.salt_commitment(draw.salt(settings.draw_secret, nxt)), run_date)]
    plan_rows, draw_rows = [], []
    if draw.is_draw_date(run_date, schedule):
        salt = draw.salt(settings.draw_secret, run_date)
        if committed is None:
            warnings.append(f"no inspection plan for {run_date}: no run before it published a commitment to its draw")
        elif draw.salt_commitment(salt) != committed["salt_sha256"]:
            warnings.append(
                f"no inspection plan for {run_date}: CREDIT_DRAW_SECRET does not give the salt that the run "
                f"of {committed['published_run_date']} committed to (was the secret changed?); a plan "
                "drawn with it would contradict the published commitment"
            )
        else:
            seed = draw.seed(run_date, salt)
            classes = {
                r["operator_key"]: r["final_class"] for r in scores.select("operator_key", "final_class").collect()
            }
            on_duty = [r["inspector_id"] for r in roster.filter("on_duty").select("inspector_id").collect()]
            on_list = (
                {r["operator_key"] for r in listed.select("operator_key").collect()} if listed is not None else set()
            )
            rows, counts, more = draw.draw(
                seed, classes, ratios, onsite, on_duty, draw.inspectors_per_operator(rules), on_list
            )
            warnings += [f"inspection plan {run_date}: {w}" for w in more]
            plan_rows = [
                (run_date, r["operator_key"], r["seed"], r["final_class"], r["inspector_ids"], r["onsite_required"])
                for r in rows
            ]
            draw_rows = [
                (
                    run_date,
                    salt,
                    draw.salt_commitment(salt),
                    seed,
                    json.dumps(counts, ensure_ascii=False, sort_keys=True),
                )
            ]
    return (
        spark.createDataFrame(plan_rows, PLAN_SCHEMA),
        spark.createDataFrame(draw_rows, DRAW_SCHEMA),
        spark.createDataFrame(commitment, COMMITMENT_SCHEMA),
        warnings,
    )


# Spark's words for a file it cannot read, the most telling last (the reason quotes its line)
_DAMAGED_READ = ("corrupt", "FAILED_READ_FILE", "CANNOT_READ_FILE_FOOTER", "not a Parquet file", "Checksum")


def build(spark: SparkSession, settings: Settings, rules: Rules, run_date: dt.date, full: bool = False) -> dict:
    """Write the state as of D: ``gold/<D>/`` the tables to publish (dim_operator,
    fact_credit_record, and the run date's scores, measures, list, alerts, roster and plan),
    ``state/<D>/`` the other canonical tables and D's checkpoint (``fold.folded_state``: the
    newest usable checkpoint before D plus the files it has not seen; ``full``: every applied
    file), then ``gold/<D>/_built.json``. Returns the warnings and what was folded.

    Refuses to build on files the ingest stage did not finish; a damaged parsed file (unreadable,
    or not its done-marker's rows) loses its marker and the build fails naming it (rerun the date);
    a full disk fails with one sentence."""
    import re

    pending = ingest.pending_files(settings, run_date)
    if pending:
        f = pending[0]
        raise RuntimeError(
            f"build_state {run_date}: {len(pending)} accepted delivery file(s) dated <= {run_date} are "
            f"not parsed (first: {f['dept']} {f['date']} {f['name']}): the ingest stage did not "
            "finish; rerun the date"
        )
    lake.drop_built(settings, run_date)  # rebuilt: publishable again only when whole
    changes.clear(settings, run_date)
    with ingest.lake_writes(settings, f"build_state {run_date}"):
        try:
            out = _build(spark, settings, rules, run_date, full)
        except fold_mod.ParsedRowsDamaged:
            raise
        except Exception as e:
            text = str(e)
            shas = set(re.findall(r"file_sha=([0-9a-f]{64})", text)) if any(k in text for k in _DAMAGED_READ) else set()
            if not shas:
                raise
            damaged = [f for f in validation.applied_files(settings, rules, run_date) if f["sha256"] in shas]
            if not damaged:
                raise
            lines = [ln.strip().lstrip(": ") for ln in text.splitlines() if ln.strip()]
            why = next((ln for k in _DAMAGED_READ[::-1] for ln in lines if k in ln), lines[0])[:400]
            fold_mod.drop_markers(
                settings,
                damaged,
                [f"{lake.partition_dir(settings, f)} cannot be read by Spark ({why})" for f in damaged],
            )
        lake.write_built(settings, run_date)
    return out


def _build(spark: SparkSession, settings: Settings, rules: Rules, run_date: dt.date, full: bool) -> dict:

    # the published past first (an unreachable warehouse stops the build before any work): the
    # previous run date's rows and the commitment to D's draw
    with published(settings) as conn:
        prev, previous_scores, previous_list = previous_state(spark, conn, run_date)
        committed = published_commitment(conn, run_date)
    folded = fold_mod.folded_state(spark, settings, rules, run_date, full)
    parsed = folded["rows"]  # one version per record key; ``_feed`` takes a feed's columns
    ops = operators(parsed).cache()
    lic = licences(parsed).cache()
    tables = {
        "licences": lic,
        "evaluations": evaluations(parsed),
        "spot_checks": spot_checks(parsed),
        "complaints": complaints(parsed),
        "inspectors": inspectors(parsed),
    }
    sdir, gdir = lake.state_dir(settings, run_date), lake.gold_dir(settings, run_date)
    # the latest state's changes are taken against the gold of the run date last published
    change_base, change_why = changes.change_base(settings, run_date, prev)
    fold_mod.write_parquet(
        {
            **{lake.state_table(settings, run_date, name): df for name, df in tables.items()},
            # scoring's input, kept for make bench's baseline
            lake.state_table(settings, run_date, "operators"): ops,
            lake.gold_table(settings, run_date, "dim_operator"): dim_operator(ops, lic, run_date),
        }
    )
    state = {name: spark.read.parquet(str(lake.state_table(settings, run_date, name))) for name in tables}
    records = with_activity(credit_records(parsed, rules), ops, run_date)
    fold_mod.write_parquet(
        {
            **{
                lake.gold_table(settings, run_date, name): df
                for name, df in facts(state["licences"], state["spot_checks"], state["complaints"]).items()
            },
            lake.gold_table(settings, run_date, "fact_credit_record"): records,
        }
    )
    records = spark.read.parquet(str(lake.gold_table(settings, run_date, "fact_credit_record"))).cache()
    # the operators whose rows can have changed since the run date last published, when the fold
    # started from its checkpoint (decision 111): the change sets compare only their rows, and the
    # scoring carries the others' scores when it can
    scope, scope_why = rescore.carry_base(settings, run_date, folded["base"], prev, full, new_month_scores_all=False)
    touched = (
        rescore.touched_operators(spark, settings, scope, run_date, folded["touched"]).cache()
        if scope is not None
        else None
    )
    changed = changes.write_change_sets(
        spark, settings, run_date, change_base, GOLD_TABLES, touched if change_base is not None else None
    )
    log.info(
        "latest state of %s: %s; compared: %s",
        run_date,
        f"change sets {change_why}"
        if changed
        else f"no change sets ({change_why if change_base is None else 'see above'})",
        "the touched operators' rows" if touched is not None else f"every row ({scope_why})",
    )

    rescored = write_scores(
        spark, settings, rules, run_date, full, folded, prev, previous_scores, ops, lic, records, state, touched
    )
    if touched is not None:
        touched.unpersist()
    scores = spark.read.parquet(str(lake.gold_table(settings, run_date, "operator_score"))).cache()
    listed = scoring.dishonest_list(records, ops, rules, run_date)
    listed.write.mode("overwrite").parquet(str(lake.gold_table(settings, run_date, "serious_dishonest_list")))
    listed = spark.read.parquet(str(lake.gold_table(settings, run_date, "serious_dishonest_list")))
    roster = inspector_roster(state["inspectors"], run_date)
    plan, drawn, commitment, warnings = inspection_plan(
        spark, settings, rules, run_date, scores, roster, committed, listed
    )
    outputs = {
        "supervision_measure": scoring.measures(scores, records, rules),
        "dishonest_list_change": scoring.list_changes(listed, previous_list, run_date),
        "risk_alert": scoring.risk_alerts(scores, ops, rules),
        "inspector": roster,
        "inspection_plan": plan,
        "inspection_draw": drawn,
        "draw_commitment": commitment,
    }
    fold_mod.write_parquet({lake.gold_table(settings, run_date, name): df.coalesce(1) for name, df in outputs.items()})
    lake.write_gold_warnings(settings, run_date, warnings)
    for df in (ops, lic, records, scores):
        df.unpersist()
    for w in warnings:
        log.warning("%s", w)
    log.info("state as of %s written to %s and %s (previous published run date: %s)", run_date, sdir, gdir, prev)
    return {
        "warnings": warnings,
        "folded_from": str(folded["base"] or "nothing"),
        "files_folded": folded["files_folded"],
        "rescored": rescored,
        "changes": {t: c["rows"] + c["deleted"] for t, c in changed.items()} if changed else None,
    }


def write_scores(
    spark: SparkSession,
    settings: Settings,
    rules: Rules,
    run_date: dt.date,
    full: bool,
    folded: dict,
    prev: dt.date | None,
    previous_scores: DataFrame | None,
    ops: DataFrame,
    lic: DataFrame,
    records: DataFrame,
    state: dict[str, DataFrame],
    touched: DataFrame | None = None,
) -> str:
    """Write ``operator_score`` of D (gold) and every operator's next change date (state); return
    how many operators were scored ("all", or a count). With a usable base
    (``rescore.carry_base``) only the touched operators are scored and the others' rows carried;
    otherwise everyone is scored. ``touched``: the touched operators if already worked out from
    the same base."""
    evals, spot, compl = state["evaluations"], state["spot_checks"], state["complaints"]
    carry, why = rescore.carry_base(settings, run_date, folded["base"], prev, full)
    if carry is None:
        log.info("score %s: every operator is scored (%s)", run_date, why)
        scores = scoring.score(ops, records, evals, spot, compl, rules, run_date, previous_scores, rules.version)
        changes = rescore.change_dates(ops, records, spot, compl, lic, rules)
        _write_scores(settings, run_date, scores, rescore.next_change(changes, run_date))
        lake.write_json(lake.scored_note(settings, run_date), {"scored": "all", "carried_from": None, "why": why})
        return "all"
    if touched is None:
        touched = rescore.touched_operators(spark, settings, carry, run_date, folded["touched"]).cache()
    n = touched.count()
    scores, next_change = rescore.scores_of_touched(
        touched,
        spark.read.parquet(str(lake.gold_table(settings, carry.run_date, "operator_score"))),
        spark.read.parquet(str(lake.state_table(settings, carry.run_date, rescore.NEXT_CHANGE))),
        ops,
        records,
        evals,
        spot,
        compl,
        lic,
        rules,
        run_date,
        previous_scores,
        n <= rescore.BROADCAST_TOUCHED_MAX,
    )
    _write_scores(settings, run_date, scores, next_change)
    touched.unpersist()
    lake.write_json(
        lake.scored_note(settings, run_date), {"scored": n, "carried_from": carry.run_date.isoformat(), "why": why}
    )
    log.info(
        "score %s: %d operator(s) touched were scored, the others' rows carried from %s", run_date, n, carry.run_date
    )
    return str(n)


def _write_scores(settings: Settings, run_date: dt.date, scores: DataFrame, next_change: DataFrame) -> None:
    fold_mod.write_parquet(
        {
            lake.gold_table(settings, run_date, "operator_score"): scores,
            lake.state_table(settings, run_date, rescore.NEXT_CHANGE): next_change,
        }
    )
