"""Files read by their own header, and the warnings that keep rows (issue 14, items 1 and 6), on
every feed through the gates, ingest with the GX suites, the state build, publish, the outbox, the
Data Docs and the run report (in-process, the session's SparkSession).

The landing zone is the generator's clean deliveries of two dates, rewritten here: on the first
date every CSV file has its columns in reverse order, on the second its columns rotated and an
unknown extra column (third, holding a name, a phone and an ID number); JSON lines get their fields
reversed, then extra personal fields. (An extra column alone: tests/unit/test_read_by_header.py.) Every file gets a natural person's rows: one clean, one of
each MALFORMED kind, one that breaks a rule; operators also a row with a retired district code. The
rules file allows any share of quarantined rows, so that nothing is rejected. Expected values come
from what this module wrote, never from the pipeline."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import Counter, defaultdict

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from ecredit import pipeline
from ecredit.core import feeds
from ecredit.core import rules as rules_mod
from ecredit.core import settings as settings_mod
from ecredit.core.feeds import DISTRICT, RETIRED_DISTRICTS
from ecredit.core.settings import DEFAULT_RULES
from ecredit.ingest import gate as delivery
from ecredit.ingest import load as ingest
from ecredit.ops import scan_pii
from ecredit.outputs import report
from ecredit.quality import expectations
from tests import header_cases as hc
from tests.helpers import gates_accepted

DATES = [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
LAYOUT = {DATES[0]: ("reversed", False), DATES[1]: ("rotated", True)}
CSV_MALFORMED = {"undecodable", "too_many_fields", "too_few_fields", "nul", "blank_line"}
JSON_MALFORMED = {"undecodable", "invalid_json", "nul", "blank_line"}
KEY = "header-test-key"


def _rewrite(folder, date, n0) -> dict:
    """Rewrite one generated delivery in the date's layout and add the hand-made rows (record keys
    and ID numbers from ``n0`` on, ten per file); returns {file: {"added": [(line, case, row)],
    "retired": lines with a retired district code, "head": the header written, "rows": data rows}}."""
    order, extra = LAYOUT[date]
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    files, out = {}, {}
    for entry in manifest["files"]:
        feed = feeds.feed(folder.parent.name, entry["name"])
        data = (folder / entry["name"]).read_bytes()
        n = n0 + 10 * len(out)
        if feed.fmt == "csv":
            sent_head, *records = list(csv.reader(io.StringIO(data.decode(feed.encoding), newline="")))
            head = hc.header(feed, order, extra)
            lines = []
            retired = []
            dcol = next((c.source for c in feed.columns if c.kind == DISTRICT), None)
            line = 2  # physical line of the next record (a quoted field may hold line breaks)
            for rec in records:
                by_name = dict(zip(sent_head, rec))
                by_name[hc.EXTRA_SOURCE] = hc.EXTRA_VALUE
                lines.append(hc.csv_line([by_name[h] for h in head]))
                if dcol is not None and by_name[dcol].strip() in RETIRED_DISTRICTS:
                    retired.append(line)
                line += lines[-1].count("\n")
            cases = hc.csv_cases(feed, head, n)
            first = line
            if dcol is not None:  # a natural person's shop in a retired district: kept, with a warning
                row = hc.person(feed, n + 6)
                row["district_code"] = RETIRED_DISTRICTS[0]
                cases.append(("retired", hc.csv_line(hc.fields(feed, head, row)), row))
                retired.append(first + len(cases) - 1)
            body = hc.csv_bytes(feed, head, lines + [line for _, line, _ in cases])
            rows = len(records) + len(cases)
        else:
            objs = [json.loads(line) for line in data.decode("utf-8").splitlines()]
            lines = []
            for o in objs:
                o = dict(reversed(list(o.items()))) if order != "ordered" else o
                lines.append(json.dumps({**o, **(hc.JSON_EXTRA if extra else {})}, ensure_ascii=False) + "\n")
            cases = hc.json_cases(feed, order, extra, n)
            first, head, retired = len(objs) + 1, None, []
            body = hc.json_bytes(lines + [line for _, line, _ in cases])
            rows = len(objs) + len(cases)
        files[entry["name"]] = (body, rows)
        out[entry["name"]] = {
            "feed": feed,
            "head": head,
            "retired": retired,
            "rows": rows,
            "added": [(first + i, case, row) for i, (case, _, row) in enumerate(cases)],
        }
    hc.write_files(folder, files, folder.parent.name, date.isoformat())
    return out, n0 + 10 * len(out)


@pytest.fixture(scope="module")
def run(tmp_path_factory, spark):
    from ecredit.generate import generate

    root = tmp_path_factory.mktemp("headers")
    generate(root / "landing", 30, DATES, seed=3, dirty_rate=0.0, progress=lambda m: None)  # 2 retired districts
    written, n0 = {}, 10
    for d in DATES:
        for dept in feeds.DEPARTMENTS:
            written[(dept, d)], n0 = _rewrite(root / "landing" / dept / d.isoformat(), d, n0)
    assert n0 < 999  # hc.id_no: a thousand ID numbers, the last one the extra column's
    rules = root / "rules.yaml"
    text_ = DEFAULT_RULES.read_text("utf-8")
    assert "max_quarantined_ratio: 0.20" in text_
    rules.write_text(text_.replace("max_quarantined_ratio: 0.20", "max_quarantined_ratio: 1.0"), "utf-8")
    env = {"CREDIT_DATA_DIR": str(root), "CREDIT_PII_KEY": KEY, "CREDIT_RULES": str(rules)}
    cfg = settings_mod.load(env)
    rule_set = rules_mod.load(cfg.rules_path)
    docs, reports = {}, {}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        for k in ("CREDIT_WAREHOUSE_URL", "CREDIT_LAKE_DIR", "CREDIT_OUTBOX_DIR", "CREDIT_LANDING_DIR"):
            mp.delenv(k, raising=False)
        for d in DATES:
            pipeline.run_stages(spark, cfg, d, run_id=f"headers-{d}", rules=rule_set, after=gates_accepted)
            docs[d] = expectations.build_docs(cfg, d)
            reports[d] = report.html_report(d)
    eng = create_engine(cfg.warehouse_url)

    def query(sql, **params):
        with eng.connect() as c:
            return [dict(r._mapping) for r in c.execute(text(sql), params)]

    ids = sorted(
        {row["id_no"] for w in written.values() for f in w.values() for _, _, row in f["added"] if row.get("id_no")}
    )
    return {
        "cfg": cfg,
        "env": env,
        "written": written,
        "query": query,
        "docs": docs,
        "reports": reports,
        "personal": hc.personal(ids),
    }


def _files(run):
    for (dept, d), by_name in run["written"].items():
        for name, w in by_name.items():
            yield dept, d, name, w


def _malformed(w):
    return CSV_MALFORMED if w["feed"].fmt == "csv" else JSON_MALFORMED


def test_scan_pii_finds_nothing(run):
    report_ = scan_pii.scan(run["cfg"], env=run["env"])
    n = report_.needles
    ours = {
        row["id_no"]
        for _, _, _, w in _files(run)
        for _, case, row in w["added"]
        if row.get("id_no") and case != "too_few_fields"
    }  # shifted by a field: found by the ID pattern
    assert ours and ours <= n.ids  # it searched for this module's ID numbers ...
    assert {hc.NAMES["legal_rep"], hc.NAMES["complainant_name"], hc.NAMES["party_name"]} <= set(n.names)
    assert hc.PHONE in n.phones
    assert report_.scanned["warehouse"]["rows"] > 100 and report_.scanned["outbox"]["files"] > 27
    assert report_.hits == [], report_.render()  # ... and found none of them, nor any other


def test_no_personal_data_and_no_extra_column_anywhere_written(run):
    """The values scan-pii does not know as needles: the extra column's name, and the personal
    values in clear, in the warehouse's quarantine and dq_result, the outbox and the lake."""
    cfg = run["cfg"]
    texts = [json.dumps(r, ensure_ascii=False, default=str) for r in run["query"]("SELECT * FROM quarantine")]
    texts += [json.dumps(r, ensure_ascii=False, default=str) for r in run["query"]("SELECT * FROM dq_result")]
    texts += [p.read_text("utf-8-sig") for p in cfg.outbox_dir.rglob("*.csv")]
    for p in cfg.lake_dir.rglob("*.parquet"):
        t = pq.read_table(str(p))
        texts += [json.dumps(t.column(c).to_pylist(), ensure_ascii=False, default=str) for c in t.column_names]
    texts += [p.read_text("utf-8") for p in cfg.lake_dir.rglob("*") if p.suffix in (".json", ".html")]
    assert len(texts) > 100
    for t in texts:
        for v in run["personal"]:
            assert v not in t
        assert hc.EXTRA_VALUE not in t and "id_card" not in t


