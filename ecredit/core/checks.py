"""Row-level checks of ``quality.md``: one definition of each rule, as pure functions.

``check_row`` takes a row's raw values (already trimmed, null markers turned into None) and returns
the normalised values (dates as ISO strings, numbers as plain decimal strings, identifiers
normalised), every reason code that applies, and warnings. DUPLICATE_KEY needs the whole file and is
decided in the ingest transform; MALFORMED is decided by the parser.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from ecredit.core import ids
from ecredit.core.feeds import (
    DATE,
    DATE_FORMATS,
    DECIMAL,
    DISTRICT,
    ENUM,
    ID_NO,
    INT,
    MONTH,
    PII,
    RETIRED_DISTRICTS,
    SCORE,
    TIMESTAMP,
    USCC,
    Feed,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")

MISSING_REQUIRED = "MISSING_REQUIRED"
BAD_USCC = "BAD_USCC"
BAD_ID_NO = "BAD_ID_NO"
BAD_ENUM = "BAD_ENUM"
BAD_DATE = "BAD_DATE"
BAD_NUMBER = "BAD_NUMBER"
BAD_DISTRICT = "BAD_DISTRICT"
DUPLICATE_KEY = "DUPLICATE_KEY"
MALFORMED = "MALFORMED"
REASON_CODES = (
    MALFORMED,
    MISSING_REQUIRED,
    BAD_USCC,
    BAD_ID_NO,
    BAD_ENUM,
    BAD_DATE,
    BAD_NUMBER,
    BAD_DISTRICT,
    DUPLICATE_KEY,
)

# Warnings (quality.md: they keep the row or the file). A row's: a retired Guangzhou district code.
# A file's, found by the gate in its header: the feed's columns in another order than feeds.md
# (the file is read by the header's names), an unknown extra column (ignored).
RETIRED_DISTRICT = "RETIRED_DISTRICT"
COLUMNS_REORDERED = "COLUMNS_REORDERED"
EXTRA_COLUMN = "EXTRA_COLUMN"
WARNING_TEXT = {
    RETIRED_DISTRICT: "a retired Guangzhou district code (" + ", ".join(RETIRED_DISTRICTS) + "); the row is kept",
    COLUMNS_REORDERED: "columns in another order than feeds.md; the file is read by its header's names",
    EXTRA_COLUMN: "an unknown extra column, ignored (its values are never stored)",
}

# ASCII digits only: values are NFKC-normalised first (``as_sent``), so full-width digits pass and
# digits of other scripts do not.
# A value matches a pattern whole (``fullmatch``: ``$`` would also match before a final line break).
# The patterns below are read the same by Python and Java (``[0-9]``): the Spark columns of the rules
# (``ecredit.quality.rule_columns``) use them too.
_DATE_RES = {k: re.compile(v[0], re.ASCII) for k, v in DATE_FORMATS.items()}
MONTH_PATTERN = r"([0-9]{4})-([0-9]{2})"
INT_PATTERN = r"[0-9]+"
# Extended ISO-8601 (decision 97): date, 'T' or a space, HH:MM[:SS[.fraction of 1-9 digits]], and a
# mandatory offset, Z or ±HH:MM. Groups: year, month, day, hour, minute, second, fraction, offset
# sign, hours, minutes.
TIMESTAMP_PATTERN = (
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))"
)
# A Guangzhou district code (所属区划): six ASCII digits starting 4401 (feeds.md: "6-digit division
# code, 4401xx"; decision 107: a code, not any text after the prefix).
DISTRICT_PATTERN = r"4401[0-9]{2}"
_MONTH_RE = re.compile(MONTH_PATTERN)
_DISTRICT_RE = re.compile(DISTRICT_PATTERN)
_INT_RE = re.compile(INT_PATTERN)
_TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)
# Amounts and counts must stay below this (in the column's own unit): the warehouse holds amounts
# up to 10^18 yuan (NUMERIC(20, 2)), and amounts in 万元 are multiplied by 10^4.
MAX_NUMBER = Decimal(10) ** 14
MAX_FRACTION = 20
# Kinds whose values are normalised like identifiers (NFKC, trimmed) before they are judged.
NFKC_KINDS = (DATE, MONTH, TIMESTAMP, DECIMAL, INT, SCORE, DISTRICT)


def parse_date(value: str, date_format: str) -> dt.date | None:
    m = _DATE_RES[date_format].fullmatch(value)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def parse_month(value: str) -> dt.date | None:
    m = _MONTH_RE.fullmatch(value)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        return None


def parse_timestamp(value: str) -> dt.datetime | None:
    """``TIMESTAMP_PATTERN`` (decision 97): ``YYYY-MM-DD``, ``T`` or a space, ``HH:MM``, optional
    ``:SS`` and a fraction of 1-9 digits (kept to the microsecond, cut, not rounded), and an offset
    ``Z`` or ``±HH:MM`` (hours 0-23, minutes 0-59); a calendar date and time, whose UTC time and
    Shanghai date are representable (years 1-9999)."""
    m = _TIMESTAMP_RE.fullmatch(value)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, sign, oh, om = m.groups()
    if sign and (int(oh) > 23 or int(om) > 59):
        return None
    offset = dt.timedelta(hours=int(oh), minutes=int(om)) if sign else dt.timedelta(0)
    try:
        ts = dt.datetime(
            int(y),
            int(mo),
            int(d),
            int(h),
            int(mi),
            int(s or 0),
            int((frac or "0")[:6].ljust(6, "0")),
            dt.timezone(-offset if sign == "-" else offset),
        )
        ts.astimezone(dt.UTC)
        shanghai_date(ts)
    except (ValueError, OverflowError):  # not a calendar date or time; out of datetime's range
        return None
    return ts


def shanghai_date(ts: dt.datetime) -> dt.date:
    return ts.astimezone(SHANGHAI).date()


def parse_decimal(value: str) -> Decimal | None:
    if not value.isascii() or "_" in value:  # Decimal() would read "1_000"; "1,000" is no number either
        return None
    try:
        d = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    # finite, and at most MAX_FRACTION digits after the point ("1e-999999999" would print a billion)
    exponent = d.as_tuple().exponent  # an int for a finite number ('n', 'N', 'F' otherwise)
    return d if isinstance(exponent, int) and exponent >= -MAX_FRACTION else None


def _plain(d: Decimal) -> str:
    s = format(d, "f")
    return s.rstrip("0").rstrip(".") if "." in s else s


# ---------------------------------------------------------------- the rules, as data

DELIVERY_DATE = "$delivery_date"  # a rule parameter that is the delivery's date
IDENTIFIER = "_identifier"  # computed: the USCC or else the ID number (both null: MISSING_REQUIRED)
DUPLICATE_NOT_LAST = "_duplicate_not_last"  # computed by the ingest transform over the whole file
# The values as sent (``as_sent``), a column of the ingest job's parsed frame that the GX suites
# judge (``expectations.file_frame``); it lives in executor memory only, never written.
AS_SENT = "as_sent"


@dataclass(frozen=True)
class Rule:
    """One row rule of quality.md on one column: its reason code, the Great Expectations
    expectation that expresses it, and that expectation's arguments."""

    code: str
    expectation: str
    column: str
    kwargs: tuple = ()  # ((name, value), ...); DELIVERY_DATE stands for the delivery's date

    @property
    def args(self) -> dict:
        return dict(self.kwargs)


