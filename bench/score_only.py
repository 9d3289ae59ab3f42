"""Profile the scoring alone on the lake a ``make bench`` run left behind (its ``--work-dir``):
Spark's ``scoring.score`` (full, and dimensions and classes only) beside the DuckDB baseline, best
of ``--repeat``, in one warm session. For tuning ``ecredit/scoring/score.py`` without re-running the
pipeline.

    python -m bench.score_only --work-dir data/bench --db ecredit_bench --date 2026-11-02 --repeat 3 --parts
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import warnings
from pathlib import Path

from bench.run import PG_URL, ROOT, baseline, noop_best, spark_score_alone, tune


def same_as_published(spark, cfg, rule_set, d: dt.date) -> int:
    """Rows of today's ``scoring.score`` (this checkout's code) that differ from the published
    ``operator_score`` of D, both ways, every column (reasons included): 0 when a change to
    ``ecredit/scoring/score.py`` kept its results."""
    from bench.baseline import input_paths
    from ecredit.core import lake
    from ecredit.scoring import score as scoring
    from ecredit.state import build as state

    p = input_paths(cfg, d)
    with state.published(cfg) as conn:  # the previous run date's published classes (previous_class)
        _, prev, _ = state.previous_state(spark, conn, d)
    new = scoring.score(
        *[spark.read.parquet(str(p[k])) for k in ("operators", "records", "evaluations", "spot_checks", "complaints")],
        rule_set,
        d,
        prev,
        rule_set.version,
    )
    old = spark.read.parquet(str(lake.gold_table(cfg, d, "operator_score")))
    return new.exceptAll(old).count() + old.exceptAll(new).count()


def score_parts(spark, cfg, rule_set, d: dt.date, repeat: int) -> dict:
    """Seconds of each part of ``scoring.score`` materialised alone (``noop`` sink, best of
    ``repeat``): the reads, each dimension's aggregate, the previous classes: where the time goes."""
    from bench.baseline import input_paths
    from ecredit.scoring import score as scoring

    p = input_paths(cfg, d)

    def read(k):
        return spark.read.parquet(str(p[k]))

    def best(make) -> float:
        return noop_best(make, repeat)

    return {
        "read_all": sum(best(lambda k=k: read(k)) for k in p),
        "identity": best(lambda: scoring.identity(read("operators"), rule_set, d)),
        "evaluation": best(lambda: scoring.evaluation(read("evaluations"), rule_set, d)),
        "quality": best(lambda: scoring.quality(read("spot_checks"), read("complaints"), rule_set, d)),
        "conduct": best(lambda: scoring.conduct(scoring.record_points(read("records"), rule_set), rule_set)),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work-dir", type=Path, default=ROOT / "data" / "bench")
    p.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2026, 11, 1))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--driver-memory", default="4g")
    p.add_argument("--rows-hint", type=int, default=None, help="tune the session as for this many input rows")
    p.add_argument(
        "--db", default=None, help="the bench run's PostgreSQL database (its --db), for the previous classes"
    )
    p.add_argument("--conf", action="append", default=[], help="a Spark setting k=v for the session (repeatable)")
    p.add_argument("--parts", action="store_true", help="also time each part of the scoring alone (profile)")
    args = p.parse_args(argv)
    for k in ("CREDIT_LANDING_DIR", "CREDIT_LAKE_DIR", "CREDIT_OUTBOX_DIR"):
        os.environ.pop(k, None)
    os.environ["CREDIT_DATA_DIR"] = str(args.work_dir.resolve())
    if args.db:
        os.environ["CREDIT_WAREHOUSE_URL"] = PG_URL.format(db=args.db)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    warnings.filterwarnings("ignore", message="CREDIT_PII_KEY is not set")
    warnings.filterwarnings("ignore", message="CREDIT_DRAW_SECRET is not set")

    from ecredit.core import rules, settings
    from ecredit.spark import get_session

    cfg = settings.load()
    rule_set = rules.load(cfg.rules_path)
    t0 = time.perf_counter()
    extra = dict(kv.split("=", 1) for kv in args.conf)
    spark = get_session("ecredit-bench-score", conf={"spark.driver.memory": args.driver_memory, **extra})
    spark.range(1000).count()
    start = time.perf_counter() - t0
    try:
        if args.rows_hint:
            tune(spark, args.rows_hint)
        for k, v in extra.items():  # over what tune() set
            spark.conf.set(k, v)
        sp = spark_score_alone(spark, cfg, rule_set, args.date, args.repeat)
        parts = score_parts(spark, cfg, rule_set, args.date, args.repeat) if args.parts else {}
        same = same_as_published(spark, cfg, rule_set, args.date)
    finally:
        spark.stop()
    bl = baseline(cfg, rule_set, args.date, args.repeat)
    out = {
        "date": args.date.isoformat(),
        "session_start_s": round(start, 2),
        "spark_full_s": round(sp["full_s"], 3),
        "spark_classes_s": round(sp["classes_s"], 3),
        "duckdb_s": round(bl["query_s"], 3),
        "ratio": round(sp["full_s"] / bl["query_s"], 2),
        "classes_ratio": round(sp["classes_s"] / bl["query_s"], 2),
        **{f"part_{k}_s": round(v, 3) for k, v in parts.items()},
        "operators": bl["compare"]["operators"],
        "agrees": bl["compare"]["agrees"],
        "spark_rows_differing_from_published": same,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
