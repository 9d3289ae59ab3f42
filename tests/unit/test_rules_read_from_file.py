"""Issue 14 item 7: the numbers scoring.md gives as rules are read from the rules file, not written
in code. For each one a rules file with another value gives another result, worked out here by hand
(the severity adjustments of penalties and customs violations, the cac bump, the inspectors per
drawn operator, and the run summary's count of risk alerts, whose levels are the file's)."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import json
import os

import pytest
import yaml

from ecredit.core import rules as rules_mod
from ecredit.core import settings as settings_mod
from ecredit.core.settings import DEFAULT_RULES
from ecredit.scoring import draw
from ecredit.state import build as state
from tests.unit.test_state_transforms import OP, folded, pen

DEFAULT = yaml.safe_load(open(DEFAULT_RULES, encoding="utf-8"))


def rules_with(tmp_path, **changes) -> rules_mod.Rules:
    """The default rules file with ``section__key=value`` changed (``plan__inspectors_per_operator=3``)."""
    data = copy.deepcopy(DEFAULT)
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        assert last in node, dotted  # a change, not a new key
        node[last] = value
    p = tmp_path / f"rules-{len(list(tmp_path.glob('rules-*')))}.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return rules_mod.load(p)


TRANSFORM = {
    "amr.penalties": state.penalties,
    "customs.violations": state.customs_violations,
    "cac.pi_violations": state.cac,
}


def records(spark, rules, feed_id, rows) -> dict:
    """The feed's credit records (its own transform only: a small Spark plan)."""
    return {
        r["record_key"].rsplit(":", 1)[1]: r for r in TRANSFORM[feed_id](folded(spark, feed_id, rows), rules).collect()
    }


def severities(spark, rules, feed_id, rows) -> dict:
    return {k: r["severity"] for k, r in records(spark, rules, feed_id, rows).items()}


PENALTIES = [
    pen("LIGHT", cat="警告"),
    pen("HEAVY", vtype="其他", cat="吊销许可证件"),
    pen("BIG", amount="10"),
    pen("BIG1", vtype="其他", amount="10"),
    pen("PLAIN"),
]


@pytest.mark.parametrize(
    "change, expected",
    [
        # 警告 -> light_severity; 吊销许可证件 -> heavy_severity; >= 100,000 yuan -> + the bump (max 4);
        # 虚假宣传 is 2 and 其他 1 in record_types
        ({}, {"LIGHT": 1, "HEAVY": 4, "BIG": 3, "BIG1": 2, "PLAIN": 2}),
        (
            {"penalties__light_severity": 2, "penalties__heavy_severity": 3},
            {"LIGHT": 2, "HEAVY": 3, "BIG": 3, "BIG1": 2, "PLAIN": 2},
        ),
        ({"penalties__large_amount_severity_bump": 2}, {"LIGHT": 1, "HEAVY": 4, "BIG": 4, "BIG1": 3, "PLAIN": 2}),
        ({"penalties__large_amount_severity_bump": 0}, {"LIGHT": 1, "HEAVY": 4, "BIG": 2, "BIG1": 1, "PLAIN": 2}),
        ({"penalties__large_amount_yuan": 100001}, {"LIGHT": 1, "HEAVY": 4, "BIG": 2, "BIG1": 1, "PLAIN": 2}),
        (
            {"penalties__light_categories": ["通报批评"], "penalties__heavy_categories": ["警告"]},
            {"LIGHT": 4, "HEAVY": 1, "BIG": 3, "BIG1": 2, "PLAIN": 2},
        ),
    ],
)
def test_penalty_severity_adjustments_are_the_files(spark, tmp_path, change, expected):
    assert severities(spark, rules_with(tmp_path, **change), "amr.penalties", PENALTIES) == expected


def test_the_light_window_is_the_files(spark, tmp_path):
    E = dt.date(2026, 10, 1)
    rows = [pen("LIGHT", cat="警告", date=E.isoformat())]
    got = records(spark, rules_with(tmp_path, penalties__light_window_days=30), "amr.penalties", rows)
    assert got["LIGHT"]["active_until"] == E + dt.timedelta(days=29)


