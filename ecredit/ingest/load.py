"""Ingest: decode and parse every accepted delivery file once, check its rows, mask personal data,
and write the parsed rows to the lake, keyed by the file's SHA-256.

Layout: ``lake/parsed/rows/feed_id=<dept.stem>/delivery_date=<D>/file_sha=<sha256>/`` holds every
data row of that file in one wide schema (all canonical columns of all feeds as strings; a row has
the columns of its own feed), with its source line, operator key, record key, and reasons (empty for
a row that is loaded, the quality codes for a row that is quarantined). A marker
``lake/parsed/done/<feed_id>/<D>/<sha256>.json`` with the file's counts is written once the rows
are safely written: a file with a marker is never parsed again.
"""

from __future__ import annotations

import datetime as dt
import errno
import functools
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ecredit.core import checks, failpoints, lake
from ecredit.core.feeds import FEEDS, ID_NO, PII, TIMESTAMP, Feed
from ecredit.core.feeds import feed as feed_by_name
from ecredit.core.settings import Settings
from ecredit.ingest import engine, parse
from ecredit.ingest import gate as delivery
from ecredit.quality import expectations

log = logging.getLogger(__name__)


def _wide_columns() -> list[str]:
    names: list[str] = []
    for f in FEEDS:
        for c in f.columns:
            if c.kind in (PII, ID_NO):
                continue
            for n in [c.name, c.name + "_date"] if c.kind == TIMESTAMP else [c.name]:
                if n not in names:
                    names.append(n)
    return names


WIDE_COLUMNS = _wide_columns()
WIDE_INDEX = {c: i for i, c in enumerate(WIDE_COLUMNS)}
META_FIELDS = [
    T.StructField("dept", T.StringType(), False),
    T.StructField("source_line", T.LongType(), False),
    T.StructField("operator_key", T.StringType(), True),
    T.StructField("natural_person", T.BooleanType(), False),
    T.StructField("key_str", T.StringType(), True),
    T.StructField("reasons", T.ArrayType(T.StringType()), False),
    T.StructField("warnings", T.ArrayType(T.StringType()), False),
    T.StructField("payload", T.StringType(), True),
]
PARTITION_FIELDS = [
    T.StructField("feed_id", T.StringType(), False),
    T.StructField("delivery_date", T.StringType(), False),
    T.StructField("file_sha", T.StringType(), False),
]
ROW_SCHEMA = T.StructType(
    META_FIELDS + [T.StructField(c, T.StringType(), True) for c in WIDE_COLUMNS] + PARTITION_FIELDS
)
# What the parser yields: the rows as written, plus the values as sent (``checks.as_sent``, ID
# numbers included) that the GX suites judge. ``as_sent`` lives in executor memory only: it is
# dropped before anything is written.
AS_SENT = checks.AS_SENT
PARSE_SCHEMA = T.StructType(
    ROW_SCHEMA.fields + [T.StructField(AS_SENT, T.MapType(T.StringType(), T.StringType()), True)]
)


def key_string(feed: Feed, values: dict, operator_key: str | None) -> str | None:
    """The record key's parts joined by '|' (dates already ISO): the tail of ``record_key``."""
    parts = []
    for k in feed.key:
        v = operator_key if k == "operator_key" else values.get(k)
        if v is None:
            return None
        parts.append(v)
    return "|".join(parts)


def parse_file(info: dict, pii_key: str, part: parse.Slice | None = None) -> Iterator[tuple]:
    """Every data row of one delivery file (or of one slice of it) as a tuple of PARSE_SCHEMA.
    Runs on the executors."""
    feed = feed_by_name(info["dept"], info["name"])
    ddate = dt.date.fromisoformat(info["date"])
    tail = (feed.feed_id, info["date"], info["sha256"])
    with open(info["path"], "rb") as stream:
        for raw in parse.iter_rows(stream, feed, part):
            if raw.values is None:
                masked = checks.masked_payload(feed, raw.fields, None, raw.header)
                masked["_detail"] = raw.malformed
                yield (
                    feed.dept,
                    raw.line,
                    None,
                    False,
                    None,
                    [checks.MALFORMED],
                    [],
                    json.dumps(masked, ensure_ascii=False),
                    *([None] * len(WIDE_COLUMNS)),
                    *tail,
                    None,
                )
                continue
            sent = checks.as_sent(feed, raw.values)
            values, reasons, warnings, op_key, natural = checks.check_sent(feed, sent, ddate, pii_key)
            payload = None
            if reasons or warnings:  # quarantined, or kept with a warning: both listed in rejections.csv
                payload = json.dumps(checks.masked_payload(feed, raw.fields, raw.values), ensure_ascii=False)
            wide = [None] * len(WIDE_COLUMNS)
            for name, v in values.items():  # the feed's own columns; the other feeds' stay null
                wide[WIDE_INDEX[name]] = v
            yield (
                feed.dept,
                raw.line,
                op_key,
                natural,
                key_string(feed, values, op_key),
                reasons,
                warnings,
                payload,
                *wide,
                *tail,
                sent,
            )


