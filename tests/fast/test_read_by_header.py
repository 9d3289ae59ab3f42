"""A file is read and masked by its own header (feeds.md: whatever the order of its columns), for
every feed of the registry: columns reordered, an unknown extra column holding personal data, and
each MALFORMED kind (undecodable bytes, wrong number of fields, a NUL, invalid JSON, a blank line).
Issue 14 item 1: a reordered file's MALFORMED row was masked by position, so a legal
representative's name and a raw ID number landed in the quarantine payload under other columns.

The parser is run as the ingest job runs it (``ingest.parse_file``, pure Python); the expected
payloads are built here from the rows as written (``tests/header_cases.py``)."""

from __future__ import annotations

import json

import pytest

from ecredit.core import checks
from ecredit.core.feeds import FEEDS, ID_NO, PII
from ecredit.ingest import load as ingest
from tests import header_cases as hc

CSV_FEEDS = [f for f in FEEDS if f.fmt == "csv"]
JSON_FEEDS = [f for f in FEEDS if f.fmt == "jsonl"]
LAYOUTS = [("ordered", False), ("reversed", False), ("rotated", False), ("ordered", True), ("reversed", True)]
FIELD = {name: i for i, name in enumerate(ingest.PARSE_SCHEMA.names)}


def _parse(tmp_path, feed, data: bytes, tag: str) -> list[tuple]:
    path = tmp_path / f"{tag}-{feed.file}"
    path.write_bytes(data)
    info = {"dept": feed.dept, "name": feed.file, "date": "2026-11-01", "sha256": "x", "path": str(path)}
    return list(ingest.parse_file(info, "k"))


def _csv(tmp_path, feed, order, extra):
    head = hc.header(feed, order, extra)
    cases = hc.csv_cases(feed, head, 10)
    rows = _parse(tmp_path, feed, hc.csv_bytes(feed, head, [line for _, line, _ in cases]), f"{order}{extra}")
    return head, cases, rows


def _masked(feed, row: dict) -> dict:
    """A MALFORMED row whose fields split under the header: the feed's columns under their
    names, as written, personal data as asterisks; nothing of an unknown column."""
    out = {}
    for c in feed.columns:
        v = row[c.name] or ""
        out[c.source] = "*" * len(v) if c.kind in (ID_NO, PII) else v
    return out


def _no_personal_data(rows, ids):
    for r in rows:
        text = r[FIELD["payload"]] or ""
        for v in hc.personal(ids):
            assert v not in text, (r[FIELD["source_line"]], v)
        assert hc.EXTRA_SOURCE not in text and "id_card" not in text and "phone" not in text


@pytest.mark.parametrize("order,extra", LAYOUTS, ids=lambda v: str(v))
@pytest.mark.parametrize("feed", CSV_FEEDS, ids=lambda f: f.feed_id)
def test_csv_rows_are_masked_by_the_files_own_header(tmp_path, feed, order, extra):
    head, cases, rows = _csv(tmp_path, feed, order, extra)
    assert len(rows) == len(cases)
    _no_personal_data(rows, [hc.id_no(n) for n in range(10, 17)])
    got = {case: r for (case, _, _), r in zip(cases, rows)}
    written = {case: row for case, _, row in cases}
    t = hc.target(feed)
    # a NUL: the row splits under the header, so its content is shown by the header's names
    nul = json.loads(got["nul"][FIELD["payload"]])
    assert nul == {**_masked(feed, written["nul"]), "_detail": f"a NUL character in: {t.source}"}
    assert got["nul"][FIELD["reasons"]] == ["MALFORMED"]
    # undecodable bytes: the same, the broken field as decoded (U+FFFD for the bad bytes)
    und = json.loads(got["undecodable"][FIELD["payload"]])
    assert und.pop("_detail") == "undecodable bytes in the declared encoding"
    assert "\ufffd" in und.pop(t.source)
    want = _masked(feed, written["undecodable"])
    del want[t.source]
    assert und == want
    # a wrong number of fields (against the file's header, not the feed's columns): withheld
    for case, n in (("too_many_fields", len(head) + 1), ("too_few_fields", len(head) - 1)):
        p = json.loads(got[case][FIELD["payload"]])
        assert p["_detail"] == f"{n} fields, the header has {len(head)}", case
        assert set(p) == {"_withheld", "_detail"} and p["_withheld"].startswith(f"{n} fields, "), case
    assert json.loads(got["blank_line"][FIELD["payload"]])["_detail"] == "blank line"
    # a row that breaks a rule: the feed's columns by name, masked
    assert got["rule"][FIELD["reasons"]] == [hc.rule_breaker(feed, hc.person(feed, 15))[1]]
    rule = json.loads(got["rule"][FIELD["payload"]])
    assert set(rule) == {c.source for c in feed.columns}
    assert all(set(rule[c.source]) == {"*"} for c in feed.columns if c.kind in (ID_NO, PII))
    assert got["clean"][FIELD["reasons"]] == [] and got["clean"][FIELD["payload"]] is None