def test_quarantine_holds_the_added_rows_masked_by_the_files_header(run):
    got = defaultdict(dict)
    for r in run["query"]("SELECT * FROM quarantine"):
        got[(r["dept"], r["feed"], str(r["delivery_date"]))][r["source_line"]] = r
    n_checked = 0
    for dept, d, name, w in _files(run):
        feed = w["feed"]
        q = got[(dept, feed.stem, d.isoformat())]
        want = {line: case for line, case, _ in w["added"] if case not in ("clean", "retired")}
        assert set(q) == set(want), (dept, d, name)  # the generated rows are clean: only ours
        for line, case, row in w["added"]:
            if line not in q:
                continue
            payload = json.loads(q[line]["payload"])
            assert q[line]["reasons"] == ("MALFORMED" if case in _malformed(w) else hc.rule_breaker(feed, row)[1])
            assert hc.EXTRA_SOURCE not in payload
            if feed.fmt == "csv" and case == "nul":  # matched to the header's names, masked
                t = hc.target(feed)
                want_payload = {
                    c.source: (
                        "*" * len(row[c.name] or "") if c.kind in (feeds.ID_NO, feeds.PII) else row[c.name] or ""
                    )
                    for c in feed.columns
                }
                assert payload == {**want_payload, "_detail": f"a NUL character in: {t.source}"}, (dept, name)
                n_checked += 1
            if case in ("too_many_fields", "too_few_fields") or feed.fmt == "jsonl" and case in JSON_MALFORMED:
                assert set(payload) == {"_withheld", "_detail"}, (dept, name, case)
    assert n_checked == len(DATES) * sum(f.fmt == "csv" for f in feeds.FEEDS)


