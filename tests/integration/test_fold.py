"""The state as of D is the latest-wins fold of the deliveries <= D: a later delivery revokes a
penalty and removes a list entry; an earlier date's state is unchanged by later deliveries."""

import datetime as dt

import pytest

from ecredit import pipeline
from ecredit.core import settings as settings_mod
from ecredit.state import build as state
from tests.helpers import gates_accepted, write_delivery

OP1 = "91440300568520498A"
OP2 = "91110000600037341L"
D1, D2 = "2026-11-01", "2026-11-02"


@pytest.fixture(scope="module")
def landed(tmp_path_factory, spark, default_rules):
    root = tmp_path_factory.mktemp("fold")
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(root)})
    land = cfg.landing_dir
    op = lambda uscc, status: [
        uscc,
        "",
        "某某商贸有限公司",
        "企业",
        "王五",
        "440106",
        "天猫",
        "https://x",
        status,
        "是",
        "2026-10-01",
        "2020-01-01",
    ]
    pen = lambda no, status: [no, OP1, "", "某某商贸", "虚假宣传", "罚款", "1", "2026-10-01", "", status]
    lst = lambda removed: ["严重违法失信名单", OP2, "", "", "原因", "2026-09-01", removed]
    write_delivery(
        land,
        "amr",
        D1,
        {
            "operators.csv": [op(OP1, "存续"), op(OP2, "在业")],
            "penalties.csv": [pen("P-1", "有效"), pen("P-2", "有效")],
            "lists.csv": [lst("")],
        },
    )
    write_delivery(
        land,
        "amr",
        D2,
        {
            "operators.csv": [op(OP2, "吊销")],
            "penalties.csv": [pen("P-1", "撤销")],
            "lists.csv": [lst("2026-11-02")],
        },
    )
    out = {}
    for d in (D1, D2):
        date = dt.date.fromisoformat(d)
        pipeline.run_stages(spark, cfg, date, rules=default_rules, depts=("amr",), until="build", after=gates_accepted)
        out[d] = {
            "records": {
                r["record_key"]: r.asDict()
                for r in spark.read.parquet(str(state.gold_dir(cfg, date) / "fact_credit_record")).collect()
            },
            "operators": {
                r["operator_key"]: r.asDict()
                for r in spark.read.parquet(str(state.gold_dir(cfg, date) / "dim_operator")).collect()
            },
        }
    return out


def test_penalty_revoked_by_later_delivery(landed):
    p1_d1 = landed[D1]["records"]["amr:penalties:P-1"]
    p1_d2 = landed[D2]["records"]["amr:penalties:P-1"]
    assert p1_d1["active"] and not p1_d1["withdrawn"] and p1_d1["record_type"] == "PEN_FALSE_AD"
    assert p1_d2["withdrawn"] and not p1_d2["active"] and p1_d2["active_until"] is None
    assert p1_d2["source_delivery_date"] == dt.date(2026, 11, 2)
    # untouched by the later delivery: P-2 stays as delivered on D1
    assert landed[D2]["records"]["amr:penalties:P-2"]["active"]
    # severity 2 (虚假宣传, 罚款, 10,000 yuan); 1095-day publicity: last day E + 1094
    assert p1_d1["severity"] == 2
    assert p1_d1["active_until"] == dt.date(2026, 10, 1) + dt.timedelta(days=1094)


def test_list_entry_removed_by_later_delivery(landed):
    key = f"amr:lists:严重违法失信名单|{OP2}|2026-09-01"
    assert landed[D1]["records"][key]["active"]
    r2 = landed[D2]["records"][key]
    assert not r2["active"] and r2["active_until"] == dt.date(2026, 11, 1)  # 移出日期 is the first day off


def test_registry_latest_wins_and_counts(landed):
    assert set(landed[D1]["operators"]) == {OP1, OP2}
    assert landed[D1]["operators"][OP2]["registration_status"] == "在业"
    assert landed[D2]["operators"][OP2]["registration_status"] == "吊销"
    assert landed[D2]["operators"][OP1]["registration_status"] == "存续"
    assert len(landed[D2]["records"]) == 3
    assert all(r["in_registry"] for r in landed[D2]["records"].values())
