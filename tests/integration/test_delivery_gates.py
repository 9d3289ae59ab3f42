"""Delivery-level gates (quality.md): apply the whole delivery or none of it; a corrected
redelivery is applied by rerunning its date; validation results are keyed by the delivery."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import create_engine, text

from ecredit.core import feeds
from ecredit.core import rules as rules_mod
from ecredit.core import settings as settings_mod
from ecredit.ingest import gate as delivery
from ecredit.ingest import load as ingest
from ecredit.outputs import outbox
from ecredit.quality import verdict as validation
from ecredit.state import build as state
from ecredit.warehouse import publish
from tests.helpers import write_delivery

OP = "91440300568520498A"
D1, D2, D3 = dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)


def spot(no, result="合格", date="2026-10-01", uscc=OP):
    return [no, uscc, "", "服装", result, date]


def run_date(spark, cfg, d):
    """The DAG's stages for D, called directly (the DAG itself is tested end to end elsewhere)."""
    rules = rules_mod.load(cfg.rules_path)
    for dept in feeds.DEPARTMENTS:
        delivery.check(cfg, dept, d)
    ingest.run(spark, cfg, d)
    state.build(spark, cfg, rules, d)
    publish.publish_run(cfg, d, f"test-{d}")
    outbox.push(cfg, d)


def q(cfg, sql, **params):
    with create_engine(cfg.warehouse_url).connect() as c:
        return [dict(r._mapping) for r in c.execute(text(sql), params)]


@pytest.fixture(scope="module")
def gates(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("gates")
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(root)})
    land = cfg.landing_dir
    good_ops = [
        [OP, "", "某某公司", "企业", "张三", "440106", "天猫", "https://x", "存续", "是", "2026-10-01", "2020-01-01"]
    ]
    write_delivery(
        land, "amr", D1.isoformat(), {"operators.csv": good_ops, "spot_checks.csv": [spot(f"S{i}") for i in range(10)]}
    )
    run_date(spark, cfg, D1)
    # D2: 3 of 10 spot checks are bad (30 % > 20 %): the whole delivery is rejected
    bad = [spot(f"T{i}") for i in range(7)] + [
        spot("B1", result="优秀"),
        spot("B2", uscc="91440300568520498B"),
        spot("B3", date="2026-13-01"),
    ]
    write_delivery(land, "amr", D2.isoformat(), {"spot_checks.csv": bad})
    # ... and ndrc sends a file whose bytes differ from its manifest
    folder = write_delivery(
        land,
        "ndrc",
        D2.isoformat(),
        {
            "credit_lists.jsonl": [
                {
                    "uscc": OP,
                    "id_no": None,
                    "name": "x",
                    "list": "守信联合激励对象",
                    "basis": "b",
                    "start": "2026-10-01",
                    "end": None,
                }
            ]
        },
    )
    (folder / "credit_lists.jsonl").write_bytes(b'{"tampered": true}\n')
    run_date(spark, cfg, D2)
    before_fix = {
        "feed_status": q(cfg, "SELECT * FROM feed_status WHERE run_date = :d ORDER BY dept", d=D2),
        "dq": q(cfg, 'SELECT * FROM dq_result WHERE delivery_date = :d ORDER BY dept, feed, "check"', d=D2),
        "quarantine_d2": q(cfg, "SELECT * FROM quarantine WHERE delivery_date = :d", d=D2),
        "checks": [
            r["check_no"]
            for r in __import__("pyarrow.parquet", fromlist=["x"])
            .read_table(str(state.state_dir(cfg, D2) / "spot_checks"))
            .to_pylist()
        ],
        "rejections": (cfg.outbox_dir / "amr" / D2.isoformat() / "rejections.csv").read_text("utf-8-sig"),
        "verdict": validation.verdict(cfg, rules_mod.load(cfg.rules_path), "amr", D2),
    }
    # the department corrects its delivery (a new manifest) and D2 is rerun
    write_delivery(
        land,
        "amr",
        D2.isoformat(),
        {"spot_checks.csv": [spot(f"T{i}") for i in range(7)] + [spot("B1", result="优秀")]},
    )
    run_date(spark, cfg, D2)
    run_date(spark, cfg, D2)  # a second rerun writes nothing twice
    return {"cfg": cfg, "before_fix": before_fix}


def test_too_many_quarantined_rows_reject_the_delivery(gates):
    fs = {r["dept"]: r for r in gates["before_fix"]["feed_status"]}
    assert fs["amr"]["status"] == "rejected"
    assert (fs["amr"]["rows_in"], fs["amr"]["rows_loaded"], fs["amr"]["rows_quarantined"]) == (10, 0, 0)
    assert "30%" in gates["before_fix"]["verdict"].reasons[0] or "3 of 10" in gates["before_fix"]["verdict"].reasons[0]


