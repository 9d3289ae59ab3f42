"""The parser's rows have exactly the types of ``ingest.PARSE_SCHEMA``: ingest builds its DataFrame
with ``verifySchema=False`` (PySpark's per-row check cost ~40 % of the parse at 1.9M rows), so this
test is that check, run on every feed's generated files (clean and dirty) and on the adversarial
corpus, before anything reaches Spark."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pyspark.sql.types import _make_type_verifier

from ecredit.core.feeds import feed as feed_by_name
from ecredit.ingest import gate as delivery
from ecredit.ingest import load as ingest


def _files(landing: Path) -> list[dict]:
    out = []
    for manifest in sorted(landing.glob("*/*/manifest.json")):
        dept, date = manifest.parent.parent.name, manifest.parent.name
        try:
            entries = json.loads(manifest.read_text("utf-8-sig"))["files"]
        except (ValueError, KeyError, TypeError, RecursionError):
            continue  # the corpus's broken manifests: their deliveries are rejected, never parsed
        for e in entries if isinstance(entries, list) else []:
            path = manifest.parent / str(e.get("name") if isinstance(e, dict) else "")
            try:
                f = feed_by_name(dept, path.name)
            except KeyError:
                continue
            if path.is_file():
                out.append(
                    {
                        "dept": dept,
                        "name": path.name,
                        "date": date,
                        "feed_id": f.feed_id,
                        "path": str(path),
                        "sha256": delivery.sha256_file(path),
                    }
                )
    return out


def _check(files: list[dict]) -> tuple[int, set]:
    verify = _make_type_verifier(ingest.PARSE_SCHEMA)
    rows, feeds = 0, set()
    for info in files:
        for row in ingest.parse_file(info, "k"):
            verify(row)  # raises TypeError / ValueError naming the field
            rows += 1
        feeds.add(info["feed_id"])
    return rows, feeds


def test_generated_rows_have_the_schemas_types(tmp_path):
    from ecredit.generate import generate

    generate(
        tmp_path, 40, [dt.date(2026, 11, 1), dt.date(2026, 11, 2)], seed=3, dirty_rate=0.2, progress=lambda m: None
    )
    rows, feeds = _check(_files(tmp_path))
    assert len(feeds) == 16 and rows > 500


def test_corpus_rows_have_the_schemas_types(tmp_path):
    from tests.corpus import generate as corpus

    corpus.lay_out(tmp_path)
    rows, _ = _check(_files(tmp_path))
    assert rows > 50


def test_the_check_can_fail():
    verify = _make_type_verifier(ingest.PARSE_SCHEMA)
    good = next(iter(ingest.parse_file(_one_file(), "k")))
    verify(good)
    bad = list(good)
    bad[1] = str(bad[1])  # source_line as text
    with pytest.raises((TypeError, ValueError)):
        verify(tuple(bad))


def _one_file() -> dict:
    import tempfile

    from tests.helpers import write_delivery

    root = Path(tempfile.mkdtemp())
    f = feed_by_name("amr", "operators.csv")
    header = [c for c in f.columns if not c.optional_in_header]
    row = ["x"] * len(header)
    write_delivery(root, "amr", "2026-11-01", {"operators.csv": [row]})
    return _files(root)[0]
