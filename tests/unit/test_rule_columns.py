"""``rule_columns.column_ok`` (a Spark column) against ``checks.value_ok`` (the reference, pure
Python), rule by rule, on (a) hand-written adversarial values, (b) the as-sent values of generated
dirty deliveries read by the pipeline's own parser, and (c) seeded random strings over each rule's
alphabet. Each rule is evaluated on one DataFrame of all its values; no value may disagree."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

import pytest

from ecredit.core import checks, ids
from ecredit.core.feeds import DATE_FORMATS, DECIMAL, FEEDS, INT, SCORE
from ecredit.generate import generate
from ecredit.ingest import parse, sqlexpr

D = dt.date(2026, 11, 1)
RANDOM_PER_RULE = 4000

NOT_NULL = "expect_column_values_to_not_be_null"
IN_SET = "expect_column_values_to_be_in_set"
USCC = "expect_column_values_to_be_valid_uscc"
ID_NO = "expect_column_values_to_be_valid_id_no"
DATE = "expect_column_values_to_be_valid_date"
MONTH = "expect_column_values_to_be_valid_month"
TIMESTAMP = "expect_column_values_to_be_valid_timestamp"
NUMBER = "expect_column_values_to_be_valid_number"
DISTRICT = "expect_column_values_to_be_valid_district"


def rule(expectation: str, **kwargs) -> checks.Rule:
    return checks.Rule("", expectation, "v", tuple(kwargs.items()))


CAP = {"max_date": checks.DELIVERY_DATE}
# (rule, delivery date): every expectation checks.checker handles, with and without its date
CASES = [
    (rule(NOT_NULL), D),
    (rule(IN_SET, value_set=("是", "否")), D),
    (rule(IN_SET, value_set=()), D),
    (rule(USCC), D),
    (rule(ID_NO, as_of=checks.DELIVERY_DATE), D),
    (rule(ID_NO, as_of=checks.DELIVERY_DATE), dt.date(2000, 2, 29)),
    (rule(ID_NO), D),
    *[(rule(DATE, date_format=f), D) for f in DATE_FORMATS],
    *[(rule(DATE, date_format=f, **CAP), D) for f in DATE_FORMATS],
    (rule(DATE, date_format="iso", **CAP), dt.date(2024, 2, 29)),
    (rule(MONTH), D),
    (rule(MONTH, **CAP), D),
    (rule(MONTH, **CAP), dt.date(2026, 10, 31)),
    (rule(TIMESTAMP), D),
    (rule(TIMESTAMP, **CAP), D),
    (rule(TIMESTAMP, **CAP), dt.date(2024, 2, 29)),
    (rule(TIMESTAMP, **CAP), dt.date(1940, 5, 31)),  # Shanghai's clocks jumped at the next midnight
    (rule(TIMESTAMP, **CAP), dt.date(1900, 12, 31)),  # local mean time (+08:05:43) until then
    (rule(TIMESTAMP, **CAP), dt.date(9999, 12, 31)),
    (rule(NUMBER, number_kind=INT), D),
    (rule(NUMBER, number_kind=DECIMAL), D),
    (rule(NUMBER, number_kind=SCORE), D),
    (rule(DISTRICT), D),
]
# the in_set rules of the feeds themselves (their value sets), DUPLICATE_KEY apart (a boolean column)
FEED_SETS = sorted(
    {
        r.args["value_set"]
        for f in FEEDS
        for r in checks.rules_for(f)
        if r.expectation == IN_SET and r.column != checks.DUPLICATE_NOT_LAST
    }
)
CASES += [(rule(IN_SET, value_set=s), D) for s in FEED_SETS]


def _case_id(case) -> str:
    r, when = case
    args = ",".join(f"{k}={'D' if v == checks.DELIVERY_DATE else v}" for k, v in r.kwargs)
    return f"{r.expectation.removeprefix('expect_column_values_to_')}({args})@{when}"


def _uscc(rnd: random.Random, first17: str | None = None) -> str:
    first17 = first17 or "".join(rnd.choice(ids.USCC_ALPHABET) for _ in range(17))
    return first17 + ids.uscc_check_char(first17)


def _id(rnd: random.Random, birth: str) -> str:
    first17 = f"{rnd.randrange(10**6):06d}{birth}{rnd.randrange(1000):03d}"
    return first17 + ids.id_check_char(first17)


# ---------------------------------------------------------------- (a) hand-written values

_R = random.Random(3)
COMMON = [
    "",
    " ",
    "\t",
    "\n",
    "0",
    "x",
    "null",
    "NULL",
    "None",
    "-",
    "\u3000",
    "０",
    "٣٠٠",
    "一千",
    "\U00020bb7",
    "😀",
    "a\u0000b",
    "4401",
    "4401\n",
    "\n4401",
    "9" * 5000,
    "x" * 10000,
    "1" * 10000 + "x",
    "'; DROP TABLE x; --",
    "是",
    "否",
    "是 ",
    "true",
    "false",
    "True",
]
ADVERSARIAL = {
    USCC: [
        _uscc(_R),
        _uscc(_R, "91440106MA5D0C0D1"),
        "91440104MA5D0C0D1M",
        "91440104ma5d0c0d1m",
        "91440104MA5D0C0D1m",
        *[_uscc(_R)[:5] + c + _uscc(_R)[6:] for c in "IOSVZ"],
        *["91440104MA5D0C0D1" + c for c in ids.USCC_ALPHABET + "IOSVZ"],
        "91440104MA5D0C0D1M ",
        "91440104MA5D0C0D1M\n",
        "91440104MA5D0C0D1MM",
        "91440104MA5D0C0D1",
        "0" * 18,
        "Y" * 18,
        "000000000000000000\n",
        "９１４４０１０４ＭＡ５Ｄ０Ｃ０Ｄ１Ｍ",
    ],
    ID_NO: [
        "44010619900202007X",
        "44010619900202007x",
        "440106199002020070",
        "44010619900202007",
        "44010619900202007X1",
        _id(_R, "20000229"),
        _id(_R, "19000229"),
        _id(_R, "20010229"),
        _id(_R, "19991231"),
        _id(_R, "00000101"),
        _id(_R, "00010101"),
        _id(_R, "99991231"),
        _id(_R, "20261101"),
        _id(_R, "20261102"),
        _id(_R, "20001301"),
        _id(_R, "20000132"),
        _id(_R, "20000100"),
        _id(_R, "20000431"),
        "٤٤٠١٠٦١٩٩٠٠٢٠٢٠٠٧X",
        "44010619900202007X\n",
        "+4010619900202007X",
        " 4010619900202007X",
        "440106199002020٣7" + ids.id_check_char("440106199002020٣7"),  # int() reads other scripts' digits
        "440106199002020x77",
    ],
    DATE: [
        "2026-11-01",
        "2026-11-02",
        "2026-10-31",
        "2024-02-29",
        "2023-02-29",
        "1900-02-29",
        "2000-02-29",
        "2100-02-29",
        "0000-01-01",
        "0001-01-01",
        "9999-12-31",
        "2026-13-01",
        "2026-00-10",
        "2026-04-31",
        "2026-1-01",
        "2026/11/01",
        "2026/13/01",
        "2024/02/29",
        "20261101",
        "20240229",
        "20230229",
        "20261345",
        "2026年11月1日",
        "2026年1月01日",
        "2026年02月29日",
        "2024年2月29日",
        "2026年011月1日",
        "2026年11月1",
        "2026-11-01\n",
        "2026-11-01 ",
        "２０２６-１１-０１",
        "٢٠٢٦-١١-٠١",
        "2026-11-01T00:00:00Z",
        "2026-11-0１",
    ],
    MONTH: [
        "2026-11",
        "2026-12",
        "2026-10",
        "2026-13",
        "2026-00",
        "0000-01",
        "0001-01",
        "9999-12",
        "2026-1",
        "2026/11",
        "202611",
        "2026-11\n",
        "2026-11-01",
        "٢٠٢٦-١١",
    ],
    TIMESTAMP: [
        "2026-10-01T12:00:00Z",
        "2026-10-01T12:00:00",
        "2026-10-01 12:00:00+08:00",
        "2026-10-01t12:00:00Z",
        "2026-10-01T12:00:00z",
        "2026-10-01T12:00Z",
        "2026-10-01T12Z",
        "2026-10-01T12:00:00.1Z",
        "2026-10-01T12:00:00.123456Z",
        "2026-10-01T12:00:00.123456789+08:00",
        "2026-10-01T12:00:00.1234567890Z",
        "2026-10-01T12:00:00.Z",
        "2026-10-01T12:00:00,5Z",
        "2026-10-01T12:00.5Z",
        "2026-10-01T24:00:00Z",
        "2026-10-01T23:60:00Z",
        "2026-10-01T23:59:60Z",
        "2026-10-01T12:00:00+08",
        "2026-10-01T12:00:00+0800",
        "2026-10-01T12:00:00+08:00:00",
        "2026-10-01T12:00:00+08:60",
        "2026-10-01T12:00:00+23:59",
        "2026-10-01T12:00:00-23:59",
        "2026-10-01T12:00:00+24:00",
        "2026-10-01T12:00:00-00:00",
        "2026-11-01T15:59:59.999999Z",  # 23:59:59.999999 in Shanghai on D
        "2026-11-01T16:00:00Z",  # 00:00 of D + 1 in Shanghai
        "2026-11-01T16:00:00.000001Z",
        "2026-11-01T23:59:59+08:00",
        "2026-11-02T00:00:00+08:00",
        "2026-11-02T00:00:00+08:01",
        "2026-11-01T23:59:59-23:59",  # far offsets: the Shanghai date is two days on
        "2026-11-02T23:59:59+23:59",
        "2026-11-03T07:58:00+23:59",
        "2024-02-29T12:00:00Z",
        "2023-02-29T12:00:00Z",
        "1900-02-29T12:00:00Z",
        "2026-W44-7T12:00:00Z",
        "2026-305T12:00:00Z",
        "20261101T120000Z",
        "2026-11-01T12:00:00Z\n",
        "2026-11-01T12:00:00Z ",
        "0000-12-31T23:00:00Z",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+00:01",
        "0001-01-01T07:59:59+08:00",
        "0001-01-01T08:00:00+08:00",
        "9999-12-31T15:59:59.999999Z",
        "9999-12-31T16:00:00Z",
        "9999-12-31T23:59:59+08:00",
        "9999-12-31T23:59:59+07:59",
        "9999-12-31T23:00:00-05:00",
        "1940-05-31T15:59:59Z",
        "1940-05-31T16:00:00Z",
        "1940-06-01T00:30:00+08:00",
        "1900-12-31T15:54:16Z",
        "1900-12-31T15:54:17Z",
        "1900-12-31T16:00:00Z",
        "2026-10-01T12:00:00Ｚ",
        "２０２６-10-01T12:00:00Z",
        "2026-10-01T12:00:00 Z",
        "2026-10-01T12:00:00+8:00",
    ],
    NUMBER: [
        "0",
        "-0",
        "+0",
        "00",
        "-0.00",
        "-0e5",
        "-0e-21",
        "0e-20",
        "0e-21",
        "0e999999999999999999",
        "0e1000000000000000000",
        "0.00000e1000000000000000004",
        "0.00000e1000000000000000005",
        "0e" + "0" * 30 + "5",
        "0e-9223372036854775808",
        "0e9223372036854775808",
        "0e99999999999999999999999999",
        "1",
        "+1",
        "-1",
        "1.",
        "5.",
        ".5",
        ".",
        "+.",
        "-.5",
        "1e5",
        "1E5",
        "1e+5",
        "1e-5",
        "1e-20",
        "1e-21",
        "1.5e-19",
        "1.5e-20",
        "1e13",
        "1e14",
        "9.9999e13",
        "99999999999999",
        "100000000000000",
        "99999999999999.99999999999999999999",
        "99999999999999.999999999999999999999",
        "0099999999999999",
        "00000000000000000005",
        "1" * 15,
        "1" * 14,
        "0.1e15",
        "0.01e16",
        "1e",
        "e5",
        "1e+",
        "1_000",
        "1,000",
        "1 000",
        " 1",
        "1 ",
        "\x1c1\x1f",
        "\x0b1",
        "1\n",
        "Infinity",
        "-Infinity",
        "inf",
        "NaN",
        "nan",
        "sNaN",
        "NaN1",
        "0x10",
        "100",
        "100.0",
        "100.00000000000000000001",
        "100.000000000000000000000",
        "1e2",
        "10e1",
        "0.1e3",
        "1000e-1",
        "101",
        "99.99999",
        "100.1",
        # the plain shapes judged by one regular expression (rule_columns._PLAIN_*) and their edges
        "0100",
        "00100.000",
        "100.",
        "0099.5",
        "0" * 30 + "1" * 14,
        "0" * 30 + "1" * 15,
        "7.00000000000000000001",
        "7.000000000000000000001",
        "12345678901234.",
        "105",
        "-5",
        "8O",
        "12,5a",
        "-1200.5",
        "壹万",
        "12.5",
        "-3",
        "١٢٠٠",
        "1200.5\u00a0",
        "1e-999999999",
        "1e30",
        "++1",
        "1e5.5",
        "1.2.3",
    ],
    DISTRICT: ["440104", "4401", "440", "44010", " 440104", "440304", "4401\n", "４４０１０５", "٤٤٠١٠٥"],
}
ADVERSARIAL[IN_SET] = ["是", "否", "是 ", " 否", "Y", "N", "true", "false", "否否", *(v for s in FEED_SETS for v in s)]
ADVERSARIAL[NOT_NULL] = []


# ---------------------------------------------------------------- (c) random values


def _pick(rnd: random.Random, alphabet: str, lo: int, hi: int) -> str:
    return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(lo, hi)))


def _mutate(rnd: random.Random, v: str, alphabet: str) -> str:
    """``v`` with a character changed, dropped, doubled or added (or none)."""
    if not v:
        return v
    i = rnd.randrange(len(v))
    k = rnd.randrange(5)
    if k == 0:
        return v[:i] + rnd.choice(alphabet) + v[i + 1 :]
    if k == 1:
        return v[:i] + v[i + 1 :]
    if k == 2:
        return v[:i] + v[i] + v[i:]
    if k == 3:
        return v[:i] + rnd.choice(alphabet) + v[i:]
    return v


def _digits(rnd: random.Random, n: int) -> str:
    return "".join(rnd.choice("0123456789") for _ in range(n))


def _ymd(rnd: random.Random) -> tuple[int, int, int]:
    y = rnd.choice([rnd.randint(1890, 2110), rnd.randint(0, 9999), 1900, 2000, 2024, 2100, 1, 9999, 0])
    return y, rnd.randint(0, 13), rnd.choice([rnd.randint(0, 32), 28, 29, 30, 31])


def random_values(expectation: str, rnd: random.Random, n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        if expectation == USCC:
            a = ids.USCC_ALPHABET
            v = _uscc(rnd) if rnd.random() < 0.6 else _pick(rnd, a, 16, 19)
            v = _mutate(rnd, v, a + "IOSVZabc")
        elif expectation == ID_NO:
            y, m, d = _ymd(rnd)
            v = _id(rnd, f"{y:04d}{m:02d}{d:02d}") if rnd.random() < 0.7 else _digits(rnd, 17) + "X"
            if rnd.random() < 0.3:
                v = _mutate(rnd, v, "0123456789Xx")
        elif expectation == DATE:
            y, m, d = _ymd(rnd)
            fmt = rnd.choice(list(DATE_FORMATS))
            v = {
                "iso": f"{y:04d}-{m:02d}-{d:02d}",
                "slash": f"{y:04d}/{m:02d}/{d:02d}",
                "compact": f"{y:04d}{m:02d}{d:02d}",
                "chinese": f"{y:04d}年{m}月{d}日" if rnd.random() < 0.5 else f"{y:04d}年{m:02d}月{d:02d}日",
            }[fmt]
            if rnd.random() < 0.2:
                v = _mutate(rnd, v, "0123456789-/年月日 ")
            if rnd.random() < 0.05:
                v = _pick(rnd, "0123456789-/年月日", 1, 12)
        elif expectation == MONTH:
            y, m, _ = _ymd(rnd)
            v = f"{y:04d}-{m:02d}" if rnd.random() < 0.9 else _pick(rnd, "0123456789-/", 5, 9)
            if rnd.random() < 0.15:
                v = _mutate(rnd, v, "0123456789-/")
        elif expectation == TIMESTAMP:
            y, mo, d = _ymd(rnd)
            if rnd.random() < 0.1:
                y, mo, d = rnd.choice([(1, 1, 1), (9999, 12, 31), (2026, 11, 1), (2026, 11, 2), (1940, 5, 31)])
            h, mi, s = rnd.randint(0, 25), rnd.randint(0, 61), rnd.randint(0, 61)
            if rnd.random() < 0.3:
                h, mi, s = rnd.choice([(15, 59, 59), (16, 0, 0), (23, 59, 59), (0, 0, 0), (7, 59, 59), (8, 0, 0)])
            t = f"{y:04d}-{mo:02d}-{d:02d}{rnd.choice('TTTT t')}{h:02d}:{mi:02d}"
            if rnd.random() < 0.8:
                t += f":{s:02d}"
                if rnd.random() < 0.4:
                    t += "." + _digits(rnd, rnd.choice([0, 1, 3, 6, 7, 9, 10]))
            oh, om = rnd.choice([0, 8, rnd.randint(0, 25)]), rnd.choice([0, 0, 30, 59, rnd.randint(0, 61)])
            off = rnd.choice(["Z", "Z", "z", "", f"+{oh:02d}:{om:02d}", f"-{oh:02d}:{om:02d}", f"+{oh:02d}{om:02d}"])
            v = t + off
            if rnd.random() < 0.1:
                v = _mutate(rnd, v, "0123456789-:T Z+.")
        elif expectation == NUMBER:
            if rnd.random() < 0.7:
                v = rnd.choice(["", "", "+", "-"]) + _digits(rnd, rnd.choice([0, 1, 2, 3, 14, 15, rnd.randint(0, 25)]))
                if rnd.random() < 0.5:
                    v += "." + _digits(rnd, rnd.choice([0, 1, 2, 20, 21, rnd.randint(0, 25)]))
                if rnd.random() < 0.3:
                    v += rnd.choice("eE") + rnd.choice(["", "+", "-"]) + _digits(rnd, rnd.randint(0, 3))
                if rnd.random() < 0.2:
                    v = rnd.choice(["0", "00", "1", "10", "100"]) + v.lstrip("+-")
            else:
                v = _pick(rnd, "0123456789.eE+- _", 1, 12)
        elif expectation == DISTRICT:
            v = rnd.choice(["4401", "440", "44", ""]) + _pick(rnd, "0123456789", 0, 4)
        elif expectation == IN_SET:
            v = _mutate(rnd, rnd.choice(ADVERSARIAL[IN_SET]), "是否合格 Y")
        else:  # not_null: any text
            v = _pick(rnd, "ab 0", 0, 3)
        out.append(v)
    return out


# ---------------------------------------------------------------- (b) generated deliveries


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, set[str]]:
    """The as-sent values of two generated dirty deliveries, by the expectation of their column."""
    root = tmp_path_factory.mktemp("rule_columns")
    dates = [dt.date(2026, 10, 31), D]
    summary = generate(root, 1500, dates, seed=16, dirty_rate=0.5, progress=lambda m: None)
    assert summary["dirty"][checks.BAD_DATE] > 20 and summary["dirty"][checks.BAD_NUMBER] > 20
    pools: dict[str, set[str]] = defaultdict(set)
    for f in FEEDS:
        for day in dates:
            path = root / f.dept / day.isoformat() / f.file
            if not path.exists():
                continue
            with open(path, "rb") as stream:
                for row in parse.iter_rows(stream, f):
                    if row.values is None:
                        continue
                    sent = checks.as_sent(f, row.values)
                    for r in checks.rules_for(f):
                        v = sent.get(r.column)
                        if isinstance(v, str):
                            pools[r.expectation].add(v)
    return pools


# ---------------------------------------------------------------- the comparison


def _disagreements(spark, case, values: list[str | None]) -> tuple[int, list]:
    from ecredit.quality.rule_columns import column_ok

    r, when = case
    df = spark.createDataFrame(list(enumerate(values)), "i long, v string")
    got = {row.i: row.ok for row in df.select("i", column_ok(r, sqlexpr.col("v"), when).alias("ok")).collect()}
    ok = checks.checker(r, when)
    bad = [(values[i], ok(values[i]), got[i]) for i in range(len(values)) if got[i] is not ok(values[i])]
    return len(bad), [(repr(v[:60]) if v else repr(v), py, sp) for v, py, sp in bad[:5]]


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_column_ok_is_value_ok(spark, generated, case):
    r, _ = case
    e = r.expectation
    rnd = random.Random(_case_id(case))
    values: list[str | None] = [None, *COMMON, *ADVERSARIAL[e]]
    values += sorted(generated.get(e, set()))
    values += random_values(e, rnd, RANDOM_PER_RULE)
    # the adversarial values of every other rule too
    values += [v for k, vs in ADVERSARIAL.items() if k != e for v in vs]
    n, examples = _disagreements(spark, case, values)
    assert n == 0, f"{n} of {len(values)} values disagree (value, value_ok, column_ok), e.g. {examples}"
    # the rule is not vacuous on these values: both outcomes occur
    ok = checks.checker(*case)
    outcomes = {ok(v) for v in values if v is not None}
    assert outcomes == {True, False} or e == NOT_NULL or r.args.get("value_set") == ()


def test_generated_values_cover_every_kind(generated):
    assert {USCC, ID_NO, DATE, MONTH, TIMESTAMP, NUMBER, DISTRICT, IN_SET, NOT_NULL} <= set(generated)
    ok = checks.checker(rule(TIMESTAMP, **CAP), D)
    stamps = generated[TIMESTAMP]
    assert sum(map(ok, stamps)) > 20 and sum(not ok(v) for v in stamps) > 3  # dirty ones among them


def test_duplicate_key_on_a_boolean_column(spark):
    from ecredit.quality.rule_columns import column_ok

    [dup] = [r for r in checks.rules_for(FEEDS[0]) if r.code == checks.DUPLICATE_KEY]
    values = [True, False, None, False, True]
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i long, v boolean")
    got = [row.ok for row in df.orderBy("i").select(column_ok(dup, sqlexpr.col("v"), D).alias("ok")).collect()]
    assert got == [checks.value_ok(dup, v, D) for v in values] == [False, True, True, True, False]  # type: ignore[arg-type]


def test_no_value_raises_under_ansi(spark):
    """The sessions run with ANSI SQL: a cast that fails raises there. Every rule on the hostile
    values in one job: it completes."""
    from ecredit.quality.rule_columns import column_ok

    assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    values = [None, *COMMON, *(v for vs in ADVERSARIAL.values() for v in vs)]
    df = spark.createDataFrame(list(enumerate(values)), "i long, v string")
    cols = [column_ok(r, sqlexpr.col("v"), when).alias(f"c{k}") for k, (r, when) in enumerate(CASES)]
    rows = df.select(*cols).collect()
    assert len(rows) == len(values) and all(x is not None for row in rows for x in row)
