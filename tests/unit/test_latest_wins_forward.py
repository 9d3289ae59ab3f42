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


def version(d: str, line: int, key: str | None, operator_key: str = "91440300568520498A") -> dict:
    """One parsed penalty row of the file delivered on ``d``, naming itself in ``status``."""
    return {
        **{f.name: None for f in ingest.ROW_SCHEMA.fields},
        "feed_id": FEED.feed_id,
        "dept": "amr",
        "delivery_date": d,
        "file_sha": d,
        "source_line": line,
        "operator_key": operator_key,
        "natural_person": False,
        "reasons": [],
        "warnings": [],
        "key_str": key,
        "decision_no": key,
        "status": f"{d}#{line}",
    }


def delivered(seed: int) -> dict[str, list[dict]]:
    """Random versions of a few penalties, by delivery date (one file a date): each row names
    itself in ``status`` (its date and line), so the winner is visible."""
    rnd = random.Random(seed)
    files = {}
    for d in DATES:
        lines = rnd.sample(range(2, 40), rnd.randint(0, 8))
        files[d] = [version(d, line, rnd.choice(KEYS)) for line in lines]
    return files


def winners(files: dict[str, list[dict]]) -> dict:
    """The winners worked out by hand, by key: per key the latest date, then the last line."""
    best: dict = {}
    for rows in files.values():
        for r in rows:
            k = r["key_str"]
            if k not in best or (r["delivery_date"], r["source_line"]) > (
                best[k]["delivery_date"],
                best[k]["source_line"],
            ):
                best[k] = r
    return best


def expected(files: dict[str, list[dict]]) -> set[tuple]:
    """The winners' (key, status)."""
    return {(r["key_str"], r["status"]) for r in winners(files).values()}


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
                "id": "x",
                "chain": [{"date": day.isoformat(), "id": "x", "rows": 0}],
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


# ---------------------------------------------------------------- delta checkpoints (decision 0117)

CHAIN_DATES = [f"2026-11-{d:02d}" for d in range(1, 9)]


@pytest.fixture
def chain_lake(spark, tmp_path, monkeypatch):
    """``fold.folded_state`` on a lake whose applied files are one penalties file a date (random
    versions of 12 keys, the null key included), the ingest's part faked: ``applied(day)`` the
    files up to the date, ``parsed_rows`` their rows."""
    import datetime as dt
    from types import SimpleNamespace

    rnd = random.Random(5)
    keys = [f"P{i}" for i in range(12)] + [None]
    files = {}
    for d in CHAIN_DATES:
        n = 12 if d == CHAIN_DATES[0] else rnd.randint(0, 3)  # a history date, then small days
        files[d] = [
            version(d, line, keys[line - 2] if d == CHAIN_DATES[0] else rnd.choice(keys), f"OP{rnd.randint(1, 4)}")
            for line in range(2, 2 + n)
        ]

    def info(d):
        return {"feed_id": FEED.feed_id, "date": d, "sha256": d * 2, "rows_in": len(files[d]), "day": d}

    def applied(settings, rules, up_to):
        return [info(d) for d in CHAIN_DATES if dt.date.fromisoformat(d) <= up_to]

    def parsed(spark_, settings, todo):
        return spark.createDataFrame([r for f in todo for r in files[f["day"]]], ingest.ROW_SCHEMA)

    monkeypatch.setattr(fold.validation, "applied_files", applied)
    monkeypatch.setattr(fold, "parsed_rows", parsed)
    monkeypatch.setattr(fold, "FEEDS", [FEED])  # the other 15 feeds would be empty folders to write
    settings = SimpleNamespace(lake_dir=tmp_path, pii_key="k" * 32)
    rules = SimpleNamespace(version="v1")

    def run(d, full=False):
        out = fold.folded_state(spark, settings, rules, dt.date.fromisoformat(d), full)
        return {**out, "marker": lake.read_json(lake.folded_marker(settings, d))}

    def state_at(d):
        got = fold.checkpoint_rows(spark, settings, dt.date.fromisoformat(d)).collect()
        assert len(got) == len({r["key_str"] for r in got})  # one version a key
        return {(r["key_str"], r["status"]) for r in got}

    def want(d):
        return expected({x: files[x] for x in CHAIN_DATES if x <= d})

    return SimpleNamespace(run=run, state_at=state_at, want=want, settings=settings, files=files)


