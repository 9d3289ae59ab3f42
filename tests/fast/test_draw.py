"""The double-random inspection draw (双随机、一公开, scoring.md §5): salt, commitment, seed, schedule,
exact-decimal ratios, the draw itself, and ``verify_plan`` / ``ecredit verify-plan`` against a
temporary SQLite warehouse. Expected values are computed here with hashlib/hmac directly."""

import datetime as dt
import hashlib
import hmac
import json
import shutil
from decimal import Decimal

import pytest
import sqlalchemy as sa

from ecredit.ops import cli
from ecredit.scoring import draw
from ecredit.warehouse.schema import (
    draw_commitment,
    inspection_draw,
    inspection_plan,
    inspector,
    metadata,
    operator_score,
)

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


@pytest.mark.parametrize(
    "day,monthly",
    [
        (dt.date(2026, 11, 1), True),
        (dt.date(2026, 11, 2), False),
        (dt.date(2027, 1, 1), True),
        (dt.date(2026, 12, 31), False),
    ],
)
def test_is_draw_date(day, monthly):
    assert draw.is_draw_date(day, "monthly") is monthly
    assert draw.is_draw_date(day, "daily") is True


@pytest.mark.parametrize(
    "day,monthly,daily",
    [
        (dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2026, 11, 2)),
        (dt.date(2026, 12, 15), dt.date(2027, 1, 1), dt.date(2026, 12, 16)),
        (dt.date(2026, 12, 31), dt.date(2027, 1, 1), dt.date(2027, 1, 1)),
        (dt.date(2028, 2, 28), dt.date(2028, 3, 1), dt.date(2028, 2, 29)),
    ],
)
def test_next_draw_date_is_strictly_after(day, monthly, daily):
    assert draw.next_draw_date(day, "monthly") == monthly
    assert draw.next_draw_date(day, "daily") == daily


def test_unknown_schedule_named():
    with pytest.raises(ValueError, match="'weekly'"):
        draw.is_draw_date(D, "weekly")
    with pytest.raises(ValueError, match="'weekly'"):
        draw.next_draw_date(D, "weekly")


# --- exact decimal ratios ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ratio,operators,drawn",
    [
        ("0.03", 100, 3),
        ("0.1", 7, 1),
        ("0.3", 10, 3),
        ("0.8", 3, 3),
        ("0.07", 100, 7),  # float: 0.07 * 100 = 7.000000000000001 -> ceil 8
        ("0.14", 100, 14),  # float: 14.000000000000002 -> 15
        ("0.10", 0, 0),
        ("0", 5, 0),
        ("1", 5, 5),
        ("0.5", 1, 1),
    ],
)
def test_ceil_in_exact_decimal(ratio, operators, drawn):
    classes = {f"OP{i:03d}": "B" for i in range(operators)}
    for r in (ratio, Decimal(ratio)):
        rows, counts, _ = draw.draw("s", classes, {"B": r}, {}, ["I1", "I2"], PER)
        assert counts["B"] == {
            "operators": operators,
            "ratio": ratio,
            "drawn": drawn,
            "onsite": False,
            "inspectors_per_operator": PER,
        }
        assert len(rows) == drawn


def test_bad_ratios_rejected():
    with pytest.raises(TypeError, match="float"):
        draw.draw("s", {"X": "A"}, {"A": 0.03}, {}, [], PER)
    with pytest.raises(ValueError, match="between 0 and 1"):
        draw.draw("s", {"X": "A"}, {"A": "1.5"}, {}, [], PER)
    with pytest.raises(ValueError, match=r"no draw ratio for final class\(es\) D"):
        draw.draw("s", {"X": "D"}, {"A": "0.03"}, {}, [], PER)


# --- the draw ---------------------------------------------------------------------------------------

CLASSES = {
    **{f"91440101MA5A{i:06d}": "A" for i in range(2)},
    **{f"91440101MA5B{i:06d}": "B" for i in range(3)},
    **{f"NP-{i:04d}": "C" for i in range(4)},
    **{f"91440101MA5D{i:06d}": "D" for i in range(3)},
}
EXPECTED_DRAWN = {"A": 1, "B": 1, "C": 2, "D": 3}  # ceil(0.06), ceil(0.3), ceil(1.2), ceil(2.4)


