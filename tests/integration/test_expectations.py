"""One definition of each rule: for every feed, the rows Great Expectations counts as unexpected
for a rule are exactly the rows the row split quarantined for it (on a dirty generated corpus)."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

import pyarrow.parquet as pq
import pytest

from ecredit.core import feeds
from ecredit.core import settings as settings_mod
from ecredit.core.feeds import FEEDS
from ecredit.ingest import gate as delivery
from ecredit.ingest import load as ingest
from ecredit.quality import expectations

D = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, spark):
    from ecredit.generate import generate
    from ecredit.quality import expectations as ex

    root = tmp_path_factory.mktemp("gx")
    summary = generate(root / "landing", 60, [D], seed=9, dirty_rate=0.08, progress=lambda m: None)
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(root), "CREDIT_PII_KEY": "k"})
    for dept in feeds.DEPARTMENTS:
        delivery.check(cfg, dept, D)
    ingest.run(spark, cfg, D)
    split = defaultdict(set)  # (feed_id, code) -> quarantined lines
    malformed = defaultdict(int)
    for r in pq.read_table(str(ingest.rows_path(cfg))).to_pylist():
        for code in r["reasons"]:
            split[(r["feed_id"], code)].add(r["source_line"])
        malformed[r["feed_id"]] += "MALFORMED" in r["reasons"]
    # the job's own frames, re-validated with line numbers (the job stores counts only)
    files = delivery.accepted_files(cfg, D)
    parsed = ingest.parse_frame(spark, cfg, files).cache()
    ctx = ex.context()
    local = ex.local_frames(parsed, files)  # the small files' path (GX's pandas engine)
    results: dict = {"spark": {}, "pandas": {}}
    for info in files:
        f = feeds.feed(info["dept"], info["name"])
        for engine, df in (
            ("spark", ex.file_frame(parsed, f, info)),
            ("pandas", local[(info["feed_id"], info["date"], info["sha256"])]),
        ):
            results[engine][f.feed_id] = (
                len(df) if engine == "pandas" else df.count(),
                ex.validate(
                    ctx,
                    df,
                    f,
                    D,
                    info["rows"],
                    result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["source_line"]},
                ),
                info,
            )
    return {"split": split, "results": results, "summary": summary, "malformed": malformed, "cfg": cfg}


def test_the_corpus_is_dirty_in_every_way(corpus):
    assert all(
        corpus["summary"]["dirty"][c] > 0
        for c in (
            "MALFORMED",
            "MISSING_REQUIRED",
            "BAD_USCC",
            "BAD_ID_NO",
            "BAD_ENUM",
            "BAD_DATE",
            "BAD_NUMBER",
            "DUPLICATE_KEY",
        )
    )


@pytest.mark.parametrize("engine", ["spark", "pandas"])
@pytest.mark.parametrize("feed", FEEDS, ids=lambda f: f.feed_id)
def test_gx_unexpected_rows_are_exactly_the_quarantined_rows(corpus, feed, engine):
    """On either engine (Spark: a big file; pandas: a small one, ``LOCAL_MAX_ROWS``)."""
    n_rows, result, info = corpus["results"][engine][feed.feed_id]
    gx_lines = defaultdict(set)
    for r in result.results:
        assert expectations.raised(r.exception_info) is None, r.exception_info
        code = r.expectation_config.meta["reason_code"]
        gx_lines[code] |= {row["source_line"] for row in r.result.get("unexpected_index_list") or []}
        assert r.result.get("unexpected_count", 0) == len(r.result.get("unexpected_index_list") or [])
    codes = {code for (fid, code) in corpus["split"] if fid == feed.feed_id} | set(gx_lines)
    for code in codes - {"MALFORMED"}:
        assert gx_lines[code] == corpus["split"][(feed.feed_id, code)], (feed.feed_id, code)
    # MALFORMED rows never become DataFrame rows: counted by the parser before GX runs, and by the
    # suite's row count against the rows in the file
    manifest = json.loads((corpus["cfg"].landing_dir / feed.dept / D.isoformat() / "manifest.json").read_text())
    rows = next(f["rows"] for f in manifest["files"] if f["name"] == feed.file)
    assert n_rows + corpus["malformed"][feed.feed_id] == rows
    [count] = [r for r in result.results if r.expectation_config.type == expectations.ROW_COUNT]
    assert count.result["observed_value"] == n_rows and count.success == (corpus["malformed"][feed.feed_id] == 0)
    [summary] = [s for s in expectations.summarise(result) if s["expectation"] == expectations.ROW_COUNT]
    assert (summary["element_count"], summary["unexpected_count"]) == (rows, corpus["malformed"][feed.feed_id])


def test_the_job_stored_the_same_counts_and_no_values(corpus, feed=feeds.feed("amr", "complaints.csv")):
    """What the ingest job stored (counts only, in the done marker and the lake) has the counts of the
    line-level run above and no row values: personal data never leaves the validation."""
    from ecredit.quality import expectations as ex

    _, result, info = corpus["results"]["spark"][feed.feed_id]
    marker = ingest.file_counts(corpus["cfg"], info)
    full = {(s["expectation"], s["column"]): s["unexpected_count"] for s in ex.summarise(result)}
    stored = {(s["expectation"], s["column"]): s["unexpected_count"] for s in marker["expectations"]}
    assert stored == full and sum(stored.values()) > 0
    text = ex.result_path(corpus["cfg"], info).read_text("utf-8")
    for r in json.loads(text)["results"]:
        assert not r["result"].get("partial_unexpected_list"), r["expectation_config"]["type"]
        assert "unexpected_index_list" not in r["result"]


def test_disagreement_is_detected():
    """The job's runtime guard: counts that cannot come from one definition are reported."""
    from ecredit.quality import expectations as ex

    summary = [
        {"expectation": "e", "column": "a", "reason_code": "BAD_DATE", "unexpected_count": 2, "exception": None},
        {"expectation": "e", "column": "b", "reason_code": "BAD_DATE", "unexpected_count": 3, "exception": None},
        {
            "expectation": "d",
            "column": "_duplicate_not_last",
            "reason_code": "DUPLICATE_KEY",
            "unexpected_count": 1,
            "exception": None,
        },
    ]
    assert ex.disagreements(summary, {"BAD_DATE": 4, "DUPLICATE_KEY": 1, "MALFORMED": 7}) == []
    assert ex.disagreements(summary, {"BAD_DATE": 5 + 1, "DUPLICATE_KEY": 1}) != []  # more than the sum
    assert ex.disagreements(summary, {"BAD_DATE": 2, "DUPLICATE_KEY": 1}) != []  # fewer than the largest
    assert ex.disagreements(summary, {"BAD_DATE": 3, "DUPLICATE_KEY": 0}) != []
    assert ex.disagreements(summary, {"BAD_DATE": 3, "DUPLICATE_KEY": 1, "BAD_ENUM": 1}) != []  # no expectation
    # with the row count (every suite since issue 14), MALFORMED rows must be exactly the rows GX never saw
    counted = summary + [
        {
            "expectation": ex.ROW_COUNT,
            "column": None,
            "reason_code": "MALFORMED",
            "unexpected_count": 7,
            "exception": None,
        }
    ]
    assert ex.disagreements(counted, {"BAD_DATE": 4, "DUPLICATE_KEY": 1, "MALFORMED": 7}) == []
    assert ex.disagreements(counted, {"BAD_DATE": 4, "DUPLICATE_KEY": 1, "MALFORMED": 6}) != []
    assert ex.disagreements(counted, {"BAD_DATE": 4, "DUPLICATE_KEY": 1}) != []