def customs(no, vtype, amount):
    return {
        "key_str": no,
        "decision_no": no,
        "uscc": OP,
        "violation_type": vtype,
        "amount_yuan": amount,
        "decision_date": "2026-10-01",
        "withdrawn": "false",
    }


CUSTOMS = [customs("V", "违规", "100000"), customs("S", "走私", "100000"), customs("SMALL", "违规", "99999.99")]


@pytest.mark.parametrize(
    "change, expected",
    [
        ({}, {"V": 3, "S": 4, "SMALL": 2}),  # 违规 2, 走私 4; + 1 from 100,000 yuan, never past 4
        ({"customs_violations__large_amount_severity_bump": 2}, {"V": 4, "S": 4, "SMALL": 2}),
        ({"customs_violations__large_amount_severity_bump": 0}, {"V": 2, "S": 4, "SMALL": 2}),
        ({"customs_violations__large_amount_yuan": "99999.99"}, {"V": 3, "S": 4, "SMALL": 3}),
    ],
)
def test_customs_amount_bump_is_the_files(spark, tmp_path, change, expected):
    assert severities(spark, rules_with(tmp_path, **change), "customs.violations", CUSTOMS) == expected


def test_cac_unrectified_bump_is_the_files(spark, tmp_path):
    rows = [
        {
            "key_str": "R1",
            "record_no": "R1",
            "violation_type": "违规收集个人信息",
            "found_date": "2026-01-01",
            "rectification_status": "未整改",
        }
    ]
    assert severities(spark, rules_with(tmp_path), "cac.pi_violations", rows) == {"R1": 3}
    assert severities(spark, rules_with(tmp_path, cac__unrectified_severity_bump=2), "cac.pi_violations", rows) == {
        "R1": 4
    }


# ---- the draw: inspectors per drawn operator (scoring.md §5 "take the first 2")

SECRET = "test-draw-secret"
D = dt.date(2026, 12, 1)  # the 1st: a draw date of the monthly schedule
POOL = [f"ZF-{i:03d}" for i in range(6)]


def h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hand_seed() -> str:
    salt = hmac.new(SECRET.encode(), D.isoformat().encode(), hashlib.sha256).hexdigest()
    return h(f"{D.isoformat()}|{salt}")


@pytest.fixture
def committed(tmp_path):
    """Settings, and the commitment to D's draw that an earlier run date published (what
    ``state.published_commitment`` reads from the warehouse)."""
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(tmp_path / "data"), "CREDIT_DRAW_SECRET": SECRET})
    salt = hmac.new(SECRET.encode(), D.isoformat().encode(), hashlib.sha256).hexdigest()
    return cfg, {"salt_sha256": h(salt), "published_run_date": D - dt.timedelta(days=1)}


