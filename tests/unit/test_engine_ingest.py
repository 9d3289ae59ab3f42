"""Issue 16, item 2: the ingest that checks rows in the engine (``load.parse_frame(...,
engine_checks=True)``: Python splits, ``engine.checked`` checks) gives exactly the rows of the per-row
Python ingest (``engine_checks=False``: ``load.parse_file``, ``checks.check_sent``, the former
ingest, kept for small inputs by decision 108): the same files, lines, operator keys,
natural-person flags, record keys, reasons, warnings, stored values, values as sent (what GX judges)
and masked payloads (compared as JSON objects), DUPLICATE_KEY marked the same way.

On the adversarial corpus (every file laid out, whatever its gate says) and on dirty generated
deliveries of every feed: 1,000 operators over two dates (the big files in ~20 KB slices) and
10,000 operators (the history date). Both paths split on the executors here."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ecredit.core import checks, feeds
from ecredit.core import settings as settings_mod
from ecredit.generate import generate
from ecredit.ingest import load, parse
from tests.corpus import generate as corpus

KEY = "k"


def landing_files(landing: Path) -> list[dict]:
    """Every delivery file of a landing zone as ingest's file dicts, whatever the gates say."""
    out = []
    for dept_dir in sorted(p for p in landing.iterdir() if p.is_dir()):
        for date_dir in sorted(p for p in dept_dir.iterdir() if p.is_dir()):
            for f in feeds.FEEDS:
                path = date_dir / f.file
                if f.dept != dept_dir.name or not path.is_file():
                    continue
                out.append(
                    {
                        "dept": f.dept,
                        "name": f.file,
                        "date": date_dir.name,
                        "feed_id": f.feed_id,
                        "path": str(path),
                        "rows": parse.count_rows(str(path), f),
                        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                    }
                )
    return out


def comparable(df: DataFrame) -> DataFrame:
    """Maps as sorted entries (set operations take no maps); the payload as a JSON object."""
    return df.select(
        *(c for c in df.columns if c not in ("payload", checks.AS_SENT)),
        F.array_sort(F.map_entries(F.from_json("payload", "map<string,string>"))).alias("payload"),
        F.array_sort(F.map_entries(checks.AS_SENT)).alias(checks.AS_SENT),
    )


KEY_COLUMNS = ["feed_id", "delivery_date", "file_sha", "source_line"]


def fingerprints(df: DataFrame) -> DataFrame:
    """Each row's key and a SHA-256 of all its other columns: set operations on narrow rows (the
    wide rows of 10,000 operators, aggregated whole, ran a 1 GB test JVM out of memory)."""
    rest = [c for c in df.columns if c not in KEY_COLUMNS]
    return df.select(*KEY_COLUMNS, F.sha2(F.to_json(F.struct(*rest)), 256).alias("_h"))


def assert_same_rows(spark, cfg, files: list[dict], slice_bytes: int = load.SLICE_BYTES) -> set:
    """The engine's rows equal the reference's; returns the reason codes they carry."""
    # materialised once (each query on a cached frame of 32 (feed, date) projections plans them all
    # again), as ingest.run caches them (a boundary for the optimizer: load.parse_frame)
    engine_rows = load.parse_rows(spark, cfg, files, slice_bytes, engine_checks=True).localCheckpoint()
    got = comparable(load.mark_duplicates(engine_rows))
    # the reference split on the executors too: a plan holding the driver's parse as local data
    # (the corpus's 1 MB field, ...) is printed whole into every query's plan info
    driver_max, load.DRIVER_PARSE_MAX_ROWS = load.DRIVER_PARSE_MAX_ROWS, 0
    try:
        python_rows = load.parse_rows(spark, cfg, files, engine_checks=False).localCheckpoint()
        want = comparable(load.mark_duplicates(python_rows))
    finally:
        load.DRIVER_PARSE_MAX_ROWS = driver_max
    assert got.columns == want.columns
    n = python_rows.count()
    assert n == sum(f["rows"] for f in files) > 0
    assert engine_rows.count() == n
    only_got = fingerprints(got).exceptAll(fingerprints(want)).cache()
    if only_got.count() or fingerprints(want).exceptAll(fingerprints(got)).count():
        wrong = only_got.select(*KEY_COLUMNS).limit(10)
        a = {tuple(r[k] for k in KEY_COLUMNS): r.asDict() for r in got.join(wrong, KEY_COLUMNS).collect()}
        b = {tuple(r[k] for k in KEY_COLUMNS): r.asDict() for r in want.join(wrong, KEY_COLUMNS).collect()}
        diffs = [
            (k, sorted(c for c in a[k] if c != checks.AS_SENT and a[k][c] != b.get(k, {}).get(c))) for k in sorted(a)
        ]
        pytest.fail(f"engine and reference differ: {only_got.count()} rows; columns that differ: {diffs}")
    only_got.unpersist()
    found = codes(got)
    engine_rows.unpersist()
    python_rows.unpersist()
    return found


def codes(df: DataFrame) -> set:
    """The reason codes the rows carry."""
    return {r[0] for r in df.select(F.explode("reasons")).distinct().collect()}


@pytest.fixture(scope="module")
def dirty_1k(tmp_path_factory):
    root = tmp_path_factory.mktemp("engine1k")
    dates = [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
    generate(root / "landing", 1000, dates, seed=21, dirty_rate=0.05, progress=lambda m: None)
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(root), "CREDIT_PII_KEY": KEY})
    return cfg, landing_files(root / "landing")


def test_the_corpus_checks_the_same_in_the_engine(tmp_path, spark):
    corpus.lay_out(tmp_path / "landing")
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(tmp_path), "CREDIT_PII_KEY": KEY})
    files = landing_files(tmp_path / "landing")
    assert {checks.MALFORMED, checks.BAD_NUMBER, checks.BAD_DATE} <= assert_same_rows(spark, cfg, files)


def test_dirty_deliveries_of_every_feed_check_the_same_in_the_engine(dirty_1k, spark):
    """Two dates, the big files split in ~20 KB slices on the executors (DUPLICATE_KEY across
    slices)."""
    cfg, files = dirty_1k
    assert {f["feed_id"] for f in files} == {f.feed_id for f in feeds.FEEDS}
    assert len(load.parse_tasks(files, 20_000)) > 2 * len(files)
    rows = load.parse_rows(spark, cfg, files, 20_000, engine_checks=True)
    assert "MapInArrow" in rows._jdf.queryExecution().executedPlan().toString()
    assert assert_same_rows(spark, cfg, files, 20_000) == set(checks.REASON_CODES)  # every rule had rows
    rows = rows.localCheckpoint()
    assert rows.filter(F.size("warnings") > 0).count() > 0
    assert rows.filter("natural_person").count() > 0
    rows.unpersist()


def test_ten_thousand_operators_check_the_same_in_the_engine(tmp_path, spark):
    generate(tmp_path / "landing", 10_000, [dt.date(2026, 11, 1)], seed=5, dirty_rate=0.02, progress=lambda m: None)
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(tmp_path), "CREDIT_PII_KEY": KEY})
    files = landing_files(tmp_path / "landing")
    assert sum(f["rows"] for f in files) > 100_000
    assert assert_same_rows(spark, cfg, files) == set(checks.REASON_CODES)
