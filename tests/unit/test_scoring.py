"""Scores and classes of hand-computed operators (scoring.md §2-3, §6). Every expected number is
worked out in the comments from the spec's text, not by calling the code under test."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from ecredit.scoring import score as scoring

D = dt.date(2026, 11, 15)


def days(n: int) -> dt.date:
    return D - dt.timedelta(days=n)


OPS = (
    "operator_key string, name string, registration_status string, established_date date, natural_person boolean, "
    "license_displayed string, last_verified_date date"
)
RECS = (
    "operator_key string, record_key string, record_type string, polarity string, severity int, dept string, "
    "event_date date, active boolean"
)
EVALS = (
    "operator_key string, eval_month date, overall_satisfaction decimal(7,3), product_quality decimal(7,3), "
    "brand_reputation decimal(7,3), after_sales decimal(7,3), review_count long, deleted_review_count long"
)
SPOT = "operator_key string, check_date date, result string"
COMPL = "operator_key string, registered_date date, handling_status string, advance_compensation string"


def op(key, status="存续", established=days(3000), natural=False, displayed="是", verified=days(10), name=None):
    return (key, name or f"店铺{key}", status, established, natural, displayed, verified)


def rec(key, rtype, sev, active=True, polarity="negative", dept="amr", event=days(100), n=[0]):
    n[0] += 1
    return (key, f"{dept}:x:{key}-{n[0]}", rtype, polarity, sev, dept, event, active)


def ev(key, values, count, deleted=0, month=dt.date(2026, 10, 1)):
    return (key, month, *[Decimal(str(v)) for v in values], count, deleted)


@pytest.fixture(scope="module")
def run(spark, default_rules):
    def _run(ops, recs=(), evals=(), spot=(), compl=(), previous=None, rules=default_rules):
        frames = [
            spark.createDataFrame(list(rows), schema)
            for rows, schema in ((ops, OPS), (recs, RECS), (evals, EVALS), (spot, SPOT), (compl, COMPL))
        ]
        prev = spark.createDataFrame(previous, "operator_key string, final_class string") if previous else None
        scores = scoring.score(frames[0], frames[1], frames[2], frames[3], frames[4], rules, D, prev, "v1")
        return {r["operator_key"]: r.asDict() for r in scores.collect()}

    return _run


def test_a_worked_operator_every_dimension(run):
    # identity: 存续 40 + 亮照亮证 30 + verified 179 days ago (within 180) 30 = 100
    # evaluation: row 1 composite .40*90 + .30*80 + .15*70 + .15*60 = 36 + 24 + 10.5 + 9 = 79.5, 100 reviews;
    #   row 2 composite 50, 300 reviews, 2 deleted; row 3 is 13 months before D's month: outside.
    #   mean = (79.5*100 + 50*300) / 400 = 22950 / 400 = 57.375; x3 = 172.125 -> 172; row 2 deleted -> -20 = 152
    # quality: 3 spot checks within 1095 days, 2 passed: round(200*2/3 = 133.33) = 133; one 1100 days ago ignored.
    #   complaints within 365 days: 办理中 10 + 已办结 with 先行赔付 null 3 + 已办结 with 是 0 = 13;
    #   one 400 days ago ignored. 133 - 13 = 120
    # conduct: active sev-3 record -150, inactive sev-2 ignored, active positive +50: 400 - 150 + 50 = 300
    # total 100 + 152 + 120 + 300 = 672: C (550 <= 672 < 700), no rule applies
    got = run(
        [op("O1", verified=days(179))],
        [
            rec("O1", "PEN_COUNTERFEIT", 3),
            rec("O1", "PEN_FALSE_AD", 2, active=False),
            rec("O1", "NDRC_REWARD", None, polarity="positive", dept="ndrc"),
        ],
        [
            ev("O1", (90, 80, 70, 60), 100),
            ev("O1", (50, 50, 50, 50), 300, deleted=2),
            ev("O1", (0, 0, 0, 0), 1000, month=dt.date(2025, 10, 1)),
        ],
        [
            ("O1", days(10), "合格"),
            ("O1", days(500), "合格"),
            ("O1", days(1094), "不合格"),
            ("O1", days(1100), "不合格"),
        ],
        [
            ("O1", days(1), "办理中", None),
            ("O1", days(30), "已办结", None),
            ("O1", days(364), "已办结", "是"),
            ("O1", days(400), "办理中", None),
        ],
    )["O1"]
    assert (got["identity_score"], got["evaluation_score"], got["quality_score"], got["conduct_score"]) == (
        100,
        152,
        120,
        300,
    )
    assert (got["total_score"], got["score_class"], got["final_class"], got["rules_applied"]) == (672, "C", "C", "")
    reasons = json.loads(got["reasons"])
    assert [(r["record_type"], r["severity"], r["points"]) for r in reasons["records"]] == [
        ("PEN_COUNTERFEIT", 3, -150),
        ("NDRC_REWARD", None, 0),
    ]
    assert reasons["rules"] == [] and reasons["dimensions"]["evaluation_score"] == 152
    assert got["rules_version"] == "v1" and got["previous_class"] is None


def test_class_boundaries_849_850_and_half_up(run):
    # identity 100, quality 150 (no spot check, no complaint), conduct 400: 650 + evaluation.
    # evaluation = round(3 x composite): 66.5 -> 199.5 -> 200 (half-up) -> 850 = A;
    # 66.3 -> 198.9 -> 199 -> 849 = B; 66.499 -> 199.497 -> 199 -> 849 = B
    got = run(
        [op("E1"), op("E2"), op("E3")],
        (),
        [ev("E1", (66.5,) * 4, 7), ev("E2", (66.3,) * 4, 3), ev("E3", (66.499,) * 4, 1)],
    )
    assert {k: (v["evaluation_score"], v["total_score"], v["final_class"]) for k, v in got.items()} == {
        "E1": (200, 850, "A"),
        "E2": (199, 849, "B"),
        "E3": (199, 849, "B"),
    }


def test_thresholds_700_and_550(run):
    # identity 0 (null 登记状态: the 40 points are not earned; 亮照亮证 null; never verified) +
    # evaluation 180 (no rows) + quality 150 + conduct: 400 - 60 * k
    ops = [op(f"T{k}", status=None, displayed=None, verified=None) for k in range(3)]
    recs = [rec("T1", "COM_PREPAID", 2)] * 0 + [rec("T1", "PEN_FALSE_AD", 2)] + [rec("T2", "PEN_COUNTERFEIT", 3)] * 1
    got = run(ops, recs)
    # T0: 0 + 180 + 150 + 400 = 730 -> B; T1: 730 - 60 = 670 -> C; T2: 730 - 150 = 580 -> C
    assert {
        k: (v["identity_score"], v["total_score"], v["final_class"], v["rules_applied"]) for k, v in got.items()
    } == {"T0": (0, 730, "B", ""), "T1": (0, 670, "C", ""), "T2": (0, 580, "C", "")}


def test_identity_verification_windows_179_180_365_366(run):
    got = run(
        [
            op("V1", verified=days(179)),
            op("V2", verified=days(180)),
            op("V3", verified=days(364)),
            op("V4", verified=days(365)),
            op("V5", verified=D + dt.timedelta(days=1)),
            op("V6", status="在业", natural=False, displayed="否", verified=None),
            op("V7", status=None, natural=True, displayed="否", verified=None),
        ]
    )
    # within 180 days = (D-180, D]: 179 -> 30, 180 -> 15 (within 365), 364 -> 15, 365 -> 0; a future date -> 0
    assert {k: v["identity_score"] for k, v in got.items()} == {
        "V1": 100,
        "V2": 85,
        "V3": 85,
        "V4": 70,
        "V5": 70,
        "V6": 40,
        "V7": 40,
    }


# The best an operator can score in the other three dimensions: identity 100 (存续 40, 亮照亮证 30,
# verified 10 days ago 30), evaluation 300 (one month of composite .40*100+.30*100+.15*100+.15*100
# = 100, round(3 x 100) = 300), quality 200 (one spot check within 1095 days, passed: round(200*1/1)),
# and a positive record active (+50 on conduct).
def best(key):
    return {
        "evals": [ev(key, (100, 100, 100, 100), 10)],
        "spot": [(key, days(10), "合格")],
        "recs": [rec(key, "NDRC_REWARD", None, polarity="positive", dept="ndrc")],
    }


def test_rules_and_final_class(run):
    ops = [
        op("S"),
        op("R", status="吊销"),
        op("F"),
        op("AB"),
        op("N1", established=days(179)),
        op("N2", established=days(180)),
        op("N3", established=days(10)),
        op("GONE", status="注销"),
        op("MOVED", status="迁出"),
    ]
    recs = [
        rec("S", "LIST_SERIOUS", 4),
        rec("F", "PSB_FRAUD", 4, dept="psb"),
        rec("AB", "LIST_ABNORMAL", 2),
        rec("N3", "NDRC_REWARD", None, polarity="positive"),
        rec("GONE", "PSB_FRAUD", 4),
        *best("S")["recs"],
        *best("F")["recs"],
    ]
    got = run(ops, recs, evals=best("S")["evals"] + best("F")["evals"], spot=best("S")["spot"] + best("F")["spot"])
    assert "GONE" not in got and "MOVED" not in got  # 注销 / 迁出: not classified
    # S: the best of the other dimensions, 100 + 300 + 200, and conduct 400 - 400 (LIST_SERIOUS,
    # severity 4) + 50 (positive) = 50: total 650 -> C by score; R_SERIOUS makes it D
    assert (got["S"]["total_score"], got["S"]["score_class"], got["S"]["final_class"], got["S"]["rules_applied"]) == (
        650,
        "C",
        "D",
        "R_SERIOUS",
    )
    # R: 吊销 earns no 40: 60+180+150+400 = 790 -> B; R_REVOKED -> D
    assert (got["R"]["total_score"], got["R"]["score_class"], got["R"]["final_class"], got["R"]["rules_applied"]) == (
        790,
        "B",
        "D",
        "R_REVOKED",
    )
    # F: 100 + 300 + 200 + (400 - 400 + 50) = 650 -> C by score. With the default weights a
    # severity-4 record takes all 400 conduct points, so 650 is the most such an operator can score
    # and R_SEV4 (no better than C) is recorded but cannot lower the class: see the next test.
    assert (got["F"]["total_score"], got["F"]["score_class"], got["F"]["final_class"], got["F"]["rules_applied"]) == (
        650,
        "C",
        "C",
        "R_SEV4",
    )
    # AB: 100+180+150+340 = 770 -> B; R_ABNORMAL -> C
    assert (got["AB"]["score_class"], got["AB"]["final_class"], got["AB"]["rules_applied"]) == ("B", "C", "R_ABNORMAL")
    # N1: established 179 days ago, no record, no evaluation: base B instead of A (830)
    assert (got["N1"]["score_class"], got["N1"]["final_class"], got["N1"]["rules_applied"]) == ("B", "B", "R_NEW")
    assert (got["N2"]["final_class"], got["N2"]["rules_applied"]) == ("B", "")  # 830 -> B by score (A >= 850)
    # N3: new but has an active (positive) record: no R_NEW; conduct 400 + 50 clamped to 400
    assert (got["N3"]["conduct_score"], got["N3"]["rules_applied"]) == (400, "")
    reasons = json.loads(got["R"]["reasons"])
    assert reasons["rules"] == [{"rule": "R_REVOKED", "effect": "D"}]


def test_r_sev4_and_r_serious_lower_a_better_class(run, default_rules):
    """A rules file that weighs a severity-4 record at 100 points instead of 400: an operator with
    one is B by score, and each rule must lower it."""
    import copy
    import dataclasses

    data = copy.deepcopy(default_rules.data)
    data["conduct"]["points_by_severity"][4] = 100
    rules = dataclasses.replace(default_rules, data=data, version="sev4-100")
    ops = [op("F"), op("S"), op("K")]
    recs = [
        rec("F", "PSB_FRAUD", 4, dept="psb"),
        rec("S", "NDRC_JOINT_PUNISH", 4, dept="ndrc"),
        rec("K", "FIN_ILLEGAL_FUNDRAISING", 4, active=False, dept="finance"),
    ]
    got = run(ops, recs, rules=rules)
    # F and S: identity 100 + evaluation 180 (no rows) + quality 150 (no spot check, no complaint)
    # + conduct 400 - 100 = 300: 730 -> B by score. F: R_SEV4 -> C. S: R_SERIOUS -> D (its
    # NDRC_JOINT_PUNISH is one of R_SERIOUS's types, which R_SEV4 leaves out).
    assert (got["F"]["total_score"], got["F"]["score_class"], got["F"]["final_class"], got["F"]["rules_applied"]) == (
        730,
        "B",
        "C",
        "R_SEV4",
    )
    assert (got["S"]["total_score"], got["S"]["score_class"], got["S"]["final_class"], got["S"]["rules_applied"]) == (
        730,
        "B",
        "D",
        "R_SERIOUS",
    )
    # K: its severity-4 record is no longer active: 100 + 180 + 150 + 400 = 830 -> B, no rule
    assert (got["K"]["total_score"], got["K"]["final_class"], got["K"]["rules_applied"]) == (830, "B", "")
    assert json.loads(got["F"]["reasons"])["rules"] == [{"rule": "R_SEV4", "effect": "C"}]


def test_conduct_clamps_at_zero_and_previous_class(run):
    got = run(
        [op("Z"), op("P")],
        [rec("Z", "PSB_FRAUD", 4), rec("Z", "CUS_SMUGGLING", 4)],
        previous=[("Z", "B"), ("GONE", "A")],
    )
    assert got["Z"]["conduct_score"] == 0 and got["Z"]["previous_class"] == "B"
    assert got["P"]["previous_class"] is None


def test_a_rules_file_change_moves_an_operator(run, default_rules, tmp_path):
    from ecredit.core import rules as rules_mod

    text = (
        open(default_rules.path, encoding="utf-8")
        .read()
        .replace("thresholds: {A: 850, B: 700, C: 550}", "thresholds: {A: 800, B: 700, C: 550}")
    )
    path = tmp_path / "rules.yaml"
    path.write_text(text, "utf-8")
    changed = rules_mod.load(path)
    ops = [op("M")]  # 100 + 180 + 150 + 400 = 830: B by default, A when A starts at 800
    assert run(ops)["M"]["final_class"] == "B"
    assert run(ops, rules=changed)["M"]["final_class"] == "A"
    assert changed.version != default_rules.version


def test_measures_list_changes_and_alerts(spark, run, default_rules):
    ops = [op("S", name="甲网店"), op("C1", name="乙网店")]
    recs = [
        rec("S", "LIST_SERIOUS", 4, event=days(30)),
        rec("S", "LIST_SERIOUS", 4, event=days(20)),
        rec("C1", "LIST_ABNORMAL", 2),
        rec("ORPHAN", "NDRC_JOINT_PUNISH", 4, dept="ndrc"),
        rec("S", "CUS_SERIOUS_DISHONEST", 4, active=False, dept="customs"),
    ]
    scores_rows = run(ops, recs)
    scores = spark.createDataFrame(
        [(D, k, v["final_class"], v["total_score"], v["reasons"]) for k, v in scores_rows.items()],
        "run_date date, operator_key string, final_class string, total_score int, reasons string",
    )
    records = spark.createDataFrame(recs, RECS)
    m = {
        (r["operator_key"], r["measure_code"], r["responsible_dept"])
        for r in scoring.measures(scores, records, default_rules).collect()
    }
    assert not [x for x in m if x[0] == "C1"]  # class C (R_ABNORMAL): no measure (lifecycle.md §3)
    assert len([x for x in m if x[0] == "S"]) == 9 and ("S", "CUSTOMS_CLEARANCE", "customs") in m
    registry = spark.createDataFrame(ops, OPS)
    listed = {
        (r["operator_key"], r["record_type"]): (r["name"], r["source_dept"], r["listed_date"])
        for r in scoring.dishonest_list(records, registry, default_rules, D).collect()
    }
    # S listed once for LIST_SERIOUS from its earliest active record; the orphan with an empty name
    assert listed == {
        ("S", "LIST_SERIOUS"): ("甲网店", "amr", days(30)),
        ("ORPHAN", "NDRC_JOINT_PUNISH"): ("", "ndrc", days(100)),
    }
    cur = scoring.dishonest_list(records, registry, default_rules, D)
    prev = spark.createDataFrame(
        [("ORPHAN", "NDRC_JOINT_PUNISH"), ("OLD", "LIST_SERIOUS")], "operator_key string, record_type string"
    )
    changes = {(r["operator_key"], r["change"]) for r in scoring.list_changes(cur, prev, D).collect()}
    assert changes == {("S", "ADDED"), ("OLD", "REMOVED")}
    assert {r["change"] for r in scoring.list_changes(cur, None, D).collect()} == {"ADDED"}
    alerts = {r["operator_key"]: r.asDict() for r in scoring.risk_alerts(scores, registry, default_rules).collect()}
    assert alerts["S"]["level"] == "高风险" and alerts["C1"]["level"] == "关注"
    assert "列入严重失信名单" in alerts["S"]["message"] and "列入经营异常名录" in alerts["C1"]["message"]
    assert alerts["S"]["name"] == "甲网店"


# lifecycle.md §3, written out again: who gets which measure, and which department applies it
CLASS_MEASURES = {"A": set(), "B": set(), "C": set(), "D": {"ONSITE_INSPECTION"}}
LIST_MEASURES = {
    "ONSITE_INSPECTION",
    "NO_COMMITMENT",
    "GOV_FUNDING",
    "GOV_PROCUREMENT",
    "CREDIT_FINANCING",
    "CUSTOMS_CLEARANCE",
    "PLATFORM_ENTRY",
    "PLATFORM_LISTING",
    "PLATFORM_PROMOTION",
}
DEPT = {
    "ONSITE_INSPECTION": "amr",
    "NO_COMMITMENT": "gds",
    "GOV_FUNDING": "ndrc",
    "GOV_PROCUREMENT": "ndrc",
    "CREDIT_FINANCING": "finance",
    "CUSTOMS_CLEARANCE": "customs",
    "PLATFORM_ENTRY": "amr",
    "PLATFORM_LISTING": "amr",
    "PLATFORM_PROMOTION": "commerce",
}


def test_the_default_rules_hold_lifecycle_3s_table(default_rules):
    m = default_rules.get("measures")
    assert {c: set(v["measures"]) for c, v in m["classes"].items()} == CLASS_MEASURES
    assert {c: (v["sampling_ratio"], v["onsite"]) for c, v in m["classes"].items()} == {
        "A": ("0.03", False),
        "B": ("0.10", False),
        "C": ("0.30", False),
        "D": ("0.80", True),
    }
    assert set(m["serious_list"]) == LIST_MEASURES and len(m["serious_list"]) == 9
    assert {code: v["dept"] for code, v in m["codes"].items()} == DEPT
    for code, v in m["codes"].items():  # a provision by name: a document in 《》 or a document number
        assert isinstance(v["legal_basis"], str) and ("《" in v["legal_basis"] or "〔" in v["legal_basis"]), code


def test_measures_rest_on_the_class_or_on_the_serious_list(spark, default_rules):
    """lifecycle.md §3: a low class raises supervision (D: on-site inspection only); the nine
    joint-punishment measures only for a classified operator on the serious-dishonesty list,
    whatever its class, each resting on its active list records; one row per (operator, measure)."""
    scores = spark.createDataFrame(
        [(D, k, c) for k, c in (("A1", "A"), ("B1", "B"), ("C1", "C"), ("D1", "D"), ("S", "D"), ("SB", "B"))],
        "run_date date, operator_key string, final_class string",
    )
    recs = [
        ("S", "amr:lists:严重违法失信名单|S|2026-10-01", "LIST_SERIOUS", "amr", True),
        ("S", "amr:lists:严重违法失信名单|S|2025-03-02", "LIST_SERIOUS", "amr", True),
        ("S", "ndrc:credit_lists:失信联合惩戒对象|S|2026-01-05", "NDRC_JOINT_PUNISH", "ndrc", True),
        ("S", "customs:enterprise_credit:S|2024-01-01", "CUS_SERIOUS_DISHONEST", "customs", False),  # not active
        ("S", "psb:cases:P1", "PSB_FRAUD", "psb", True),  # severity 4, but not a list type
        ("SB", "customs:enterprise_credit:SB|2026-04-01", "CUS_SERIOUS_DISHONEST", "customs", True),
        ("D1", "amr:lists:严重违法失信名单|D1|2020-01-01", "LIST_SERIOUS", "amr", False),  # expired
        ("D1", "amr:lists:经营异常名录|D1|2026-01-01", "LIST_ABNORMAL", "amr", True),
        ("ORPHAN", "ndrc:credit_lists:失信联合惩戒对象|ORPHAN|2026-01-05", "NDRC_JOINT_PUNISH", "ndrc", True),
    ]
    records = spark.createDataFrame([(k, rk, t, "negative", 4, dept, days(10), a) for k, rk, t, dept, a in recs], RECS)
    rows = [r.asDict() for r in scoring.measures(scores, records, default_rules).collect()]
    got = {(r["operator_key"], r["measure_code"]): r for r in rows}
    assert len(got) == len(rows)  # one row per (operator, measure)
    assert {k for k, _ in got} == {"D1", "S", "SB"}  # A, B, C: none; the orphan is not classified
    assert {c for k, c in got if k == "D1"} == {"ONSITE_INSPECTION"}
    assert {c for k, c in got if k == "S"} == LIST_MEASURES and {c for k, c in got if k == "SB"} == LIST_MEASURES
    # the basis: the active list records' keys sorted by code point (amr < ndrc, 2025 < 2026), else the class
    s_basis = (
        "amr:lists:严重违法失信名单|S|2025-03-02,amr:lists:严重违法失信名单|S|2026-10-01,"
        "ndrc:credit_lists:失信联合惩戒对象|S|2026-01-05"
    )
    texts = default_rules.get("measures.codes")
    for (k, code), r in got.items():
        assert r["basis"] == {"D1": "class:D", "S": s_basis, "SB": "customs:enterprise_credit:SB|2026-04-01"}[k]
        assert r["final_class"] == {"D1": "D", "S": "D", "SB": "B"}[k] and r["run_date"] == D
        assert r["responsible_dept"] == DEPT[code] and r["legal_basis"] == texts[code]["legal_basis"]
        assert r["under_objection"] is False


def test_evaluation_is_exact_for_14_digit_counts_and_six_place_weights(spark, default_rules, tmp_path):
    """The evaluation's weighted mean is carried in longs (score.evaluation): with the largest 评价数
    the feed allows (14 digits), weights of six places and indicators of three, it still equals the
    exact rational result rounded half-up, computed here with Python's Fraction."""
    from fractions import Fraction

    from ecredit.core import rules as rules_mod

    weights = {
        "overall_satisfaction": "0.123457",
        "product_quality": "0.376543",
        "brand_reputation": "0.25",
        "after_sales": "0.25",
    }
    text = (
        open(default_rules.path, encoding="utf-8")
        .read()
        .replace(
            "weights: {overall_satisfaction: 0.40, product_quality: 0.30, brand_reputation: 0.15, after_sales: 0.15}",
            "weights: {" + ", ".join(f"{k}: {v}" for k, v in weights.items()) + "}",
        )
    )
    assert "0.376543" in text
    path = tmp_path / "rules.yaml"
    path.write_text(text, "utf-8")
    rules = rules_mod.load(path)
    big = 99_999_999_999_999
    cases = {
        "H": [((99.999, 0.001, 50.5, 12.345), big), ((0.0, 100.0, 33.333, 66.667), big - 1), ((1.5, 2.5, 3.5, 4.5), 7)],
        "L": [((88.888, 77.777, 66.666, 55.555), 12_345_678_901_234)],
        "Z": [((50, 50, 50, 50), 0), ((10, 20, 30, 40), 0)],  # counts summing to 0: 180
        "N": [((None, 80, None, 70), 10_000_001)],  # a missing indicator counts as 0
        # small counts: the quotient in longs (score.evaluation's fast branch), six-place weights
        "S": [((12.345, 67.891, 23.456, 78.901), 1234), ((99.999, 99.999, 0.001, 0.001), 3)],
    }
    rows = [ev(k, [0 if v is None else v for v in vals], n) for k, vs in cases.items() for vals, n in vs]
    rows = [r if r[0] != "N" else (r[0], r[1], None, r[3], None, r[5], r[6], r[7]) for r in rows]
    got = {
        r["operator_key"]: r["evaluation_score"]
        for r in scoring.evaluation(spark.createDataFrame(rows, EVALS), rules, D).collect()
    }

    def expected(vs) -> int:
        total = sum(n for _, n in vs)
        if total == 0:
            return 180
        mean = sum(
            sum(Fraction(weights[c]) * Fraction(str(v)) for c, v in zip(weights, vals) if v is not None) * n
            for vals, n in vs
        ) / Fraction(total)
        x = 3 * mean
        return min(300, int(x) + (1 if x - int(x) >= Fraction(1, 2) else 0))

    assert got == {k: expected(vs) for k, vs in cases.items()}
    assert got["Z"] == 180 and len(set(got.values())) == 5


def test_every_indicator_value_scales_to_its_exact_whole_number(spark):
    """score.scaled_indicator goes through a double: for each of the 100,001 values 0.000..100.000 a
    DecimalType(7, 3) can hold in the indicators' range, it gives exactly value x 1000."""
    from pyspark.sql import functions as F

    df = spark.range(0, 100_001).select(
        F.col("id"), (F.col("id").cast("decimal(10,0)") / F.lit(1000)).cast("decimal(7,3)").alias("v")
    )
    wrong = df.filter(scoring.scaled_indicator(F.col("v")) != F.col("id"))
    assert df.count() == 100_001 and df.filter(F.col("v") == Decimal("99.999")).count() == 1
    assert wrong.count() == 0