def test_every_file_reconciles(run):
    for dept, d, name, w in _files(run):
        info = next(f for f in delivery.current_gate(run["cfg"], dept, d).files if f.name == name).info(
            dept, d.isoformat()
        )
        c = ingest.file_counts(run["cfg"], info)
        bad = sum(case not in ("clean", "retired") for _, case, _ in w["added"])
        assert (c["rows_in"], c["rows_quarantined"]) == (w["rows"], bad), (dept, d, name)
        assert c["rows_in"] == c["rows_loaded"] + c["rows_quarantined"]
    for r in run["query"]("SELECT * FROM feed_status"):
        assert r["rows_in"] == r["rows_loaded"] + r["rows_quarantined"] and r["status"] == "partial", r


def _out_of_place(feed, head):
    """Columns of feeds.md whose position differs among the known columns (worked out here)."""
    known = [h for h in head if h != hc.EXTRA_SOURCE]
    listed = [c.source for c in feed.columns]
    return sum(a != b for a, b in zip(known, listed))


def test_dq_result_counts_the_warnings_and_the_rows_set_aside(run):
    dq = defaultdict(dict)
    for r in run["query"]("SELECT * FROM dq_result"):
        dq[(r["dept"], r["feed"], str(r["delivery_date"]))][r["check"]] = r
    for dept, d, name, w in _files(run):
        feed = w["feed"]
        checks = dq[(dept, feed.stem, d.isoformat())]
        warnings = {
            c: (r["success"], r["unexpected_count"])
            for c, r in checks.items()
            if r["severity"] == "warning" and c != "volume"
        }
        want = {}
        if feed.fmt == "csv":
            moved = _out_of_place(feed, w["head"])
            if moved:
                want["header:COLUMNS_REORDERED"] = (False, moved)
            if LAYOUT[d][1]:
                want["header:EXTRA_COLUMN"] = (False, 1)
        if w["retired"]:
            want["rows:RETIRED_DISTRICT"] = (False, len(w["retired"]))
        assert warnings == want, (dept, d, name)
        assert want or feed.fmt == "jsonl"
        # MALFORMED rows: counted by the suite's row count, never "succeeded, 0 unexpected"
        rc = checks["gx:expect_table_row_count_to_equal()"]
        n_malformed = sum(case in _malformed(w) for _, case, _ in w["added"])
        assert (rc["success"], rc["element_count"], rc["unexpected_count"], rc["severity"]) == (
            False,
            w["rows"],
            n_malformed,
            "error",
        ), (dept, d, name)
        assert checks["rows:MALFORMED"]["unexpected_count"] == n_malformed
    assert all(
        _out_of_place(feeds.feed(dept, name), w["head"]) for dept, d, name, w in _files(run) if w["head"]
    )  # every CSV file is reordered
    assert any(len(w["retired"]) > 1 for *_, w in _files(run))  # the generator's retired districts too