FILE_COLUMNS = ["feed_id", "delivery_date", "file_sha"]
# Up to this many repeated record keys (of one ingest) are broadcast to the rows; more are joined
# by a shuffle (a file sent twice over, say).
BROADCAST_REPEATED_KEYS = 2_000_000


def _clean() -> F.Column:
    return (F.size("reasons") == 0) & F.col("key_str").isNotNull()


def repeated_keys(rows: DataFrame) -> DataFrame:
    """The record keys that more than one clean row of a file carries (a clean row passes every
    other check), with the last such row's line: ``FILE_COLUMNS``, ``key_str``, ``_last_line``.
    Narrow: four columns of each row are aggregated, not the whole wide row sorted."""
    return (
        rows.filter(_clean())
        .groupBy(*FILE_COLUMNS, "key_str")
        .agg(F.max("source_line").alias("_last_line"), F.count(F.lit(1)).alias("_n"))
        .filter(F.col("_n") > 1)
        .drop("_n")
    )


def mark_duplicates(rows: DataFrame, repeated: DataFrame | None = None) -> DataFrame:
    """DUPLICATE_KEY: among the rows of one file that pass every other check, every occurrence
    of a record key but the last gets the reason (the last one is loaded). The computed column
    ``_duplicate_not_last`` (the one definition of the rule's column: a clean row whose key has a
    later clean row in the same file) stays on the frame: the suites' DUPLICATE_KEY expectation
    judges it. ``repeated``: ``repeated_keys(rows)``, computed (and broadcast) by the caller."""
    if repeated is None:
        repeated = repeated_keys(rows)
    joined = rows.join(repeated, [*FILE_COLUMNS, "key_str"], "left")
    dup = _clean() & F.coalesce(F.col("source_line") < F.col("_last_line"), F.lit(False))
    feed_cols = None  # the row's own columns under the department's headers, as in other payloads
    for f in FEEDS:
        cols = [F.col(c.name).alias(c.source) for c in f.columns if c.kind not in (PII, ID_NO)]
        branch = F.to_json(F.struct(*cols))
        feed_cols = (
            F.when(F.col("feed_id") == f.feed_id, branch)
            if feed_cols is None
            else feed_cols.when(F.col("feed_id") == f.feed_id, branch)
        )
    dup_col = F.col(checks.DUPLICATE_NOT_LAST)
    return (
        joined.withColumn(checks.DUPLICATE_NOT_LAST, dup)
        .withColumn("payload", F.when(dup_col, feed_cols).otherwise(F.col("payload")))
        .withColumn("reasons", F.when(dup_col, F.array(F.lit(checks.DUPLICATE_KEY))).otherwise(F.col("reasons")))
        .select(*rows.columns, checks.DUPLICATE_NOT_LAST)
    )


# where a file's rows and done-marker are: the lake's layout is lake.py's
done_marker = lake.done_marker
rows_path = lake.rows_dir
partition_path = lake.partition_dir


def parsed_problem(settings: Settings, info: dict, rows_in: int) -> str | None:
    """None when the parsed rows of one file in the lake are whole: every Parquet file of its
    partition readable (footer) and their rows adding up to ``rows_in`` (its done-marker's count);
    otherwise one sentence naming the file. Reads footers only. Names starting with '.' or '_'
    (Spark's staging and markers) are never read by anyone and are not counted."""
    part = partition_path(settings, info)
    try:
        total = lake.parquet_rows(part) if part.is_dir() else 0
    except lake.UnreadableParquet as e:
        return str(e)
    if total != rows_in:
        return f"{part} holds {total} rows, its done-marker says {rows_in}"
    return None


class LakeFull(OSError):
    """A write to the lake failed for lack of space."""