def test_a_file_parsed_in_many_slices_gives_the_rows_ingest_wrote(corpus, spark, monkeypatch):
    """Ingest cuts big files into slices, spread over a few tasks per core on the executors
    (``ingest.SLICE_BYTES``, ``ingest.PARSE_TASKS_PER_CORE``); cut into slices of ~300 bytes
    (dozens per file), that parse gives exactly the rows ingest wrote
    for the whole files (a small input, parsed in the driver: ``DRIVER_PARSE_MAX_ROWS``): the same
    source lines, values, reasons and payloads, duplicates marked across slices."""
    cfg = corpus["cfg"]
    files = delivery.accepted_files(cfg, D)
    assert sum(f["rows"] for f in files) <= ingest.DRIVER_PARSE_MAX_ROWS  # ingest.run parsed in the driver
    tasks = ingest.parse_tasks(files, 300)
    assert len(tasks) > 10 * len(files)
    monkeypatch.setattr(ingest, "DRIVER_PARSE_MAX_ROWS", 0)  # this parse: on the executors
    # the checks in Python, as ingest.run made them; in the engine: tests/unit/test_engine_ingest.py
    sliced = ingest.parse_frame(spark, cfg, files, slice_bytes=300, engine_checks=False).drop(
        ingest.AS_SENT, "_duplicate_not_last"
    )
    assert "MapInArrow" in sliced._jdf.queryExecution().executedPlan().toString()
    assert ingest.parse_rows(spark, cfg, files, 300, engine_checks=False).rdd.getNumPartitions() == min(
        len(tasks), ingest.PARSE_TASKS_PER_CORE * spark.sparkContext.defaultParallelism
    )
    got = sorted(json.dumps(r.asDict(), sort_keys=True, ensure_ascii=False) for r in sliced.collect())
    lake = sorted(
        json.dumps(r, sort_keys=True, ensure_ascii=False) for r in pq.read_table(str(ingest.rows_path(cfg))).to_pylist()
    )
    assert len(got) == len(lake) == sum(f["rows"] for f in files)
    assert got == lake
    assert any(json.loads(r)["reasons"] == ["DUPLICATE_KEY"] for r in got)


def test_a_run_split_between_the_engines_stores_what_each_alone_stores(corpus, spark, monkeypatch):
    """``validate_files`` sends a run's smallest files to GX's pandas engine (``LOCAL_MAX_ROWS`` rows
    in all) and the rest to its Spark engine: with a budget that splits the files, every file's
    summary equals the one ingest stored (all of them on pandas) and the Spark engine's own run."""
    from ecredit.quality import expectations as ex

    cfg = corpus["cfg"]
    files = delivery.accepted_files(cfg, D)
    sizes = sorted(f["rows"] for f in files)
    budget = sum(sizes[: len(sizes) // 2])
    monkeypatch.setattr(ex, "LOCAL_MAX_ROWS", budget)
    local = ex.local_files(files, budget)
    assert 0 < len(local) < len(files)
    parsed = ingest.parse_frame(spark, cfg, files).cache()
    got = ex.validate_files(cfg, parsed, files)
    for info in files:
        stored = ingest.file_counts(cfg, info)["expectations"]
        _, spark_result, _ = corpus["results"]["spark"][info["feed_id"]]
        key = (info["feed_id"], info["date"], info["sha256"])
        assert got[key] == stored == ex.summarise(spark_result), info["feed_id"]
    assert any(s["unexpected_count"] for info in files for s in got[(info["feed_id"], info["date"], info["sha256"])])
