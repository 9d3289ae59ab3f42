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