def hand_draw(seed_hex: str, pool: list[str]) -> list[tuple[str, str, str]]:
    out = []
    for cls in "ABCD":
        keys = sorted((k for k, c in CLASSES.items() if c == cls), key=lambda k: h(f"{seed_hex}|{k}"))
        for k in keys[: EXPECTED_DRAWN[cls]]:
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
    assert draw.draw("seed-1", dict(reversed(CLASSES.items())), RATIOS, ONSITE, list(reversed(pool)), PER) == first
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
        conn.execute(
            operator_score.insert(),
            [
                {
                    "run_date": D,
                    "operator_key": k,
                    "identity_score": s[0],
                    "evaluation_score": s[1],
                    "quality_score": s[2],
                    "conduct_score": s[3],
                    "total_score": sum(s),
                    "score_class": c,
                    "final_class": c,
                    "previous_class": None,
                    "rules_applied": "",
                    "reasons": "{}",
                    "rules_version": "0" * 64,
                }
                for k, c in CLASSES.items()
                for s in [SCORES[c]]
            ],
        )
        conn.execute(
            inspector.insert(),
            [
                {"run_date": D, "inspector_id": i, "name": f"执法人员{n}", "unit": "市场监管局", "on_duty": True}
                for n, i in enumerate(pool)
            ]
            + [{"run_date": D, "inspector_id": "ZF-004", "name": "执法人员4", "unit": "市场监管局", "on_duty": False}],
        )
        s = draw.salt(secret, D)
        if committed_on is not None:
            conn.execute(
                draw_commitment.insert(),
                {"draw_date": D, "published_run_date": committed_on, "salt_sha256": draw.salt_commitment(hand_salt(D))},
            )
        seed_hex = draw.seed(D, s)
        rows, counts, _ = draw.draw(seed_hex, CLASSES, RATIOS, ONSITE, pool, PER)
        conn.execute(
            inspection_draw.insert(),
            {
                "run_date": D,
                "version": 1,
                "salt": s,
                "salt_sha256": draw.salt_commitment(s),
                "seed": seed_hex,
                "counts": json.dumps(counts),
                "in_force": True,
                "inputs_kept": False,
                "published_at": dt.datetime(2026, 12, 2, 2, 30, tzinfo=dt.UTC),
            },
        )
        conn.execute(inspection_plan.insert(), [{"run_date": D, "version": 1, **r} for r in rows])


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
    assert messages[0] == "version 1 of 1 of the draw of 2026-12-01 (in force; published 2026-12-02 02:30:00 UTC)"
    assert len(messages) == 6 and any("commitment published by the run of 2026-11-01" in m for m in messages)


def test_no_draw_published(wh):
    ok, messages = draw.verify_plan(wh, D)
    assert not ok and messages == ["no draw was published for 2026-12-01 (no inspection_draw row)"]


def test_swapped_operator_rejected(wh):
    publish(wh)
    drawn = {r["operator_key"] for r in plan_rows(wh)}
    victim = next(r for r in plan_rows(wh) if r["final_class"] == "C")
    other = next(k for k, c in CLASSES.items() if c == "C" and k not in drawn)
    with wh.begin() as conn:
        conn.execute(
            inspection_plan.update()
            .where(inspection_plan.c.operator_key == victim["operator_key"])
            .values(operator_key=other)
        )
    ok, messages = draw.verify_plan(wh, D)
    assert not ok
    assert f"plan differs: 1 operator(s) drawn that the draw does not give: {other}" in messages[-1]
    assert victim["operator_key"] in messages[-1]


def test_reordered_inspectors_rejected(wh):
    publish(wh)
    row = plan_rows(wh)[0]
    swapped = ",".join(reversed(row["inspector_ids"].split(",")))
    with wh.begin() as conn:
        conn.execute(
            inspection_plan.update()
            .where(inspection_plan.c.operator_key == row["operator_key"])
            .values(inspector_ids=swapped)
        )
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
    assert [m for m in messages if "NOT" in m] == [messages[1]]
    assert "does NOT match the commitment" in messages[1]


def test_missing_commitment_rejected(wh):
    publish(wh, committed_on=None)
    ok, messages = draw.verify_plan(wh, D)
    assert not ok and "no commitment published before the draw" in messages[1]


