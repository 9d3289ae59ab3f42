"""Great Expectations on Spark: the custom expectations of ``quality.md`` and the suites.

Each custom expectation is written with GX's own extension mechanism (a ``ColumnMapExpectation``
and its ``ColumnMapMetricProvider``). Its Spark condition is a column expression
(``rule_columns.column_ok``: Spark's own functions, no UDF) that is true exactly where
``ecredit.core.checks.value_ok`` — the pure function the row split evaluates — is, tested value by
value (``tests/unit/test_rule_columns.py``), so the suite and the quarantine cannot disagree on a
rule; its pandas condition calls ``value_ok`` itself. The suites themselves are derived from
``checks.rules_for`` and kept as JSON under ``expectations/`` (``python -m ecredit.quality.expectations``
writes them; a test fails when they are out of date).

Importing this module registers the custom expectations; it must happen before a suite holding
them is loaded from JSON (GX drops unknown types with a log line only: ``load_suite`` checks).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from pathlib import Path
from typing import Any, ClassVar, Optional

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx
from great_expectations.core.suite_parameters import SuiteParameterDict
from great_expectations.execution_engine import PandasExecutionEngine, SparkDFExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial

from ecredit.core import (
    checks,
    lake,
)
from ecredit.core.feeds import DEPARTMENTS, FEEDS, Feed
from ecredit.core.feeds import feed as feed_by_name
from ecredit.core.records import DeliveryStatus
from ecredit.core.settings import PROJECT_ROOT
from ecredit.ingest import gate as delivery
from ecredit.ingest import sqlexpr
from ecredit.quality.rule_columns import column_ok

SUITES_DIR = PROJECT_ROOT / "expectations"
DELIVERY_DATE_PARAM = {"$PARAMETER": "delivery_date"}


@functools.lru_cache(maxsize=4096)
def _column_condition(rule: checks.Rule, column_name: str, when: dt.date | None):
    """``column_ok`` on the column ``column_name``, as a pyspark Column, built once per rule, column
    and date (GX asks for it once per metric of every expectation of every file). A Column of an
    unresolved name is immutable and binds to any frame."""
    return column_ok(rule, sqlexpr.col(column_name), when).column()


def _rule(expectation: str, kwargs: dict) -> tuple[checks.Rule, dt.date | None]:
    """The checks.Rule a GX expectation's arguments stand for, and the date a parameter resolved to."""
    args, when = [], None
    for k in ("date_format", "number_kind", "max_date", "as_of"):
        v = kwargs.get(k)
        if v is None:
            continue
        if k in ("max_date", "as_of"):
            when = dt.date.fromisoformat(str(v))
            v = checks.DELIVERY_DATE
        args.append((k, v))
    return checks.Rule("", expectation, "", tuple(args)), when


def _make(expectation: str, metric: str, keys: tuple[str, ...], doc: str):
    """A custom ColumnMapExpectation named ``expectation`` whose condition is ``checks.value_ok``
    (on Spark: ``rule_columns.column_ok``, the same rule as a column expression). The delivery date
    reaches it through the expectation's parameters (``max_date``/``as_of``, see ``_rule``)."""

    class Metric(ColumnMapMetricProvider):
        condition_metric_name = metric
        condition_value_keys = keys

        @column_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column, **kwargs):
            rule, when = _rule(expectation, kwargs)
            return column.map(lambda v: checks.value_ok(rule, v, when))

        @column_condition_partial(engine=SparkDFExecutionEngine)
        def _spark(cls, column, **kwargs):
            rule, when = _rule(expectation, {k: kwargs.get(k) for k in keys})
            name = (kwargs.get("_accessor_domain_kwargs") or {}).get("column")
            if not isinstance(name, str):  # GX's column is F.col(name); the rule is built on that name
                raise ValueError(f"{expectation}: GX gave no column name to build the rule on")
            return _column_condition(rule, name, when)

    def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
        """Data Docs: the rule as a sentence, with its arguments (dates resolved)."""
        from great_expectations.render import RenderedStringTemplateContent

        cfg = configuration or (result.expectation_config if result else None)
        args = dict(cfg.kwargs) if cfg else {}
        extra = "".join(f"; {k} $" + k for k in keys if args.get(k) is not None)
        return [
            RenderedStringTemplateContent(
                content_block_type="string_template",
                string_template={
                    "template": "$column values must be valid: " + _SENTENCE[expectation] + extra + ".",
                    "params": {k: args.get(k) for k in ("column", *keys)},
                    "styling": {"params": {}},
                },
            )
        ]

    from great_expectations.render import LegacyRendererType
    from great_expectations.render.renderer.renderer import renderer

    class_name = "".join(p.capitalize() for p in expectation.split("_"))
    Metric.__name__ = class_name.replace("Expect", "") + "Metric"
    namespace: dict[str, Any] = {
        "__doc__": doc,
        "__module__": __name__,
        "map_metric": metric,
        "success_keys": (*keys, "mostly"),
        "library_metadata": {"tags": ["ecredit", "quality.md"], "contributors": ["ecredit"]},
        # (Optional as GX declares its fields)
        "__annotations__": {k: Optional[str | SuiteParameterDict] for k in keys}  # noqa: UP045
        | {"library_metadata": ClassVar[dict]},
    }
    namespace.update({k: None for k in keys})
    namespace["_prescriptive_renderer"] = classmethod(
        renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)(_prescriptive_renderer)  # type: ignore[arg-type]
    )
    cls = type(class_name, (ColumnMapExpectation,), namespace)
    return Metric, cls