@pytest.mark.parametrize("order,extra", LAYOUTS[1:], ids=lambda v: str(v))
@pytest.mark.parametrize("feed", CSV_FEEDS, ids=lambda f: f.feed_id)
def test_a_reordered_or_wider_csv_file_reads_as_the_ordered_one(tmp_path, feed, order, extra):
    """Same values, reasons, keys, warnings and payloads line by line; only the rows whose field
    count is wrong differ (withheld: their size is that of what the test dropped or added; with a
    wider header, their detail names its count)."""
    _, cases, want = _csv(tmp_path, feed, "ordered", False)
    _, _, got = _csv(tmp_path, feed, order, extra)
    for (case, _, _), a, b in zip(cases, want, got):
        if case in ("too_many_fields", "too_few_fields"):
            assert a[FIELD["reasons"]] == b[FIELD["reasons"]] == ["MALFORMED"]
            detail = [json.loads(r[FIELD["payload"]])["_detail"] for r in (a, b)]
            assert extra or detail[0] == detail[1], case
            continue
        assert a == b, case


@pytest.mark.parametrize(
    "order,extra", [("ordered", False), ("reversed", False), ("ordered", True)], ids=lambda v: str(v)
)
@pytest.mark.parametrize("feed", JSON_FEEDS, ids=lambda f: f.feed_id)
def test_json_rows_are_masked_by_field_name_and_unknown_fields_never_kept(tmp_path, feed, order, extra):
    cases = hc.json_cases(feed, order, extra, 10)
    rows = _parse(tmp_path, feed, hc.json_bytes([line for _, line, _ in cases]), f"{order}{extra}")
    assert len(rows) == len(cases)
    _no_personal_data(rows, [hc.id_no(n) for n in range(10, 16)])
    got = {case: r for (case, _, _), r in zip(cases, rows)}
    for case in ("undecodable", "invalid_json", "nul", "blank_line"):
        assert got[case][FIELD["reasons"]] == ["MALFORMED"], case
        assert set(json.loads(got[case][FIELD["payload"]])) <= {"_withheld", "_detail"}, case
    rule = json.loads(got["rule"][FIELD["payload"]])
    assert set(rule) == {c.source for c in feed.columns}  # no unknown field
    assert got["clean"][FIELD["reasons"]] == [] and got["clean"][FIELD["payload"]] is None
    # the order of the fields changes nothing
    base = hc.json_cases(feed, "ordered", False, 10)
    want = _parse(tmp_path, feed, hc.json_bytes([line for _, line, _ in base]), "base")
    for (case, _, _), a, b in zip(base, want, rows):
        if extra and a[FIELD["reasons"]] == ["MALFORMED"]:  # withheld: its size is the longer line's
            assert b[FIELD["reasons"]] == ["MALFORMED"], case
        elif case not in ("undecodable", "invalid_json"):  # their detail quotes a column number
            assert a == b, case


def test_masked_payload_of_a_malformed_row_needs_the_files_header():
    """The masking function itself: fields matched to the header's names, never by position."""
    from ecredit.core.feeds import feed

    ops = feed("amr", "operators.csv")
    head = hc.header(ops, "reversed")
    row = hc.person(ops, 1)
    fields = hc.fields(ops, head, row)
    payload = checks.masked_payload(ops, fields, None, head)
    assert payload == _masked(ops, row)
    assert checks.masked_payload(ops, fields[:-1], None, head).keys() == {"_withheld"}
    assert checks.masked_payload(ops, fields, None, None).keys() == {"_withheld"}  # no header: nothing


@pytest.mark.parametrize("order,extra", LAYOUTS, ids=lambda v: str(v))
@pytest.mark.parametrize("feed", CSV_FEEDS, ids=lambda f: f.feed_id)
def test_the_gate_accepts_and_warns_of_a_reordered_header_and_an_extra_column(tmp_path, feed, order, extra):
    """feeds.md: a file whose columns come in another order is read the same, with a warning;
    quality.md: an unknown extra column is a warning. Each is a file warning of the gate, with its
    count (columns out of place, extra columns), for dq_result and rejections.csv."""
    import datetime as dt

    from ecredit.core import settings as settings_mod
    from ecredit.ingest import gate as delivery

    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(tmp_path), "CREDIT_PII_KEY": "k"})
    head = hc.header(feed, order, extra)
    data = hc.csv_bytes(feed, head, [hc.csv_line(hc.fields(feed, head, hc.person(feed, 1)))])
    hc.write_files(cfg.landing_dir / feed.dept / "2026-11-01", {feed.file: (data, 1)}, feed.dept, "2026-11-01")
    g = delivery.gate_delivery(cfg, feed.dept, dt.date(2026, 11, 1))
    assert g.status == "accepted" and len(g.files) == 1
    listed = [c.source for c in feed.columns]
    moved = sum(a != b for a, b in zip([h for h in head if h != hc.EXTRA_SOURCE], listed))  # worked out here
    want = {}
    if moved:
        want["COLUMNS_REORDERED"] = (moved, len(head))
    if extra:
        want["EXTRA_COLUMN"] = (1, len(head))
    assert {w.code: (w.count, w.columns) for w in g.files[0].warnings} == want
    assert bool(moved) == (order != "ordered")
    assert any("another order than feeds.md" in w for w in g.warnings) == bool(moved)
    assert any(repr(hc.EXTRA_SOURCE) in w for w in g.warnings) == extra
