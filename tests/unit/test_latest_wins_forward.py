"""Latest wins, folded forward (decision 0110): a checkpoint's winners with the files it has not
seen fold to the winners of all the files, whichever files the checkpoint holds (a late delivery
for an earlier date included), with null keys, split into kept and touched records (their keys
broadcast or shuffled) or folded in one window."""

import random

import pytest

from ecredit.core.feeds import FEEDS
from ecredit.ingest import load as ingest
from ecredit.state import fold

FEED = next(f for f in FEEDS if f.feed_id == "amr.penalties")
KEYS = ["P1", "P2", "P3", "P4", "P5", None]
DATES = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]


def delivered(seed: int) -> dict[str, list[dict]]:
    """Random versions of a few penalties, by delivery date (one file a date): each row names
    itself in ``status`` (its date and line), so the winner is visible."""
    rnd = random.Random(seed)
    files = {}
    for d in DATES:
        lines = rnd.sample(range(2, 40), rnd.randint(0, 8))
        files[d] = [
            {
                **{f.name: None for f in ingest.ROW_SCHEMA.fields},
                "feed_id": FEED.feed_id,
                "dept": "amr",
                "delivery_date": d,
                "file_sha": d,
                "source_line": line,
                "operator_key": "91440300568520498A",
                "natural_person": False,
                "reasons": [],
                "warnings": [],
                "key_str": (key := rnd.choice(KEYS)),
                "decision_no": key,
                "status": f"{d}#{line}",
            }
            for line in lines
        ]
    return files


def expected(files: dict[str, list[dict]]) -> set[tuple]:
    """The winners worked out by hand: per key the latest date, then the last line."""
    best: dict = {}
    for rows in files.values():
        for r in rows:
            k = r["key_str"]
            if k not in best or (r["delivery_date"], r["source_line"]) > (
                best[k]["delivery_date"],
                best[k]["source_line"],
            ):
                best[k] = r
    return {(r["key_str"], r["status"]) for r in best.values()}


def frame(spark, rows):
    return fold.feed_rows(spark.createDataFrame(rows, ingest.ROW_SCHEMA), FEED)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("broadcast,split", [(True, True), (False, True), (True, False)])
def test_folding_forward_is_folding_everything(spark, seed, broadcast, split):
    files = delivered(seed)
    rnd = random.Random(1000 + seed)
    held = [d for d in DATES if rnd.random() < 0.6]  # the checkpoint's files: any subset, gaps included
    base = fold.fold(frame(spark, [r for d in held for r in files[d]]))
    new = frame(spark, [r for d in DATES if d not in held for r in files[d]])
    got = fold.fold_feed(base, new, broadcast, split).collect()
    assert len(got) == len({r["key_str"] for r in got})  # one version a key, the null key included
    assert {(r["key_str"], r["status"]) for r in got} == expected(files)
    # and the columns are the feed's: a checkpoint's rows and new rows line up
    assert fold.fold_feed(base, new, broadcast, split).columns == base.columns


def test_no_checkpoint_folds_the_rows_alone(spark):
    files = delivered(99)
    rows = [r for d in DATES for r in files[d]]
    got = fold.fold_feed(None, frame(spark, rows)).collect()
    assert {(r["key_str"], r["status"]) for r in got} == expected(files)


def test_nothing_new_keeps_the_checkpoint(spark):
    files = delivered(7)
    base = fold.fold(frame(spark, [r for d in DATES for r in files[d]]))
    got = fold.fold_feed(base, frame(spark, [])).collect()
    assert {(r["key_str"], r["status"]) for r in got} == expected(files)


def test_only_the_newest_checkpoints_are_judged(tmp_path, caplog):
    """After a rules change every checkpoint is stale: the run judges at most MAX_CANDIDATES of
    them (the newest before D), not years of markers, and then folds everything. A usable
    checkpoint older than those is not taken (it would fold a month of files anyway)."""
    import datetime as dt
    import logging
    from types import SimpleNamespace

    from ecredit.core import lake

    settings = SimpleNamespace(lake_dir=tmp_path, pii_key="k" * 32)
    rules = SimpleNamespace(version="today")
    run_date = dt.date(2026, 12, 1)
    n = fold.MAX_CANDIDATES + 9
    days = [run_date - dt.timedelta(days=i) for i in range(1, n + 1)]
    stale = {**fold.fingerprint(settings, rules), "rules": "yesterday"}
    for day in days:
        lake.folded_dir(settings, day).mkdir(parents=True)
        usable = day == days[-1]  # the oldest: usable, but beyond the cap
        lake.write_json(
            lake.folded_marker(settings, day),
            {
                "run_date": day.isoformat(),
                "fingerprint": fold.fingerprint(settings, rules) if usable else stale,
                "base": None,
                "rows": 0,
                "files": [],
            },
        )
    # a checkpoint dated D itself or later is never a base
    lake.folded_dir(settings, run_date).mkdir(parents=True)
    lake.write_json(lake.folded_marker(settings, run_date), {"fingerprint": fold.fingerprint(settings, rules)})
    with caplog.at_level(logging.INFO, logger=fold.log.name):
        assert fold.choose_base(settings, rules, run_date, []) is None
    judged = [r.args[1] for r in caplog.records if "is not used" in r.getMessage()]
    assert judged == days[: fold.MAX_CANDIDATES]
    assert all("another rules" in r.getMessage() for r in caplog.records if "is not used" in r.getMessage())
    # within the cap the same checkpoint is taken: for the day after it, it is the newest before
    base = fold.choose_base(settings, rules, days[-1] + dt.timedelta(days=1), [])
    assert base is not None and base.run_date == days[-1]
