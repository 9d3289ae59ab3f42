"""Great Expectations on Spark: the custom expectations of ``quality.md`` and the suites.

Each custom expectation is written with GX's own extension mechanism (a ``ColumnMapExpectation``
and its ``ColumnMapMetricProvider``). Its Spark condition is a vectorised UDF that calls
``ecredit.checks.value_ok`` — the same pure function the row split evaluates — so the suite and
the quarantine cannot disagree on a rule. The suites themselves are derived from
``checks.rules_for`` and kept as JSON under ``expectations/`` (``python -m ecredit.expectations``
writes them; a test fails when they are out of date).

Importing this module registers the custom expectations; it must happen before a suite holding
them is loaded from JSON (GX drops unknown types with a log line only: ``load_suite`` checks).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import ClassVar, Optional, Union

import pandas as pd  # module level: pandas_udf resolves its type hints in this module's globals

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx  # noqa: E402
from great_expectations.core.suite_parameters import SuiteParameterDict  # noqa: E402
from great_expectations.execution_engine import PandasExecutionEngine, SparkDFExecutionEngine  # noqa: E402
from great_expectations.expectations.expectation import ColumnMapExpectation  # noqa: E402
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial  # noqa: E402

from ecredit import checks  # noqa: E402
from ecredit.feeds import FEEDS, Feed  # noqa: E402
from ecredit.settings import PROJECT_ROOT  # noqa: E402

SUITES_DIR = PROJECT_ROOT / "expectations"
DELIVERY_DATE_PARAM = {"$PARAMETER": "delivery_date"}


def _rule(expectation: str, kwargs: dict) -> tuple[checks.Rule, Optional[dt.date]]:
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


def _condition(expectation: str, kwargs: dict):
    rule, when = _rule(expectation, kwargs)
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType

    @F.pandas_udf(BooleanType())
    def ok(values: pd.Series) -> pd.Series:
        # a null arrives as None or NaN; null rows are not "unexpected" anyway (GX filters them)
        return values.map(lambda v: checks.value_ok(rule, v if isinstance(v, str) else None, when)).astype(bool)

    return ok


def _make(expectation: str, metric: str, keys: tuple[str, ...], doc: str):
    """A custom ColumnMapExpectation named ``expectation`` whose condition is ``checks.value_ok``."""

    class Metric(ColumnMapMetricProvider):
        condition_metric_name = metric
        condition_value_keys = keys

        @column_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column, **kwargs):
            rule, when = _rule(expectation, kwargs)
            return column.map(lambda v: checks.value_ok(rule, v, when))

        @column_condition_partial(engine=SparkDFExecutionEngine)
        def _spark(cls, column, **kwargs):
            return _condition(expectation, {k: kwargs.get(k) for k in keys})(column)

    class_name = "".join(p.capitalize() for p in expectation.split("_"))
    Metric.__name__ = class_name.replace("Expect", "") + "Metric"
    namespace = {
        "__doc__": doc, "__module__": __name__, "map_metric": metric,
        "success_keys": (*keys, "mostly"),
        "library_metadata": {"tags": ["ecredit", "quality.md"], "contributors": ["ecredit"]},
        "__annotations__": {k: Optional[Union[str, SuiteParameterDict]] for k in keys}
        | {"library_metadata": ClassVar[dict]},
    }
    namespace.update({k: None for k in keys})
    cls = type(class_name, (ColumnMapExpectation,), namespace)
    return Metric, cls


_CUSTOM = {
    "expect_column_values_to_be_valid_uscc": ("column_values.ecredit_valid_uscc", (),
                                              "统一社会信用代码: 18 characters of GB 32100 with a correct check character."),
    "expect_column_values_to_be_valid_id_no": ("column_values.ecredit_valid_id_no", ("as_of",),
                                               "证件号码: GB 11643 check character, a calendar birth date not after as_of."),
    "expect_column_values_to_be_valid_date": ("column_values.ecredit_valid_date", ("date_format", "max_date"),
                                              "A date in the feed's format (feeds.DATE_FORMATS), not after max_date."),
    "expect_column_values_to_be_valid_month": ("column_values.ecredit_valid_month", ("max_date",),
                                               "YYYY-MM whose first day is not after max_date."),
    "expect_column_values_to_be_valid_timestamp": ("column_values.ecredit_valid_timestamp", ("max_date",),
                                                   "ISO-8601 with an offset; its Shanghai date not after max_date."),
    "expect_column_values_to_be_valid_number": ("column_values.ecredit_valid_number", ("number_kind",),
                                                "A non-negative decimal, integer count, or 0..100 indicator."),
    "expect_column_values_to_be_valid_district": ("column_values.ecredit_valid_district", (),
                                                  "所属区划 starting with 4401 (Guangzhou)."),
}
CUSTOM_EXPECTATIONS = {name: _make(name, metric, keys, doc)[1] for name, (metric, keys, doc) in _CUSTOM.items()}


def _kwargs(rule: checks.Rule) -> dict:
    out = {"column": rule.column}
    for k, v in rule.kwargs:
        out[k] = DELIVERY_DATE_PARAM if v == checks.DELIVERY_DATE else (list(v) if isinstance(v, tuple) else v)
    return out


def suite_dict(feed: Feed) -> dict:
    """The feed's suite as JSON: one expectation per rule of ``checks.rules_for``, each carrying
    its reason code in ``meta``."""
    return {
        "name": feed.feed_id,
        "meta": {"feed": feed.feed_id, "source": "ecredit/checks.py rules_for; quality.md"},
        "expectations": [{"type": r.expectation, "kwargs": _kwargs(r), "meta": {"reason_code": r.code}}
                         for r in checks.rules_for(feed)],
    }


def suite_path(feed: Feed) -> Path:
    return SUITES_DIR / f"{feed.feed_id}.json"


def load_suite(feed: Feed) -> gx.ExpectationSuite:
    data = json.loads(suite_path(feed).read_text("utf-8"))
    suite = gx.ExpectationSuite(**data)
    if len(suite.expectations) != len(data["expectations"]):
        raise RuntimeError(f"{suite_path(feed)}: GX dropped expectations it does not know; "
                           "import ecredit.expectations before loading a suite")
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

def validation_frame(spark, feed: Feed, path: str, delivery_date: dt.date):
    """The DataFrame a feed's suite runs on: every row that is not MALFORMED (MALFORMED rows never
    become DataFrame rows; the parser counts them first), with the values as sent (trimmed, null
    markers as null, identifiers normalised), its ``source_line``, and the two computed columns of
    ``checks``: the identifier, and whether the row is a duplicate of a later clean row. Personal
    data stays in memory: only counts leave the validation."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from ecredit import ids, ingest, parse

    cols = [c for c in feed.columns if c.kind != "pii"]
    rows = []
    with open(path, "rb") as stream:
        for raw in parse.iter_rows(stream, feed):
            if raw.values is None:
                continue
            vals = {c.name: ids.normalise(raw.values.get(c.name)) if c.kind in ("uscc", "id_no")
                    else raw.values.get(c.name) for c in cols}
            checked, reasons, _, op_key, _ = checks.check_row(feed, raw.values, delivery_date, "-")
            key = ingest.key_string(feed, checked, op_key) if not reasons else None
            rows.append((raw.line, *(vals[c.name] for c in cols), vals.get("uscc") or vals.get("id_no"), key))
    schema = T.StructType([T.StructField("source_line", T.LongType())]
                          + [T.StructField(c.name, T.StringType()) for c in cols]
                          + [T.StructField(checks.IDENTIFIER, T.StringType()), T.StructField("_clean_key", T.StringType())])
    df = spark.createDataFrame(rows, schema)
    dup = ingest.duplicate_not_last(F.col("_clean_key").isNotNull(), ["_clean_key"])  # one file: the key suffices
    return df.withColumn(checks.DUPLICATE_NOT_LAST, dup).drop("_clean_key")


