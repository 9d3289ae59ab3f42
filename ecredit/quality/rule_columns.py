"""The row rules of ``quality.md`` as Spark column expressions.

``column_ok(rule, column, delivery_date)`` is true exactly when ``checks.value_ok(rule, value,
delivery_date)`` is, for every string value (a null passes every rule but ``not_null``). It is built
from Spark's own functions: no UDF, no Python per row, so the GX suites run as plain Spark jobs.
Nothing in it can raise under ``spark.sql.ansi.enabled`` (the sessions' setting): text becomes a
number only through ``try_cast`` after a regular expression vouched for its digits, and every
computation stays far inside a long. Dates are judged by integer arithmetic (leap years, days of the
month) and compared with the rule's date as integers; a timestamp's instant is counted in seconds
from the proleptic Gregorian day 1 (as Python's ``date.toordinal``), and its Shanghai date is
compared with the cap through the first instant of the day after the cap, which Python works out
with ``zoneinfo`` when the expression is built (the Shanghai date never goes back as time goes on).

The regular expressions are those of ``checks`` (``[0-9]``, no ``\\d``; whole-value matches), wrapped
in ``^(?:...)\\z`` for Java, whose ``$`` would also match before a final line break.
``tests/unit/test_rule_columns.py`` compares both definitions on adversarial, generated and random
values.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ecredit.core import checks, ids
from ecredit.core.feeds import DATE_FORMATS, INT, SCORE
from ecredit.ingest import sqlexpr as F
from ecredit.ingest.sqlexpr import E

_NOT_NULL = "expect_column_values_to_not_be_null"
_IN_SET = "expect_column_values_to_be_in_set"


def _whole(pattern: str) -> str:
    """A pattern of ``checks`` (valid in Python and Java, matched whole there) for Spark's ``rlike``
    and ``regexp_extract``, which search: anchored at both ends of the value."""
    return "^(?:" + pattern + r")\z"


def _date_pattern(date_format: str) -> str:
    p = DATE_FORMATS[date_format][0]
    assert p.startswith("^") and p.endswith("$"), p
    return _whole(p[1:-1].replace(r"\d", "[0-9]"))


def _group(column: E, pattern: str, idx: int) -> E:
    """Group ``idx`` of a whole-value match as a long; null when absent (no match, empty group)."""
    return F.regexp_extract(column, pattern, idx).try_cast("long")


def _leap(y: E) -> E:
    return ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)


def _days_in_month(y: E, m: E) -> E:
    return F.when(m == 2, F.when(_leap(y), 29).otherwise(28)).when(m.isin(4, 6, 9, 11), 30).otherwise(31)


def _calendar(y: E, m: E, d: E) -> E:
    """(y, m, d) is a date Python's ``datetime.date`` accepts (years 1..9999, proleptic Gregorian)."""
    return y.between(1, 9999) & m.between(1, 12) & (d >= 1) & (d <= _days_in_month(y, m))


def _day_number(d: dt.date) -> int:
    return d.year * 10000 + d.month * 100 + d.day


def _ymd(y: E, m: E, d: E) -> E:
    return y * 10000 + m * 100 + d


_DAYS_BEFORE_MONTH = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def _ordinal(y: E, m: E, d: E) -> E:
    """``date(y, m, d).toordinal()`` for a calendar date (a long)."""
    p = y - 1
    before_year = p * 365 + F.floor(p / 4) - F.floor(p / 100) + F.floor(p / 400)
    before_month = F.lit(0)
    for month, days in enumerate(_DAYS_BEFORE_MONTH, start=1):
        before_month = F.when(m == month, days).otherwise(before_month)
    return before_year + before_month + F.when((m > 2) & _leap(y), 1).otherwise(0) + d


def _seconds(t: dt.datetime) -> int:
    """A UTC instant (naive) in the seconds ``_ordinal`` counts."""
    return t.toordinal() * 86400 + t.hour * 3600 + t.minute * 60 + t.second


def _shanghai_bounds(cap: dt.date | None) -> tuple[int, int]:
    """[low, high): the instants (whole seconds) ``checks.parse_timestamp`` accepts (their UTC time
    and Shanghai date representable) and, with a cap, whose Shanghai date is not after it."""
    utc = dt.UTC
    low = _seconds(dt.datetime(1, 1, 1))  # UTC day 1; Shanghai is ahead of UTC on that day
    last = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=checks.SHANGHAI).astimezone(utc)
    high = _seconds(last.replace(tzinfo=None)) + 1
    if cap is not None and cap < dt.date.max:
        # the first instant whose Shanghai date is after the cap (a gap at midnight: fold 0 gives
        # the instant of the jump, which is that first instant)
        first = dt.datetime.combine(cap + dt.timedelta(days=1), dt.time(), checks.SHANGHAI).astimezone(utc)
        assert first.microsecond == 0
        assert checks.shanghai_date(first) > cap >= checks.shanghai_date(first - dt.timedelta(microseconds=1))
        high = min(high, _seconds(first.replace(tzinfo=None)))
    return low, high


