"""spark-submit application: the run's Spark work for D in one application, so a date pays the
JVM's start once (issue 16): ingest (parse every accepted delivery dated <= D not parsed before,
its Great Expectations suite, rows and quarantine to the lake), then the state as of D (fold,
canonical model, scores, classes, inspection plans) and its gold tables.

spark-submit jobs/ingest_and_build.py --date 2026-11-03 [--full]

``jobs/ingest.py`` and ``jobs/build_state.py`` run either stage alone (a data engineer's tools:
parse new deliveries without building, rebuild the state of a date); the DAG runs this one.
"""

from concurrent.futures import ThreadPoolExecutor

import _common

from ecredit.core import rules, settings
from ecredit.ingest import gate as delivery
from ecredit.spark import get_session, tune


def main() -> None:
    args = _common.parse_args(__doc__)
    cfg = settings.load(check_landing=True)
    rule_set = rules.load(cfg.rules_path)
    todo = delivery.unparsed_files(cfg, args.date)
    new_rows = sum(f["rows"] for f in todo)
    all_rows = sum(f["rows"] for f in delivery.accepted_files(cfg, args.date))
    # The SparkContext starts in the JVM while this thread imports ingest and the build (Great
    # Expectations alone is ~2.3 s of imports): a small date's job is mostly such fixed costs.
    with ThreadPoolExecutor(1, thread_name_prefix="session") as pool:
        starting = pool.submit(get_session, "ecredit-ingest-and-build", rows_hint=new_rows)
        from ecredit.ingest import load as ingest
        from ecredit.state import build as state

        spark = starting.result()
    try:
        if todo:
            print(ingest.run(spark, cfg, args.date))
        else:
            print(f"ingest: every accepted delivery dated <= {args.date} is parsed already")
        tune(spark, all_rows)  # the build reads every applied delivery, not only the new ones
        print(state.build(spark, cfg, rule_set, args.date, full=args.full))
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