_CUSTOM = {
    "expect_column_values_to_be_valid_uscc": (
        "column_values.ecredit_valid_uscc",
        (),
        "统一社会信用代码: 18 characters of GB 32100 with a correct check character.",
    ),
    "expect_column_values_to_be_valid_id_no": (
        "column_values.ecredit_valid_id_no",
        ("as_of",),
        "证件号码: GB 11643 check character, a calendar birth date not after as_of.",
    ),
    "expect_column_values_to_be_valid_date": (
        "column_values.ecredit_valid_date",
        ("date_format", "max_date"),
        "A date in the feed's format (feeds.DATE_FORMATS), not after max_date.",
    ),
    "expect_column_values_to_be_valid_month": (
        "column_values.ecredit_valid_month",
        ("max_date",),
        "YYYY-MM whose first day is not after max_date.",
    ),
    "expect_column_values_to_be_valid_timestamp": (
        "column_values.ecredit_valid_timestamp",
        ("max_date",),
        "ISO-8601 with an offset; its Shanghai date not after max_date.",
    ),
    "expect_column_values_to_be_valid_number": (
        "column_values.ecredit_valid_number",
        ("number_kind",),
        "A non-negative decimal, integer count, or 0..100 indicator.",
    ),
    "expect_column_values_to_be_valid_district": (
        "column_values.ecredit_valid_district",
        (),
        "所属区划 starting with 4401 (Guangzhou).",
    ),
}
_SENTENCE = {name: doc.rstrip(".") for name, (_, _, doc) in _CUSTOM.items()}
CUSTOM_EXPECTATIONS = {name: _make(name, metric, keys, doc)[1] for name, (metric, keys, doc) in _CUSTOM.items()}


def _kwargs(rule: checks.Rule) -> dict:
    out: dict[str, Any] = {"column": rule.column}
    for k, v in rule.kwargs:
        out[k] = DELIVERY_DATE_PARAM if v == checks.DELIVERY_DATE else (list(v) if isinstance(v, tuple) else v)
    return out


# MALFORMED rows are set aside by the parser and never become DataFrame rows, so no column
# expectation can count them: the suite's last expectation compares the rows GX validates with the
# rows in the file (the gate's count, the manifest's), and fails by as many rows as were set aside.
ROW_COUNT = "expect_table_row_count_to_equal"
ROWS_IN_PARAM = {"$PARAMETER": "rows_in"}


def suite_dict(feed: Feed) -> dict:
    """The feed's suite as JSON: one expectation per rule of ``checks.rules_for``, each carrying
    its reason code in ``meta``, and the row count (MALFORMED: rows set aside before GX ran)."""
    return {
        "name": feed.feed_id,
        "meta": {"feed": feed.feed_id, "source": "ecredit/core/checks.py rules_for; quality.md"},
        "expectations": [
            {"type": r.expectation, "kwargs": _kwargs(r), "meta": {"reason_code": r.code}}
            for r in checks.rules_for(feed)
        ]
        + [
            {
                "type": ROW_COUNT,
                "kwargs": {"value": ROWS_IN_PARAM},
                "meta": {"reason_code": checks.MALFORMED},
                "notes": "Every row of the file reaches these expectations: a row the parser set aside as MALFORMED "
                "(undecodable bytes, wrong number of fields, invalid JSON, a NUL, a blank line) is missing "
                "from the rows validated here, and counted by this expectation.",
            }
        ],
    }