def rules_for(feed: Feed) -> list[Rule]:
    """Every row rule of the feed, derived from the registry; the GX suite and the row split are
    both built from this list, and both evaluate it with ``value_ok``."""
    out: list[Rule] = []
    for c in feed.columns:
        if c.kind == PII:
            continue
        if c.required:
            out.append(Rule(MISSING_REQUIRED, "expect_column_values_to_not_be_null", c.name))
        event_cap = (
            (("max_date", DELIVERY_DATE),)
            if (c.name == feed.event_date and feed.feed_id != "customs.enterprise_credit")
            else ()
        )
        if c.kind == USCC:
            out.append(Rule(BAD_USCC, "expect_column_values_to_be_valid_uscc", c.name))
        elif c.kind == ID_NO:
            out.append(Rule(BAD_ID_NO, "expect_column_values_to_be_valid_id_no", c.name, (("as_of", DELIVERY_DATE),)))
        elif c.kind == DATE:
            out.append(
                Rule(
                    BAD_DATE,
                    "expect_column_values_to_be_valid_date",
                    c.name,
                    (("date_format", feed.date_format),) + event_cap,
                )
            )
        elif c.kind == MONTH:
            out.append(Rule(BAD_DATE, "expect_column_values_to_be_valid_month", c.name, event_cap))
        elif c.kind == TIMESTAMP:
            out.append(Rule(BAD_DATE, "expect_column_values_to_be_valid_timestamp", c.name, event_cap))
        elif c.kind in (DECIMAL, SCORE, INT):
            out.append(Rule(BAD_NUMBER, "expect_column_values_to_be_valid_number", c.name, (("number_kind", c.kind),)))
        elif c.kind == ENUM:
            out.append(Rule(BAD_ENUM, "expect_column_values_to_be_in_set", c.name, (("value_set", tuple(c.values)),)))
        elif c.kind == DISTRICT:
            out.append(Rule(BAD_DISTRICT, "expect_column_values_to_be_valid_district", c.name))
    if feed.identifiers:
        out.append(Rule(MISSING_REQUIRED, "expect_column_values_to_not_be_null", IDENTIFIER))
    out.append(Rule(DUPLICATE_KEY, "expect_column_values_to_be_in_set", DUPLICATE_NOT_LAST, (("value_set", (False,)),)))
    return out


