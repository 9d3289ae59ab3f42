"""A big file is parsed in slices by several tasks (``parse.split_points``): every slice must give
exactly the rows the whole file gives there (line numbers, values, malformed reasons, fields), in
order, with no row lost or read twice. Checked on hand-made hard cases (quoted line breaks, CRLF and
lone CR, escaped quotes, BOMs, undecodable bytes, an unterminated quote, stray quotes), on every file
of the adversarial corpus and on generated dirty deliveries, each cut at every size from one byte."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from ecredit.core.feeds import FEEDS
from ecredit.core.feeds import feed as feed_by_name
from ecredit.ingest import parse

CSV_FEED = next(f for f in FEEDS if f.fmt != "jsonl" and f.encoding == "utf-8")
GBK_FEED = next(f for f in FEEDS if f.fmt != "jsonl" and f.encoding == "gb18030")
JSONL_FEED = next(f for f in FEEDS if f.fmt == "jsonl")


def _header(feed) -> str:
    return ",".join(c.source for c in feed.columns)


def _whole(path: Path, feed) -> list[tuple]:
    with open(path, "rb") as s:
        return [(r.line, r.values, r.malformed, r.fields) for r in parse.iter_rows(s, feed)]


def _sliced(path: Path, feed, target: int) -> tuple[list[tuple], list[parse.Slice]]:
    slices = parse.split_points(str(path), feed, target)
    out = []
    with open(path, "rb") as s:
        for part in slices:
            out += [(r.line, r.values, r.malformed, r.fields) for r in parse.iter_rows(s, feed, part)]
    return out, slices


def _assert_same(path: Path, feed, targets=(1, 2, 3, 5, 17, 64, 500)):
    whole = _whole(path, feed)
    size = path.stat().st_size
    for target in targets:
        got, slices = _sliced(path, feed, target)
        assert got == whole, (path.name, target)
        # the slices tile the file: contiguous, from 0 to its end
        assert slices[0].start == 0 and slices[0].first_line == 1
        for a, b in zip(slices, slices[1:]):
            assert a.length is not None and a.start + a.length == b.start
        assert slices[-1].length is None and (len(slices) == 1 or slices[-1].start < size)
    return whole


def _hand_made_csv(feed) -> bytes:
    n = len(feed.columns)
    good = ["x"] * n
    rows = [
        ",".join(good),
        ",".join(['"a\nb"'] + good[1:]),  # a quoted line break
        ",".join(['"say ""hi""\r\nnext"'] + good[1:]),  # escaped quotes and a quoted CRLF
        ",".join(["a\rb"] + good[1:]),  # a lone CR ends nothing
        "",  # a blank line
        ",".join(['b"c'] + good[1:]),  # a stray quote inside an unquoted field
        ",".join(['d"e'] + good[1:]),  # ... and its partner two lines on
        ",".join(good[:-1]),  # a field short
        ",".join(['"unterminated'] + good[1:]),
        ",".join(good),
    ]
    return (_header(feed) + "\r\n" + "\r\n".join(rows) + "\n").encode("utf-8")


@pytest.mark.parametrize("prefix", [b"", parse.BOM_UTF8], ids=["plain", "utf8-bom"])
def test_hand_made_csv(tmp_path, prefix):
    path = tmp_path / CSV_FEED.file
    path.write_bytes(prefix + _hand_made_csv(CSV_FEED))
    whole = _assert_same(path, CSV_FEED)
    # the two stray quotes make lines 9-10 one record; the unterminated quote swallows line 13
    assert [w[0] for w in whole] == [2, 3, 5, 7, 8, 9, 11, 12]
    assert whole[-1][2] is not None  # ... and is malformed


def test_gbk_file_with_utf8_bom_and_undecodable_bytes(tmp_path):
    path = tmp_path / GBK_FEED.file
    body = _hand_made_csv(GBK_FEED).replace(b"x,x", "\u5e97,x".encode("gb18030"), 3)
    body = body.replace(b"\na\rb", b'\n\x81"\rb', 1)  # a bad lead byte before a quote
    path.write_bytes(body)
    _assert_same(path, GBK_FEED)
    path.write_bytes(parse.BOM_UTF8 + _hand_made_csv(GBK_FEED).replace(b"x,x", "\u5e97,x".encode("utf-8"), 3))
    whole = _assert_same(path, GBK_FEED)
    assert any(w[1] and "\u5e97" in json.dumps(w[1], ensure_ascii=False) for w in whole)
    path.write_bytes(b"\x84\x31\x95\x33" + _hand_made_csv(GBK_FEED))  # GB18030's own BOM
    _assert_same(path, GBK_FEED)


def test_jsonl(tmp_path):
    path = tmp_path / JSONL_FEED.file
    obj = {c.source: "v" for c in JSONL_FEED.columns}
    lines = [json.dumps(obj), "", "{not json", json.dumps(obj, ensure_ascii=False) + "\r", "[1]", json.dumps(obj)]
    path.write_bytes(parse.BOM_UTF8 + "\n".join(lines).encode("utf-8"))  # no final LF
    whole = _assert_same(path, JSONL_FEED)
    assert [w[0] for w in whole] == [1, 2, 3, 4, 5, 6]


def test_a_small_file_is_one_slice(tmp_path):
    path = tmp_path / CSV_FEED.file
    path.write_bytes(_hand_made_csv(CSV_FEED))
    assert parse.split_points(str(path), CSV_FEED, 1 << 20) == [parse.Slice(0, None, 1)]
    path.write_bytes(b"")
    assert parse.split_points(str(path), CSV_FEED, 1) == [parse.Slice(0, None, 1)]
    assert _sliced(path, CSV_FEED, 1)[0] == _whole(path, CSV_FEED) == []


def test_big_blocks(tmp_path):
    """Cuts that fall across split_points' 8 MiB read blocks."""
    path = tmp_path / CSV_FEED.file
    n = len(CSV_FEED.columns)
    row = ",".join(['"q\n' + "y" * 3000 + '"'] + ["x"] * (n - 1))
    path.write_bytes((_header(CSV_FEED) + "\n" + "\n".join([row] * 6000) + "\n").encode())
    got, slices = _sliced(path, CSV_FEED, 1_000_003)
    assert len(slices) > 10
    assert got == _whole(path, CSV_FEED)
    assert [g[0] for g in got] == list(range(2, 12002, 2))


def _landing_files(landing: Path):
    for manifest in sorted(landing.glob("*/*/manifest.json")):
        for path in sorted(manifest.parent.iterdir()):
            try:
                yield path, feed_by_name(manifest.parent.parent.name, path.name)
            except KeyError:
                continue


def test_corpus_files(tmp_path):
    from tests.corpus import generate as corpus

    corpus.lay_out(tmp_path / "landing")
    files = list(_landing_files(tmp_path / "landing"))
    assert len(files) >= 15
    for path, feed in files:
        targets = (1, 7, 100) if path.stat().st_size < 200_000 else (100_000,)
        _assert_same(path, feed, targets)


def test_generated_dirty_files(tmp_path):
    from ecredit.generate import generate

    generate(tmp_path, 40, [dt.date(2026, 11, 1)], seed=3, dirty_rate=0.2, progress=lambda m: None)
    files = list(_landing_files(tmp_path))
    assert {f.feed_id for _, f in files} == {f.feed_id for f in FEEDS}
    rows = 0
    for path, feed in files:
        rows += len(_assert_same(path, feed, (1, 50, 999)))
    assert rows > 500