@pytest.mark.parametrize("per", [2, 3, 1])
def test_inspectors_per_operator_is_the_files(spark, tmp_path, committed, per):
    rules = rules_with(tmp_path, plan__inspectors_per_operator=per)
    keys = [f"91440101MA5D{i:06d}" for i in range(4)]
    scores = spark.createDataFrame([(k, "D") for k in keys], "operator_key string, final_class string")
    roster = spark.createDataFrame([(D, i, True) for i in POOL], "run_date date, inspector_id string, on_duty boolean")
    plan, drawn, _, warnings = state.inspection_plan(spark, committed[0], rules, D, scores, roster, committed[1])
    seed = hand_seed()
    n = -(-len(keys) * 8 // 10)  # ceil(0.80 x 4) = 4
    expected = {
        k: ",".join(sorted(POOL, key=lambda i: h(f"{seed}|{k}|{i}"))[:per])
        for k in sorted(keys, key=lambda k: h(f"{seed}|{k}"))[:n]
    }
    assert {r["operator_key"]: r["inspector_ids"] for r in plan.collect()} == expected
    counts = json.loads(drawn.collect()[0]["counts"])
    assert counts["D"]["inspectors_per_operator"] == per and warnings == []


# ---- verify-plan re-runs the draw with the published count


def publish_draw(engine, per: int | None, plan_per: int) -> None:
    """A draw of D in the public tables; ``per`` None: counts as published before the count was
    in them (it was 2 then)."""
    from ecredit.warehouse.schema import draw_commitment, inspection_draw, inspection_plan, inspector, operator_score

    classes = {f"91440101MA5C{i:06d}": "C" for i in range(5)}
    salt = draw.salt(SECRET, D)
    seed = draw.seed(D, salt)
    rows, counts, _ = draw.draw(seed, classes, {"C": "0.30"}, {"C": False}, POOL, plan_per)
    for c in counts.values():
        if per is None:
            del c["inspectors_per_operator"]
        else:
            c["inspectors_per_operator"] = per
    with engine.begin() as conn:
        conn.execute(
            operator_score.insert(),
            [
                {
                    "run_date": D,
                    "operator_key": k,
                    "identity_score": 70,
                    "evaluation_score": 200,
                    "quality_score": 130,
                    "conduct_score": 220,
                    "total_score": 620,
                    "score_class": c,
                    "final_class": c,
                    "previous_class": None,
                    "rules_applied": "",
                    "reasons": "{}",
                    "rules_version": "0" * 64,
                }
                for k, c in classes.items()
            ],
        )
        conn.execute(
            inspector.insert(),
            [
                {"run_date": D, "inspector_id": i, "name": "执法人员", "unit": "市场监管局", "on_duty": True}
                for i in POOL
            ],
        )
        conn.execute(
            draw_commitment.insert(),
            {"draw_date": D, "published_run_date": dt.date(2026, 11, 1), "salt_sha256": draw.salt_commitment(salt)},
        )
        conn.execute(
            inspection_draw.insert(),
            {
                "run_date": D,
                "version": 1,
                "salt": salt,
                "salt_sha256": draw.salt_commitment(salt),
                "seed": seed,
                "counts": json.dumps(counts),
                "in_force": True,
                "inputs_kept": False,
                "published_at": None,
            },
        )
        conn.execute(inspection_plan.insert(), [{"run_date": D, "version": 1, **r} for r in rows])


@pytest.fixture
def wh(tmp_path):
    import sqlalchemy as sa

    from ecredit.warehouse.schema import metadata

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize(
    "per, plan_per, ok",
    [
        (3, 3, True),  # the published count is the one the plan was drawn with
        (None, 2, True),  # a draw published before the count was: 2
        (2, 3, False),  # the plan gives 3 inspectors, its counts say 2
        (None, 3, False),
    ],
)
def test_verify_plan_uses_the_published_count(wh, per, plan_per, ok):
    publish_draw(wh, per, plan_per)
    verified, messages = draw.verify_plan(wh, D)
    assert verified is ok, messages
    if not ok:
        assert messages[-1].startswith("plan differs: inspector_ids differs")


# ---- the run summary counts the risk alerts published, whatever the file's levels


def test_the_summary_counts_the_published_risk_alerts(tmp_path, monkeypatch):
    from ecredit.outputs import report
    from ecredit.warehouse import publish
    from ecredit.warehouse.schema import operator_score, risk_alert

    for k in [k for k in os.environ if k.startswith("CREDIT_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("CREDIT_DATA_DIR", str(tmp_path))
    eng = publish.connect(settings_mod.load())
    classes = {"OP-C1": "C", "OP-C2": "C", "OP-D1": "D", "OP-A1": "A"}
    with eng.begin() as conn:
        conn.execute(
            operator_score.insert(),
            [
                {
                    "run_date": D,
                    "operator_key": k,
                    "identity_score": 0,
                    "evaluation_score": 0,
                    "quality_score": 0,
                    "conduct_score": 0,
                    "total_score": 0,
                    "score_class": c,
                    "final_class": c,
                    "previous_class": None,
                    "rules_applied": "",
                    "reasons": "{}",
                    "rules_version": "0" * 64,
                }
                for k, c in classes.items()
            ],
        )
        # a rules file with risk_alerts.levels {D: 高风险}: one alert, not the three of classes C and D
        conn.execute(
            risk_alert.insert(),
            {"run_date": D, "operator_key": "OP-D1", "name": "", "level": "高风险", "message": "信用等级D"},
        )
    eng.dispose()
    text = report.summary(D)
    assert "supervision classes at 2026-12-01: A 1, B 0, C 2, D 1 (risk alerts: 1)" in text
