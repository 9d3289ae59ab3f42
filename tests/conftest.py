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


# `make test` runs the tests in two processes (pytest-xdist). A test's group is its module, so that a
# module's fixtures are built once, except for the modules that use the session's end-to-end cities
# (tests/integration/conftest.py): all of them form one group, so that each city's DAG runs are
# made once, by one process (a test may use both cities, and a module fixture may be built on
# either). A group runs whole on one process (``pytest_xdist_make_scheduler``).
SHARED_CITIES = ("e2e", "dirty_e2e")
CITIES_GROUP = "cities"
GROUPS_ENV = "ECREDIT_TEST_GROUPS"  # the file in which the workers leave each test's group


def uses_a_city(item) -> bool:
    """By its fixtures, or by a parameter naming a city that it resolves with
    ``request.getfixturevalue``."""
    if set(getattr(item, "fixturenames", ())) & set(SHARED_CITIES):
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    return any(isinstance(v, str) and v in SHARED_CITIES for v in params.values())


def module_of(item) -> str:
    return Path(str(item.fspath)).relative_to(ROOT).as_posix()


def xdist_groups(items) -> dict:
    """Each test's group, by node id: ``CITIES_GROUP`` for every test of a module in which any
    test uses a city, else the test's module."""
    on_cities = {module_of(item) for item in items if uses_a_city(item)}
    return {item.nodeid: CITIES_GROUP if module_of(item) in on_cities else module_of(item) for item in items}


def pytest_configure(config):
    if not hasattr(config, "workerinput") and config.pluginmanager.hasplugin("xdist"):
        if config.getoption("numprocesses", None):
            import tempfile

            os.environ[GROUPS_ENV] = str(Path(tempfile.mkdtemp(prefix="ecredit-test-groups-")) / "groups.json")


def pytest_unconfigure(config):
    if not hasattr(config, "workerinput") and os.environ.get(GROUPS_ENV):
        import shutil

        shutil.rmtree(Path(os.environ.pop(GROUPS_ENV)).parent, ignore_errors=True)


def pytest_xdist_make_scheduler(config, log):
    """Whole groups to a process (``xdist_groups``): xdist's own ``loadgroup`` cannot mark a test on
    pytest 9 (it rewrites ``item._nodeid``, which pytest 9 no longer reads)."""
    import json

    from xdist.scheduler import LoadScopeScheduling

    path = Path(os.environ[GROUPS_ENV])
    # the groups in the order of the collection (pytest_collection_modifyitems puts the longest
    # first), not xdist's default order by number of tests, which put the few long DAG tests last
    config.option.loadscopereorder = False

    class ByGroup(LoadScopeScheduling):
        groups: dict | None = None

        def _split_scope(self, nodeid):
            if self.groups is None:
                self.groups = json.loads(path.read_text("utf-8"))
            return self.groups.get(nodeid) or nodeid.split("::")[0]

    return ByGroup(config, log)


def tier_of(item) -> str:
    """The test's folder under tests/ (its tier, for a test in one of ``TIERS``)."""
    return Path(str(item.fspath)).relative_to(ROOT / "tests").parts[0]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if tier_of(item) in TIERS:
            item.add_marker(tier_of(item))
    groups = os.environ.get(GROUPS_ENV)
    if groups and hasattr(config, "workerinput"):  # each worker writes the same map; the last one wins whole
        import json

        by_test = xdist_groups(items)

        # longest first, so that no process is left alone with a long group at the end: the cities,
        # then the rest of tests/integration (DAG runs), tests/unit, tests/fast (a stable sort)
        def rank(item) -> int:
            if by_test[item.nodeid] == CITIES_GROUP:
                return 0
            return {"integration": 1, "unit": 2}.get(tier_of(item), 3)

        items.sort(key=rank)

        tmp = Path(f"{groups}.{config.workerinput['workerid']}")
        tmp.write_text(json.dumps(by_test), "utf-8")
        tmp.replace(groups)


@pytest.fixture(scope="session")
def spark():
    from ecredit.spark import driver_java_options as java_options
    from ecredit.spark import get_session

    session = get_session(
        "ecredit-tests",
        master="local[2]",
        conf={
            # small test data: fewer partitions and no whole-stage code generation start faster
            "spark.sql.shuffle.partitions": "1",
            "spark.default.parallelism": "2",
            "spark.sql.codegen.wholeStage": "false",
            "spark.sql.adaptive.enabled": "false",
            # the JVM of a big job (C2 too), not of a small spark-submit (C1 only): this one lives for
            # the whole session and runs the same queries hundreds of times, so C2 pays back; measured
            # (2 cores): tests/unit/test_nfkc.py 74 s with C1 only, 45 s with C2; a 400-operator date
            # through run_stages, warm, 14-16 s with C1 only, 10-11 s with C2
            "spark.driver.extraJavaOptions": java_options(None),
            # tests/unit/test_engine_ingest.py holds both paths' rows of 10,000 operators (190k
            # wide rows each) at once: 1 GB ran out
            "spark.driver.memory": "2g",
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