def context(docs_dir: Path | None = None):
    """An ephemeral GX context (suites come from expectations/, results go to the lake and the
    warehouse); with ``docs_dir``, one Data Docs site there."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    for name in list(ctx.list_data_docs_sites()):
        ctx.delete_data_docs_site(name)
    if docs_dir is not None:
        ctx.add_data_docs_site("ecredit", {
            "class_name": "SiteBuilder", "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


# No row values in results: they may be personal data. The agreement test asks for line numbers.
SUMMARY = {"result_format": "SUMMARY", "partial_unexpected_count": 0, "include_unexpected_rows": False}


def validate(ctx, df, feed: Feed, delivery_date: dt.date, result_format=None):
    """Run the feed's suite on ``df`` in the job's own SparkSession (GX reuses it untouched)."""
    ds = ctx.data_sources.add_or_update_spark(name="ecredit_spark", persist=False)
    asset = ds.get_asset(feed.feed_id) if feed.feed_id in ds.get_asset_names() else ds.add_dataframe_asset(feed.feed_id)
    try:
        bd = asset.get_batch_definition("file")
    except KeyError:
        bd = asset.add_batch_definition_whole_dataframe("file")
    batch = bd.get_batch(batch_parameters={"dataframe": df})
    return batch.validate(load_suite(feed), result_format=result_format or SUMMARY,
                          expectation_parameters={"delivery_date": delivery_date.isoformat()})
