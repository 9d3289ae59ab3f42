"""spark-submit application: the state as of D (fold + canonical model) and its gold tables.

spark-submit jobs/build_state.py --date 2026-11-03 [--full]
"""

import _common

from ecredit.core import rules, settings
from ecredit.spark import get_session
from ecredit.state import build as state


def main() -> None:
    args = _common.parse_args(__doc__)
    cfg = settings.load(check_landing=True)
    rule_set = rules.load(cfg.rules_path)
    from ecredit.ingest import gate as delivery

    rows = sum(f["rows"] for f in delivery.accepted_files(cfg, args.date))
    spark = get_session("ecredit-build-state", rows_hint=rows)
    try:
        state.build(spark, cfg, rule_set, args.date, full=args.full)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