def test_rejections_csv_lists_errors_and_warnings(run):
    cfg = run["cfg"]
    seen = Counter()
    for dept in feeds.DEPARTMENTS:
        for d in DATES:
            path = cfg.outbox_dir / dept / d.isoformat() / "rejections.csv"
            header, *rows = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"), newline="")))
            assert header == ["file", "line", "severity", "reasons", "content"]
            got = sorted((r[0], int(r[1]), r[2], r[3]) for r in rows)
            want = []
            for name, w in run["written"][(dept, d)].items():
                feed = w["feed"]
                if feed.fmt == "csv" and _out_of_place(feed, w["head"]):
                    want.append((name, 1, "warning", "COLUMNS_REORDERED"))
                if feed.fmt == "csv" and LAYOUT[d][1]:
                    want.append((name, 1, "warning", "EXTRA_COLUMN"))
                want += [(name, line, "warning", "RETIRED_DISTRICT") for line in w["retired"]]
                for line, case, row in w["added"]:
                    if case in _malformed(w):
                        want.append((name, line, "error", "MALFORMED"))
                    elif case == "rule":
                        want.append((name, line, "error", hc.rule_breaker(feed, row)[1]))
            assert got == sorted(want), (dept, d)
            seen.update(r[2] for r in got)
            for r in rows:  # a kept row's content is masked as a quarantined row's
                if r[3] == "RETIRED_DISTRICT":
                    content = json.loads(r[4])
                    assert set(content["证件号码"] or "*") == {"*"} and set(content["法定代表人"] or "*") == {"*"}
                    assert content["所属区划"] in RETIRED_DISTRICTS
    assert seen["warning"] > 20 and seen["error"] > 100


def test_the_run_report_shows_the_warnings(run):
    for d in DATES:
        html = run["reports"][d].read_text("utf-8")
        section = html.split("Data-quality warnings of the deliveries dated", 1)[1].split("<h2>", 1)[0]
        rows = re.findall(
            r"<tr><td>(\w+)</td><td>(\w+)</td><td><code>([^<]+)</code></td><td>(\d+) of (\d+)</td>", section
        )
        want = set()
        for (dept, dd), by_name in run["written"].items():
            if dd != d:
                continue
            for name, w in by_name.items():
                if w["head"] and _out_of_place(w["feed"], w["head"]):
                    want.add((dept, w["feed"].stem, "header:COLUMNS_REORDERED"))
                if w["head"] and LAYOUT[d][1]:
                    want.add((dept, w["feed"].stem, "header:EXTRA_COLUMN"))
                if w["retired"]:
                    want.add((dept, w["feed"].stem, "rows:RETIRED_DISTRICT"))
        assert {(a, b, c) for a, b, c, *_ in rows} == want, d
        runs = run["query"]("SELECT warnings FROM pipeline_run WHERE run_date = :d", d=d.isoformat())
        assert "RETIRED_DISTRICT" in runs[-1]["warnings"]


def test_data_docs_show_the_rows_set_aside(run):
    from urllib.parse import unquote

    for d in DATES:
        index = run["docs"][d]
        html = index.read_text("utf-8")
        rows = re.findall(
            r'<tr class="(\w*)"><td>(\w+)</td><td><a href="([^"]+)">([^<]+)</a></td><td>(\w+)</td>'
            r"<td>([^<]*)</td>",
            html,
        )
        assert len(rows) == sum(len(v) for (dept, dd), v in run["written"].items() if dd == d)
        for _, dept, href, name, status, detail in rows:
            w = run["written"][(dept, d)][name]
            n = sum(case in _malformed(w) for _, case, _ in w["added"])
            assert status == "failed" and f"{n} rows set aside before GX ran (MALFORMED" in detail, (dept, name)
            page = (index.parent / unquote(href)).read_text("utf-8")
            block = page.split('id="ecredit-set-aside"', 1)[1].split("</div>", 1)[0]
            assert f"{n} rows set aside before validation (MALFORMED)" in block
            lines = sorted(line for line, case, _ in w["added"] if case in _malformed(w))
            shown = sorted(int(x) for cell in re.findall(r"<td>([\d, ]+)</td></tr>", block) for x in cell.split(","))
            assert shown == lines, (dept, name)
            assert "blank line" in block