# what ``Decimal()`` strips around a number (str.strip's ASCII white space)
_WS = r"[\t\n\x0B\f\r\x1C-\x1F ]*"
# a finite number in Decimal's syntax, ASCII: sign, integer digits, fraction digits, exponent
_DECIMAL = _whole(_WS + r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?" + _WS)
_MAX_EMAX = 999_999_999_999_999_999  # decimal.MAX_EMAX: a larger exponent does not convert
_CLAMP = 4 * 10**18  # exponents beyond fail every bound either way; inside, no long overflows
assert _MAX_EMAX < _CLAMP - 2**31 and -checks.MAX_FRACTION > -_CLAMP
_MAX_DIGITS = len(str(checks.MAX_NUMBER)) - 1  # a number below MAX_NUMBER has at most 14 integer digits
assert Decimal(10) ** _MAX_DIGITS == checks.MAX_NUMBER


# The plain numbers almost every value is, valid by their shape alone (one regular expression; the
# general rule below costs a dozen): digits, at most 14 once leading zeros are gone, then a point
# and at most MAX_FRACTION digits; a score at most 100.
_PLAIN_INT = rf"0*[0-9]{{1,{_MAX_DIGITS}}}"  # also the whole rule for a count
_PLAIN_FRACTION = rf"(?:\.[0-9]{{0,{checks.MAX_FRACTION}}})?"
_PLAIN_DECIMAL = _whole(_PLAIN_INT + _PLAIN_FRACTION)
_PLAIN_SCORE = _whole(r"0*(?:[0-9]{1,2}" + _PLAIN_FRACTION + rf"|100(?:\.0{{0,{checks.MAX_FRACTION}}})?)")


def _number_ok(column: E, number_kind: str) -> E:
    if number_kind == INT:  # ASCII digits, at most 14 once leading zeros are gone
        return column.rlike(_whole(_PLAIN_INT))
    plain = _PLAIN_SCORE if number_kind == SCORE else _PLAIN_DECIMAL
    return F.when(column.rlike(plain), F.lit(True)).otherwise(F.interpreted(_decimal_ok(column, number_kind)))


def _decimal_ok(column: E, number_kind: str) -> E:
    """Any number ``Decimal`` reads (signs, exponents, white space), judged by its parts."""
    sign = F.regexp_extract(column, _DECIMAL, 1)
    whole = F.regexp_extract(column, _DECIMAL, 2)
    fraction = F.regexp_extract(column, _DECIMAL, 3)
    exp_text = F.regexp_extract(column, _DECIMAL, 4)
    # the exponent as written, clamped; null when it has more than 19 significant digits
    exp_digits = F.regexp_replace(exp_text, "^[+-]?0*", "")
    written: E = F.when(exp_text == "", F.lit(0).cast("long")).when(
        F.length(exp_digits) <= 19, exp_text.try_cast("long")
    )
    written = F.greatest(F.least(written, F.lit(_CLAMP)), F.lit(-_CLAMP))
    exponent = written - F.length(fraction)  # of the last digit, as Decimal.as_tuple() has it
    digits = F.regexp_replace(F.concat(whole, fraction), "^0+", "")  # the coefficient, no leading zeros
    n = F.length(digits)
    adjusted = n - 1 + exponent  # the power of ten of the first digit
    converts = (
        column.rlike(_DECIMAL)
        & (F.length(whole) + F.length(fraction) > 0)
        & exponent.between(-checks.MAX_FRACTION, _MAX_EMAX)
    )
    in_range = (n == 0) | ((sign != "-") & (adjusted < _MAX_DIGITS))  # 0 <= d < 10^14 (-0 is 0)
    if number_kind == SCORE:  # d <= 100
        in_range = in_range & (
            (n == 0) | (adjusted < 2) | ((adjusted == 2) & (F.regexp_replace(digits, "0+$", "") == "1"))
        )
    return converts & in_range


def _weighted(column: E, weights: tuple[int, ...], digit) -> E:
    total: E = F.lit(0)
    for i, w in enumerate(weights, start=1):
        total = total + digit(F.substring(column, i, 1)) * w
    return total


def _uscc_ok(column: E) -> E:
    alphabet = F.lit(ids.USCC_ALPHABET)

    def value(ch: E) -> E:  # its index in the alphabet
        return F.position(ch, alphabet) - 1

    total = _weighted(column, ids.USCC_WEIGHTS, value)
    check = F.substr(alphabet, F.pmod(31 - F.pmod(total, F.lit(31)), F.lit(31)) + 1, F.lit(1))
    return (
        column.rlike(_whole("[" + ids.USCC_ALPHABET + "]{18}"))
        & (F.length(column) == 18)
        & (F.substring(column, 18, 1) == check)
    )


def _id_ok(column: E, as_of: dt.date | None) -> E:
    total = _weighted(column, ids.ID_WEIGHTS, lambda ch: ch.try_cast("long"))
    check = F.substr(F.lit(ids.ID_CHECK_CHARS), F.pmod(total, F.lit(11)) + 1, F.lit(1))
    y = F.substring(column, 7, 4).try_cast("long")
    m = F.substring(column, 11, 2).try_cast("long")
    d = F.substring(column, 13, 2).try_cast("long")
    ok = (
        column.rlike(_whole("[0-9]{17}[" + ids.ID_CHECK_CHARS + "]"))
        & (F.substring(column, 18, 1) == check)
        & _calendar(y, m, d)
    )
    return ok if as_of is None else ok & (_ymd(y, m, d) <= _day_number(as_of))


def _digits_at(column: E, start: int, length: int) -> E:
    """The digits at a fixed place of a value whose shape a pattern vouched for (cheaper than a
    regular expression's group)."""
    return F.substring(column, start, length).try_cast("long")


def _date_ok(column: E, date_format: str, cap: dt.date | None) -> E:
    p = _date_pattern(date_format)
    if date_format in ("iso", "slash"):  # YYYY-MM-DD, YYYY/MM/DD
        y, m, d = _digits_at(column, 1, 4), _digits_at(column, 6, 2), _digits_at(column, 9, 2)
    elif date_format == "compact":  # YYYYMMDD
        y, m, d = _digits_at(column, 1, 4), _digits_at(column, 5, 2), _digits_at(column, 7, 2)
    else:
        y, m, d = (_group(column, p, i) for i in (1, 2, 3))
    ok = column.rlike(p) & _calendar(y, m, d)
    return ok if cap is None else ok & (_ymd(y, m, d) <= _day_number(cap))


def _month_ok(column: E, cap: dt.date | None) -> E:
    p = _whole(checks.MONTH_PATTERN)
    y, m = _digits_at(column, 1, 4), _digits_at(column, 6, 2)
    ok = column.rlike(p) & y.between(1, 9999) & m.between(1, 12)
    return ok if cap is None else ok & (_ymd(y, m, F.lit(1)) <= _day_number(cap))


def _timestamp_ok(column: E, cap: dt.date | None) -> E:
    p = _whole(checks.TIMESTAMP_PATTERN)
    # the pattern fixes the places: YYYY-MM-DDTHH:MM, then :SS or not, ..., then Z or ±HH:MM
    y, mo, d = _digits_at(column, 1, 4), _digits_at(column, 6, 2), _digits_at(column, 9, 2)
    h, mi = _digits_at(column, 12, 2), _digits_at(column, 15, 2)
    s = F.when(F.substring(column, 17, 1) == ":", _digits_at(column, 18, 2)).otherwise(F.lit(0))
    zulu = column.endswith("Z")
    oh = F.when(zulu, F.lit(0)).otherwise(_digits_at(column, -5, 2))
    om = F.when(zulu, F.lit(0)).otherwise(_digits_at(column, -2, 2))
    offset = (oh * 3600 + om * 60) * F.when(~zulu & (F.substring(column, -6, 1) == "-"), -1).otherwise(1)
    instant = _ordinal(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset
    low, high = _shanghai_bounds(cap)
    return (
        column.rlike(p)
        & _calendar(y, mo, d)
        & (h <= 23)
        & (mi <= 59)
        & (s <= 59)
        & (oh <= 23)
        & (om <= 59)
        & instant.between(low, high - 1)
    )


def column_ok(rule: checks.Rule, column: E, delivery_date: dt.date | None) -> E:
    """True exactly where ``checks.value_ok(rule, value, delivery_date)`` is; never null."""
    e = rule.expectation
    if e == _NOT_NULL:
        return column.isNotNull()
    a = rule.args
    cap = delivery_date if a.get("max_date") == checks.DELIVERY_DATE else None
    if e == _IN_SET:
        allowed = list(a["value_set"])
        ok = column.isin(allowed) if allowed else F.lit(False)
    elif e == "expect_column_values_to_be_valid_uscc":
        ok = _uscc_ok(column)
    elif e == "expect_column_values_to_be_valid_id_no":
        ok = _id_ok(column, delivery_date if a.get("as_of") == checks.DELIVERY_DATE else None)
    elif e == "expect_column_values_to_be_valid_date":
        ok = _date_ok(column, a["date_format"], cap)
    elif e == "expect_column_values_to_be_valid_month":
        ok = _month_ok(column, cap)
    elif e == "expect_column_values_to_be_valid_timestamp":
        ok = _timestamp_ok(column, cap)
    elif e == "expect_column_values_to_be_valid_number":
        ok = _number_ok(column, a["number_kind"])
    elif e == "expect_column_values_to_be_valid_district":
        ok = column.rlike(_whole(checks.DISTRICT_PATTERN))
    else:
        raise ValueError(f"no definition for {e}")
    return F.when(column.isNull(), F.lit(True)).otherwise(F.coalesce(ok, F.lit(False)))