def test_commitment_published_on_the_draw_date_rejected(wh):
    publish(wh, committed_on=D)
    ok, messages = draw.verify_plan(wh, D)
    assert not ok and "no commitment published before the draw" in messages[1] and "2026-12-01" in messages[1]


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
    rows, counts, _ = draw.draw(
        "seed", classes, ones, ONSITE, ["ZF-1", "ZF-2"], PER, listed={"B-LISTED", "C-LISTED", "GONE"}
    )
    assert {r["operator_key"]: r["onsite_required"] for r in rows} == {
        "B-LISTED": True,
        "B-PLAIN": False,
        "C-LISTED": True,
        "D-PLAIN": True,
    }
    assert counts["B"] == {
        "operators": 2,
        "ratio": "1",
        "drawn": 2,
        "onsite": False,  # the class's own flag
        "inspectors_per_operator": PER,
    }
    same, _, _ = draw.draw("seed", classes, ones, ONSITE, ["ZF-1", "ZF-2"], PER)
    assert [r["operator_key"] for r in same] == [r["operator_key"] for r in rows]  # the list changes no draw


def test_verify_plan_takes_the_serious_list_from_the_published_list(wh):
    """verify-plan re-derives on-site from the published serious_dishonest_list of D: a drawn class-C
    operator on the list must be on-site; a plan that says otherwise does not verify."""
    from ecredit.warehouse.schema import serious_dishonest_list

    publish(wh)
    key = next(r["operator_key"] for r in plan_rows(wh) if r["final_class"] == "C")
    with wh.begin() as conn:
        conn.execute(
            serious_dishonest_list.insert(),
            {
                "run_date": D,
                "operator_key": key,
                "record_type": "NDRC_JOINT_PUNISH",
                "name": "某网店",
                "source_dept": "ndrc",
                "listed_date": dt.date(2026, 10, 1),
            },
        )
        conn.execute(inspection_plan.update().where(inspection_plan.c.operator_key == key).values(onsite_required=True))
    ok, messages = draw.verify_plan(wh, D)
    assert ok, messages
    with wh.begin() as conn:
        conn.execute(
            inspection_plan.update().where(inspection_plan.c.operator_key == key).values(onsite_required=False)
        )
    ok, messages = draw.verify_plan(wh, D)
    assert not ok and f"onsite_required differs for 1 operator(s): {key}" in messages[-1]


# --- versions of a draw date's plan (publish.publish_draw) ---------------------------------------------

POOL = ["ZF-001", "ZF-002", "ZF-003"]
AT = dt.datetime(2026, 12, 2, 2, 30, tzinfo=dt.UTC)


@pytest.fixture
def lake(tmp_path, monkeypatch):
    from ecredit.core import settings

    for var in ("CREDIT_ENV", "CREDIT_LAKE_DIR", "CREDIT_WAREHOUSE_URL"):
        monkeypatch.delenv(var, raising=False)
    cfg = settings.load({"CREDIT_DATA_DIR": str(tmp_path), "CREDIT_DRAW_SECRET": SECRET})
    engine = sa.create_engine(cfg.warehouse_url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            draw_commitment.insert(),
            {"draw_date": D, "published_run_date": dt.date(2026, 11, 1), "salt_sha256": h(hand_salt(D))},
        )
    yield cfg, engine
    engine.dispose()


