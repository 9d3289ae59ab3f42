"""How failures read and where they are kept (the fault-injection tests run the faults themselves:
tests/integration/test_faults.py): the reason recorded for a Spark task, a full disk, failpoints
that do nothing unless set, and failed attempts kept in the lake while the warehouse is down."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys

from sqlalchemy import create_engine, select

from ecredit import pipeline
from ecredit.core import failpoints
from ecredit.core import settings as settings_mod
from ecredit.ingest import load as ingest
from ecredit.quality import expectations
from ecredit.warehouse import publish
from ecredit.warehouse import schema as wh

SPARK_FAILURE = (
    "Cannot execute: spark-submit --master local[*] --name ecredit-ingest /repo/jobs/ingest.py --date "
    "2026-11-02. Error code is: {code}.\nLast spark-submit output:\nTraceback (most recent call last):\n"
    '  File "/repo/jobs/ingest.py", line 20, in main\n{last}\n'
)


def test_a_killed_spark_application_is_said_so():
    reason = pipeline.clear_reason(SPARK_FAILURE.format(code=137, last="(no output)"))
    assert reason.startswith("the Spark application was killed (SIGKILL")
    assert reason.endswith("(no output)\n")  # the provider's own words stay, after


def test_the_applications_own_exception_comes_first():
    last = (
        "ecredit.ingest.load.LakeFull: [Errno 28] ingest 2026-11-02: no space left on the device of "
        "CREDIT_LAKE_DIR (/lake); the attempt's partial output is never read: free space, then rerun the date"
    )
    reason = pipeline.clear_reason(SPARK_FAILURE.format(code=1, last=last))
    assert reason.startswith(last + "; Cannot execute: spark-submit")
    assert "killed" not in reason


def test_other_reasons_are_kept_as_they_are():
    assert pipeline.clear_reason("boom") == "boom"


def test_no_space_is_found_through_the_exception_chain():
    try:
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as e:
            raise RuntimeError("writing failed") from e
    except RuntimeError as e:
        assert ingest.no_space(e)
    assert ingest.no_space(RuntimeError("Caused by: java.io.IOException: No space left on device"))
    assert not ingest.no_space(OSError(errno.EACCES, "Permission denied"))


def test_a_failpoint_does_nothing_unless_named(monkeypatch):
    monkeypatch.delenv(failpoints.ENV, raising=False)
    failpoints.hit("publish.staged")
    monkeypatch.setenv(failpoints.ENV, "another.point")
    failpoints.hit("publish.staged")
    code = "from ecredit.core import failpoints; failpoints.hit('x.y'); print('not reached')"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, failpoints.ENV: "x.y"}
    )
    assert out.returncode == -9 and out.stdout == ""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failure_is_kept_in_the_lake_while_the_warehouse_is_down(tmp_path):
    down = settings_mod.load(
        {
            "CREDIT_DATA_DIR": str(tmp_path),
            "CREDIT_WAREHOUSE_URL": f"postgresql+psycopg://u@127.0.0.1:{_closed_port()}/w",
        }
    )
    publish.record_failed_run(
        down, "2026-11-02", "run-1", "publish: CREDIT_WAREHOUSE_URL: the warehouse cannot be reached"
    )
    kept = list(publish.unrecorded_dir(down).glob("*.json"))
    assert len(kept) == 1
    up = settings_mod.load({"CREDIT_DATA_DIR": str(tmp_path)})  # the same lake, the warehouse back
    publish.record_failed_run(up, "2026-11-03", "run-2", "build_state: boom")
    assert publish.flush_unrecorded(up, publish.connect(up)) == 0  # written once, not again
    with create_engine(up.warehouse_url).connect() as c:
        rows = [dict(r._mapping) for r in c.execute(select(wh.pipeline_run).order_by(wh.pipeline_run.c.attempt_id))]
    assert [(r["run_id"], str(r["run_date"]), r["status"]) for r in rows] == [
        ("run-2", "2026-11-03", "failed"),
        ("run-1", "2026-11-02", "failed"),
    ]
    assert rows[1]["reason"].startswith("publish: CREDIT_WAREHOUSE_URL") and json.loads(rows[1]["counts"])
    assert list(publish.unrecorded_dir(up).glob("*")) == []
    # a kept file that cannot be read never fails the attempt that flushes; it stays
    (publish.unrecorded_dir(up) / "bad.json").write_text("{", "utf-8")
    assert publish.flush_unrecorded(up, publish.connect(up)) == 0
    assert (publish.unrecorded_dir(up) / "bad.json").is_file()


def test_an_expectation_whose_metric_raised_is_a_disagreement():
    """GX 1.x reports a metric that failed to compute (a Spark task of a custom expectation died)
    per metric; it used to read as 0 unexpected rows, which agreed with a clean file."""
    per_metric = {
        "MetricConfigurationID(metric_name='column_values.ecredit_valid_uscc.unexpected_count')": {
            "exception_traceback": "Traceback ...",
            "raised_exception": True,
            "exception_message": "\n  An exception was thrown from the Python worker.\nModuleNotFoundError: pyarrow",
        }
    }
    assert expectations.raised(per_metric) == "An exception was thrown from the Python worker."
    assert expectations.raised({"raised_exception": True, "exception_message": "boom"}) == "boom"
    assert expectations.raised({"raised_exception": False, "exception_message": None}) is None
    assert expectations.raised(None) is None
    summary = [
        {
            "expectation": "expect_column_values_to_be_valid_uscc",
            "column": "uscc",
            "reason_code": "BAD_USCC",
            "unexpected_count": 0,
            "exception": expectations.raised(per_metric),
        }
    ]
    assert expectations.disagreements(summary, {}) == [
        "expect_column_values_to_be_valid_uscc(uscc) raised: An exception was thrown from the Python worker."
    ]
