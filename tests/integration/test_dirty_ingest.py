"""A dirty three-date run: nothing is lost, and the published quarantine and counts are exactly the
dirt the generator injected (its ledger: rows per file per reason code, written by the generator,
not by the pipeline). The stages run in-process in the test's SparkSession (the Airflow wiring is
the end-to-end fixture's job): gates, ingest with the GX suites, state, publish, outbox."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from ecredit import pipeline
from ecredit.core import feeds
from ecredit.core import rules as rules_mod
from ecredit.core import settings as settings_mod
from ecredit.ingest import gate as delivery
from ecredit.ingest import load as ingest
from tests.helpers import gates_accepted

DATES = [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]


@pytest.fixture(scope="module")
def dirty(tmp_path_factory, spark):
    from ecredit.generate import generate

    root = tmp_path_factory.mktemp("dirty")
    summary = generate(root / "landing", 80, DATES, seed=5, dirty_rate=0.05, progress=lambda m: None)
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(root), "CREDIT_PII_KEY": "k"})
    rule_set = rules_mod.load(cfg.rules_path)
    results = []
    for d in DATES:
        got = pipeline.run_stages(spark, cfg, d, run_id=f"dirty-{d}", rules=rule_set, after=gates_accepted)
        results.append(got["ingest"])
    table = pq.read_table(str(ingest.rows_path(cfg))).to_pylist()
    eng = create_engine(cfg.warehouse_url)

    def query(sql, **params):
        with eng.connect() as c:
            return [dict(r._mapping) for r in c.execute(text(sql), params)]

    ledger = {}  # (dept, feed stem, date) -> {code: rows}, from the generator
    for dept, by_file in summary["dirty_files"].items():
        for name, by_date in by_file.items():
            for d, codes in by_date.items():
                ledger[(dept, name.rsplit(".", 1)[0], d)] = codes
    return {"cfg": cfg, "summary": summary, "results": results, "rows": table, "query": query, "ledger": ledger}


def test_every_file_reconciles(dirty):
    files = delivery.accepted_files(dirty["cfg"], DATES[-1])
    assert len(files) == 16 * len(DATES)
    for f in files:
        c = ingest.file_counts(dirty["cfg"], f)
        assert c["rows_in"] == f["rows"] == c["rows_loaded"] + c["rows_quarantined"], f
    assert sum(r["rows"] for r in dirty["results"]) == sum(f["rows"] for f in files) == len(dirty["rows"])


def test_quarantine_is_exactly_the_injected_dirt(dirty):
    injected = {k: v for k, v in dirty["summary"]["dirty"].items() if v}
    quarantined = [r for r in dirty["rows"] if r["reasons"]]
    assert len(quarantined) == dirty["summary"]["dirty_total"]
    per_code = Counter(code for r in quarantined for code in r["reasons"])
    assert dict(per_code) == injected
    assert set(injected) >= {
        "MALFORMED",
        "MISSING_REQUIRED",
        "BAD_USCC",
        "BAD_ID_NO",
        "BAD_ENUM",
        "BAD_DATE",
        "BAD_NUMBER",
        "DUPLICATE_KEY",
    }


def test_published_quarantine_is_the_ledger_per_file_and_code(dirty):
    got = defaultdict(Counter)
    for r in dirty["query"]("SELECT dept, feed, delivery_date, reasons FROM quarantine"):
        for code in r["reasons"].split(","):
            got[(r["dept"], r["feed"], str(r["delivery_date"]))][code] += 1
    assert {k: dict(v) for k, v in got.items()} == dirty["ledger"]
    keys = dirty["query"]("SELECT dept, feed, delivery_date, source_line FROM quarantine")
    assert len(keys) == len({tuple(k.values()) for k in keys}) == dirty["summary"]["dirty_total"]


def test_dq_result_counts_per_reason_and_per_expectation(dirty):
    rows = dirty["query"]("SELECT * FROM dq_result")
    by_file = defaultdict(dict)
    for r in rows:
        by_file[(r["dept"], r["feed"], str(r["delivery_date"]))][r["check"]] = r
    for key, codes in dirty["ledger"].items():
        checks = by_file[key]
        assert {c[5:]: r["unexpected_count"] for c, r in checks.items() if c.startswith("rows:")} == codes, key
        gx = {c: r for c, r in checks.items() if c.startswith("gx:")}
        # MALFORMED rows never reach GX's column expectations, but its row count counts them: a
        # file with any dirt fails its suite (issue 14: never "succeeded" with rows set aside)
        assert gx and all(r["success"] for r in gx.values()) == (not codes), key
        rows_in = checks["quarantined_ratio"]["element_count"]
        count = gx.pop("gx:expect_table_row_count_to_equal()")
        assert (count["element_count"], count["unexpected_count"]) == (rows_in, codes.get("MALFORMED", 0)), key
        # the column expectations judge the parsed rows: every row but the MALFORMED ones
        assert {r["element_count"] for r in gx.values()} == {rows_in - codes.get("MALFORMED", 0)}, key
        assert gx["gx:expect_column_values_to_be_in_set(_duplicate_not_last)"]["unexpected_count"] == codes.get(
            "DUPLICATE_KEY", 0
        ), key
    # a clean file: every expectation met
    clean = [k for k in by_file if k not in dirty["ledger"] and k[1] != "*"]
    assert clean and all(r["success"] for k in clean for c, r in by_file[k].items() if c.startswith("gx:"))


def test_feed_status_shows_the_three_numbers(dirty):
    for r in dirty["query"]("SELECT * FROM feed_status"):
        d = str(r["run_date"])
        want = sum(
            n
            for (dept, _, dd), codes in dirty["ledger"].items()
            if dept == r["dept"] and dd == d
            for n in codes.values()
        )
        assert r["rows_quarantined"] == want, r
        assert r["rows_in"] == r["rows_loaded"] + r["rows_quarantined"], r
        assert r["status"] == ("partial" if want else "ok"), r


def test_quarantined_rows_keep_line_and_masked_content(dirty):
    quarantined = [r for r in dirty["rows"] if r["reasons"]]
    assert all(r["source_line"] >= 1 and r["payload"] for r in quarantined)
    for r in quarantined:
        payload = json.loads(r["payload"])
        assert not {"id_no", "complainant_name", "complainant_phone", "legal_rep", "party_name"} & set(payload)
        for k in (
            "证件号码",
            "投诉人姓名",
            "投诉人电话",
            "法定代表人",
            "id_no",
            "name" if r["dept"] == "ndrc" else "-",
        ):
            v = payload.get(k)
            assert not v or set(v) == {"*"}, (k, v)


def test_rejections_csv_lists_the_quarantined_rows(dirty):
    cfg = dirty["cfg"]
    for dept in feeds.DEPARTMENTS:
        for d in DATES:
            data = (cfg.outbox_dir / dept / d.isoformat() / "rejections.csv").read_bytes()
            assert data.startswith(b"\xef\xbb\xbf")
            want = sum(
                n
                for (dd, _, day), codes in dirty["ledger"].items()
                if dd == dept and day == d.isoformat()
                for n in codes.values()
            )
            lines = dirty["query"](
                "SELECT source_line FROM quarantine WHERE dept = :dept AND delivery_date = :d",
                dept=dept,
                d=d.isoformat(),
            )
            body = data.decode("utf-8-sig")
            assert len(lines) == want
            for r in lines:  # every quarantined line is listed for the department to fix
                assert f",{r['source_line']}," in body, (dept, d, r)


def test_data_docs_render_every_validated_file(dirty):
    import re
    from urllib.parse import unquote

    from ecredit.quality import expectations

    index = expectations.build_docs(dirty["cfg"], DATES[-1])
    html = index.read_text("utf-8")
    pages = list(index.parent.glob("validations/**/*.html"))
    assert len(pages) == 16  # one page per file of the date's deliveries
    links = [unquote(h) for h in re.findall(r'href="(validations/[^"]+)"', html)]
    assert sorted(links) == sorted(p.relative_to(index.parent).as_posix() for p in pages)
    failed = {(d, f) for (d, f, day) in dirty["ledger"] if day == DATES[-1].isoformat()}  # MALFORMED ones too
    rows = re.findall(r"<tr class=\"(\w*)\"><td>(\w+)</td><td><a [^>]*>([^<]+)</a></td><td>(\w+)</td>", html)
    assert {(dept, name.rsplit(".", 1)[0]) for _, dept, name, status in rows if status == "failed"} == failed
    assert failed and (index.parent / "gx_index.html").is_file()


@pytest.mark.browser
def test_data_docs_open_in_a_browser(dirty):
    """Headless Chromium opens the run's Data Docs and one validation page from its link;
    screenshots are kept in test-artifacts/."""
    import re
    import shutil
    import subprocess
    from pathlib import Path

    from ecredit.quality import expectations

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium; apt-get install chromium)")
    index = expectations.build_docs(dirty["cfg"], DATES[-1])
    out = Path(__file__).resolve().parents[2] / "test-artifacts"
    out.mkdir(exist_ok=True)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"]

    def dom(url):
        return subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout

    html = dom(index.as_uri())
    assert "Data quality of the deliveries dated" in html and html.count("<tr") == 17
    first = re.search(r'href="(validations/[^"]+)"', html).group(1)
    page = dom(index.parent.as_uri() + "/" + first)
    assert "Expectation Validation Result" in page and "values must be valid" in page
    for name, url in (
        ("data_docs_index.png", index.as_uri()),
        ("data_docs_validation.png", index.parent.as_uri() + "/" + first),
    ):
        subprocess.run([browser, *flags, f"--screenshot={out / name}", url], capture_output=True, timeout=120)
        assert (out / name).stat().st_size > 5000
