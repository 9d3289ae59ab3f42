"""spark-submit application: parse every accepted delivery dated <= D not parsed before.

    spark-submit jobs/ingest.py --date 2026-11-03
"""

import _common  # noqa: F401  (sets sys.path)

from ecredit import ingest, settings
from ecredit.spark import get_session


def main() -> None:
    args = _common.parse_args(__doc__)
    cfg = settings.load(check_landing=True)
    spark = get_session("ecredit-ingest")
    try:
        print(ingest.run(spark, cfg, args.date))
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
