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
    fields = {k: (Optional[Union[str, SuiteParameterDict]], None) for k in keys}
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