def test_a_rejected_delivery_applies_nothing_and_quarantines_nothing(gates):
    assert sorted(gates["before_fix"]["checks"]) == [f"S{i}" for i in range(10)]  # D1's state only
    assert gates["before_fix"]["quarantine_d2"] == []
    assert "DELIVERY_REJECTED" in gates["before_fix"]["rejections"]


def test_dq_result_says_why_with_per_reason_counts(gates):
    dq = {(r["dept"], r["feed"], r["check"]): r for r in gates["before_fix"]["dq"]}
    ratio = dq[("amr", "spot_checks", "quarantined_ratio")]
    assert not ratio["success"] and ratio["unexpected_count"] == 3 and ratio["element_count"] == 10
    assert dq[("amr", "spot_checks", "rows:BAD_ENUM")]["unexpected_count"] == 1
    assert dq[("amr", "spot_checks", "rows:BAD_USCC")]["unexpected_count"] == 1
    assert dq[("amr", "spot_checks", "rows:BAD_DATE")]["unexpected_count"] == 1
    gate = dq[("ndrc", "*", "delivery_gate")]
    assert not gate["success"] and "SHA-256" in gate["detail"]


def test_checksum_mismatch_rejects_and_missing_departments_are_missing(gates):
    fs = {r["dept"]: r for r in gates["before_fix"]["feed_status"]}
    assert fs["ndrc"]["status"] == "rejected" and fs["ndrc"]["rows_loaded"] == 0
    assert fs["psb"]["status"] == "missing" and fs["psb"]["rows_in"] == 0


def test_a_corrected_redelivery_is_applied_on_rerun(gates):
    cfg = gates["cfg"]
    fs = {r["dept"]: r for r in q(cfg, "SELECT * FROM feed_status WHERE run_date = :d", d=D2)}
    assert fs["amr"]["status"] == "partial"
    assert (fs["amr"]["rows_in"], fs["amr"]["rows_loaded"], fs["amr"]["rows_quarantined"]) == (8, 7, 1)
    quarantined = q(cfg, "SELECT * FROM quarantine WHERE delivery_date = :d", d=D2)
    assert [(r["feed"], r["source_line"], r["reasons"]) for r in quarantined] == [("spot_checks", 9, "BAD_ENUM")]
    import pyarrow.parquet as pq

    checks = {r["check_no"] for r in pq.read_table(str(state.state_dir(cfg, D2) / "spot_checks")).to_pylist()}
    assert checks == {f"S{i}" for i in range(10)} | {f"T{i}" for i in range(7)}


def test_validation_rows_are_keyed_by_delivery_never_duplicated(gates):
    cfg = gates["cfg"]
    dq = q(cfg, 'SELECT dept, feed, delivery_date, "check", manifest_sha256 FROM dq_result')
    assert len(dq) == len({(r["dept"], r["feed"], r["delivery_date"], r["check"]) for r in dq})
    amr_d2 = [r for r in dq if r["dept"] == "amr" and str(r["delivery_date"]) == D2.isoformat()]
    manifest = (cfg.landing_dir / "amr" / D2.isoformat() / "manifest.json").read_bytes()
    assert {r["manifest_sha256"] for r in amr_d2} == {hashlib.sha256(manifest).hexdigest()}  # the corrected one
    assert len(q(cfg, "SELECT * FROM feed_status WHERE run_date = :d", d=D2)) == 9


def test_volume_anomaly_is_a_warning(tmp_path, spark):
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(tmp_path)})
    rules = rules_mod.load(cfg.rules_path)
    for i, d in enumerate([D1, D2]):
        write_delivery(
            cfg.landing_dir, "amr", d.isoformat(), {"spot_checks.csv": [spot(f"A{i}-{j}") for j in range(2)]}
        )
    write_delivery(cfg.landing_dir, "amr", D3.isoformat(), {"spot_checks.csv": [spot(f"C{j}") for j in range(21)]})
    for d in (D1, D2, D3):
        delivery.check(cfg, "amr", d)
    ingest.run(spark, cfg, D3)
    v = validation.verdict(cfg, rules, "amr", D3)
    assert v.status == "applied" and any("median" in w for w in v.warnings)  # 21 > 10 x 2
    vol = [c for c in v.checks if c.check == "volume"][0]
    assert vol.severity == "warning" and not vol.success
    assert not any("median" in w for w in validation.verdict(cfg, rules, "amr", D2).warnings)
