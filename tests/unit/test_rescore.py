"""Only the touched operators are scored again (issue 17, decision 0111).

- each operator's next change date, worked out by hand from the rules file's windows;
- over a week of run dates (some days skipped) with windows opening and closing on random days
  and rows changed on some of them, scoring the touched operators and carrying the others gives,
  every day, the rows that scoring everyone gives (previous classes included).
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from ecredit.scoring import score as scoring
from ecredit.state import rescore

D = dt.date(2026, 11, 3)
DAYS = 6  # the random dates fall around D .. D+6: windows open and close on each
RUN_DAYS = [1, 3, 4, 6]  # the run dates after D (gaps included: changes on the days between count)

OPS = (
    "operator_key string, registration_status string, established_date date, natural_person boolean, "
    "license_displayed string, last_verified_date date"
)
RECS = (
    "operator_key string, record_key string, record_type string, polarity string, severity int, dept string, "
    "event_date date, active_until date, withdrawn boolean"
)
EVALS = (
    "operator_key string, eval_month date, overall_satisfaction decimal(7,3), product_quality decimal(7,3), "
    "brand_reputation decimal(7,3), after_sales decimal(7,3), review_count long, deleted_review_count long"
)
SPOT = "operator_key string, check_date date, result string"
COMPL = "operator_key string, registered_date date, handling_status string, advance_compensation string"
LIC = "operator_key string, valid_from date, valid_to date"


def day(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


def active_at(recs: list[tuple], run_date: dt.date) -> list[tuple]:
    """``with_activity``'s ``active`` (spec: not withdrawn, started, its window not ended)."""
    out = []
    for r in recs:
        event, until, withdrawn = r[6], r[7], r[8]
        active = (not withdrawn) and event <= run_date and (until is None or run_date <= until)
        out.append((*r, active))
    return out


def frames(spark, ops, recs, evals, spot, compl, lic, run_date):
    return (
        spark.createDataFrame(ops, OPS),
        spark.createDataFrame(active_at(recs, run_date), RECS + ", active boolean"),
        spark.createDataFrame(evals, EVALS),
        spark.createDataFrame(spot, SPOT),
        spark.createDataFrame(compl, COMPL),
        spark.createDataFrame(lic, LIC),
    )


def test_next_change_dates_by_hand(spark, default_rules):
    # rules: R_NEW 180 days, verification 180 / 365, spot checks 1095 days, complaints 365 days
    ops = [
        # established D-100: R_NEW ends D+80; verified D-170: 180 days crossed on D+10
        ("A", "存续", day(-100), False, "是", day(-170)),
        # established long ago (its +180 passed); verified D-364: 365 crossed on D+1
        ("B", "存续", day(-3000), False, "是", day(-364)),
        ("C", "存续", day(-3000), False, "是", None),
        ("E", "存续", day(-3000), False, "是", None),
    ]
    recs = [
        # A: a record whose window ends D+5 (stops counting D+6), one starting D+3, a withdrawn one
        # starting D+1 (never counts: no date)
        ("A", "r1", "T", "negative", 2, "amr", day(-30), day(5), False),
        ("A", "r2", "T", "negative", 2, "amr", day(3), day(400), False),
        ("A", "r3", "T", "negative", 2, "amr", day(1), day(400), True),
        # C: a record with no end (a list entry until removed), started long ago: no date after D
        ("C", "r4", "T", "negative", 2, "amr", day(-30), None, False),
        # E: the only change is a withdrawn record's
        ("E", "r5", "T", "negative", 2, "amr", day(2), day(40), True),
    ]
    # C: a spot check of D-1094 leaves its 1095-day window on D+1; a complaint of D-300 on D+65
    spot = [("C", day(-1094), "合格")]
    compl = [("C", day(-300), "已办结", "否")]
    # B: a licence valid until D+20 (D+21 it no longer counts), another valid from D+7
    lic = [("B", day(-10), day(20)), ("B", day(7), None)]
    o, r, _, s, c, li = frames(spark, ops, recs, [], spot, compl, lic, D)
    got = {
        x["operator_key"]: x["next_change_date"]
        for x in rescore.next_change(rescore.change_dates(o, r, s, c, li, default_rules), D).collect()
    }
    assert got == {"A": day(3), "B": day(1), "C": day(1)}
    # a day later: A's next is still D+3; B's licence from D+7; C's complaint (D+65)
    got = {
        x["operator_key"]: x["next_change_date"]
        for x in rescore.next_change(rescore.change_dates(o, r, s, c, li, default_rules), day(1)).collect()
    }
    assert got == {"A": day(3), "B": day(7), "C": day(65)}


