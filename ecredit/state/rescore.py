"""Only the operators whose score can have changed are scored again (issue 17, decision 0111).

An operator's score at D is a function of its own rows (its registry row, credit records,
evaluations, spot checks, complaints) and of D through windows only. So the run keeps, with each
run date's scores, every operator's *next change date* (``state/<D>/next_change/``): the first date
after D on which one of its date-dependent inputs changes:

- a credit record starts counting (事件日期) or stops (the day after its window, 有效期, ends; a
  customs version's window ends the day before the next version),
- a spot check or a complaint enters or leaves its window,
- the verification age (最近核验日期) crosses 180 or 365 days,
- R_NEW's 180 days from 成立日期 begin or end,
- a licence becomes valid or expires (the registry's count of valid licences).

At D, with yesterday's scores as the base, the operators scored again are those with a row in a
file folded since the base (new, corrected or withdrawn records: the version replaced counts too, so
a record moved to another operator touches both) and those whose next change date is <= D.
Everyone else keeps the base's row: the same dimensions, reasons and classes, with ``run_date``
moved on and ``previous_class`` = the final class last published.

Everyone is scored again (``carry_base`` says why) when

- ``--full`` is asked, or the fold had no base (a changed rules file or PII key, a damaged or stale
  checkpoint: ``fold.choose_base``),
- the base is not the run date last published (the previous class would come from another run),
- D is in another month than the base (the evaluation window, 评价月份, moves for everyone on the
  1st),
- the base's gold is not whole (``_built.json`` is written after its next change dates: a run killed
  before it leaves a base that is not used) or its next change dates cannot be read.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ecredit.core import lake
from ecredit.core.rules import Rules
from ecredit.core.settings import Settings
from ecredit.scoring import score as scoring

log = logging.getLogger(__name__)

NEXT_CHANGE = "next_change"  # state/<D>/next_change/: operator_key, next_change_date
# Touched operators up to this many are broadcast to the joins that pick their rows
BROADCAST_TOUCHED_MAX = 2_000_000


@dataclass(frozen=True)
class Carry:
    """The base of an incremental scoring: its run date (its gold scores and next change dates)."""

    run_date: dt.date


def _plus(c: Column, days: int) -> Column:
    return F.date_add(c, int(days))


def change_dates(
    ops: DataFrame,
    records: DataFrame,
    spot: DataFrame,
    complaints: DataFrame,
    lic: DataFrame,
    rules: Rules,
) -> DataFrame:
    """operator_key, change_date: every date on which one of the operator's date-dependent inputs
    changes (a row per input and date, nulls dropped). ``records`` are ``with_activity``'s (a
    withdrawn record never counts: no date)."""
    p_id, p_q = rules.get("identity"), rules.get("quality_score")
    new_days = rules.get("class_rules")["R_NEW"]["established_days"]

    def dates(df: DataFrame, *cols: Column) -> DataFrame:
        arr = F.array(*[c.cast("date") for c in cols])
        return df.select("operator_key", F.explode(arr).alias("change_date"))

    est, ver = F.col("established_date"), F.col("last_verified_date")
    parts = [
        dates(
            ops,
            est,
            _plus(est, new_days),
            ver,
            _plus(ver, p_id["verified_recent_days"]),
            _plus(ver, p_id["verified_days"]),
        ),
        dates(records.filter(~F.col("withdrawn")), F.col("event_date"), _plus(F.col("active_until"), 1)),
        dates(spot, F.col("check_date"), _plus(F.col("check_date"), p_q["spot_check_days"])),
        dates(complaints, F.col("registered_date"), _plus(F.col("registered_date"), p_q["complaint_days"])),
        dates(lic, F.col("valid_from"), _plus(F.col("valid_to"), 1)),
    ]
    return reduce(DataFrame.unionByName, parts).filter(
        F.col("operator_key").isNotNull() & F.col("change_date").isNotNull()
    )


def next_change(changes: DataFrame, run_date: dt.date) -> DataFrame:
    """operator_key, next_change_date: each operator's first change date after D (operators
    without one have no row)."""
    return (
        changes.filter(F.col("change_date") > F.lit(run_date))
        .groupBy("operator_key")
        .agg(F.min("change_date").alias("next_change_date"))
    )


def carry_base(
    settings: Settings,
    run_date: dt.date,
    fold_base: dt.date | None,
    published: dt.date | None,
    full: bool,
    new_month_scores_all: bool = True,
) -> tuple[Carry | None, str]:
    """The base to carry scores from (None: everyone is scored) and why, in a sentence. Without
    ``new_month_scores_all``: the base whose touched operators are every operator whose rows can
    have changed since it (the latest state's change sets, ``changes``), which a new month does not
    change."""
    if full:
        return None, "--full"
    if fold_base is None:
        return None, "the fold had no checkpoint to start from"
    if published != fold_base:
        return None, f"the checkpoint's date {fold_base} is not the run date last published ({published})"
    if new_month_scores_all and (fold_base.year, fold_base.month) != (run_date.year, run_date.month):
        return None, f"a new month since {fold_base} (the evaluation window moves for everyone)"
    if not lake.is_built(settings, fold_base):
        return None, f"the gold of {fold_base} is not whole"
    folder = lake.state_table(settings, fold_base, NEXT_CHANGE)
    try:
        lake.parquet_rows(folder)
    except (lake.UnreadableParquet, OSError) as e:
        return None, f"the next change dates of {fold_base} cannot be read ({e})"
    if not (folder / "_SUCCESS").is_file():
        return None, f"the next change dates of {fold_base} are missing"
    return Carry(fold_base), f"scores carried from {fold_base}"


def touched_operators(
    spark: SparkSession, settings: Settings, carry: Carry, run_date: dt.date, from_rows: DataFrame
) -> DataFrame:
    """The operators to score again: those of ``from_rows`` (the fold's new rows and the versions
    they replace) and those whose next change date is <= D."""
    due = (
        spark.read.parquet(str(lake.state_table(settings, carry.run_date, NEXT_CHANGE)))
        .filter(F.col("next_change_date") <= F.lit(run_date))
        .select("operator_key")
    )
    return from_rows.select("operator_key").unionByName(due).filter(F.col("operator_key").isNotNull()).distinct()


def only(df: DataFrame, touched: DataFrame, broadcast: bool) -> DataFrame:
    """The rows of ``df`` of the touched operators."""
    return df.join(F.broadcast(touched) if broadcast else touched, "operator_key", "left_semi")


def without(df: DataFrame, touched: DataFrame, broadcast: bool) -> DataFrame:
    """The rows of ``df`` of the operators not touched."""
    return df.join(F.broadcast(touched) if broadcast else touched, "operator_key", "left_anti")


def carried_scores(base_scores: DataFrame, touched: DataFrame, run_date: dt.date, broadcast: bool) -> DataFrame:
    """The base's ``operator_score`` rows of the operators not touched, dated D (``previous_class``
    is set with everyone's, from the run last published)."""
    return without(base_scores, touched, broadcast).withColumn("run_date", F.lit(run_date)).drop("previous_class")


def scores_of_touched(
    touched: DataFrame,
    base_scores: DataFrame,
    base_next: DataFrame,
    ops: DataFrame,
    records: DataFrame,
    evals: DataFrame,
    spot: DataFrame,
    complaints: DataFrame,
    lic: DataFrame,
    rules: Rules,
    run_date: dt.date,
    previous: DataFrame | None,
    broadcast: bool = True,
) -> tuple[DataFrame, DataFrame]:
    """(``operator_score`` of D, next change dates after D): the touched operators scored on their
    rows, the others' rows and dates carried from the base."""

    def pick(df: DataFrame) -> DataFrame:
        return only(df, touched, broadcast)

    fresh = scoring.score(
        pick(ops), pick(records), pick(evals), pick(spot), pick(complaints), rules, run_date, None, rules.version
    ).drop("previous_class")
    scores = scoring.with_previous(
        fresh.unionByName(carried_scores(base_scores, touched, run_date, broadcast)), previous
    )
    changes = change_dates(pick(ops), pick(records), pick(spot), pick(complaints), pick(lic), rules)
    return scores, without(base_next, touched, broadcast).unionByName(next_change(changes, run_date))
