"""The double-random inspection draw (双随机、一公开, scoring.md §5): salt, commitment, seed, schedule,
exact-decimal ratios, the draw itself, and ``verify_plan`` / ``ecredit verify-plan`` against a
temporary SQLite warehouse. Expected values are computed here with hashlib/hmac directly."""

import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal

import pytest
import sqlalchemy as sa

from ecredit import cli, draw
from ecredit.warehouse import (
    draw_commitment, inspection_draw, inspection_plan, inspector, metadata, operator_score,
)

pytestmark = pytest.mark.unit
# scoring.md §5 defaults, written out here (the pipeline reads them from the rules file)
RATIOS = {"A": "0.03", "B": "0.10", "C": "0.30", "D": "0.80"}
ONSITE = {"A": False, "B": False, "C": False, "D": True}
PER = 2  # inspectors per drawn operator: "take the first 2"


def test_the_rules_file_gives_the_spec_defaults(default_rules):
    assert draw.parameters(default_rules) == ("monthly", RATIOS, ONSITE)
    assert draw.inspectors_per_operator(default_rules) == PER

SECRET = "test-draw-secret"
D = dt.date(2026, 12, 1)


def h(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hand_salt(day: dt.date, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), day.isoformat().encode(), hashlib.sha256).hexdigest()


# --- salt, commitment, seed -------------------------------------------------------------------------

def test_salt_commitment_and_seed_by_hand():
    expected_salt = hmac.new(b"test-draw-secret", b"2026-12-01", hashlib.sha256).hexdigest()
    assert draw.salt(SECRET, D) == expected_salt
    assert draw.salt(SECRET, dt.date(2026, 12, 2)) != expected_salt
    assert draw.salt("another-secret", D) != expected_salt
    assert draw.salt_commitment(expected_salt) == hashlib.sha256(expected_salt.encode("utf-8")).hexdigest()
    assert draw.seed(D, expected_salt) == hashlib.sha256(f"2026-12-01|{expected_salt}".encode()).hexdigest()


# --- schedule ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("day,monthly", [
    (dt.date(2026, 11, 1), True), (dt.date(2026, 11, 2), False), (dt.date(2027, 1, 1), True),
    (dt.date(2026, 12, 31), False),
])
def test_is_draw_date(day, monthly):
    assert draw.is_draw_date(day, "monthly") is monthly
    assert draw.is_draw_date(day, "daily") is True


@pytest.mark.parametrize("day,monthly,daily", [
    (dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2026, 11, 2)),
    (dt.date(2026, 12, 15), dt.date(2027, 1, 1), dt.date(2026, 12, 16)),
    (dt.date(2026, 12, 31), dt.date(2027, 1, 1), dt.date(2027, 1, 1)),
    (dt.date(2028, 2, 28), dt.date(2028, 3, 1), dt.date(2028, 2, 29)),
])
def test_next_draw_date_is_strictly_after(day, monthly, daily):
    assert draw.next_draw_date(day, "monthly") == monthly
    assert draw.next_draw_date(day, "daily") == daily


def test_unknown_schedule_named():
    with pytest.raises(ValueError, match="'weekly'"):
        draw.is_draw_date(D, "weekly")
    with pytest.raises(ValueError, match="'weekly'"):
        draw.next_draw_date(D, "weekly")


# --- exact decimal ratios ---------------------------------------------------------------------------

@pytest.mark.parametrize("ratio,operators,drawn", [
    ("0.03", 100, 3), ("0.1", 7, 1), ("0.3", 10, 3), ("0.8", 3, 3),
    ("0.07", 100, 7),   # float: 0.07 * 100 = 7.000000000000001 -> ceil 8
    ("0.14", 100, 14),  # float: 14.000000000000002 -> 15
    ("0.10", 0, 0), ("0", 5, 0), ("1", 5, 5), ("0.5", 1, 1),
])
def test_ceil_in_exact_decimal(ratio, operators, drawn):
    classes = {f"OP{i:03d}": "B" for i in range(operators)}
    for r in (ratio, Decimal(ratio)):
        rows, counts, _ = draw.draw("s", classes, {"B": r}, {}, ["I1", "I2"], PER)
        assert counts["B"] == {"operators": operators, "ratio": ratio, "drawn": drawn, "onsite": False,
                               "inspectors_per_operator": PER}
        assert len(rows) == drawn


