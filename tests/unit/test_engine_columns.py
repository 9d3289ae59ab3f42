"""The engine's column expressions of ``ecredit.ingest.columns`` give what their Python reference
gives (``ids.np_key``, ``checks._normalised``, ``load.key_string``), value for value, on values of
every shape that passes the rule (each test evaluates one DataFrame)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from ecredit.core import checks, ids
from ecredit.core.feeds import DATE, DATE_FORMATS, DECIMAL, INT, SCORE, Column, feed
from ecredit.ingest import columns, load, sqlexpr

RNG_SEED = 16


def _evaluate(spark, values: list, expr) -> list:
    """``expr(col('v'))`` (an ``sqlexpr`` expression) over ``values``, in their order."""
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i long, v string")
    return [r[1] for r in df.select("i", expr(sqlexpr.col("v")).alias("out")).orderBy("i").collect()]


def _compare(got: list, want: list, values: list) -> None:
    bad = [(v, g, w) for v, g, w in zip(values, got, want, strict=True) if g != w]
    assert not bad, f"{len(bad)} of {len(values)} differ, e.g. (value, engine, python): {bad[:5]}"


@pytest.mark.parametrize(
    "pii_key",
    ["a-test-key", "", "k" * 64, "k" * 65, "密钥-non-ASCII-🔑", "x" * 200],
    ids=["plain", "empty", "block", "longer-than-block", "non-ascii", "long"],
)
def test_np_key_is_hmac_sha256_of_the_id_number(spark, pii_key):
    rng = random.Random(RNG_SEED)
    values = [ids.normalise(f"{rng.randrange(10**17):017d}" + rng.choice("0123456789X")) for _ in range(300)]
    values += ["", "Ｘ", "ß", "证件", "a" * 500]
    got = _evaluate(spark, values, lambda c: columns.np_key(c, pii_key))
    _compare(got, [ids.np_key(v, pii_key) for v in values], values)


@pytest.mark.parametrize("date_format", sorted(DATE_FORMATS))
def test_iso_date_of_every_format(spark, date_format):
    rng = random.Random(RNG_SEED)
    rule = checks.Rule(checks.BAD_DATE, "expect_column_values_to_be_valid_date", "d", (("date_format", date_format),))
    days = [dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(2024, 2, 29), dt.date(2000, 2, 29)]
    days += [dt.date(1900, 1, 1) + dt.timedelta(days=rng.randrange(80_000)) for _ in range(400)]
    shapes = {
        "iso": lambda d: [d.strftime("%Y-%m-%d") if d.year >= 1000 else f"{d.year:04d}-{d.month:02d}-{d.day:02d}"],
        "slash": lambda d: [f"{d.year:04d}/{d.month:02d}/{d.day:02d}"],
        "compact": lambda d: [f"{d.year:04d}{d.month:02d}{d.day:02d}"],
        "chinese": lambda d: [f"{d.year:04d}年{d.month}月{d.day}日", f"{d.year:04d}年{d.month:02d}月{d.day:02d}日"],
    }
    values = [v for d in days for v in shapes[date_format](d)]
    assert all(checks.value_ok(rule, v, None) for v in values)  # values that pass their rule
    c = Column("d", "d", DATE)
    want = [checks._normalised(_feed_with_format(date_format), c, v)[0] for v in values]
    _compare(_evaluate(spark, values, lambda col: columns.iso_date(col, date_format)), want, values)


def _feed_with_format(date_format: str):
    from dataclasses import replace

    return replace(feed("amr", "penalties.csv"), date_format=date_format)


def _decimals(rng: random.Random) -> list[str]:
    out = ["0", "-0", "-0.0", "+0", "0.000", ".5", "5.", "+5", "100", "1e5", "1E+5", "1.0e2", "1.50", "00012.5"]
    out += ["1e-20", "1E-20", "99999999999999.99999999999999999999", "0.00000000000000000001", "-0e5", "7e13"]
    out += ["12345678901234", "1.2345678901234567890", "0e-20", "100.000", "1000e-3", "5e0"]
    for _ in range(600):
        whole = str(rng.randrange(10 ** rng.randrange(1, 15)))
        frac = "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, 12)))
        text = whole + ("." + frac if frac or rng.random() < 0.2 else "")
        if rng.random() < 0.2:
            text = "0" * rng.randrange(1, 4) + text
        if rng.random() < 0.15:
            d = Decimal(text)
            e = rng.randrange(-5, 3)
            text = f"{d.scaleb(-e)}e{e}"
        out.append(text)
    return out


@pytest.mark.parametrize("kind", [DECIMAL, SCORE])
def test_plain_decimal(spark, kind):
    rng = random.Random(RNG_SEED)
    rule = checks.Rule(checks.BAD_NUMBER, "expect_column_values_to_be_valid_number", "n", (("number_kind", kind),))
    values = [v for v in _decimals(rng) if checks.value_ok(rule, v, None)]
    assert len(values) > (100 if kind == SCORE else 500)
    c = Column("n", "n", kind)
    want = [checks._normalised(feed("amr", "penalties.csv"), c, v)[0] for v in values]
    _compare(_evaluate(spark, values, lambda col: columns.plain_number(col, kind)), want, values)


def test_plain_int(spark):
    rng = random.Random(RNG_SEED)
    rule = checks.Rule(checks.BAD_NUMBER, "expect_column_values_to_be_valid_number", "n", (("number_kind", INT),))
    values = ["0", "00", "000", "007", "10", "0010", "99999999999999", "0000099999999999999"]
    values += [("0" * rng.randrange(0, 4)) + str(rng.randrange(10 ** rng.randrange(1, 15))) for _ in range(500)]
    values = [v for v in values if checks.value_ok(rule, v, None)]
    c = Column("n", "n", INT)
    want = [checks._normalised(feed("amr", "penalties.csv"), c, v)[0] for v in values]
    _compare(_evaluate(spark, values, lambda col: columns.plain_number(col, INT)), want, values)


@pytest.mark.parametrize("feed_id", ["amr.lists", "amr.penalties", "amr.operators"])
def test_key_string_joins_the_parts_and_is_null_when_one_is(spark, feed_id):
    from ecredit.core.feeds import FEEDS

    f = next(x for x in FEEDS if x.feed_id == feed_id)
    names = [k for k in f.key if k != "operator_key"]
    rows = [{n: f"v{i}-{n}" for n in names} | {"_op": f"OP{i}"} for i in range(5)]
    if names:
        rows[1][names[0]] = None  # a part missing: no key
    rows[2]["_op"] = None
    df = spark.createDataFrame(rows, ", ".join(f"`{n}` string" for n in [*names, "_op"]))
    got = [
        r[0]
        for r in df.select(
            columns.key_string(f, {n: sqlexpr.col(n) for n in names}, sqlexpr.col("_op")).column()
        ).collect()
    ]
    want = [load.key_string(f, {n: r[n] for n in names}, r["_op"]) for r in rows]
    assert got == want
    assert got[0] == "|".join("OP0" if k == "operator_key" else f"v0-{k}" for k in f.key)
    assert (got[1] is None) == bool(names) and (got[2] is None) == ("operator_key" in f.key)


def _timestamps(rng: random.Random) -> list[str]:
    out = ["2026-11-01T10:00:00+08:00", "2026-11-01 10:00Z", "2026-11-01T00:00:00.5+08:00", "2026-10-31T16:00:00Z"]
    out += ["2026-11-01T00:00:00.123456789-05:30", "2024-02-29T23:59:59.000001+14:00", "1985-05-01T01:30:00+09:00"]
    out += ["1986-05-04T02:30:00+08:00", "1900-01-01T00:00:00+08:05", "0001-01-02T00:00:00Z", "9999-12-31T15:59:59Z"]
    for _ in range(1500):
        day = dt.date(1900, 1, 1) + dt.timedelta(days=rng.randrange(200 * 365))
        text = f"{day.isoformat()}{rng.choice('T ')}{rng.randrange(24):02d}:{rng.randrange(60):02d}"
        if rng.random() < 0.8:
            text += f":{rng.randrange(60):02d}"
            if rng.random() < 0.5:
                text += "." + "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 10)))
        text += rng.choice(["Z", f"{rng.choice('+-')}{rng.randrange(24):02d}:{rng.randrange(60):02d}"])
        out.append(text)
    return out


def test_utc_timestamp_and_shanghai_date(spark):
    from ecredit.core.feeds import TIMESTAMP

    rng = random.Random(RNG_SEED)
    rule = checks.Rule(checks.BAD_DATE, "expect_column_values_to_be_valid_timestamp", "t")
    values = [v for v in _timestamps(rng) if checks.value_ok(rule, v, None)]
    assert len(values) > 1400
    c = Column("t", "t", TIMESTAMP)
    want = [checks._normalised(feed("psb", "cases.jsonl"), c, v) for v in values]
    _compare(_evaluate(spark, values, columns.utc_timestamp), [w[0] for w in want], values)
    _compare(_evaluate(spark, values, columns.shanghai_date), [w[1] for w in want], values)
