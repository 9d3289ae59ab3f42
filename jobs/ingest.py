"""spark-submit application: parse every accepted delivery dated <= D not parsed before.

spark-submit jobs/ingest.py --date 2026-11-03
"""

import _common

from ecredit.core import settings
from ecredit.ingest import load as ingest
from ecredit.spark import get_session


def main() -> None:
    args = _common.parse_args(__doc__)
    cfg = settings.load(check_landing=True)
    todo = ingest.pending_files(cfg, args.date)
    if not todo:
        print(f"ingest: every accepted delivery dated <= {args.date} is parsed already")
        return
    spark = get_session("ecredit-ingest", rows_hint=sum(f["rows"] for f in todo))
    try:
        print(ingest.run(spark, cfg, args.date))
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