def random_state(rnd: random.Random, n_ops: int):
    """Operators whose windows open and close around D: every kind of date-dependent input."""
    ops, recs, evals, spot, compl, lic = [], [], [], [], [], []
    for i in range(n_ops):
        k = f"OP{i:03d}"
        status = rnd.choice(["存续", "存续", "存续", "吊销", "注销"])
        ops.append(
            (
                k,
                status,
                day(rnd.choice([rnd.randint(-200, 5), rnd.randint(-182, -175)])),
                rnd.random() < 0.1,
                rnd.choice(["是", "否", None]),
                rnd.choice(
                    [None, day(rnd.randint(-380, 5)), day(rnd.randint(-182, -175)), day(rnd.randint(-367, -360))]
                ),
            )
        )
        for j in range(rnd.randint(0, 4)):
            rtype, polarity, sev = rnd.choice(
                [("PEN_GENERAL", "negative", 2), ("LIST_SERIOUS", "negative", 4), ("AWARD", "positive", 1)]
            )
            event = day(rnd.randint(-40, DAYS))
            until = rnd.choice([None, day(rnd.randint(-1, DAYS)), event + dt.timedelta(days=rnd.randint(0, 70))])
            recs.append((k, f"amr:x:{k}-{j}", rtype, polarity, sev, "amr", event, until, rnd.random() < 0.15))
        for _ in range(rnd.randint(0, 2)):
            evals.append(
                (
                    k,
                    dt.date(2026, rnd.choice([8, 9, 10, 11]), 1),
                    *[Decimal(str(rnd.randint(0, 100))) for _ in range(4)],
                    rnd.randint(0, 50),
                    rnd.choice([0, 0, 2]),
                )
            )
        for _ in range(rnd.randint(0, 2)):
            spot.append((k, day(rnd.choice([-1095, -1093, -1091, -20, 4])), rnd.choice(["合格", "不合格"])))
        for _ in range(rnd.randint(0, 2)):
            compl.append((k, day(rnd.choice([-365, -363, -361, -5, 3])), rnd.choice(["已办结", None]), "否"))
        lic.append((k, day(rnd.randint(-30, DAYS)), rnd.choice([None, day(rnd.randint(-5, DAYS))])))
    return ops, recs, evals, spot, compl, lic


def test_carrying_the_untouched_gives_everyone_scored(spark, default_rules):
    rnd = random.Random(7)
    ops, recs, evals, spot, compl, lic = random_state(rnd, 60)
    rules = default_rules
    score_schema = None

    def everyone(run_date, previous):
        o, r, e, s, c, li = frames(spark, ops, recs, evals, spot, compl, lic, run_date)
        scores = scoring.score(o, r, e, s, c, rules, run_date, previous, rules.version)
        return (o, r, e, s, c, li), scores, rescore.next_change(rescore.change_dates(o, r, s, c, li, rules), run_date)

    # the first date: everyone, with their next change dates (kept as rows: each day starts afresh)
    _, scores, nxt = everyone(D, None)
    score_schema, next_schema = scores.schema, nxt.schema
    base_scores, base_next = scores.collect(), nxt.collect()
    scored_fewer = moved = 0
    for n in RUN_DAYS:  # the same month
        run_date = day(n)
        # rows change on some days (a new record, a corrected registry row): their operators are touched
        changed: set[str] = set()
        if n % 3 == 0:
            k = rnd.choice(ops)[0]
            recs.append((k, f"amr:x:{k}-new{n}", "PEN_GENERAL", "negative", 3, "amr", run_date, None, False))
            changed.add(k)
        if n % 2 == 0:
            i = rnd.randrange(len(ops))
            ops[i] = (*ops[i][:4], "否" if ops[i][4] == "是" else "是", ops[i][5])
            changed.add(ops[i][0])
        touched = changed | {x["operator_key"] for x in base_next if x["next_change_date"] <= run_date}
        previous = spark.createDataFrame(
            [(x["operator_key"], x["final_class"]) for x in base_scores], "operator_key string, final_class string"
        )
        inputs, want, want_next = everyone(run_date, previous)
        got, got_next = rescore.scores_of_touched(
            spark.createDataFrame([(k,) for k in sorted(touched)], "operator_key string"),
            spark.createDataFrame(base_scores, score_schema),
            spark.createDataFrame(base_next, next_schema),
            *inputs,
            rules,
            run_date,
            previous,
        )
        base_scores, base_next = got.collect(), got_next.collect()
        assert sorted(base_scores) == sorted(want.collect()), run_date
        assert sorted(base_next) == sorted(want_next.collect()), run_date
        scored_fewer += len(touched) < len(ops)
        moved += sum(x["final_class"] != x["previous_class"] for x in base_scores)
    # worth it: every day scores only some operators, and classes do move
    assert scored_fewer == len(RUN_DAYS) and moved > 0
