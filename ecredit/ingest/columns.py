"""What the row checks derive from a row's values, as Spark column expressions (no Python per row;
issue 16): the natural person's ``NP-`` key (HMAC-SHA256 built from ``sha2``), dates as ISO,
timestamps in UTC and their Shanghai date, numbers as plain decimals, the record key's string.
``engine.checked`` builds the engine's checks from them (``load.parse_rows(..., engine_checks=True)``;
not the default yet, decision 108); expressions are ``sqlexpr`` SQL text.

Each function is the engine's form of a pure Python function of ``ecredit.core``, which stays the
reference its test compares it with on every kind of value (``tests/unit/test_engine_columns.py``):
``ids.np_key`` (证件号码 → 自然人 key), ``checks._normalised`` (规范化), ``load.key_string``. They
are applied to values that passed their rule (``checks.value_ok``): what a failed value would give
is never stored.
"""

from __future__ import annotations

import hashlib

from ecredit.core import checks, ids
from ecredit.core.feeds import DATE_FORMATS, DECIMAL, INT, SCORE, Feed
from ecredit.ingest import sqlexpr as F
from ecredit.ingest.sqlexpr import E

SHA256_BLOCK = 64  # bytes: HMAC pads (or hashes) the key to the hash's block size (RFC 2104)


def _hmac_pads(key: str) -> tuple[bytes, bytes]:
    k = key.encode("utf-8")
    if len(k) > SHA256_BLOCK:
        k = hashlib.sha256(k).digest()
    k = k.ljust(SHA256_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)


def hmac_sha256_hex(message: E, key: str) -> E:
    """HMAC-SHA256(key, UTF-8 of ``message``) as 64 lower-case hex digits (RFC 2104):
    ``H((K ^ opad) || H((K ^ ipad) || m))``. The key's pads are constants of the plan: the key
    itself never becomes a literal (``explain`` shows the pads, from which it can be worked out —
    a plan is not published anywhere)."""
    ipad, opad = _hmac_pads(key)
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), F.encode(message, "UTF-8")), 256))
    return F.sha2(F.concat(F.lit(opad), inner), 256)


def np_key(id_no: E, pii_key: str) -> E:
    """``ids.np_key``: ``NP-`` + the first 16 hex digits of HMAC-SHA256(CREDIT_PII_KEY, ID number)."""
    return F.concat(F.lit(ids.NP_PREFIX), F.substring(hmac_sha256_hex(id_no, pii_key), 1, 16))


def iso_date(value: E, date_format: str) -> E:
    """A date that passed its rule in the feed's format (``feeds.DATE_FORMATS``) as YYYY-MM-DD."""
    pattern = DATE_FORMATS[date_format][0]
    y, m, d = (F.regexp_extract(value, pattern, i).cast("int") for i in (1, 2, 3))
    return F.format_string("%04d-%02d-%02d", y, m, d)


# A valid decimal is below 10^14 with at most 20 digits after the point (checks.MAX_NUMBER,
# checks.MAX_FRACTION): 34 digits, exact in DECIMAL(38, 20).
_DECIMAL = "decimal(38,20)"


def plain_number(value: E, kind: str) -> E:
    """``checks._plain``: a number that passed its rule as Python's ``format(Decimal(v), 'f')``
    without trailing zeros or point (``1E+5`` → ``100000``, ``1.50`` → ``1.5``, ``-0.0`` → ``-0``);
    an integer count without leading zeros (``007`` → ``7``)."""
    if kind == INT:
        return F.regexp_replace(value, r"^0+(?=[0-9])", "")
    if kind not in (DECIMAL, SCORE):
        raise ValueError(f"plain_number: not a number kind: {kind}")
    text = value.try_cast(_DECIMAL).cast("string")  # scale 20: always a point, then 20 digits
    stripped = F.regexp_replace(F.regexp_replace(text, "0+$", ""), r"\.$", "")
    # a valid number is >= 0: a sign can only stand before a zero, which Python keeps ('-0')
    return F.when(value.startswith("-"), F.concat(F.lit("-"), stripped)).otherwise(stripped)


_TIMESTAMP = "^" + checks.TIMESTAMP_PATTERN + "$"


def _utc_wall_clock(value: E) -> tuple[E, E]:
    """A timestamp that passed its rule (``checks.TIMESTAMP_PATTERN``, decision 97) as its UTC
    wall-clock time (TIMESTAMP_NTZ, whole seconds) and its microseconds (the fraction cut to 6)."""
    g = {i: F.regexp_extract(value, _TIMESTAMP, i) for i in range(1, 11)}
    y, mo, d, h, mi = (g[i].cast("int") for i in (1, 2, 3, 4, 5))
    sec = F.when(g[6] == "", 0).otherwise(g[6].cast("int"))
    micro = F.when(g[7] == "", 0).otherwise(F.rpad(F.substring(g[7], 1, 6), 6, "0").cast("int"))
    wall = F.make_timestamp_ntz(y, mo, d, h, mi, sec)
    sign = F.when(g[8] == "-", -1).otherwise(1)
    hours = F.when(g[9] == "", 0).otherwise(g[9].cast("int")) * sign
    minutes = F.when(g[10] == "", 0).otherwise(g[10].cast("int")) * sign
    return wall - F.make_dt_interval(F.lit(0), hours, minutes), micro


def utc_timestamp(value: E) -> E:
    """``checks._normalised`` of a timestamp: UTC, ISO-8601 with ``Z``, microseconds shown when not
    zero (Python's ``isoformat``)."""
    utc, micro = _utc_wall_clock(value)
    fraction = F.when(micro != 0, F.concat(F.lit("."), F.lpad(micro.cast("string"), 6, "0"))).otherwise(F.lit(""))
    return F.concat(F.date_format(utc, "yyyy-MM-dd'T'HH:mm:ss"), fraction, F.lit("Z"))


def shanghai_date(value: E) -> E:
    """The Shanghai date (YYYY-MM-DD) of a timestamp that passed its rule (``checks.shanghai_date``)."""
    utc, _ = _utc_wall_clock(value)
    local = F.convert_timezone(F.lit("UTC"), F.lit(checks.SHANGHAI.key), utc)
    return F.date_format(local, "yyyy-MM-dd")


def key_string(feed: Feed, values: dict[str, E], operator_key: E) -> E:
    """``load.key_string``: the record key's parts joined by '|', null when a part is null."""
    parts: list[E] = []
    for k in feed.key:
        if parts:
            parts.append(F.lit("|"))
        parts.append(operator_key if k == "operator_key" else values[k])
    return F.concat(*parts)