def test_bad_ratios_rejected():
    with pytest.raises(TypeError, match="float"):
        draw.draw("s", {"X": "A"}, {"A": 0.03}, {}, [], PER)
    with pytest.raises(ValueError, match="between 0 and 1"):
        draw.draw("s", {"X": "A"}, {"A": "1.5"}, {}, [], PER)
    with pytest.raises(ValueError, match=r"no draw ratio for final class\(es\) D"):
        draw.draw("s", {"X": "D"}, {"A": "0.03"}, {}, [], PER)


# --- the draw ---------------------------------------------------------------------------------------

CLASSES = {**{f"91440101MA5A{i:06d}": "A" for i in range(2)},
           **{f"91440101MA5B{i:06d}": "B" for i in range(3)},
           **{f"NP-{i:04d}": "C" for i in range(4)},
           **{f"91440101MA5D{i:06d}": "D" for i in range(3)}}
EXPECTED_DRAWN = {"A": 1, "B": 1, "C": 2, "D": 3}  # ceil(0.06), ceil(0.3), ceil(1.2), ceil(2.4)


def hand_draw(seed_hex: str, pool: list[str]) -> list[tuple[str, str, str]]:
    out = []
    for cls in "ABCD":
        keys = sorted((k for k, c in CLASSES.items() if c == cls), key=lambda k: h(f"{seed_hex}|{k}"))
        for k in keys[:EXPECTED_DRAWN[cls]]:
            ids = sorted(pool, key=lambda i: h(f"{seed_hex}|{k}|{i}"))[:2]
            out.append((k, cls, ",".join(ids)))
    return out


def test_small_draw_by_hand():
    seed_hex = h(f"2026-12-01|{hand_salt(D)}")
    pool = ["ZF-001", "ZF-002", "ZF-003"]
    rows, counts, warnings = draw.draw(seed_hex, CLASSES, RATIOS, ONSITE, pool, PER)
    assert [(r["operator_key"], r["final_class"], r["inspector_ids"]) for r in rows] == hand_draw(seed_hex, pool)
    assert all(r["seed"] == seed_hex and r["onsite_required"] == (r["final_class"] == "D") for r in rows)
    assert {c: v["drawn"] for c, v in counts.items()} == EXPECTED_DRAWN
    assert counts["A"] == {"operators": 2, "ratio": "0.03", "drawn": 1, "onsite": False, "inspectors_per_operator": 2}
    assert counts["D"] == {"operators": 3, "ratio": "0.80", "drawn": 3, "onsite": True, "inspectors_per_operator": 2}
    assert warnings == []
    json.dumps(counts)  # JSON-able


def test_draw_is_deterministic_and_depends_on_the_seed():
    pool = ["ZF-003", "ZF-001", "ZF-002"]
    first = draw.draw("seed-1", CLASSES, RATIOS, ONSITE, pool, PER)
    assert draw.draw("seed-1", dict(reversed(CLASSES.items())), RATIOS, ONSITE,
                     list(reversed(pool)), PER) == first
    others = [draw.draw(f"seed-{i}", CLASSES, RATIOS, ONSITE, pool, PER)[0] for i in range(2, 6)]
    assert any(o != first[0] for o in others)


@pytest.mark.parametrize("pool", [["ZF-009"], []])
def test_fewer_than_two_inspectors_on_duty_warns(pool):
    seed_hex = h("x")
    rows, _, warnings = draw.draw(seed_hex, CLASSES, RATIOS, ONSITE, pool, PER)
    assert [r["operator_key"] for r in rows] == [k for k, _, _ in hand_draw(seed_hex, pool)]
    assert all(r["inspector_ids"] == ",".join(pool) for r in rows)
    assert len(warnings) == 1 and f"only {len(pool)} inspector" in warnings[0]


# --- verify_plan against a temporary warehouse ------------------------------------------------------

SCORES = {"A": (95, 280, 190, 390), "B": (85, 240, 160, 300), "C": (70, 200, 130, 220), "D": (40, 120, 90, 150)}


