"""What changed in the latest state since the run date last published (issue 17 item 3, decision 0112).

The latest-state tables (``dim_operator``, ``fact_credit_record``, ``fact_license``,
``fact_spot_check``, ``fact_complaint``; warehouse.md) hold the state at the latest run date so far.
Replacing them whole costs the whole state every day (5.75M rows at 1M operators), so the build also
writes each one's *change set* against the gold of P, the run date last published before D:

- ``gold/<D>/changes/<table>``: the rows of D that are new or differ from P's (every column
  compared, nulls equal) and the keys of P's rows that D no longer has, each marked with what
  publish does with it (``lake.CHANGE``: "new", "changed", "gone");
- ``gold/<D>/changes/_against.json``, written last: P and the id of P's build.

Publish applies them (delete the keys, COPY the rows) when the warehouse's latest state is that
build of P (``published_build``), and otherwise replaces the tables whole, as before.

``dim_operator.updated_run_date`` was "D" on every row, so every row changed every day; it is now
the latest date behind the row (``build.dim_operator``), a function of the deliveries and D.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ecredit.core import lake
from ecredit.core.settings import Settings
from ecredit.state import fold as fold_mod
from ecredit.warehouse import schema as wh

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChangeBase:
    """The gold that D's change sets are taken against: P's date and the id of P's build."""

    run_date: dt.date
    build: str


def key_of(table: str) -> str:
    """The one primary-key column of a latest-state table."""
    (key,) = [c.name for c in wh.metadata.tables[table].primary_key.columns]
    return key


def columns_of(table: str) -> list[str]:
    return [c.name for c in wh.metadata.tables[table].columns]


def change_base(settings: Settings, run_date: dt.date, published_prev: dt.date | None) -> tuple[ChangeBase | None, str]:
    """(the base, why) or (None, why not): P must be published before D and its gold whole, from a
    build with an id."""
    if published_prev is None:
        return None, "no run date before it was published"
    if not lake.is_built(settings, published_prev):
        return None, f"the gold of {published_prev}, the run date last published, is not whole"
    build = lake.build_id(settings, published_prev)
    if build is None:
        return None, f"the build of {published_prev} has no id (built before change sets)"
    return ChangeBase(published_prev, build), f"against {published_prev}"


def _same(columns: list[str], prefix: str) -> Column:
    return reduce(lambda a, b: a & b, [F.col(c).eqNullSafe(F.col(prefix + c)) for c in columns], F.lit(True))


def change_set(new: DataFrame, old: DataFrame, key: str) -> DataFrame:
    """The rows that differ between ``old`` and ``new`` (every column compared, nulls equal), with
    :data:`lake.CHANGE`: "new" (the key is not in ``old``), "changed" (the row differs), "gone"
    (``new`` no longer has the key: only the key is set). One join, one table to write."""
    columns = new.columns
    o = old.select(*[F.col(c).alias("_o_" + c) for c in columns])
    j = new.join(o, F.col(key) == F.col("_o_" + key), "full")
    change = (
        F.when(F.col("_o_" + key).isNull(), F.lit("new"))
        .when(F.col(key).isNull(), F.lit("gone"))
        .when(~_same([c for c in columns if c != key], "_o_"), F.lit("changed"))
    )
    out = [F.coalesce(F.col(key), F.col("_o_" + key)).alias(key) if c == key else F.col(c) for c in columns]
    return j.withColumn(lake.CHANGE, change).filter(F.col(lake.CHANGE).isNotNull()).select(*out, lake.CHANGE)


def inserted(change: DataFrame) -> DataFrame:
    """The rows publish inserts (new and changed), without the change column."""
    return change.filter(F.col(lake.CHANGE).isin(*lake.CHANGE_INSERTS)).drop(lake.CHANGE)


def deleted(change: DataFrame, key: str) -> DataFrame:
    """The keys publish deletes first (changed and gone)."""
    return change.filter(F.col(lake.CHANGE).isin(*lake.CHANGE_DELETES)).select(key)


def read_base(spark: SparkSession, settings: Settings, base: ChangeBase, table: str) -> DataFrame | None:
    """The base's gold table, its warehouse columns; None when it lacks one of them (a build of
    another release: then no change set). A gold table may hold more columns than are published
    (``fact_credit_record``'s inputs of scoring)."""
    df = spark.read.parquet(str(lake.gold_table(settings, base.run_date, table)))
    if not set(columns_of(table)) <= set(df.columns):
        return None
    return df.select(*columns_of(table))


def clear(settings: Settings, run_date: dt.date) -> None:
    """No change sets for D (a rebuild writes them again, or none)."""
    shutil.rmtree(lake.changes_dir(settings, run_date), ignore_errors=True)


def write_change_sets(
    spark: SparkSession,
    settings: Settings,
    run_date: dt.date,
    base: ChangeBase | None,
    tables: tuple[str, ...],
    touched: DataFrame | None = None,
) -> dict | None:
    """Write D's change sets of ``tables`` against ``base`` and their marker; return the counts
    (None and nothing written without a base). With ``touched`` (the operators whose rows can have
    changed since the base, decision 111's: those of the rows folded since it and of the versions
    they replace, and those with a date-dependent input changing in between), only their rows are
    compared: every other operator's rows are the base's."""
    clear(settings, run_date)
    if base is None:
        return None
    frames = {}
    for table in tables:
        old = read_base(spark, settings, base, table)
        if old is None:
            log.info(
                "change sets of %s: %s's %s lacks published columns; the tables are replaced whole",
                run_date,
                base.run_date,
                table,
            )
            clear(settings, run_date)
            return None
        new = spark.read.parquet(str(lake.gold_table(settings, run_date, table))).select(*columns_of(table))
        if touched is not None:
            old, new = (df.join(F.broadcast(touched), "operator_key", "left_semi") for df in (old, new))
        frames[lake.gold_table(settings, run_date, lake.change_table(table))] = change_set(new, old, key_of(table))
    fold_mod.write_parquet(frames)
    counts = {}
    for table in tables:
        kinds = lake.parquet_values(lake.gold_table(settings, run_date, lake.change_table(table)), lake.CHANGE)
        counts[table] = {
            "rows": sum(kinds.get(k, 0) for k in lake.CHANGE_INSERTS),
            "deleted": sum(kinds.get(k, 0) for k in lake.CHANGE_DELETES),
        }
    lake.write_json(
        lake.changes_marker(settings, run_date),
        {
            "against": base.run_date.isoformat(),
            "build": base.build,
            "compared": "all" if touched is None else "touched operators",
            "counts": counts,
        },
    )
    return counts
