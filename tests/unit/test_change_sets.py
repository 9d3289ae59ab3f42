"""The latest state's change sets (issue 17 item 3, decision 0112).

- the changed rows and the keys to delete, worked out by hand: a row the same (nulls included), a
  value changed, a null become a value and back, a new key, a key gone;
- ``updated_run_date``, the latest date behind a registry row, worked out by hand;
- on random tables, the base with the keys deleted and the changed rows added is the new table,
  and the change set holds nothing that did not change.
"""

from __future__ import annotations

import datetime as dt
import random

from pyspark.sql import functions as F

from ecredit.state import changes

D = dt.date(2026, 11, 3)
P = dt.date(2026, 11, 2)
SCHEMA = "k string, a int, b string, d date"


def rows(df) -> set[tuple]:
    return {tuple(r) for r in df.collect()}


def test_change_set_by_hand(spark):
    old = spark.createDataFrame(
        [
            ("same", 1, "x", P),
            ("same_nulls", None, None, None),
            ("value", 1, "x", P),
            ("to_null", 1, "x", P),
            ("from_null", 1, None, P),
            ("gone", 1, "x", P),
        ],
        SCHEMA,
    )
    new = spark.createDataFrame(
        [
            ("same", 1, "x", P),
            ("same_nulls", None, None, None),
            ("value", 2, "x", P),
            ("to_null", 1, None, P),
            ("from_null", 1, "y", P),
            ("new", 3, "z", D),
        ],
        SCHEMA,
    )
    change = changes.change_set(new, old, "k")
    kinds = {r.k: r._change for r in change.collect()}
    assert kinds == {
        "value": "changed",
        "to_null": "changed",
        "from_null": "changed",
        "new": "new",
        "gone": "gone",
    }
    changed = changes.inserted(change)
    assert rows(changed) == {
        ("value", 2, "x", P),
        ("to_null", 1, None, P),
        ("from_null", 1, "y", P),
        ("new", 3, "z", D),
    }
    deleted = changes.deleted(change, "k")
    assert sorted(r.k for r in deleted.collect()) == ["from_null", "gone", "to_null", "value"]


def test_updated_run_date_is_the_latest_date_behind_the_row(spark):
    """dim_operator's updated_run_date: the registry version's delivery, the licences' deliveries,
    and the days a 有效 licence became valid or expired, up to D (worked out by hand)."""
    from ecredit.state import build

    day = dt.date.fromisoformat
    ops = spark.createDataFrame(
        [
            (k, day(since))
            for k, since in [
                ("o1", "2026-10-01"),
                ("o2", "2026-10-01"),
                ("o3", "2026-10-01"),
                ("o4", "2026-11-03"),
                ("o5", "2026-10-01"),
            ]
        ],
        "operator_key string, source_delivery_date date",
    )
    for c in build.REGISTRY_COLUMNS[1:]:  # every registry column but the key: a value or a null date
        ops = ops.withColumn(c, F.lit(None).cast("date") if c.endswith("_date") else F.lit("x"))
    lic = spark.createDataFrame(
        [
            ("o2", "有效", day("2026-10-20"), None, day("2026-10-05")),  # became valid after its delivery
            ("o3", "有效", day("2026-09-01"), day("2026-11-01"), day("2026-09-01")),  # expired: 11-02
            ("o4", "注销", day("2026-01-01"), None, day("2026-10-10")),  # the registry is newer
            ("o5", "有效", day("2026-11-10"), None, day("2026-10-02")),  # valid only after D
            ("o5", "注销", day("2026-10-20"), None, day("2026-10-15")),  # not 有效: its delivery only
        ],
        "operator_key string, licence_status string, valid_from date, valid_to date, source_delivery_date date",
    )
    got = {r.operator_key: (r.updated_run_date, r.valid_licenses) for r in build.dim_operator(ops, lic, D).collect()}
    assert got == {
        "o1": (day("2026-10-01"), 0),
        "o2": (day("2026-10-20"), 1),
        "o3": (day("2026-11-02"), 0),
        "o4": (day("2026-11-03"), 0),
        "o5": (day("2026-10-15"), 0),
    }


def test_applying_the_change_set_to_the_base_gives_the_new_table(spark):
    rnd = random.Random(17)

    def value(options):
        return rnd.choice(options)

    keys = [f"k{i}" for i in range(300)]
    old_rows = {
        k: (k, value([None, 1, 2]), value([None, "x", "y"]), value([None, P, D])) for k in rnd.sample(keys, 200)
    }
    new_rows = {}
    for k in rnd.sample(keys, 220):
        if k in old_rows and rnd.random() < 0.7:
            new_rows[k] = old_rows[k]  # unchanged
        else:
            new_rows[k] = (k, value([None, 1, 2]), value([None, "x", "y"]), value([None, P, D]))
    old = spark.createDataFrame(list(old_rows.values()), SCHEMA)
    new = spark.createDataFrame(list(new_rows.values()), SCHEMA)
    change = changes.change_set(new, old, "k").cache()
    changed = changes.inserted(change)
    deleted = {r.k for r in changes.deleted(change, "k").collect()}
    applied = {r for r in old_rows.values() if r[0] not in deleted} | rows(changed)
    assert applied == set(new_rows.values())
    # nothing that did not change: every changed row differs from its base row, every key deleted was there
    assert all(old_rows.get(r[0]) != r for r in rows(changed))
    assert deleted <= set(old_rows)
    expected_changed = {r for k, r in new_rows.items() if old_rows.get(k) != r}
    assert rows(changed) == expected_changed and 0 < len(expected_changed) < len(new_rows)