def publish(engine, *, secret: str = SECRET, committed_on: dt.date | None = dt.date(2026, 11, 1)) -> None:
    """What a run of D (and the run that committed to D) would write to the public tables."""
    pool = ["ZF-001", "ZF-002", "ZF-003"]
    with engine.begin() as conn:
        conn.execute(operator_score.insert(), [
            {"run_date": D, "operator_key": k, "identity_score": s[0], "evaluation_score": s[1],
             "quality_score": s[2], "conduct_score": s[3], "total_score": sum(s), "score_class": c,
             "final_class": c, "previous_class": None, "rules_applied": "", "reasons": "{}",
             "rules_version": "0" * 64}
            for k, c in CLASSES.items() for s in [SCORES[c]]])
        conn.execute(inspector.insert(), [
            {"run_date": D, "inspector_id": i, "name": f"执法人员{n}", "unit": "市场监管局", "on_duty": True}
            for n, i in enumerate(pool)] + [
            {"run_date": D, "inspector_id": "ZF-004", "name": "执法人员4", "unit": "市场监管局", "on_duty": False}])
        s = draw.salt(secret, D)
        if committed_on is not None:
            conn.execute(draw_commitment.insert(), {"draw_date": D, "published_run_date": committed_on,
                                                    "salt_sha256": draw.salt_commitment(hand_salt(D))})
        seed_hex = draw.seed(D, s)
        rows, counts, _ = draw.draw(seed_hex, CLASSES, RATIOS, ONSITE, pool, PER)
        conn.execute(inspection_draw.insert(), {"run_date": D, "salt": s, "salt_sha256": draw.salt_commitment(s),
                                                "seed": seed_hex, "counts": json.dumps(counts)})
        conn.execute(inspection_plan.insert(), [{"run_date": D, **r} for r in rows])


@pytest.fixture
def wh(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def plan_rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(inspection_plan)).mappings()]


def test_published_draw_verifies(wh):
    publish(wh)
    ok, messages = draw.verify_plan(wh, D)
    assert ok, messages
    assert len(messages) == 5 and any("commitment published by the run of 2026-11-01" in m for m in messages)


def test_no_draw_published(wh):
    ok, messages = draw.verify_plan(wh, D)
    assert not ok and messages == ["no draw was published for 2026-12-01 (no inspection_draw row)"]


def test_swapped_operator_rejected(wh):
    publish(wh)
    drawn = {r["operator_key"] for r in plan_rows(wh)}
    victim = next(r for r in plan_rows(wh) if r["final_class"] == "C")
    other = next(k for k, c in CLASSES.items() if c == "C" and k not in drawn)
    with wh.begin() as conn:
        conn.execute(inspection_plan.update().where(inspection_plan.c.operator_key == victim["operator_key"])
                     .values(operator_key=other))
    ok, messages = draw.verify_plan(wh, D)
    assert not ok
    assert f"plan differs: 1 operator(s) drawn that the draw does not give: {other}" in messages[-1]
    assert victim["operator_key"] in messages[-1]


def test_reordered_inspectors_rejected(wh):
    publish(wh)
    row = plan_rows(wh)[0]
    swapped = ",".join(reversed(row["inspector_ids"].split(",")))
    with wh.begin() as conn:
        conn.execute(inspection_plan.update().where(inspection_plan.c.operator_key == row["operator_key"])
                     .values(inspector_ids=swapped))
    ok, messages = draw.verify_plan(wh, D)
    assert not ok and f"inspector_ids differs for 1 operator(s): {row['operator_key']}" in messages[-1]


def test_tampered_salt_rejected(wh):
    publish(wh)
    with wh.begin() as conn:
        conn.execute(inspection_draw.update().values(salt=hand_salt(D, "guessed")))
    ok, messages = draw.verify_plan(wh, D)
    assert not ok and any("does NOT match the commitment" in m for m in messages)


def test_consistent_redraw_with_another_salt_rejected_by_the_commitment(wh):
    publish(wh, secret="another-secret")  # salt, seed and plan agree with each other, not with the commitment
    ok, messages = draw.verify_plan(wh, D)
    assert not ok
    assert [m for m in messages if "NOT" in m] == [messages[0]]
    assert "does NOT match the commitment" in messages[0]


def test_missing_commitment_rejected(wh):
    publish(wh, committed_on=None)
    ok, messages = draw.verify_plan(wh, D)
    assert not ok and "no commitment published before the draw" in messages[0]


def test_commitment_published_on_the_draw_date_rejected(wh):
    publish(wh, committed_on=D)
    ok, messages = draw.verify_plan(wh, D)
    assert not ok and "no commitment published before the draw" in messages[0] and "2026-12-01" in messages[0]


