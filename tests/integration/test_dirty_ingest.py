"""Dirty deliveries: nothing is lost. For every file, rows in = manifest rows = loaded +
quarantined, and the quarantine holds exactly the rows the generator made dirty, per reason code."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pyarrow.parquet as pq
import pytest

from ecredit import delivery, feeds, ingest, outbox, settings as settings_mod

pytestmark = pytest.mark.integration
DATES = [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]


@pytest.fixture(scope="module")
def dirty(tmp_path_factory, spark):
    from ecredit.generate import generate

    root = tmp_path_factory.mktemp("dirty")
    summary = generate(root / "landing", 80, DATES, seed=5, dirty_rate=0.05, progress=lambda m: None)
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(root), "CREDIT_PII_KEY": "k"})
    for d in DATES:
        for dept in feeds.DEPARTMENTS:
            assert delivery.check(cfg, dept, d)["status"] == "accepted"
    result = ingest.run(spark, cfg, DATES[-1])
    table = pq.read_table(str(ingest.rows_path(cfg))).to_pylist()
    return {"cfg": cfg, "summary": summary, "result": result, "rows": table}


def test_every_file_reconciles(dirty):
    files = delivery.accepted_files(dirty["cfg"], DATES[-1])
    assert len(files) == 16 * len(DATES)
    for f in files:
        c = ingest.file_counts(dirty["cfg"], f)
        assert c["rows_in"] == f["rows"] == c["rows_loaded"] + c["rows_quarantined"], f
    assert dirty["result"]["rows"] == sum(f["rows"] for f in files) == len(dirty["rows"])


def test_quarantine_is_exactly_the_injected_dirt(dirty):
    injected = {k: v for k, v in dirty["summary"]["dirty"].items() if v}
    quarantined = [r for r in dirty["rows"] if r["reasons"]]
    assert len(quarantined) == dirty["summary"]["dirty_total"]
    per_code = Counter(code for r in quarantined for code in r["reasons"])
    assert dict(per_code) == injected
    assert set(injected) >= {"MALFORMED", "MISSING_REQUIRED", "BAD_USCC", "BAD_ID_NO", "BAD_ENUM", "BAD_DATE",
                             "BAD_NUMBER", "DUPLICATE_KEY"}


def test_quarantined_rows_keep_line_and_masked_content(dirty):
    quarantined = [r for r in dirty["rows"] if r["reasons"]]
    assert all(r["source_line"] >= 1 and r["payload"] for r in quarantined)
    for r in quarantined:
        payload = json.loads(r["payload"])
        assert not {"id_no", "complainant_name", "complainant_phone", "legal_rep", "party_name"} & set(payload)
        for k in ("证件号码", "投诉人姓名", "投诉人电话", "法定代表人", "id_no", "name" if r["dept"] == "ndrc" else "-"):
            v = payload.get(k)
            assert not v or set(v) == {"*"}, (k, v)


def test_rejections_csv_lists_the_quarantined_rows(dirty):
    cfg = dirty["cfg"]
    outbox.push(cfg, DATES[-1])
    total = 0
    for dept in feeds.DEPARTMENTS:
        for d in DATES:
            data = (cfg.outbox_dir / dept / d.isoformat() / "rejections.csv").read_bytes()
            assert data.startswith(b"\xef\xbb\xbf")
            total += len(data.decode("utf-8-sig").splitlines()) - 1
    assert total >= dirty["summary"]["dirty_total"]  # a record with a line break spans lines
