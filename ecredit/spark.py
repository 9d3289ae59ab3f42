"""The one SparkSession factory.

Jobs submitted with ``spark-submit`` get their master from the command line; a session built here
outside spark-submit (tests, a notebook) uses ``SPARK_MASTER`` (default ``local[*]``).
"""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

DEFAULT_CONF = {
    "spark.sql.session.timeZone": "Asia/Shanghai",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.ansi.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
    # the lake's partition folders are listed by the driver: a listing job costs seconds on a
    # cold JVM and saves nothing on a local or shared file system
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
    "spark.sql.adaptive.enabled": "true",
    # ingest's checks are column expressions of ~50k characters a feed (engine.checked): a plan's
    # text (the cache's description, the UI, errors) is cut here, not built whole (a test's plans
    # of two dates' files ran a 1 GB driver out of memory building one such string)
    "spark.sql.maxPlanStringLength": "200000",
}


def driver_host() -> str:
    """The driver's address for the executors: ``SPARK_LOCAL_IP`` (loopback by default, which is
    right for local[*] and a one-machine cluster; a container or host on a real cluster exports
    its own reachable address)."""
    return os.environ.get("SPARK_LOCAL_IP") or "127.0.0.1"


# Below this many input rows a job is "small": Janino compiling whole-stage code costs more than
# it saves (measured: state build of 3,700 rows 18 s with code generation, 5 s without), adaptive
# query execution re-plans each query's stages for nothing (the Spark task of a 2,000-operator
# date: best of 3, 33.0 s with it, 31.4 s without), and one shuffle partition per 250k rows is plenty.
SMALL_ROWS = 2_000_000
ROWS_PER_SHUFFLE_PARTITION = 250_000


def tuning_for(rows: int) -> dict:
    """Session settings for a job over about ``rows`` input rows."""
    partitions = max(1, min(64, rows // ROWS_PER_SHUFFLE_PARTITION + 1))
    conf = {"spark.sql.shuffle.partitions": str(partitions)}
    if rows < SMALL_ROWS:
        conf["spark.sql.codegen.wholeStage"] = "false"
        conf["spark.sql.adaptive.enabled"] = "false"
    return conf


# Up to this many input rows (all the rows a run's job reads), its JVM compiles with C1 only
# (``-XX:TieredStopAtLevel=1``): a small job's time goes to loading and compiling Spark's planner for
# dozens of distinct queries, which C2 never pays back. Measured on the spark-submit of a
# 2,000-operator date (BENCHMARKS.md, issue 16). A big job keeps C2: its operators run long enough.
C1_MAX_ROWS = 500_000
C1_ONLY = "-XX:TieredStopAtLevel=1"
# A big job's JVM compiles huge methods too: HotSpot leaves a method of more than 8,000 bytes of
# bytecode to its interpreter, and the code Spark generates for a feed's checks (engine.checked, the
# GX rule columns) is such methods; measured on the checks of 248,565 platform evaluations (2 cores,
# no whole-stage code generation): 9.1 s interpreted, 3.5 s compiled (BENCHMARKS.md, issue 16, fifth
# session). A small job (C1 only) keeps the default: its few rows never pay back compiling them.
COMPILE_HUGE_METHODS = "-XX:-DontCompileHugeMethods"


def driver_java_options(rows: int | None) -> str:
    """The JVM options of a job over about ``rows`` input rows (its driver's; on a cluster its
    executors' too)."""
    return C1_ONLY if rows is not None and rows <= C1_MAX_ROWS else COMPILE_HUGE_METHODS


def tune(spark: SparkSession, rows: int) -> None:
    """Set ``tuning_for(rows)`` on a running session (its settings are read per query): one
    application runs stages of different sizes (a day's new rows, then all applied rows)."""
    for k, v in {
        "spark.sql.codegen.wholeStage": "true",
        "spark.sql.adaptive.enabled": "true",
        **tuning_for(rows),
    }.items():
        spark.conf.set(k, v)


def get_session(
    app_name: str = "ecredit", master: str | None = None, conf: dict | None = None, rows_hint: int | None = None
) -> SparkSession:
    """The session for a job; ``rows_hint`` (input rows, from the manifests) tunes it to the scale."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    conf = {**(tuning_for(rows_hint) if rows_hint is not None else {}), **(conf or {})}
    java = driver_java_options(rows_hint)
    if not _under_spark_submit():  # only read when this call starts the JVM
        conf.setdefault("spark.driver.extraJavaOptions", java)
    builder = SparkSession.builder.appName(app_name)
    if master or not _under_spark_submit():
        builder = builder.master(master or os.environ.get("SPARK_MASTER", "local[*]"))
    host = driver_host()
    for k, v in {**DEFAULT_CONF, "spark.driver.host": host, "spark.driver.bindAddress": host, **conf}.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _under_spark_submit() -> bool:
    """spark-submit starts the Python driver with a gateway to its JVM, whose master it set."""
    return "PYSPARK_GATEWAY_PORT" in os.environ