def gold_draw(cfg, classes: dict | None, pool: list[str], listed=frozenset()) -> list[tuple]:
    """What build_state writes for D: the draw on these classes and pool (None: no plan, empty tables)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ecredit.state import build as state

    draw_rows, plan = [], []
    if classes is not None:
        salt_hex = hand_salt(D)
        seed_hex = h(f"{D}|{salt_hex}")
        plan, counts, _ = draw.draw(seed_hex, classes, RATIOS, ONSITE, pool, PER, listed)
        draw_rows = [
            {
                "run_date": D,
                "salt": salt_hex,
                "salt_sha256": h(salt_hex),
                "seed": seed_hex,
                "counts": json.dumps(counts, sort_keys=True),
            }
        ]
    for name, rows in (("inspection_draw", draw_rows), ("inspection_plan", [{"run_date": D, **r} for r in plan])):
        folder = state.gold_dir(cfg, D) / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        if rows:
            pq.write_table(pa.Table.from_pylist(rows), folder / "part-00000.parquet")
    return sorted((r["operator_key"], r["final_class"], r["inspector_ids"]) for r in plan)


def publish_d(
    cfg, engine, classes: dict, pool: list[str], plan: bool = True, listed=frozenset()
) -> tuple[dict, list[str]]:
    """What publish does for D: the draw first, then D's operator_score, inspector and
    serious_dishonest_list replaced."""
    from ecredit.warehouse import publish as publish_mod
    from ecredit.warehouse.schema import serious_dishonest_list

    gold_draw(cfg, classes if plan else None, pool, listed)
    warnings: list[str] = []
    with engine.begin() as conn:
        counts = publish_mod.publish_draw(conn, cfg, D, AT, warnings)
        conn.execute(operator_score.delete().where(operator_score.c.run_date == D))
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
        conn.execute(inspector.delete().where(inspector.c.run_date == D))
        conn.execute(
            inspector.insert(),
            [{"run_date": D, "inspector_id": i, "name": None, "unit": None, "on_duty": True} for i in pool],
        )
        conn.execute(serious_dishonest_list.delete().where(serious_dishonest_list.c.run_date == D))
        if listed:
            conn.execute(
                serious_dishonest_list.insert(),
                [
                    {
                        "run_date": D,
                        "operator_key": k,
                        "record_type": "LIST_SERIOUS",
                        "name": "",
                        "source_dept": "amr",
                        "listed_date": dt.date(2026, 10, 1),
                    }
                    for k in sorted(listed)
                ],
            )
    return counts, warnings


def versions(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(
                    inspection_draw.c.version, inspection_draw.c.in_force, inspection_draw.c.inputs_kept
                ).order_by(inspection_draw.c.version)
            )
        ]


def plan_of(engine, version: int) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(
            tuple(r)
            for r in conn.execute(
                sa.select(
                    inspection_plan.c.operator_key, inspection_plan.c.final_class, inspection_plan.c.inspector_ids
                ).where(inspection_plan.c.version == version)
            )
        )


def everything(engine) -> dict:
    with engine.connect() as conn:
        return {
            t: sorted(map(str, conn.execute(sa.select(metadata.tables[t])).all()))
            for t in ("inspection_draw", "inspection_plan", "inspection_draw_input")
        }


def test_versions_of_a_draw_date(lake):
    from ecredit.warehouse.schema import inspection_draw_input

    cfg, engine = lake
    first = gold_draw(cfg, CLASSES, POOL)
    counts, warnings = publish_d(cfg, engine, CLASSES, POOL)
    assert counts == {"inspection_draw": 1, "inspection_plan": len(first), "inspection_draw_input": 0}
    assert versions(engine) == [(1, True, False)] and plan_of(engine, 1) == first and warnings == []
    assert draw.verify_plan(engine, D)[0]

    # the same data again: the plan in force, no version added, nothing written
    before = everything(engine)
    assert publish_d(cfg, engine, CLASSES, POOL) == (
        {"inspection_draw": 0, "inspection_plan": 0, "inspection_draw_input": 0},
        [],
    )
    assert everything(engine) == before

    # a corrected delivery: every class C operator is class D now; the plan differs
    corrected = {k: ("D" if c == "C" else c) for k, c in CLASSES.items()}
    second = gold_draw(cfg, corrected, POOL)
    assert second != first
    counts, _ = publish_d(cfg, engine, corrected, POOL)
    assert counts == {
        "inspection_draw": 1,
        "inspection_plan": len(second),
        "inspection_draw_input": len(CLASSES) + len(POOL),
    }
    assert versions(engine) == [(1, False, True), (2, True, False)]
    assert plan_of(engine, 1) == first and plan_of(engine, 2) == second
    with engine.connect() as conn:
        kept = conn.execute(sa.select(inspection_draw_input)).mappings().all()
    assert {(r["version"], r["kind"], r["item_key"], r["final_class"]) for r in kept} == {
        (1, "operator", k, c) for k, c in CLASSES.items()
    } | {(1, "inspector", i, None) for i in POOL}
    ok, messages = draw.verify_plan(engine, D)
    assert ok and messages[0] == f"version 2 of 2 of the draw of {D} (in force; published 2026-12-02 02:30:00 UTC)"
    assert "counts match the scores of D" in messages
    ok, messages = draw.verify_plan(engine, D, 1)
    assert ok and messages[0].startswith(f"version 1 of 2 of the draw of {D} (superseded: version 2 is in force;")
    assert "counts match the classes the version was drawn on (inspection_draw_input)" in messages

    # a rerun that makes no plan (and changes D's classes): version 2 stays in force, its inputs kept
    fewer = dict(list(corrected.items())[:-3])
    counts, warnings = publish_d(cfg, engine, fewer, POOL[:2], plan=False)
    assert counts["inspection_draw"] == 0 and counts["inspection_draw_input"] == len(corrected) + len(POOL)
    assert warnings == [
        f"inspection plan {D}: this run made no plan; version 2 of {D}'s plan, published earlier, stays in force"
    ]
    assert versions(engine) == [(1, False, True), (2, True, True)]
    assert draw.verify_plan(engine, D)[0] and draw.verify_plan(engine, D, 1)[0]
    # ... and again: nothing more is kept, the same warning
    before = everything(engine)
    assert publish_d(cfg, engine, fewer, POOL[:2], plan=False)[1] == warnings
    assert everything(engine) == before

    # then a plan again: version 3; version 2 keeps what it was drawn on, not the no-plan run's rows
    third = gold_draw(cfg, fewer, POOL[:2])
    counts, _ = publish_d(cfg, engine, fewer, POOL[:2])
    assert counts["inspection_draw_input"] == 0
    assert versions(engine) == [(1, False, True), (2, False, True), (3, True, False)]
    assert plan_of(engine, 3) == third
    for v in (None, 1, 2, 3):
        ok, messages = draw.verify_plan(engine, D, v)
        assert ok, (v, messages)
    ok, messages = draw.verify_plan(engine, D, 4)
    assert not ok and messages == [f"the draw of {D} has no version 4 (published versions: 1, 2, 3)"]


def test_a_kept_version_that_was_changed_is_rejected(lake):
    from ecredit.warehouse.schema import inspection_draw_input

    cfg, engine = lake
    publish_d(cfg, engine, CLASSES, POOL)
    publish_d(cfg, engine, {k: ("D" if c == "C" else c) for k, c in CLASSES.items()}, POOL)
    drawn = {k for k, _, _ in plan_of(engine, 1)}
    victim = next(k for k, c in CLASSES.items() if c == "C" and k in drawn)
    with engine.begin() as conn:  # the kept class of a drawn operator altered afterwards
        conn.execute(
            inspection_draw_input.update().where(inspection_draw_input.c.item_key == victim).values(final_class="B")
        )
    ok, messages = draw.verify_plan(engine, D, 1)
    assert not ok and any(m.startswith("counts differ") for m in messages)
    assert draw.verify_plan(engine, D)[0]  # version 2, in force, is not touched by it


def test_one_version_in_force_per_draw_date(lake):
    cfg, engine = lake
    publish_d(cfg, engine, CLASSES, POOL)
    with engine.connect() as conn:
        row = dict(conn.execute(sa.select(inspection_draw)).mappings().one())
    with pytest.raises(sa.exc.IntegrityError):
        with engine.begin() as conn:
            conn.execute(inspection_draw.insert(), {**row, "version": 2})


def test_cli_verify_plan_version_argument(capsys):
    with pytest.raises(SystemExit):
        cli.main(["verify-plan", "--date", "2026-12-01", "--version", "0"])
    assert "a version is a whole number from 1, not '0'" in capsys.readouterr().err


def test_a_superseded_version_keeps_the_operators_listed_when_it_was_drawn(lake):
    """lifecycle.md §3 and the versions: version 1 drew listed class-C operators on site; a rerun of
    D with another plan (a corrected delivery: the C operators are no longer listed, the classes
    change) supersedes it. Version 1 still verifies, because the listed operators were kept with its
    inputs; without them its on-site flags could not be re-derived."""
    from ecredit.warehouse.schema import inspection_draw_input

    cfg, engine = lake
    listed = {k for k, c in CLASSES.items() if c == "C"}
    first = publish_d(cfg, engine, CLASSES, POOL, listed=listed)
    with engine.connect() as conn:
        onsite_c = conn.execute(
            sa.select(sa.func.count())
            .select_from(inspection_plan)
            .where((inspection_plan.c.final_class == "C") & inspection_plan.c.onsite_required)
        ).scalar()
    assert first[1] == [] and onsite_c > 0  # ONSITE says C is not on site: these are the listed ones
    corrected = {k: ("B" if c == "C" else c) for k, c in CLASSES.items()}
    publish_d(cfg, engine, corrected, POOL)
    assert versions(engine) == [(1, False, True), (2, True, False)]
    with engine.connect() as conn:
        kept = set(
            conn.execute(
                sa.select(inspection_draw_input.c.item_key).where(
                    (inspection_draw_input.c.version == 1) & (inspection_draw_input.c.kind == "listed")
                )
            ).scalars()
        )
    assert kept == listed
    for v in (1, 2):
        ok, messages = draw.verify_plan(engine, D, v)
        assert ok, (v, messages)
    with engine.begin() as conn:  # without the kept list, version 1's on-site flags no longer follow
        conn.execute(inspection_draw_input.delete().where(inspection_draw_input.c.kind == "listed"))
    ok, messages = draw.verify_plan(engine, D, 1)
    assert not ok and "onsite_required differs" in messages[-1]