def suite_path(feed: Feed) -> Path:
    return SUITES_DIR / f"{feed.feed_id}.json"


def load_suite(feed: Feed) -> gx.ExpectationSuite:
    data = json.loads(suite_path(feed).read_text("utf-8"))
    suite = gx.ExpectationSuite(**data)
    if len(suite.expectations) != len(data["expectations"]):
        raise RuntimeError(
            f"{suite_path(feed)}: GX dropped expectations it does not know; "
            "import ecredit.quality.expectations before loading a suite"
        )
    return suite


def write_suites() -> list[Path]:
    SUITES_DIR.mkdir(exist_ok=True)
    out = []
    for f in FEEDS:
        p = suite_path(f)
        p.write_text(json.dumps(suite_dict(f), ensure_ascii=False, indent=2) + "\n", "utf-8")
        out.append(p)
    return out


if __name__ == "__main__":
    for p in write_suites():
        print(p)


# ---------------------------------------------------------------- running a suite on Spark

FILE_ROWS_PER_TASK = 250_000


def file_frame(rows, feed: Feed, info: dict):
    """The DataFrame a feed's suite runs on for one delivery file, cut from the ingest job's parsed
    rows (``ingest.parse_frame``): every row that is not MALFORMED (MALFORMED rows never become
    DataFrame rows; the parser counts them first), its ``source_line``, the values as sent
    (``checks.as_sent``: trimmed, null markers null, identifiers normalised, ``_identifier``), and
    the computed ``_duplicate_not_last``. The ID numbers in it stay in memory: only counts leave."""
    from pyspark.sql import functions as F

    columns = _file_columns(feed)
    # one task for a small file (each GX metric is a Spark job: tasks cost more than rows there);
    # a big file gets up to a task per core, or its suite's checks run on one core
    # (the platform evaluations are two thirds of all rows)
    parts = max(
        1, min(rows.sparkSession.sparkContext.defaultParallelism, int(info.get("rows") or 0) // FILE_ROWS_PER_TASK)
    )
    return (
        rows.filter(
            (F.col("feed_id") == info["feed_id"])
            & (F.col("delivery_date") == info["date"])
            & (F.col("file_sha") == info["sha256"])
            & F.col(checks.AS_SENT).isNotNull()
        )
        .select("source_line", *(F.col(checks.AS_SENT)[c].alias(c) for c in columns), checks.DUPLICATE_NOT_LAST)
        .coalesce(parts)
    )


# The small files of a run (up to LOCAL_FILE_MAX_ROWS rows each, LOCAL_MAX_ROWS in all, the smallest
# first) are validated by GX's pandas engine on a copy in the driver's memory, fetched in one Spark
# job (``local_frames``); the others by GX's Spark engine on the executors. GX's cost on Spark is
# per expectation, not per row: ~3,100 calls into the JVM and a Spark job or more per metric, about
# 1 s per file however small (the 16 files of a 2,000-operator date: 14.5 s in a fresh job). On
# pandas it is per value: ~3 us per value and rule (the same 16 files, 37,622 rows: 1.2 s), so a
# file of more than ~30k rows is cheaper on Spark; the total bounds the driver's copy.
# Both engines evaluate the same rule: pandas ``checks.value_ok``, Spark ``rule_columns.column_ok``,
# equal value for value (tests/unit/test_rule_columns.py), and tests/integration/test_expectations.py
# checks each engine's unexpected rows against the quarantine line by line.
LOCAL_FILE_MAX_ROWS = 30_000
LOCAL_MAX_ROWS = 100_000


def local_files(files: list[dict], budget: int | None = None, file_max: int | None = None) -> list[dict]:
    """The files of ``files`` validated on pandas: the smallest first, each of at most ``file_max``
    rows (LOCAL_FILE_MAX_ROWS), while their rows add up to at most ``budget`` (LOCAL_MAX_ROWS)."""
    budget = LOCAL_MAX_ROWS if budget is None else budget
    file_max = LOCAL_FILE_MAX_ROWS if file_max is None else file_max
    out, total = [], 0
    for info in sorted(files, key=lambda f: int(f.get("rows") or 0)):
        rows = int(info.get("rows") or 0)
        total += rows
        if rows > file_max or total > budget:
            break
        out.append(info)
    return out


def _file_columns(feed: Feed) -> list[str]:
    return sorted({r.column for r in checks.rules_for(feed)} - {checks.DUPLICATE_NOT_LAST})


def local_frames(rows, files: list[dict]) -> dict:
    """``file_frame`` of each of ``files`` as a pandas DataFrame, all fetched in one Spark job:
    {(feed_id, date, sha256): frame}. For small files (``LOCAL_MAX_ROWS``); the values stay in the
    driver's memory, only counts leave."""
    import pandas as pd
    from pyspark.sql import functions as F

    if not files:
        return {}
    feeds_of = {_file_key(info): feed_by_name(info["dept"], info["name"]) for info in files}
    columns = sorted({c for f in feeds_of.values() for c in _file_columns(f)})
    wanted = F.lit(False)
    for feed_id, date, sha in feeds_of:
        wanted = wanted | (
            (F.col("feed_id") == feed_id) & (F.col("delivery_date") == date) & (F.col("file_sha") == sha)
        )
    fetched = (
        rows.filter(wanted & F.col(checks.AS_SENT).isNotNull())
        .select(
            "feed_id",
            "delivery_date",
            "file_sha",
            "source_line",
            *(F.col(checks.AS_SENT)[c].alias(c) for c in columns),
            checks.DUPLICATE_NOT_LAST,
        )
        .toArrow()  # Arrow whatever spark.sql.execution.arrow.pyspark.enabled says
        .to_pandas()
    )
    groups = {k: g for k, g in fetched.groupby(["feed_id", "delivery_date", "file_sha"], sort=False)}
    out = {}
    for key, feed in feeds_of.items():
        keep = ["source_line", *_file_columns(feed), checks.DUPLICATE_NOT_LAST]
        frame = groups.get(key)
        if frame is None:  # every row of the file set aside as MALFORMED
            frame = pd.DataFrame({c: pd.Series(dtype=fetched[c].dtype) for c in keep})
        out[key] = frame[keep].sort_values("source_line").reset_index(drop=True)
    return out


def _file_key(info: dict) -> tuple:
    return info["feed_id"], info["date"], info["sha256"]


def context(docs_dir: Path | None = None):
    """An ephemeral GX context (suites come from expectations/, results go to the lake and the
    warehouse); with ``docs_dir``, one Data Docs site there."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    for name in list(ctx.list_data_docs_sites()):
        ctx.delete_data_docs_site(name)
    if docs_dir is not None:
        ctx.add_data_docs_site(
            "ecredit",
            {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,  # type: ignore[typeddict-unknown-key]  # SiteBuilder takes it
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


# No row values in results: they may be personal data. The agreement test asks for line numbers.
# BASIC: counts only. SUMMARY would add unexpected index lists and queries: more metrics (on Spark
# more jobs), and nothing the results, dq_result or Data Docs show.
COUNTS = {"result_format": "BASIC", "partial_unexpected_count": 0, "include_unexpected_rows": False}


def validate(ctx, df, feed: Feed, delivery_date: dt.date, rows_in: int, result_format=None):
    """Run the feed's suite on ``df``: a Spark DataFrame in the job's own SparkSession (GX reuses it
    untouched), or a pandas one (``local_frames``);
    ``rows_in``: the rows in the file, MALFORMED ones included (the gate's count)."""
    import pandas as pd

    if isinstance(df, pd.DataFrame):  # a small file (LOCAL_MAX_ROWS), in the driver's memory
        ds = ctx.data_sources.add_or_update_pandas(name="ecredit_pandas")
    else:
        ds = ctx.data_sources.add_or_update_spark(name="ecredit_spark", persist=False)
    asset = ds.get_asset(feed.feed_id) if feed.feed_id in ds.get_asset_names() else ds.add_dataframe_asset(feed.feed_id)
    try:
        bd = asset.get_batch_definition("file")
    except KeyError:
        bd = asset.add_batch_definition_whole_dataframe("file")
    batch = bd.get_batch(batch_parameters={"dataframe": df})
    return batch.validate(
        load_suite(feed),
        result_format=result_format or COUNTS,
        expectation_parameters={"delivery_date": delivery_date.isoformat(), "rows_in": int(rows_in)},
    )


def raised(exception_info: dict | None) -> str | None:
    """The message of an expectation that raised, else None. GX 1.x gives either one
    ``{"raised_exception": ..., "exception_message": ...}`` or, when a metric failed to compute
    (e.g. a Spark task died), such a dict per metric. Only the
    message's first line: a traceback further down may quote row values."""
    exc = exception_info or {}
    for e in [exc, *(v for v in exc.values() if isinstance(v, dict))]:
        if e.get("raised_exception"):
            lines = [ln.strip() for ln in str(e.get("exception_message") or "").splitlines() if ln.strip()]
            return (lines[0] if lines else "an exception")[:300]
    return None


def summarise(result) -> list[dict]:
    """Per expectation of a validation result: what ``dq_result`` publishes (counts, no values)."""
    out = []
    for r in result.results:
        cfg = r.expectation_config
        element_count = int(r.result.get("element_count") or 0)
        unexpected_count = int(r.result.get("unexpected_count") or 0)
        if cfg.type == ROW_COUNT:  # the rows in the file, and those GX never saw (set aside)
            value = cfg.kwargs.get("value")
            element_count = int(value) if isinstance(value, (int, float)) else 0
            unexpected_count = element_count - int(r.result.get("observed_value") or 0)
        out.append(
            {
                "expectation": cfg.type,
                "column": cfg.kwargs.get("column"),
                "reason_code": (cfg.meta or {}).get("reason_code"),
                "success": bool(r.success),
                "element_count": element_count,
                "unexpected_count": unexpected_count,
                "exception": raised(r.exception_info),
            }
        )
    return out


def disagreements(summary: list[dict], per_reason: dict) -> list[str]:
    """Where a file's GX counts contradict its row split (``per_reason``: rows quarantined per
    code). A row can fail several expectations of one code, so for each code the rows with it lie
    between the largest and the sum of its expectations' unexpected counts; a code with a single
    expectation (DUPLICATE_KEY always; MALFORMED: the row count) must match exactly. An
    expectation that raised is a problem."""
    problems = [f"{s['expectation']}({s['column']}) raised: {s['exception']}" for s in summary if s["exception"]]
    by_code: dict = {}
    for s in summary:
        by_code.setdefault(s["reason_code"], []).append(s["unexpected_count"])
    unchecked = set() if checks.MALFORMED in by_code else {checks.MALFORMED}  # a result stored before the row count
    for code in sorted(set(by_code) | (set(per_reason) - unchecked)):
        n, gx_counts = per_reason.get(code, 0), by_code.get(code, [])
        if not gx_counts or not (max(gx_counts) <= n <= sum(gx_counts)):
            problems.append(f"{code}: {n} rows quarantined, GX unexpected counts {gx_counts}")
    return problems


result_path = lake.validation_result  # the stored GX validation result of one delivery file (JSON, counts only)


GX_THREADS = 4  # validations on Spark are latency-bound: a few run side by side (measured 1.8x)


def validate_files(settings, rows, files: list[dict]) -> dict:
    """Run each file's suite on its rows (``rows``: the ingest job's parsed frame); store each
    result in the lake; returns {(feed_id, date, sha256): summarise(result)}. The smallest files,
    up to ``LOCAL_MAX_ROWS`` rows in all, are fetched in one Spark job and validated on GX's pandas
    engine one after the other; the others on its Spark engine, a few at once (each thread with its
    own GX context)."""
    import logging
    import queue
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd

    log = logging.getLogger(__name__)

    def store(ctx, info: dict, df):
        feed = feed_by_name(info["dept"], info["name"])
        t0 = time.monotonic()
        result = validate(ctx, df, feed, dt.date.fromisoformat(info["date"]), info["rows"])
        path = result_path(settings, info)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(result.to_json_dict(), ensure_ascii=False, default=str), "utf-8")
        os.replace(tmp, path)
        log.info(
            "GX %s %s %s (%s): %s, %d of %d expectations met (%.2f s)",
            info["dept"],
            info["date"],
            info["name"],
            "pandas" if isinstance(df, pd.DataFrame) else "Spark",
            "success" if result.success else "failed",
            result.statistics["successful_expectations"],
            result.statistics["evaluated_expectations"],
            time.monotonic() - t0,
        )
        return _file_key(info), summarise(result)

    out: dict = {}
    small = local_files(files)
    big = [f for f in files if f not in small]
    if small:
        t0 = time.monotonic()
        frames = local_frames(rows, small)
        log.info("GX: the %d small files' rows fetched in %.2f s", len(small), time.monotonic() - t0)
        ctx = context()
        out.update(store(ctx, info, frames[_file_key(info)]) for info in small)
    if not big:
        return out
    # GX fills some registries lazily: the contexts are made, and the first file validated, in
    # this thread; then each worker borrows a context of its own.
    contexts: queue.SimpleQueue = queue.SimpleQueue()
    for _ in range(GX_THREADS):
        contexts.put(context())

    def one(info: dict):
        ctx = contexts.get()
        try:
            return store(ctx, info, file_frame(rows, feed_by_name(info["dept"], info["name"]), info))
        finally:
            contexts.put(ctx)

    out.update([one(big[0])])
    with ThreadPoolExecutor(GX_THREADS, thread_name_prefix="gx") as pool:
        out.update(pool.map(one, big[1:]))
    return out


docs_dir = lake.data_docs_dir


def build_docs(settings, run_date: dt.date) -> Path | None:
    """The run's Data Docs site: the stored validation results of every delivery dated D, rendered
    by GX under ``lake/data_docs/<D>/`` with the feeds' suites. Its ``index.html`` is ecredit's own
    page (static HTML, no script: it opens offline), one row per department and file linking to
    GX's page of that validation; GX's own index is kept as ``gx_index.html`` (its tables need
    scripts from public CDNs). Rebuilt from the stored results, so a rerun gives the same site.
    Returns the index (None when no delivery dated D was validated)."""
    import shutil

    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    site = docs_dir(settings, run_date)
    if site.exists():
        shutil.rmtree(site)
    ctx = context(site)
    run_id = RunIdentifier(
        run_name=f"delivery {run_date.isoformat()}", run_time=dt.datetime.combine(run_date, dt.time(), dt.UTC)
    )
    keys: list = []
    rows: list[tuple] = []
    suites: set = set()
    set_aside: dict = {}  # validation key -> the file's MALFORMED rows, shown on its page
    for dept in DEPARTMENTS:
        gate = delivery.current_gate(settings, dept, run_date)
        if gate is None:
            rows.append((dept, "", "missing", "no complete delivery dated D", None))
            continue
        if gate.status == DeliveryStatus.REJECTED:
            rows.append((dept, "", "rejected at the gate", "; ".join(gate.reasons), None))
            continue
        for f in gate.files:
            feed = feed_by_name(dept, f.name)
            info = {"feed_id": feed.feed_id, "date": run_date.isoformat(), "sha256": f.sha256}
            path = result_path(settings, info)
            if not path.is_file():
                rows.append((dept, f.name, "not validated yet", "", None))
                continue
            data = json.loads(path.read_text("utf-8"))
            data["meta"]["run_id"] = run_id.to_json_dict()
            result = expectationSuiteValidationResultSchema.load(data)
            batch = f"{dept} {f.name} {f.sha256[:12]}"
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=feed.feed_id),
                run_id=run_id,
                batch_identifier=batch,
            )
            ctx.validation_results_store.set(key, result)
            if feed.feed_id not in suites:
                ctx.suites.add(load_suite(feed))  # the suite's own page, linked from the results
                suites.add(feed.feed_id)
            keys.append(key)
            st = result.statistics
            unexpected = sum(int(r.result.get("unexpected_count") or 0) for r in result.results)
            counts = lake.read_done(settings, info) or {}
            malformed = int(counts.get("per_reason", {}).get(checks.MALFORMED, 0))
            detail = (
                f"{st['successful_expectations']} of {st['evaluated_expectations']} expectations met; "
                f"{unexpected} unexpected values"
            )
            if malformed:  # never "succeeded, 0 unexpected" for a file with rows GX never saw
                set_aside[key] = [r for r in lake.quarantined_rows(settings, info) if checks.MALFORMED in r["reasons"]]
                detail += f"; {malformed} rows set aside before GX ran (MALFORMED: {_kinds(set_aside[key])})"
            kept = [w.code for w in f.warnings]
            kept += [f"{code} {n} rows" for code, n in sorted(counts.get("per_warning", {}).items())]
            if kept:
                detail += "; warnings: " + ", ".join(kept)
            rows.append((dept, f.name, "succeeded" if result.success and not malformed else "failed", detail, key))
    if not keys:
        return None
    ctx.build_data_docs(site_names=["ecredit"])
    for key, malformed in set_aside.items():
        page = _page(site, key)
        if page is not None:
            page.write_text(_with_set_aside(page.read_text("utf-8"), malformed), "utf-8")
    os.replace(site / "index.html", site / "gx_index.html")
    index = site / "index.html"
    index.write_text(_index_html(site, run_date, rows), "utf-8")
    return index