from ecredit.core import lake  # noqa: E402


@pytest.mark.parametrize("read_split_min_rows", [0, 10**9], ids=["split", "one-window"])
def test_delta_checkpoints_hold_the_same_records_as_folding_everything(chain_lake, monkeypatch, read_split_min_rows):
    """A history date's checkpoint is full; the small days after it are deltas on it, each holding
    only the records its file touched; the records in force read from any of them (the full one's
    untouched records split off, or everything in one window) are the hand-worked winners of every
    file up to its date, and so are the rows the build gets."""
    monkeypatch.setattr(fold, "COMPACT_SHARE", 10.0)  # 12 history rows: the days' deltas stay deltas
    monkeypatch.setattr(fold, "READ_SPLIT_MIN_ROWS", read_split_min_rows)
    kinds = []
    for d in CHAIN_DATES:
        out = chain_lake.run(d)
        kinds.append(out["marker"]["kind"])
        assert chain_lake.state_at(d) == chain_lake.want(d), d
        rows = fold.feed_rows(out["rows"], FEED).collect()
        assert {(r["key_str"], r["status"]) for r in rows} == chain_lake.want(d), d
        if out["marker"]["kind"] == "delta":
            # the delta holds one row per key its date's file delivered, nothing else
            assert out["marker"]["rows"] == len({r["key_str"] for r in chain_lake.files[d]}), d
            assert [m["date"] for m in out["marker"]["chain"]] == CHAIN_DATES[: CHAIN_DATES.index(d) + 1]
    assert kinds == ["full"] + ["delta"] * (len(CHAIN_DATES) - 1)


def test_a_long_chain_is_compacted(chain_lake, monkeypatch):
    monkeypatch.setattr(fold, "COMPACT_SHARE", 10.0)
    monkeypatch.setattr(fold, "MAX_DELTAS", 2)
    kinds = [chain_lake.run(d)["marker"]["kind"] for d in CHAIN_DATES[:6]]
    # a chain of the full one and two deltas is as long as it gets: the next date is full again
    assert kinds == ["full", "delta", "delta", "full", "delta", "delta"]
    assert all(chain_lake.state_at(d) == chain_lake.want(d) for d in CHAIN_DATES[:6])


def test_a_chain_past_its_share_of_the_full_checkpoint_is_compacted(chain_lake, monkeypatch):
    """COMPACT_SHARE: the deltas, the next date's rows included, may hold at most that share of the
    full checkpoint's rows (12 here)."""
    monkeypatch.setattr(fold, "COMPACT_SHARE", 0.25)
    kinds, held = [], 0
    for d in CHAIN_DATES:
        marker = chain_lake.run(d)["marker"]
        kinds.append(marker["kind"])
        n = len(chain_lake.files[d])
        if d != CHAIN_DATES[0]:
            expect = "delta" if held + n <= 3 else "full"
            assert marker["kind"] == expect, (d, held, n)
            held = held + marker["rows"] if expect == "delta" else 0
        assert chain_lake.state_at(d) == chain_lake.want(d), d
    assert "full" in kinds[1:] and "delta" in kinds  # both happened on these files


