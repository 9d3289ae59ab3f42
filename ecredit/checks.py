"""Row-level checks of ``quality.md``: one definition of each rule, as pure functions.

``check_row`` takes a row's raw values (already trimmed, null markers turned into None) and returns
the normalised values (dates as ISO strings, numbers as plain decimal strings, identifiers
normalised), every reason code that applies, and warnings. DUPLICATE_KEY needs the whole file and is
decided in the ingest transform; MALFORMED is decided by the parser.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Optional
from zoneinfo import ZoneInfo

from ecredit import ids
from ecredit.feeds import (
    DATE, DATE_FORMATS, DECIMAL, DISTRICT, ENUM, ID_NO, INT, MONTH, PII, RETIRED_DISTRICTS, SCORE,
    TIMESTAMP, USCC, Feed,
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
REASON_CODES = (MALFORMED, MISSING_REQUIRED, BAD_USCC, BAD_ID_NO, BAD_ENUM, BAD_DATE, BAD_NUMBER,
                BAD_DISTRICT, DUPLICATE_KEY)

RETIRED_DISTRICT = "RETIRED_DISTRICT"  # a warning that keeps the row

_DATE_RES = {k: re.compile(v[0]) for k, v in DATE_FORMATS.items()}
_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
_INT_RE = re.compile(r"^\d+$")


def parse_date(value: str, date_format: str) -> Optional[dt.date]:
    m = _DATE_RES[date_format].match(value)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def parse_month(value: str) -> Optional[dt.date]:
    m = _MONTH_RE.match(value)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        return None


def parse_timestamp(value: str) -> Optional[dt.datetime]:
    """ISO-8601 with a mandatory offset (``Z`` allowed), fractional seconds allowed."""
    if "T" not in value and " " not in value:
        return None
    try:
        ts = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


def shanghai_date(ts: dt.datetime) -> dt.date:
    return ts.astimezone(SHANGHAI).date()


def parse_decimal(value: str) -> Optional[Decimal]:
    try:
        d = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _plain(d: Decimal) -> str:
    s = format(d, "f")
    return s.rstrip("0").rstrip(".") if "." in s else s


def check_row(feed: Feed, values: dict, delivery_date: dt.date, pii_key: str):
    """Returns (normalised values without personal data, sorted reasons, sorted warnings,
    operator_key, natural_person)."""
    out: dict = {}
    reasons: set[str] = set()
    warnings: set[str] = set()
    for c in feed.columns:
        v = values.get(c.name)
        if c.kind in (USCC, ID_NO) and v is not None:
            v = ids.normalise(v)
        if v is None:
            if c.required:
                reasons.add(MISSING_REQUIRED)
            out[c.name] = None
            continue
        is_event = c.name == feed.event_date
        if c.kind == USCC:
            if not ids.uscc_valid(v):
                reasons.add(BAD_USCC)
        elif c.kind == ID_NO:
            if not ids.id_valid(v, delivery_date):
                reasons.add(BAD_ID_NO)
        elif c.kind == DATE:
            d = parse_date(v, feed.date_format)
            if d is None or (is_event and d > delivery_date and feed.feed_id != "customs.enterprise_credit"):
                reasons.add(BAD_DATE)
            v = d.isoformat() if d else v
        elif c.kind == MONTH:
            d = parse_month(v)
            if d is None or (is_event and d > delivery_date):
                reasons.add(BAD_DATE)
            v = d.isoformat()[:7] if d else v
        elif c.kind == TIMESTAMP:
            ts = parse_timestamp(v)
            if ts is None:
                reasons.add(BAD_DATE)
            else:
                local = shanghai_date(ts)
                if is_event and local > delivery_date:
                    reasons.add(BAD_DATE)
                out[c.name + "_date"] = local.isoformat()
                v = ts.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        elif c.kind in (DECIMAL, SCORE):
            d = parse_decimal(v)
            if d is None or d < 0 or (c.kind == SCORE and d > 100):
                reasons.add(BAD_NUMBER)
            else:
                v = _plain(d)
        elif c.kind == INT:
            if not _INT_RE.match(v):
                reasons.add(BAD_NUMBER)
            else:
                v = str(int(v))
        elif c.kind == ENUM:
            if v not in c.values:
                reasons.add(BAD_ENUM)
        elif c.kind == DISTRICT:
            if not v.startswith("4401"):
                reasons.add(BAD_DISTRICT)
            elif v in RETIRED_DISTRICTS:
                warnings.add(RETIRED_DISTRICT)
        out[c.name] = v

    uscc = out.get("uscc")
    id_no = out.pop("id_no", None)
    for c in feed.columns:  # personal data never leaves this function
        if c.kind == PII:
            out.pop(c.name, None)
    if feed.identifiers and uscc is None and id_no is None:
        reasons.add(MISSING_REQUIRED)
    key = None
    natural = False
    if uscc is not None and BAD_USCC not in reasons:
        key = uscc
    elif uscc is None and id_no is not None and BAD_ID_NO not in reasons:
        key = ids.np_key(id_no, pii_key)
        natural = True
    return out, sorted(reasons), sorted(warnings), key, natural


def masked_payload(feed: Feed, fields: list, values: Optional[dict]) -> dict:
    """A quarantined row's content for ``quarantine`` and ``rejections.csv``, personal data
    masked: ID numbers, personal names and phones become asterisks. A row that could not be
    split into the feed's columns is withheld except its length (it may hold anything)."""
    if values is not None:
        out = {}
        for c in feed.columns:
            v = values.get(c.name)
            out[c.source] = ("*" * len(v)) if (v is not None and c.kind in (ID_NO, PII)) else v
        return out
    if feed.fmt == "csv" and len(fields) == len(feed.columns):
        return {c.source: ("*" * len(f) if c.kind in (ID_NO, PII) else f)
                for c, f in zip(feed.columns, fields)}
    text = ",".join(fields)
    return {"_withheld": f"{len(fields)} fields, {len(text)} characters: content withheld, it may hold personal data"}