def test_class_changed_after_publication_rejected(wh):
    publish(wh)
    key = next(r["operator_key"] for r in plan_rows(wh) if r["final_class"] == "D")
    with wh.begin() as conn:
        conn.execute(operator_score.update().where(operator_score.c.operator_key == key).values(final_class="C"))
    ok, messages = draw.verify_plan(wh, D)
    assert not ok
    assert any(m.startswith("counts differ") and "class D: published 3 operators" in m for m in messages)
    assert messages[-1].startswith("plan differs")


# --- ecredit verify-plan ----------------------------------------------------------------------------

def test_cli_verify_plan(wh, tmp_path, monkeypatch, capsys):
    publish(wh)
    for var in ("CREDIT_ENV", "CREDIT_RULES", "SPARK_MASTER", "CREDIT_MANIFEST_DEADLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CREDIT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CREDIT_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'warehouse.db'}")
    assert cli.main(["verify-plan", "--date", "2026-12-01"]) == 0
    assert "plan for 2026-12-01 verified" in capsys.readouterr().out

    row = plan_rows(wh)[0]
    with wh.begin() as conn:
        conn.execute(inspection_plan.delete().where(inspection_plan.c.operator_key == row["operator_key"]))
    assert cli.main(["verify-plan", "--date", "2026-12-01"]) == 1
    out = capsys.readouterr().out
    assert "plan for 2026-12-01 does NOT match" in out and row["operator_key"] in out

    monkeypatch.setenv("CREDIT_WAREHOUSE_URL", "warehouse.db")
    assert cli.main(["verify-plan", "--date", "2026-12-01"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CREDIT_WAREHOUSE_URL" in err


# --- on-site inspection for the serious-dishonesty list (lifecycle.md §3) --------------------------

def test_a_listed_operator_is_inspected_on_site_whatever_its_class():
    """lifecycle.md §3: an operator on the serious-dishonesty list is inspected on site when drawn,
    whatever its class (guidance 二(五): 被随机抽中的严格实行现场检查); its sampling ratio stays its
    class's. Expected: every operator drawn (ratio 1), on-site exactly for class D and the listed."""
    classes = {"B-LISTED": "B", "B-PLAIN": "B", "C-LISTED": "C", "D-PLAIN": "D"}
    ones = {c: "1" for c in "ABCD"}
    rows, counts, _ = draw.draw("seed", classes, ones, ONSITE, ["ZF-1", "ZF-2"], PER, listed={"B-LISTED", "C-LISTED", "GONE"})
    assert {r["operator_key"]: r["onsite_required"] for r in rows} == {
        "B-LISTED": True, "B-PLAIN": False, "C-LISTED": True, "D-PLAIN": True}
    assert counts["B"] == {"operators": 2, "ratio": "1", "drawn": 2, "onsite": False,  # the class's own flag
                           "inspectors_per_operator": PER}
    same, _, _ = draw.draw("seed", classes, ones, ONSITE, ["ZF-1", "ZF-2"], PER)
    assert [r["operator_key"] for r in same] == [r["operator_key"] for r in rows]  # the list changes no draw


def test_verify_plan_takes_the_serious_list_from_the_published_list(wh):
    """verify-plan re-derives on-site from the published serious_dishonest_list of D: a drawn class-C
    operator on the list must be on-site; a plan that says otherwise does not verify."""
    from ecredit.warehouse import serious_dishonest_list

    publish(wh)
    key = next(r["operator_key"] for r in plan_rows(wh) if r["final_class"] == "C")
    with wh.begin() as conn:
        conn.execute(serious_dishonest_list.insert(), {
            "run_date": D, "operator_key": key, "record_type": "NDRC_JOINT_PUNISH", "name": "某网店",
            "source_dept": "ndrc", "listed_date": dt.date(2026, 10, 1)})
        conn.execute(inspection_plan.update().where(inspection_plan.c.operator_key == key).values(onsite_required=True))
    ok, messages = draw.verify_plan(wh, D)
    assert ok, messages
    with wh.begin() as conn:
        conn.execute(inspection_plan.update().where(inspection_plan.c.operator_key == key).values(onsite_required=False))
    ok, messages = draw.verify_plan(wh, D)
    assert not ok and f"onsite_required differs for 1 operator(s): {key}" in messages[-1]