def value_ok(rule: Rule, value: str | None, delivery_date: dt.date | None) -> bool:
    """The one definition of every rule: does this value pass it? A null passes every rule but
    ``not_null`` (as in Great Expectations' column map expectations)."""
    return checker(rule, delivery_date)(value)


@functools.lru_cache(maxsize=4096)
def checker(rule: Rule, delivery_date: dt.date | None) -> Callable[[str | None], bool]:
    """``value_ok`` for one rule and delivery date, as a function of the value: the rule's
    arguments are looked up once, not once per row (the parse calls it ~15 times a row)."""
    e = rule.expectation
    if e == "expect_column_values_to_not_be_null":
        return lambda value: value is not None
    a = rule.args
    cap = delivery_date if a.get("max_date") == DELIVERY_DATE else None
    if e == "expect_column_values_to_be_in_set":
        allowed = a["value_set"]
        return lambda value: value is None or value in allowed
    if e == "expect_column_values_to_be_valid_uscc":
        return lambda value: value is None or ids.uscc_valid(value)
    if e == "expect_column_values_to_be_valid_id_no":
        as_of = delivery_date if a.get("as_of") == DELIVERY_DATE else None
        return lambda value: value is None or ids.id_valid(value, as_of)
    if e == "expect_column_values_to_be_valid_date":
        fmt = a["date_format"]

        def date_ok(value) -> bool:
            if value is None:
                return True
            d = parse_date(value, fmt)
            return d is not None and (cap is None or d <= cap)

        return date_ok
    if e == "expect_column_values_to_be_valid_month":

        def month_ok(value) -> bool:
            if value is None:
                return True
            d = parse_month(value)
            return d is not None and (cap is None or d <= cap)

        return month_ok
    if e == "expect_column_values_to_be_valid_timestamp":

        def timestamp_ok(value) -> bool:
            if value is None:
                return True
            ts = parse_timestamp(value)
            return ts is not None and (cap is None or shanghai_date(ts) <= cap)

        return timestamp_ok
    if e == "expect_column_values_to_be_valid_number":
        if a["number_kind"] == INT:
            return lambda value: (
                value is None or (bool(_INT_RE.fullmatch(value)) and len(value.lstrip("0")) <= 14)
            )  # < MAX_NUMBER
        top = 100 if a["number_kind"] == SCORE else None

        def number_ok(value) -> bool:
            if value is None:
                return True
            d = parse_decimal(value)
            return d is not None and 0 <= d < MAX_NUMBER and (top is None or d <= top)

        return number_ok
    if e == "expect_column_values_to_be_valid_district":
        return lambda value: value is None or _DISTRICT_RE.fullmatch(value) is not None
    raise ValueError(f"no definition for {e}")


def _normalised(feed: Feed, c, v: str) -> tuple[str, str | None]:
    """(value to store, extra derived value) once the value passed its rules: dates as ISO,
    timestamps in UTC with their Shanghai date, numbers as plain decimals."""
    if c.kind == DATE:
        day = parse_date(v, feed.date_format)
        assert day is not None, "a value that passed its date rule parses"
        return day.isoformat(), None
    if c.kind == MONTH:
        return v, None
    if c.kind == TIMESTAMP:
        ts = parse_timestamp(v)
        assert ts is not None, "a value that passed its timestamp rule parses"
        return ts.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"), shanghai_date(ts).isoformat()
    if c.kind in (DECIMAL, SCORE):
        number = parse_decimal(v)
        assert number is not None, "a value that passed its number rule parses"
        return _plain(number), None
    if c.kind == INT:
        return str(int(v)), None
    return v, None