def test_a_chain_member_written_again_or_damaged_is_not_built_on(chain_lake, monkeypatch, caplog):
    import datetime as dt
    import logging

    monkeypatch.setattr(fold, "COMPACT_SHARE", 10.0)
    for d in CHAIN_DATES[:4]:
        chain_lake.run(d)
    # 11-02 rerun: the checkpoints of 11-03 and 11-04 were built on its old rows
    chain_lake.run(CHAIN_DATES[1])
    with caplog.at_level(logging.WARNING, logger=fold.log.name):
        out = chain_lake.run(CHAIN_DATES[4])
    assert out["base"] == dt.date.fromisoformat(CHAIN_DATES[1])  # the newest usable one
    assert "written again" in caplog.text
    assert chain_lake.state_at(CHAIN_DATES[4]) == chain_lake.want(CHAIN_DATES[4])
    # a damaged member: the full checkpoint's rows lose a file; nothing built on it is usable
    folder = lake.folded_dir(chain_lake.settings, CHAIN_DATES[0]) / f"feed_id={FEED.feed_id}"
    for part in folder.glob("*.parquet"):
        part.unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=fold.log.name):
        out = chain_lake.run(CHAIN_DATES[5])
    assert out["base"] is None and out["marker"]["kind"] == "full"
    assert "rows" in caplog.text
    assert chain_lake.state_at(CHAIN_DATES[5]) == chain_lake.want(CHAIN_DATES[5])


def test_pruning_keeps_the_dates_a_kept_checkpoint_reads(chain_lake, monkeypatch):
    """Decision 0115 with 0117: a run date older than the newest ``keep`` stays while a staying
    checkpoint's chain reads it, and goes once a full checkpoint frees it."""
    import datetime as dt

    monkeypatch.setattr(fold, "COMPACT_SHARE", 10.0)
    monkeypatch.setattr(fold, "MAX_DELTAS", 3)
    days = [dt.date.fromisoformat(d) for d in CHAIN_DATES]
    for d in CHAIN_DATES[:4]:  # full, delta, delta, delta
        chain_lake.run(d)
    assert lake.prune_run_dates(chain_lake.settings, days[3], 1) == []  # 11-04 reads all of them
    assert chain_lake.state_at(CHAIN_DATES[3]) == chain_lake.want(CHAIN_DATES[3])
    assert chain_lake.run(CHAIN_DATES[4])["marker"]["kind"] == "full"
    assert lake.prune_run_dates(chain_lake.settings, days[4], 1) == days[:4]
    assert chain_lake.state_at(CHAIN_DATES[4]) == chain_lake.want(CHAIN_DATES[4])


@pytest.mark.parametrize("max_deltas", [15, 2], ids=["deltas", "compacted"])
def test_the_touched_operators_are_the_day_s_and_those_of_the_versions_it_replaces(chain_lake, monkeypatch, max_deltas):
    """``folded_state``'s ``touched``: the operators of the day's rows and of the version in force
    before each of its keys (a record moved to another operator touches both), at most those of
    some earlier version of its keys; on a delta (taken from the versions the delta's write read)
    and on a full checkpoint folded from a chain."""
    monkeypatch.setattr(fold, "COMPACT_SHARE", 10.0)
    monkeypatch.setattr(fold, "MAX_DELTAS", max_deltas)
    files, kinds, moved = chain_lake.files, set(), 0
    for i, d in enumerate(CHAIN_DATES):
        out = chain_lake.run(d)
        if i == 0:
            assert out["touched"] is None  # no base: everyone is scored
            continue
        kinds.add(out["marker"]["kind"])
        got = {r["operator_key"] for r in out["touched"].collect()}
        day = files[d]
        before = [r for x in CHAIN_DATES[:i] for r in files[x]]
        in_force = {k: r["operator_key"] for k, r in winners({x: files[x] for x in CHAIN_DATES[:i]}).items()}
        keys = {r["key_str"] for r in day}
        least = {r["operator_key"] for r in day} | {in_force[k] for k in keys if k in in_force}
        most = {r["operator_key"] for r in day} | {r["operator_key"] for r in before if r["key_str"] in keys}
        assert least <= got <= most, (d, least, got, most)
        moved += bool({in_force[k] for k in keys if k in in_force} - {r["operator_key"] for r in day})
    assert moved, "some day's rows moved a record away from the operator that held it"
    assert kinds == ({"delta"} if max_deltas == 15 else {"delta", "full"})