def no_space(e: BaseException | None) -> bool:
    """True when ``e`` or an exception it came from is a full disk (ENOSPC, or the JVM's message)."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left on device" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


@contextmanager
def lake_writes(settings: Settings, what: str):
    """A full disk under the lake becomes one sentence (the JVM's is a stack trace)."""
    try:
        yield
    except LakeFull:
        raise
    except Exception as e:
        if no_space(e):
            raise LakeFull(
                errno.ENOSPC,
                f"{what}: no space left on the device of CREDIT_LAKE_DIR ({settings.lake_dir}); "
                "the attempt's partial output is never read: free space, then rerun the date",
            ) from e
        raise


def pending_files(settings: Settings, run_date: dt.date) -> list[dict]:
    return delivery.unparsed_files(settings, run_date)


# A task parses about this many bytes of one file: a big file is cut at record boundaries
# (``parse.split_points``) so that all cores parse it (one file, the platform evaluations, is two
# thirds of all rows).
SLICE_BYTES = 16 << 20
ARROW_BATCH_ROWS = 4096


def parse_tasks(files: list[dict], slice_bytes: int = SLICE_BYTES) -> list[tuple[dict, parse.Slice]]:
    """(file, slice) for every task of the parse, the biggest first."""
    tasks = []
    for info in files:
        feed = feed_by_name(info["dept"], info["name"])
        size = Path(info["path"]).stat().st_size
        for part in parse.split_points(info["path"], feed, slice_bytes):
            tasks.append((size - part.start if part.length is None else part.length, info, part))
    tasks.sort(key=lambda t: -t[0])
    return [(info, part) for _, info, part in tasks]


def arrow_batches(rows: Iterator[tuple], schema, batch_rows: int = ARROW_BATCH_ROWS):
    """The parser's tuples as Arrow record batches of ``schema`` (PARSE_SCHEMA's Arrow form)."""
    import pyarrow as pa

    names = schema.names
    types = [f.type for f in schema]
    batch: list[tuple] = []

    def build(batch):
        cols = list(zip(*batch))
        return pa.RecordBatch.from_arrays([pa.array(c, type=t) for c, t in zip(cols, types)], names=names)

    for row in rows:
        batch.append(row)
        if len(batch) >= batch_rows:
            yield build(batch)
            batch = []
    if batch:
        yield build(batch)


def parse_frame(
    spark: SparkSession,
    settings: Settings,
    files: list[dict],
    slice_bytes: int = SLICE_BYTES,
    engine_checks: bool | None = None,
) -> DataFrame:
    """Every row of the files (PARSE_SCHEMA + ``_duplicate_not_last``). The parsed rows are cached
    first, as ``run`` caches them: the cache is a boundary the optimizer does not push
    ``mark_duplicates``' projections through (without it, the engine's checks of the corpus's 22
    files came out inlined into a 32 MB plan, against 0.7 MB)."""
    return mark_duplicates(parse_rows(spark, settings, files, slice_bytes, engine_checks).cache())


def parse_rows(
    spark: SparkSession,
    settings: Settings,
    files: list[dict],
    slice_bytes: int = SLICE_BYTES,
    engine_checks: bool | None = None,
) -> DataFrame:
    """Every row of the files (PARSE_SCHEMA), checked in one of two ways (decision 108):

    - per row in Python (``parse_file``: ``checks.check_sent``), in the driver up to
      ``DRIVER_PARSE_MAX_ROWS`` rows (one Arrow table), above on the executors;
    - ``engine_checks``: the parser only splits the rows (``engine.raw_rows``) on the executors,
      and every check is a column expression (``engine.checked``), per feed and delivery date.

    Both give the same rows (tests/unit/test_engine_ingest.py). ``engine_checks`` None: the engine
    above ``ENGINE_CHECKS_MIN_ROWS`` rows (by the manifests), never while that is None."""
    if engine_checks is None:
        rows = sum(int(f.get("rows") or 0) for f in files)
        engine_checks = ENGINE_CHECKS_MIN_ROWS is not None and rows > ENGINE_CHECKS_MIN_ROWS
    if not engine_checks:
        pii_key = settings.pii_key
        return _parsed_slices(
            spark, files, slice_bytes, PARSE_SCHEMA, lambda info, part: parse_file(info, pii_key, part)
        )
    return _engine_rows(spark, settings, files, slice_bytes)


def _engine_rows(spark: SparkSession, settings: Settings, files: list[dict], slice_bytes: int) -> DataFrame:
    """``parse_rows`` with the checks in the engine: the parser's raw rows of each (feed, delivery
    date), split on the executors, ``engine.checked``, one union."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for info in files:
        groups.setdefault((info["feed_id"], info["date"]), []).append(info)
    if not groups:
        return spark.createDataFrame([], PARSE_SCHEMA)
    frames = []
    for (_, date), group in sorted(groups.items()):
        feed = feed_by_name(group[0]["dept"], group[0]["name"])
        file_no = {info["path"]: n for n, info in enumerate(group)}

        def split(info, part, feed=feed, file_no=file_no):
            return engine.raw_rows(feed, info["path"], file_no[info["path"]], part)

        raw = _parsed_slices(spark, group, slice_bytes, engine.raw_schema(feed), split, in_driver=False)
        rows = engine.checked(raw, feed, dt.date.fromisoformat(date), settings.pii_key, WIDE_COLUMNS)
        shas = F.array(*(F.lit(info["sha256"]) for info in group))
        frames.append(
            rows.select(
                *(f.name for f in META_FIELDS),
                *WIDE_COLUMNS,
                F.lit(feed.feed_id).alias("feed_id"),
                F.lit(date).alias("delivery_date"),
                F.element_at(shas, F.col(engine.FILE_NO) + 1).alias("file_sha"),
                AS_SENT,
            )
        )
    return functools.reduce(DataFrame.union, frames)


# Up to this many rows in all (the manifests' counts), the files are parsed in the driver and handed
# to Spark as one Arrow table: a Python worker per core, its imports and a task per slice cost 3-7 s
# however few the rows (a 2,000-operator date: 546 rows, 16 files), the driver parses ~15k rows/s.
DRIVER_PARSE_MAX_ROWS = 50_000
# Above this many rows the checks run in the engine (``engine.checked``); None: never. Measured on
# 2026-12-06 (BENCHMARKS.md, issue 16) the engine's checks were 2.4x slower than the per-row Python
# checks on the 100k deliveries (parse alone: 143 s against 60 s, 1.9M rows, 2 cores; with or
# without whole-stage code generation); after decision 109's fast paths still 1.5-1.6x (171 s against
# 105-115 s on a machine at half that day's speed), so the default stays Python until they are faster.
ENGINE_CHECKS_MIN_ROWS: int | None = None
# The executors' parse runs the slices in at most this many tasks per core, the biggest slices dealt
# round-robin: a task per slice cost ~0.3 s each when slices were many and small (hundreds of them).
PARSE_TASKS_PER_CORE = 3


def _parsed_slices(
    spark: SparkSession, files: list[dict], slice_bytes: int, schema, parse_slice, in_driver: bool | None = None
) -> DataFrame:
    """``parse_slice(info, part)``'s tuples for every slice of the files, as a frame of ``schema``:
    the slices dealt round-robin, biggest first, to at most ``PARSE_TASKS_PER_CORE`` tasks per core,
    each handing Spark Arrow batches; a small input (``DRIVER_PARSE_MAX_ROWS``) is parsed in the
    driver instead, by the same function (``in_driver``: decided by the caller)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    tasks = parse_tasks(files, slice_bytes)
    arrow_schema = to_arrow_schema(schema)
    if in_driver is None:
        in_driver = sum(int(f.get("rows") or 0) for f in files) <= DRIVER_PARSE_MAX_ROWS
    if in_driver:
        batches = [b for info, part in tasks for b in arrow_batches(parse_slice(info, part), arrow_schema)]
        table = pa.Table.from_batches(batches) if batches else arrow_schema.empty_table()
        return spark.createDataFrame(table, schema=schema)

    n_parts = max(1, min(len(tasks), PARSE_TASKS_PER_CORE * spark.sparkContext.defaultParallelism))
    # range element k is the slice order[k]: each partition's contiguous range of k holds every
    # n_parts-th slice of the biggest-first list, so big slices spread over the tasks
    order = [i for p in range(n_parts) for i in range(p, len(tasks), n_parts)]

    def parse_tasks_of(batches):
        for b in batches:
            for k in b.column(0).to_pylist():
                info, part = tasks[order[k]]
                yield from arrow_batches(parse_slice(info, part), arrow_schema)

    return spark.range(0, len(tasks), 1, n_parts).mapInArrow(parse_tasks_of, schema)


def _file_id(info: dict) -> tuple:
    return info["feed_id"], info["date"], info["sha256"]


def run(spark: SparkSession, settings: Settings, run_date: dt.date) -> dict:
    """Parse every accepted file dated <= D that has not been parsed, run its feed's GX suite on
    it, and write its rows, its validation result and its counts; returns counts."""
    todo = pending_files(settings, run_date)
    if not todo:
        log.info("ingest: nothing new to parse up to %s", run_date)
        return {"files_parsed": 0, "rows": 0}
    with lake_writes(settings, f"ingest {run_date}"):
        return _run(spark, settings, todo)


def _run(spark: SparkSession, settings: Settings, todo: list[dict]) -> dict:
    # The parsed rows are cached once; the keys that repeat in a file are found on four narrow
    # columns and broadcast back (a window over the wide row shuffled 3.5 GB at 1M operators).
    parsed = parse_rows(spark, settings, todo).cache()
    repeated = repeated_keys(parsed).cache()
    n_repeated = repeated.count()
    rows = mark_duplicates(parsed, F.broadcast(repeated) if n_repeated <= BROADCAST_REPEATED_KEYS else repeated)
    # Replaces the partitions of exactly these files (dynamic overwrite, explicit so that no session
    # setting can make it wipe the other files' rows): rows an earlier, killed attempt left for a
    # file without a done-marker are replaced, never read beside the new ones.
    (
        rows.drop(AS_SENT, checks.DUPLICATE_NOT_LAST)
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("feed_id", "delivery_date", "file_sha")
        .parquet(str(rows_path(settings)))
    )
    failpoints.hit("ingest.rows_written")
    counts = {
        (r["feed_id"], r["delivery_date"], r["file_sha"]): r
        for r in rows.groupBy("feed_id", "delivery_date", "file_sha")
        .agg(
            F.count(F.lit(1)).alias("rows_in"),
            F.sum(F.when(F.size("reasons") == 0, 1).otherwise(0)).alias("rows_loaded"),
        )
        .collect()
    }
    per_reason: dict = {}
    per_warning: dict = {}  # warnings of the rows that are kept (a quarantined row is listed with its errors)
    flagged = rows.filter((F.size("reasons") > 0) | (F.size("warnings") > 0)).select(
        "feed_id",
        "delivery_date",
        "file_sha",
        F.explode(F.when(F.size("reasons") > 0, F.col("reasons")).otherwise(F.col("warnings"))).alias("code"),
        (F.size("reasons") > 0).alias("error"),
    )
    for r in flagged.groupBy("feed_id", "delivery_date", "file_sha", "code", "error").count().collect():
        into = per_reason if r["error"] else per_warning
        into.setdefault((r["feed_id"], r["delivery_date"], r["file_sha"]), {})[r["code"]] = int(r["count"])
    gx = expectations.validate_files(settings, rows, todo)
    total = 0
    for info in todo:
        c = counts.get(_file_id(info))
        rows_in = int(c["rows_in"]) if c else 0
        loaded = int(c["rows_loaded"]) if c else 0
        reasons = per_reason.get(_file_id(info), {})
        problems = expectations.disagreements(gx[_file_id(info)], reasons)
        if problems:  # one definition per rule: a disagreement is a bug, never published
            raise RuntimeError(
                f"{info['dept']} {info['date']} {info['name']}: the GX suite and the row split "
                "disagree: " + "; ".join(problems)
            )
        problem = parsed_problem(settings, info, rows_in)
        if problem:  # what was written is not what was parsed: no marker, the file is parsed again
            raise RuntimeError(f"ingest: {problem}; no done-marker written for it")
        total += rows_in
        lake.write_done(
            settings,
            info,
            {
                **{k: info[k] for k in ("dept", "date", "feed_id", "name", "sha256")},
                "rows_in": rows_in,
                "rows_loaded": loaded,
                "rows_quarantined": rows_in - loaded,
                "per_reason": reasons,
                "per_warning": per_warning.get(_file_id(info), {}),
                "expectations": gx[_file_id(info)],
            },
        )
        log.info(
            "ingest: %s %s %s: %d rows in, %d loaded, %d quarantined",
            info["dept"],
            info["date"],
            info["name"],
            rows_in,
            loaded,
            rows_in - loaded,
        )
    repeated.unpersist()
    parsed.unpersist()
    return {"files_parsed": len(todo), "rows": total}


def file_counts(settings: Settings, info: dict) -> dict | None:
    return lake.read_done(settings, info)


quarantined = lake.quarantined_rows  # the quarantined rows of one parsed file
warned = lake.warned_rows  # the rows of one parsed file kept with a warning
