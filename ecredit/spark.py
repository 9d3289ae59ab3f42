"""The one SparkSession factory.

Jobs submitted with ``spark-submit`` get their master from the command line; a session built here
outside spark-submit (tests, a notebook) uses ``SPARK_MASTER`` (default ``local[*]``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

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


# ---------------------------------------------------------------- the class-data archive (decision 118)

# A spark-submit's JVM spends seconds loading and verifying Spark's classes from its jars before any
# work (a bare job 5.6 s, 2.7 s with an archive; a 2,000-operator date's Spark task 26.5-27.8 s,
# 22.7-23.9 s with one). The JDK's application class-data sharing (AppCDS) maps them from an archive
# instead: the first job on a machine writes it at its exit (``-XX:ArchiveClassesAtExit``, ~14 s
# more for that job once), the later ones map it (``-XX:SharedArchiveFile``). A JVM that cannot
# use an archive (another JDK, other jars) loads its classes as before: the archive is an
# optimisation that can never change a result.
CLASS_ARCHIVE_PREFIX = "spark-classes-"
CLASS_ARCHIVE_SUFFIX = ".jsa"
DUMPING_SUFFIX = ".part"
DUMP_STALE_S = 15 * 60  # a dump this old was left by a killed job: it no longer stops another


def _java() -> Path | None:
    """The ``java`` that spark-submit starts (``$JAVA_HOME/bin/java``, else the first on PATH)."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).exists() else None


def _spark_jars() -> Path:
    home = os.environ.get("SPARK_HOME")
    if home:
        return Path(home) / "jars"
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "jars"


def class_archive_key() -> str | None:
    """What an archive depends on: the JDK (its ``release`` file and path) and the names and sizes
    of Spark's jars, hashed; None when there is no ``java`` to ask about."""
    java = _java()
    if java is None:
        return None
    release = java.parent.parent / "release"
    jdk = release.read_text("utf-8", "replace") if release.is_file() else str(java.stat().st_mtime_ns)
    jars = sorted((p.name, p.stat().st_size) for p in _spark_jars().glob("*.jar"))
    blob = json.dumps([str(java), jdk, jars], ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _archive_path(cache_dir: Path, key: str, dump_id: str | None = None) -> Path:
    """The archive of ``key`` in ``cache_dir``, or with ``dump_id`` a dump of it being written
    (``*`` for any)."""
    tail = CLASS_ARCHIVE_SUFFIX if dump_id is None else f".{dump_id}{DUMPING_SUFFIX}"
    return cache_dir / f"{CLASS_ARCHIVE_PREFIX}{key}{tail}"


def _key_of(dump: Path) -> str:
    return dump.name[len(CLASS_ARCHIVE_PREFIX) :].split(".", 1)[0]


def class_archive(cache_dir: Path | None) -> tuple[str, Path | None]:
    """(the driver JVM's option, the file it dumps to) for a spark-submit: map the archive of this
    JDK and these jars when ``cache_dir`` has it; else write it at the job's exit, unless another
    job is writing it now (no option then). ``keep_class_archive`` moves a dump into place."""
    if cache_dir is None or " " in str(cache_dir):  # Spark splits extraJavaOptions on spaces
        return "", None
    key = class_archive_key()
    if key is None:
        return "", None
    final = _archive_path(cache_dir, key)
    if final.is_file():
        return f"-XX:SharedArchiveFile={final}", None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for part in cache_dir.glob(_archive_path(cache_dir, key, "*").name):
            if now - part.stat().st_mtime < DUMP_STALE_S:
                return "", None  # another job writes it: this one runs without
            part.unlink(missing_ok=True)
        dump = _archive_path(cache_dir, key, uuid.uuid4().hex[:12])
        dump.touch()  # claims the dump while the JVM runs
    except OSError as e:
        log.info("no class-data archive for this job: %s", e)
        return "", None
    return f"-XX:ArchiveClassesAtExit={dump}", dump


def keep_class_archive(dump: Path | None, succeeded: bool) -> None:
    """After the job: a successful job's dump becomes the archive (an atomic rename); otherwise it
    is deleted."""
    if dump is None:
        return
    final = _archive_path(dump.parent, _key_of(dump))
    try:
        if succeeded and dump.is_file() and dump.stat().st_size > 0:
            os.replace(dump, final)
            log.info("class-data archive written: %s (the next jobs map Spark's classes from it)", final)
        else:
            dump.unlink(missing_ok=True)
    except OSError as e:
        log.info("class-data archive not kept: %s", e)


def with_java_option(options: str, option: str) -> str:
    """``options`` without any class-data archive option, plus ``option`` (a retry's conf holds the
    previous attempt's)."""
    kept = [o for o in options.split() if not o.startswith(("-XX:SharedArchiveFile=", "-XX:ArchiveClassesAtExit="))]
    return " ".join([*kept, option] if option else kept)


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
