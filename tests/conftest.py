"""Shared fixtures: one local SparkSession for the whole session, settings pointing at a
temporary data folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

# CI=true: a skip (a missing service) fails instead (operations.md); see tests/ci_strict.py
from tests.ci_strict import pytest_make_collect_report, pytest_runtest_makereport  # noqa: E402,F401

# The tier of a test is its folder: tests/fast (no JVM, Airflow or database), tests/unit (pure
# functions and Spark transforms on a local session, SQLite), tests/integration (DAG runs, PostgreSQL,
# the browser, the cluster). The folder gives the marker, so `-m fast|unit|integration` still selects.
TIERS = ("fast", "unit", "integration")


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts[0] in TIERS:
            item.add_marker(parts[0])


@pytest.fixture(scope="session")
def spark():
    from ecredit.spark import C1_ONLY, get_session

    session = get_session(
        "ecredit-tests",
        master="local[2]",
        conf={
            # small test data: fewer partitions and no whole-stage code generation start faster
            "spark.sql.shuffle.partitions": "1",
            "spark.default.parallelism": "2",
            "spark.sql.codegen.wholeStage": "false",
            "spark.sql.adaptive.enabled": "false",
            "spark.driver.extraJavaOptions": C1_ONLY,  # small test data: C1 only (ecredit.spark.C1_MAX_ROWS)
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def default_rules():
    from ecredit.core import rules
    from ecredit.core.settings import DEFAULT_RULES

    return rules.load(DEFAULT_RULES)


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> Path:
    """One temporary AIRFLOW_HOME per test session, migrated once."""
    from ecredit.airflow import env as airflow_env

    home = tmp_path_factory.getbasetemp() / "airflow_home"
    airflow_env.prepare_airflow_env(home)
    return home


# py4j logs "Closing down clientserver connection" from __del__ after pytest closed its streams.
import logging as _logging  # noqa: E402

_logging.getLogger("py4j").setLevel(_logging.WARNING)