_RULES: dict = {}


def _nfkc(value: str | None) -> str | None:
    if value is None:
        return None
    return unicodedata.normalize("NFKC", value).strip() or None


def as_sent(feed: Feed, values: dict) -> dict:
    """The values the rules judge (and the GX suites see): as sent (trimmed, null markers null),
    identifiers normalised (``ids.normalise``), numbers, dates and district codes NFKC-normalised
    (full-width digits are digits), personal names and phones left out, plus the computed
    ``_identifier``. Holds the ID number: it stays in memory, never written."""
    vals = {
        c.name: (
            ids.normalise(values.get(c.name))
            if c.kind in (USCC, ID_NO)
            else _nfkc(values.get(c.name))
            if c.kind in NFKC_KINDS
            else values.get(c.name)
        )
        for c in feed.columns
        if c.kind != PII
    }
    vals[IDENTIFIER] = vals.get("uscc") or vals.get("id_no")
    return vals


def check_row(feed: Feed, values: dict, delivery_date: dt.date, pii_key: str):
    """Returns (normalised values without personal data, sorted reasons, sorted warnings,
    operator_key, natural_person). DUPLICATE_KEY is decided over the whole file by the ingest
    transform; MALFORMED by the parser."""
    return check_sent(feed, as_sent(feed, values), delivery_date, pii_key)


def check_sent(feed: Feed, vals: dict, delivery_date: dt.date, pii_key: str):
    """``check_row`` on values already through ``as_sent`` (the parser keeps them for GX)."""
    rules = _RULES.get((feed.feed_id, delivery_date))
    if rules is None:
        rules = _RULES[(feed.feed_id, delivery_date)] = [
            (r, r.column, checker(r, delivery_date)) for r in rules_for(feed) if r.column != DUPLICATE_NOT_LAST
        ]
    broken = [r for r, column, ok in rules if not ok(vals.get(column))]
    failed = {r.column for r in broken}
    reasons = sorted({r.code for r in broken})
    warnings = []
    out: dict = {}
    for c in feed.columns:
        if c.kind in (PII, ID_NO):
            continue
        v = vals[c.name]
        if v is not None and c.name not in failed:
            v, extra = _normalised(feed, c, v)
            if extra is not None:
                out[c.name + "_date"] = extra
            if c.kind == DISTRICT and v in RETIRED_DISTRICTS:
                warnings.append(RETIRED_DISTRICT)
        out[c.name] = v
    uscc, id_no = vals.get("uscc"), vals.get("id_no")
    key, natural = None, False
    if uscc is not None and BAD_USCC not in reasons:
        key = uscc
    elif uscc is None and id_no is not None and BAD_ID_NO not in reasons:
        key = ids.np_key(id_no, pii_key)
        natural = True
    return out, reasons, warnings, key, natural


def masked_payload(feed: Feed, fields: list, values: dict | None, header: list | None = None) -> dict:
    """A quarantined row's content for ``quarantine`` and ``rejections.csv``, personal data
    masked: ID numbers, personal names and phones become asterisks. Only the feed's own columns
    are shown, under the department's header names, in feeds.md's order: an unknown extra column
    is never shown (it may hold anything). A MALFORMED CSV row (``values`` None) is matched to
    the names of the file's own ``header`` when it split into exactly as many fields as that
    header has (a NUL, undecodable bytes), never by position against feeds.md's order; any other
    row that could not be split into the header's columns is withheld except its length (it may
    hold anything)."""
    if values is not None:
        out = {}
        for c in feed.columns:
            v = values.get(c.name)
            out[c.source] = ("*" * len(v)) if (v is not None and c.kind in (ID_NO, PII)) else v
        return out
    if feed.fmt == "csv" and header is not None and len(fields) == len(header):
        sent = dict(zip(header, fields))  # a header naming a known column twice is rejected by the gate
        return {
            c.source: ("*" * len(sent[c.source]) if c.kind in (ID_NO, PII) else sent[c.source])
            for c in feed.columns
            if c.source in sent
        }
    text = ",".join(fields)
    return {"_withheld": f"{len(fields)} fields, {len(text)} characters: content withheld, it may hold personal data"}
