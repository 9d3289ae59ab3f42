"""Canonical credit records (scoring.md §1) from small folded DataFrames, expectations by hand."""

import datetime as dt

from ecredit.ingest import load as ingest
from ecredit.state import build as state

OP = "91440300568520498A"
D = dt.date(2026, 11, 1)


def folded(spark, feed_id, rows):
    full = []
    for i, r in enumerate(rows):
        row = {f.name: None for f in ingest.ROW_SCHEMA.fields}
        row.update(
            dept=feed_id.split(".")[0],
            source_line=i + 2,
            operator_key=OP,
            natural_person=False,
            reasons=[],
            warnings=[],
            feed_id=feed_id,
            delivery_date="2026-11-01",
            file_sha="x",
        )
        row.update(r)
        full.append(row)
    return spark.createDataFrame(full, ingest.ROW_SCHEMA)


def records(spark, rules, feed_id, rows, run_date=D):
    df = folded(spark, feed_id, rows)
    ops = spark.createDataFrame([(OP,)], "operator_key string")
    out = state.with_activity(state.credit_records(df, rules), ops, run_date).collect()
    return {r["record_key"]: r for r in out}


def pen(no, vtype="虚假宣传", cat="罚款", amount=None, date="2026-10-01", end=None, status="有效"):
    return {
        "key_str": no,
        "decision_no": no,
        "violation_type": vtype,
        "penalty_category": cat,
        "amount_10k_yuan": amount,
        "decision_date": date,
        "publicity_end": end,
        "status": status,
    }


def test_penalty_severity_and_windows(spark, default_rules):
    r = records(
        spark,
        default_rules,
        "amr.penalties",
        [
            pen("A"),  # 虚假宣传 2, 1095 days
            pen("B", cat="警告"),  # -> 1, 90 days
            pen("C", vtype="其他", cat="吊销许可证件"),  # -> 4
            pen("D", amount="10"),  # 100,000 yuan -> 2 + 1 = 3
            pen("E", amount="9.9999"),  # 99,999 yuan -> stays 2
            pen("F", vtype="侵权假冒", amount="50", cat="限制从业"),  # 4, +1 capped at 4
            pen("G", end="2026-10-31"),  # publicity ended the day before D
            pen("H", status="撤销"),
            pen("I", status=None),  # null status counts as 有效
        ],
    )
    E = dt.date(2026, 10, 1)
    assert r["amr:penalties:A"]["severity"] == 2 and r["amr:penalties:A"]["active_until"] == E + dt.timedelta(1094)
    assert r["amr:penalties:B"]["severity"] == 1 and r["amr:penalties:B"]["active_until"] == E + dt.timedelta(89)
    assert r["amr:penalties:C"]["severity"] == 4
    assert r["amr:penalties:D"]["severity"] == 3 and r["amr:penalties:D"]["amount_yuan"] == 100000
    assert r["amr:penalties:E"]["severity"] == 2
    assert r["amr:penalties:F"]["severity"] == 4
    assert not r["amr:penalties:G"]["active"] and r["amr:penalties:G"]["active_until"] == dt.date(2026, 10, 31)
    assert r["amr:penalties:H"]["withdrawn"] and not r["amr:penalties:H"]["active"]
    assert r["amr:penalties:I"]["active"] and not r["amr:penalties:I"]["withdrawn"]
    assert {x["record_type"] for x in r.values()} >= {"PEN_FALSE_AD", "PEN_OTHER", "PEN_COUNTERFEIT"}


def test_warning_penalty_window_boundary(spark, default_rules):
    # 警告 on E: active while E <= D < E + 90 days
    E = dt.date(2026, 8, 3)
    last = E + dt.timedelta(days=89)
    assert records(spark, default_rules, "amr.penalties", [pen("B", cat="警告", date=E.isoformat())], last)[
        "amr:penalties:B"
    ]["active"]
    assert not records(
        spark, default_rules, "amr.penalties", [pen("B", cat="警告", date=E.isoformat())], last + dt.timedelta(days=1)
    )["amr:penalties:B"]["active"]


