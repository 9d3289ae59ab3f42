"""``make bench``: the pipeline at a given scale, stage by stage, beside a single-node baseline.

    python -m bench.run --scale 100000 [--work-dir data/bench] [--seed 7]

1. generate the deliveries of ``--scale`` operators for a history date D1 and one daily increment
   D2 (``ecredit.generate``: ~20 records per operator of history, ~1 % a day);
2. start one SparkSession (its start and a first trivial job are timed apart: ``session_start_s``);
3. run, for D1 and then D2, the real stage functions the DAG runs, in order
   (``ecredit.pipeline.run_stages``, the sequence the tests run too):
   ``gate`` (``delivery.check`` per department), ``ingest`` (``ingest.run``: parse, check, write the
   parsed rows; its Great Expectations part is timed apart and counted under ``validate``),
   ``validate`` (GX inside ingest + ``validation.verdict`` per department), ``score``
   (``state.build`` without its inspection plan: fold, canonical model, scores, measures, list,
   alerts, all written to the lake), ``plan`` (``state.inspection_plan``, inside build), ``publish``
   (``publish.publish_run`` to PostgreSQL, a database created for the bench run);
4. time the Spark scoring alone (``scoring.score`` over the Parquet inputs, materialised with
   Spark's ``noop`` sink, in the warm session) and the DuckDB baseline (``bench/baseline.py``) over
   the same Parquet, and compare their classes with the published ``operator_score``;
5. print a table, then one JSON line (last).

Peak memory: a thread samples the RSS of this Python process (the driver), of the JVM (driver and
executors: local mode runs the executors in the driver's JVM) and of the Python workers.
The Airflow tasks the bench does not run: the manifest sensors, ``data_docs``, ``push`` (outbox),
``report``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import threading
import time
import warnings
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("generate", "gate", "ingest", "validate", "score", "plan", "publish")
PIPELINE_STAGES = STAGES[1:]
REQUIRED_KEYS = (
    "scale",
    "records",
    "stages",
    "total_s",
    "baseline_s",
    "spark_score_s",
    "baseline_ratio",
    "baseline_agrees",
)
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"


# ---------------------------------------------------------------- memory


class MemorySampler(threading.Thread):
    """Peak RSS (MB) of this process, of its JVM child(ren) and of the other (Python) descendants."""

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True, name="bench-memory")
        import psutil

        self.psutil = psutil
        self.interval = interval
        self.me = psutil.Process()
        self.peak = {"driver_python": 0.0, "jvm": 0.0, "python_workers": 0.0, "total": 0.0}
        self._halt = threading.Event()

    def sample(self) -> None:
        mb = 1024 * 1024
        now = {"driver_python": self.me.memory_info().rss / mb, "jvm": 0.0, "python_workers": 0.0}
        for child in self.me.children(recursive=True):
            try:
                name = child.name()
                rss = child.memory_info().rss / mb
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                continue
            now["jvm" if name.startswith("java") else "python_workers"] += rss
        now["total"] = sum(now.values())
        for k, v in now.items():
            self.peak[k] = max(self.peak[k], v)

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> dict:
        self._halt.set()
        self.join()
        self.sample()
        return {k: round(v, 1) for k, v in self.peak.items()}


# ---------------------------------------------------------------- timing hooks


@contextmanager
def patched(obj, name: str, wrapper_factory):
    original = getattr(obj, name)
    setattr(obj, name, wrapper_factory(original))
    try:
        yield
    finally:
        setattr(obj, name, original)


def timed_calls(sink: list, label=None):
    """A wrapper factory that appends (label, seconds) of every call to ``sink``."""

    def factory(fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                sink.append((label(args, kwargs) if label else fn.__name__, time.perf_counter() - t0))

        return wrapper

    return factory


def _write_label(args, kwargs) -> str:
    """DataFrameWriter.parquet(self, path): 'state/<table>' or 'gold/<table>' or the folder name."""
    path = Path(str(args[1] if len(args) > 1 else kwargs.get("path")))
    return f"{path.parent.parent.name}/{path.name}" if path.parent.parent.name in ("state", "gold") else path.name


def tune(spark, rows: int) -> None:
    """What ``get_session(rows_hint=rows)`` sets for a job over ``rows`` input rows, applied to the
    running session (the DAG's two applications each get their own)."""
    from ecredit.spark import SMALL_ROWS, tuning_for

    conf = tuning_for(rows)
    spark.conf.set("spark.sql.shuffle.partitions", conf["spark.sql.shuffle.partitions"])
    spark.conf.set("spark.sql.codegen.wholeStage", "false" if rows < SMALL_ROWS else "true")


# ---------------------------------------------------------------- the stages


def generate(landing: Path, scale: int, dates: list[dt.date], seed: int, history_days: int = 1095) -> tuple[dict, dict]:
    """Generate every date, the history load's records going back ``history_days``; returns
    (seconds per date, the generator's summary). The split between dates comes from the
    generator's progress lines (each date's files are closed in turn)."""
    from ecredit.generate import generate as gen

    marks: dict = {}
    t0 = time.perf_counter()

    def progress(line: str) -> None:
        for d in dates:
            if f" {d.isoformat()} " in line and "history" not in line:
                marks[d] = time.perf_counter() - t0  # the last file of that date closed

    summary = gen(landing, scale, dates, seed, progress=progress, history_days=history_days)
    total = time.perf_counter() - t0
    out, before = {}, 0.0
    for d in dates:
        end = marks.get(d, total)
        out[d] = end - before
        before = end
    out[dates[-1]] += total - before
    return out, summary


def date_rows(summary: dict, d: dt.date) -> int:
    return sum(by_date.get(d.isoformat(), 0) for files in summary["rows"].values() for by_date in files.values())


def run_date(spark, cfg, rule_set, d: dt.date, run_id: str) -> dict:
    """The DAG's stages for D (``pipeline.run_stages``: gate, ingest, validate, build, publish),
    timed; returns stage seconds and details. Ingest's GX part is counted under ``validate``, the
    build's inspection plan under ``plan``, the rest of the build under ``score``."""
    from pyspark.sql.readwriter import DataFrameWriter

    from ecredit import pipeline
    from ecredit.ingest import gate as delivery
    from ecredit.ingest import load as ingest
    from ecredit.quality import expectations
    from ecredit.state import build as state

    seconds: dict = {}
    rows: dict = {}
    gx: list = []
    plan: list = []
    writes: dict = {"ingest": [], "build": []}

    @contextmanager
    def around(stage: str):
        with ExitStack() as stack:
            if stage == "ingest":
                rows["in"] = sum(f["rows"] for f in ingest.pending_files(cfg, d))
                tune(spark, rows["in"])
                stack.enter_context(patched(expectations, "validate_files", timed_calls(gx)))
                stack.enter_context(patched(DataFrameWriter, "parquet", timed_calls(writes["ingest"], _write_label)))
            elif stage == "build":
                rows["accepted"] = sum(f["rows"] for f in delivery.accepted_files(cfg, d))
                tune(spark, rows["accepted"])
                stack.enter_context(patched(state, "inspection_plan", timed_calls(plan)))
                stack.enter_context(patched(DataFrameWriter, "parquet", timed_calls(writes["build"], _write_label)))
            t0 = time.perf_counter()
            yield
            seconds[stage] = time.perf_counter() - t0

    got = pipeline.run_stages(
        spark,
        cfg,
        d,
        run_id=run_id,
        rules=rule_set,
        stages=("gate", "ingest", "validate", "build", "publish"),
        around=around,
    )

    stages, detail = {}, {}
    stages["gate"] = seconds["gate"]
    detail["gates"] = {dept: g["status"] for dept, g in got["gate"].items()}

    gx_s = sum(s for _, s in gx)
    written = sum(s for _, s in writes["ingest"])
    stages["ingest"] = seconds["ingest"] - gx_s
    detail["ingest"] = {
        "files": got["ingest"].get("files_parsed", 0),
        "rows": got["ingest"].get("rows", 0),
        "parse_and_write_s": round(written, 3),
        "gx_s": round(gx_s, 3),
        "counts_and_markers_s": round(seconds["ingest"] - gx_s - written, 3),
    }

    stages["validate"] = gx_s + seconds["validate"]
    detail["verdicts"] = {dept: str(v.status) for dept, v in got["validate"].items()}

    plan_s = sum(s for _, s in plan)
    stages["plan"] = plan_s
    stages["score"] = seconds["build"] - plan_s
    detail["build"] = {
        "input_rows": rows["accepted"],
        "warnings": got["build"].get("warnings", []),
        "writes_s": {name: round(s, 3) for name, s in writes["build"]},
        "other_s": round(seconds["build"] - plan_s - sum(s for _, s in writes["build"]), 3),
    }

    stages["publish"] = seconds["publish"]
    pub = got["publish"]
    published = sum(  # rows written (the keys a change set deleted are counted apart, ``<table>_deleted``)
        v
        for k, v in pub["counts"].items()
        if isinstance(v, int) and not isinstance(v, bool) and not k.endswith("_deleted")
    )
    detail["publish"] = {"rows": published, "counts": pub["counts"]}
    detail["rows_in"] = rows["in"]
    return {"stages": stages, "detail": detail}


def noop_best(make, repeat: int) -> float:
    """Seconds of the best of ``repeat`` runs of the DataFrame ``make()`` materialised by Spark's
    ``noop`` sink."""
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        make().write.format("noop").mode("overwrite").save()
        times.append(time.perf_counter() - t0)
    return min(times)


def spark_score_alone(spark, cfg, rule_set, d: dt.date, repeat: int = 1) -> dict:
    """``scoring.score`` over the Parquet inputs of D (the same files as the baseline), in the warm
    session, materialised by Spark's ``noop`` sink: the full ``operator_score`` (reasons JSON and
    previous class included) and, apart, the dimensions and classes only (what the baseline
    computes; Spark prunes the reasons). Best of ``repeat``."""
    from bench.baseline import input_paths
    from ecredit.scoring import score as scoring
    from ecredit.state import build as state

    p = input_paths(cfg, d)
    with state.published(cfg) as conn:  # the previous run date's published classes (previous_class)
        _, prev, _ = state.previous_state(spark, conn, d)

    def frame():
        return scoring.score(
            spark.read.parquet(str(p["operators"])),
            spark.read.parquet(str(p["records"])),
            spark.read.parquet(str(p["evaluations"])),
            spark.read.parquet(str(p["spot_checks"])),
            spark.read.parquet(str(p["complaints"])),
            rule_set,
            d,
            prev,
            rule_set.version,
        )

    def best(make) -> float:
        return noop_best(make, repeat)

    full = best(frame)
    from bench.baseline import RESULT_COLUMNS  # the columns the DuckDB baseline computes

    classes = best(lambda: frame().select(*RESULT_COLUMNS))
    return {"full_s": full, "classes_s": classes}


def baseline(cfg, rule_set, d: dt.date, repeat: int = 1) -> dict:
    from bench import baseline as bl
    from ecredit.core import lake

    t0 = time.perf_counter()
    con = bl.connect()
    con.execute("SELECT 1").fetchall()
    connect_s = time.perf_counter() - t0
    paths = bl.input_paths(cfg, d)
    times, table = [], None
    for _ in range(max(1, repeat)):
        table, secs = bl.run(con, rule_set, d, paths)
        times.append(secs)
    cmp = bl.compare(con, table, lake.gold_table(cfg, d, "operator_score"))
    con.close()
    return {"connect_s": connect_s, "query_s": min(times), "compare": cmp}


# ---------------------------------------------------------------- the report


def report(result: dict) -> tuple[str, str]:
    """(the table, the JSON line) of a bench result: ``result`` holds scale, records, the stage
    seconds per date, baseline and Spark scoring times, memory. Pure: the unit test calls it."""
    hist, daily = result["history"], result["daily"]
    h_total = sum(hist["stages"].get(s, 0.0) for s in PIPELINE_STAGES)
    d_total = sum(daily["stages"].get(s, 0.0) for s in PIPELINE_STAGES)
    b, sp = result["baseline"], result["spark_score"]
    ratio = sp["full_s"] / b["query_s"] if b["query_s"] else None
    agrees = bool(
        b["compare"]["agrees"] and result.get("daily_baseline", {"compare": {"agrees": True}})["compare"]["agrees"]
    )

    def rate(rows, secs):
        return round(rows / secs) if secs and rows else None

    lines = [
        f"make bench: {result['scale']:,} operators; history {hist['records']:,} records "
        f"({result['dates'][0]}), daily increment {daily['records']:,} ({result['dates'][1]})",
        f"Spark session start (JVM + first job, apart): {result['session_start_s']:.1f} s",
        "",
        f"{'stage':<10} {'history s':>10} {'rows/s':>10} {'daily s':>9} {'rows/s':>10}",
    ]
    for s in STAGES:
        hs, ds = hist["stages"].get(s, 0.0), daily["stages"].get(s, 0.0)
        hr = rate(hist.get("publish_rows") if s == "publish" else hist["records"], hs)
        dr = rate(daily.get("publish_rows") if s == "publish" else daily["records"], ds)
        lines.append(f"{s:<10} {hs:>10.2f} {hr or '':>10} {ds:>9.2f} {dr or '':>10}")
    lines.append(
        f"{'run total':<10} {h_total:>10.2f} {rate(hist['records'], h_total) or '':>10} "
        f"{d_total:>9.2f} {rate(daily['records'], d_total) or '':>10}   (without generate)"
    )
    lines += [
        "",
        f"scoring of {result['dates'][0]} ({b['compare']['operators']:,} classified operators), warm session, "
        f"best of {result.get('repeat', 1)}:",
        f"  Spark scoring.score, full operator_score (noop sink): {sp['full_s']:.2f} s",
        f"  Spark, dimensions and classes only:                  {sp['classes_s']:.2f} s",
        f"  DuckDB baseline query:                               {b['query_s']:.2f} s "
        f"(connection {b['connect_s']:.3f} s apart)",
        f"  ratio Spark / DuckDB: {ratio:.2f}x (classes only {sp['classes_s'] / b['query_s']:.2f}x)"
        if ratio
        else "  ratio: n/a",
        f"  classes agree with the published operator_score: {agrees} "
        f"(class disagreements: {b['compare']['class_disagreements']}"
        + (
            f", daily {result['daily_baseline']['compare']['class_disagreements']}"
            if "daily_baseline" in result
            else ""
        )
        + f"; other columns differing: {b['compare']['differ']})",
        f"peak RSS MB: {result['memory']} (RSS summed over processes: shared pages count more than once)",
        f"load average at start / end: {result.get('loadavg_start')} / {result.get('loadavg_end')} "
        f"on {os.cpu_count()} CPUs",
    ]
    summary = {
        "scale": result["scale"],
        "records": hist["records"] + daily["records"],
        "history_records": hist["records"],
        "daily_records": daily["records"],
        "stages": {s: round(hist["stages"].get(s, 0.0), 3) for s in STAGES},
        "daily_stages": {s: round(daily["stages"].get(s, 0.0), 3) for s in STAGES},
        "total_s": round(h_total, 3),
        "daily_total_s": round(d_total, 3),
        "session_start_s": round(result["session_start_s"], 3),
        "baseline_s": round(b["query_s"], 3),
        "baseline_connect_s": round(b["connect_s"], 4),
        "spark_score_s": round(sp["full_s"], 3),
        "spark_classes_s": round(sp["classes_s"], 3),
        "baseline_ratio": round(ratio, 3) if ratio else None,
        "scoring_repeat": result.get("repeat", 1),  # spark_score_s and baseline_s: best of this many runs
        "baseline_agrees": agrees,
        "baseline_disagreements": b["compare"]["class_disagreements"]
        + result.get("daily_baseline", {"compare": {"class_disagreements": 0}})["compare"]["class_disagreements"],
        "operators_scored": b["compare"]["operators"],
        "publish_rows": hist.get("publish_rows"),
        "publish_rows_per_s": rate(hist.get("publish_rows"), hist["stages"].get("publish")),
        "rows_per_s": rate(hist["records"], h_total),
        "peak_rss_mb": result["memory"],
        "generator_rows_per_s": result.get("generator_rows_per_s"),
        "loadavg": {"start": result.get("loadavg_start"), "end": result.get("loadavg_end")},  # a shared machine
        "cpus": os.cpu_count(),
    }
    if "daily_baseline" in result:
        summary["daily_baseline_s"] = round(result["daily_baseline"]["query_s"], 3)
        summary["daily_spark_score_s"] = round(result["daily_spark_score"]["full_s"], 3)
    return "\n".join(lines), json.dumps(summary, ensure_ascii=False, sort_keys=False)


# ---------------------------------------------------------------- main


def reset_database(db: str) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    return PG_URL.format(db=db)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=int, default=100_000, help="operators (default 100,000)")
    p.add_argument("--work-dir", type=Path, default=ROOT / "data" / "bench", help="emptied first")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--history-years",
        type=float,
        default=3.0,
        help="how far back the history load's records go (default 3, at most 3; the daily increment is the same size)",
    )
    p.add_argument("--dates", default="2026-11-01,2026-11-02", help="history date D1, daily date D2")
    p.add_argument("--db", default="ecredit_bench", help="PostgreSQL database, dropped and created")
    p.add_argument("--warehouse-url", default=None, help="publish there instead (no database is created)")
    p.add_argument("--driver-memory", default="4g")
    p.add_argument("--repeat", type=int, default=2, help="best of N for the scoring comparison (the first run is cold)")
    p.add_argument("--profile-json", type=Path, default=None, help="write the per-stage details there")
    args = p.parse_args(argv)
    dates = [dt.date.fromisoformat(x) for x in args.dates.split(",")]
    if len(dates) != 2 or dates[1] <= dates[0]:
        p.error("--dates takes two increasing dates: the history date and the daily one")

    work = args.work_dir.resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    url = args.warehouse_url or reset_database(args.db)
    for k in ("CREDIT_LANDING_DIR", "CREDIT_LAKE_DIR", "CREDIT_OUTBOX_DIR"):
        os.environ.pop(k, None)
    os.environ.update({"CREDIT_DATA_DIR": str(work), "CREDIT_WAREHOUSE_URL": url})
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable  # the workers get the venv
    warnings.filterwarnings("ignore", message="CREDIT_PII_KEY is not set")
    warnings.filterwarnings("ignore", message="CREDIT_DRAW_SECRET is not set")

    from ecredit.core import rules, settings
    from ecredit.spark import get_session

    mem = MemorySampler()
    mem.start()
    cfg = settings.load()
    rule_set = rules.load(cfg.rules_path)
    print(f"bench: generating {args.scale:,} operators for {args.dates} into {cfg.landing_dir}", file=sys.stderr)
    gen_s, summary = generate(cfg.landing_dir, args.scale, dates, args.seed, round(args.history_years * 365))

    t0 = time.perf_counter()
    spark = get_session("ecredit-bench", conf={"spark.driver.memory": args.driver_memory})
    spark.range(1000).count()
    session_start = time.perf_counter() - t0

    result = {
        "scale": args.scale,
        "history_years": args.history_years,
        "dates": [d.isoformat() for d in dates],
        "session_start_s": session_start,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "repeat": args.repeat,
        "generator_rows_per_s": round(summary["rows_total"] / max(1e-9, sum(gen_s.values()))),
    }
    try:
        for key, d in (("history", dates[0]), ("daily", dates[1])):
            print(f"bench: running {d} ({key})", file=sys.stderr)
            got = run_date(spark, cfg, rule_set, d, f"bench-{d.isoformat()}")
            got["stages"]["generate"] = gen_s[d]
            got["records"] = date_rows(summary, d)
            got["publish_rows"] = got["detail"]["publish"]["rows"]
            result[key] = got
            print(f"bench: {d}: " + ", ".join(f"{s} {v:.1f} s" for s, v in got["stages"].items()), file=sys.stderr)
            sp = spark_score_alone(spark, cfg, rule_set, d, args.repeat)
            bl = baseline(cfg, rule_set, d, args.repeat)
            result["spark_score" if key == "history" else "daily_spark_score"] = sp
            result["baseline" if key == "history" else "daily_baseline"] = bl
    finally:
        spark.stop()
        result["memory"] = mem.stop()
        result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    table, line = report(result)
    if args.profile_json:
        args.profile_json.parent.mkdir(parents=True, exist_ok=True)
        args.profile_json.write_text(json.dumps(result, ensure_ascii=False, indent=1, default=str), "utf-8")
    print(table)
    print(line)
    return 0 if json.loads(line)["baseline_agrees"] else 1


if __name__ == "__main__":
    sys.exit(main())