def _details(malformed: list[dict]) -> dict:
    """The parser's detail of each MALFORMED row (it never quotes a value) -> its lines."""
    out: dict = {}
    for r in malformed:
        try:
            detail = json.loads(r["payload"] or "{}").get("_detail") or "MALFORMED"
        except ValueError:
            detail = "MALFORMED"
        out.setdefault(detail, []).append(r["source_line"])
    return out


def _kinds(malformed: list[dict]) -> str:
    return "; ".join(f"{d}: {len(lines)}" for d, lines in sorted(_details(malformed).items(), key=lambda x: -len(x[1])))


def _page(site: Path, key) -> Path | None:
    return next((site / "validations").rglob(f"{key.batch_identifier}.html"), None)


SHOWN_LINES = 50


def _with_set_aside(page: str, malformed: list[dict]) -> str:
    """GX's validation page of a file with MALFORMED rows, with those rows shown first: count,
    the parser's reason and their lines (no content: it may hold personal data)."""
    from html import escape

    body = "".join(
        f"<tr><td>{escape(d)}</td><td>{len(lines)}</td><td>{', '.join(map(str, lines[:SHOWN_LINES]))}"
        f"{' …' if len(lines) > SHOWN_LINES else ''}</td></tr>"
        for d, lines in sorted(_details(malformed).items(), key=lambda x: (-len(x[1]), x[0]))
    )
    block = (
        f'<div id="ecredit-set-aside" class="alert alert-danger" style="margin:1em">'
        f"<h4>{len(malformed)} rows set aside before validation (MALFORMED)</h4>"
        "<p>The parser could not read these rows of the file into the feed's columns: they are not among the "
        "rows validated below (the row count expectation counts them), and they are in <code>quarantine</code> "
        "and the department's <code>rejections.csv</code>.</p>"
        '<table class="table table-sm"><tr><th>reason</th><th>rows</th><th>lines</th></tr>'
        f"{body}</table></div>"
    )
    body_at = page.find("<body")
    if body_at < 0:
        return block + page
    at = page.find(">", body_at) + 1
    return page[:at] + block + page[at:]