def test_serious_list_automatic_removal_after_three_years(spark, default_rules):
    row = {"key_str": f"严重违法失信名单|{OP}|2023-11-02", "list_type": "严重违法失信名单", "listed_date": "2023-11-02"}
    key = f"amr:lists:严重违法失信名单|{OP}|2023-11-02"
    # 1095 days after 2023-11-02 is 2026-11-01: listed while D < listed + 1095 days
    assert dt.date(2023, 11, 2) + dt.timedelta(days=1095) == dt.date(2026, 11, 1)
    assert records(spark, default_rules, "amr.lists", [row], dt.date(2026, 10, 31))[key]["active"]
    r = records(spark, default_rules, "amr.lists", [row], dt.date(2026, 11, 1))[key]
    assert not r["active"] and r["severity"] == 4 and r["record_type"] == "LIST_SERIOUS"


def test_cac_unrectified_bump_and_indefinite(spark, default_rules):
    r = records(
        spark,
        default_rules,
        "cac.pi_violations",
        [
            {
                "key_str": "R1",
                "record_no": "R1",
                "violation_type": "未落实等级保护",
                "found_date": "2020-01-01",
                "rectification_status": None,
            },
            {
                "key_str": "R2",
                "record_no": "R2",
                "violation_type": "个人信息泄露",
                "found_date": "2025-11-01",
                "rectification_status": "已整改",
            },
            {
                "key_str": "R3",
                "record_no": "R3",
                "violation_type": "个人信息泄露",
                "found_date": "2025-11-02",
                "rectification_status": "已整改",
                "withdrawn": "是",
            },
        ],
    )
    assert r["cac:pi_violations:R1"]["severity"] == 2 and r["cac:pi_violations:R1"]["active_until"] is None
    assert r["cac:pi_violations:R1"]["active"]
    # 已整改: 365 days; 2025-11-01 + 365 days = 2026-11-01, so not active on D
    assert r["cac:pi_violations:R2"]["severity"] == 3 and not r["cac:pi_violations:R2"]["active"]
    assert r["cac:pi_violations:R3"]["withdrawn"] and not r["cac:pi_violations:R3"]["active"]


def test_customs_levels_in_force(spark, default_rules):
    rows = [
        {"key_str": f"{OP}|2025-01-01", "uscc": OP, "credit_level": "失信企业", "effective_date": "2025-01-01"},
        {"key_str": f"{OP}|2026-06-01", "uscc": OP, "credit_level": "常规企业", "effective_date": "2026-06-01"},
        {"key_str": f"{OP}|2026-12-01", "uscc": OP, "credit_level": "高级认证企业", "effective_date": "2026-12-01"},
    ]
    r = records(spark, default_rules, "customs.enterprise_credit", rows)
    assert len(r) == 2  # 常规企业 is no record
    old = r[f"customs:enterprise_credit:{OP}|2025-01-01"]
    assert old["record_type"] == "CUS_DISHONEST" and old["active_until"] == dt.date(2026, 5, 31) and not old["active"]
    future = r[f"customs:enterprise_credit:{OP}|2026-12-01"]
    assert future["polarity"] == "positive" and future["severity"] is None and not future["active"]
    assert records(spark, default_rules, "customs.enterprise_credit", rows, dt.date(2026, 12, 1))[
        f"customs:enterprise_credit:{OP}|2026-12-01"
    ]["active"]


def test_psb_finance_and_orphans(spark, default_rules):
    r = records(
        spark,
        default_rules,
        "psb.cases",
        [
            {"key_str": "P1", "case_id": "P1", "case_type": "刷单炒信", "filed_at_date": "2026-10-31", "status": None},
            {
                "key_str": "P2",
                "case_id": "P2",
                "case_type": "网络诈骗",
                "filed_at_date": "2026-10-31",
                "status": "撤案",
                "operator_key": "NP-0000000000000000",
            },
        ],
    )
    assert r["psb:cases:P1"]["severity"] == 3 and r["psb:cases:P1"]["active"] and r["psb:cases:P1"]["in_registry"]
    assert r["psb:cases:P2"]["withdrawn"] and not r["psb:cases:P2"]["in_registry"]
    f = records(
        spark,
        default_rules,
        "finance.finance_risk",
        [
            {
                "key_str": "F1",
                "record_no": "F1",
                "risk_type": "贷款逾期",
                "decided_date": "2025-11-02",
                "status": "存续",
            },
            {
                "key_str": "F2",
                "record_no": "F2",
                "risk_type": "贷款逾期",
                "decided_date": "2025-11-01",
                "status": "存续",
            },
        ],
    )
    # severity 1: 365 days; decided 2025-11-02 is still active on 2026-11-01, 2025-11-01 is not
    assert f["finance:finance_risk:F1"]["active"] and not f["finance:finance_risk:F2"]["active"]
