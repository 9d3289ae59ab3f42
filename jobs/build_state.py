"""spark-submit application: the state as of D (fold + canonical model) and its gold tables.

    spark-submit jobs/build_state.py --date 2026-11-03
"""

import _common  # noqa: F401  (sets sys.path)

from ecredit import rules, settings, state
from ecredit.spark import get_session


def main() -> None:
    args = _common.parse_args(__doc__)
    cfg = settings.load(check_landing=True)
    rule_set = rules.load(cfg.rules_path)
    from ecredit import delivery

    rows = sum(f["rows"] for f in delivery.accepted_files(cfg, args.date))
    spark = get_session("ecredit-build-state", rows_hint=rows)
    try:
        state.build(spark, cfg, rule_set, args.date)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