def _index_html(site: Path, run_date: dt.date, rows: list) -> str:
    """ecredit's index of the run's Data Docs: a plain table, links to GX's validation pages."""
    from html import escape
    from urllib.parse import quote

    body = []
    for dept, name, status, detail, key in rows:
        link = escape(name)
        if key is not None:
            page = _page(site, key)
            if page is not None:
                link = f'<a href="{quote(page.relative_to(site).as_posix())}">{escape(name)}</a>'
        css = {"succeeded": "ok", "failed": "bad", "rejected at the gate": "bad", "missing": "warn"}.get(status, "")
        body.append(
            f'<tr class="{css}"><td>{escape(dept)}</td><td>{link}</td><td>{escape(status)}</td>'
            f"<td>{escape(detail)}</td></tr>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ecredit Data Docs {run_date}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 10px;text-align:left}}tr.ok td:nth-child(3){{color:#176f2c}}tr.bad td:nth-child(3){{color:#b00020;
font-weight:bold}}tr.warn td:nth-child(3){{color:#9a6700}}</style></head>
<body><h1>Data quality of the deliveries dated {run_date}</h1>
<p>Great Expectations results of every delivery file dated {run_date}, one suite per feed
(<code>expectations/</code>); counts only, no row values. A failed expectation means rows were
quarantined for that rule (see <code>dq_result</code> and the department's <code>rejections.csv</code>);
rows the parser set aside as MALFORMED never reach the column expectations: the row count
expectation counts them, and the file's page lists them.
GX's own index: <a href="gx_index.html">gx_index.html</a>.</p>
<table><tr><th>department</th><th>file</th><th>validation</th><th>detail</th></tr>
{chr(10).join(body)}
</table></body></html>
"""
