"""Each feed's parser on generated files (GBK, UTF-8 with BOM, UTF-8; every date format): clean
files give clean rows, as many as the manifest says, with the values the file holds."""

import datetime as dt
import json

import pytest

from ecredit.core import checks
from ecredit.core.feeds import FEEDS
from ecredit.ingest import parse
from tests.expected import read_rows

DATES = [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    from ecredit.generate import generate

    out = tmp_path_factory.mktemp("gen")
    generate(out, 60, DATES, seed=2, dirty_rate=0.0, progress=lambda m: None)
    return out


@pytest.mark.parametrize("feed", FEEDS, ids=lambda f: f.feed_id)
@pytest.mark.parametrize("date", DATES, ids=str)
def test_clean_generated_file_parses_clean(landing, feed, date):
    folder = landing / feed.dept / date.isoformat()
    manifest = {f["name"]: f for f in json.loads((folder / "manifest.json").read_text())["files"]}
    path = folder / feed.file
    with open(path, "rb") as stream:
        rows = list(parse.iter_rows(stream, feed))
    assert len(rows) == manifest[feed.file]["rows"] == parse.count_rows(str(path), feed)
    independent = list(read_rows(path, feed.dept))
    assert len(independent) == len(rows)
    for raw, ind in zip(rows, independent):
        assert raw.values is not None, raw.malformed
        _, reasons, _, key, _ = checks.check_row(feed, raw.values, date, "k")
        assert reasons == [], (raw.line, reasons, raw.values)
        assert key or not feed.identifiers
        # every value the parser saw is the value the file holds (by the department's header)
        for c in feed.columns:
            if c.source in ind:
                expected = ind[c.source]
                if isinstance(expected, bool):
                    expected = "true" if expected else "false"
                elif isinstance(expected, (int, float)):
                    expected = json.dumps(expected)
                assert raw.values[c.name] == expected, (c.source, raw.line)
