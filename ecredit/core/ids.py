"""Identifiers: 统一社会信用代码 (USCC, GB 32100-2015), 证件号码 (resident ID, GB 11643), and the
operator key. Pure functions, used by the generator, the parser, the quality rules and the tests.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import unicodedata

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"

NP_PREFIX = "NP-"


def normalise(value: str | None) -> str | None:
    """NFKC (full-width to half-width), trimmed, upper-cased; None and '' stay None."""
    if value is None:
        return None
    v = unicodedata.normalize("NFKC", value).strip().upper()
    return v or None


def uscc_check_char(first17: str) -> str:
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


@functools.lru_cache(maxsize=1 << 16)  # an operator's code recurs in many rows of a file
def uscc_valid(code: str | None) -> bool:
    """Length 18, alphabet without I O S V Z, correct check character. Expects a normalised code."""
    if code is None or len(code) != 18 or any(c not in _USCC_VALUE for c in code):
        return False
    return uscc_check_char(code[:17]) == code[17]


def id_check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS))
    return ID_CHECK_CHARS[total % 11]


def id_birth_date(id_no: str) -> dt.date | None:
    try:
        return dt.date(int(id_no[6:10]), int(id_no[10:12]), int(id_no[12:14]))
    except ValueError:
        return None


def id_valid(id_no: str | None, as_of: dt.date | None = None) -> bool:
    """18 characters, 17 digits then the check character; the birth date is a calendar date and,
    when ``as_of`` is given (the delivery date), not after it. Expects a normalised number."""
    if id_no is None or len(id_no) != 18 or not id_no[:17].isdigit() or not id_no[:17].isascii():
        return False
    if id_check_char(id_no[:17]) != id_no[17]:
        return False
    born = id_birth_date(id_no)
    if born is None:
        return False
    return as_of is None or born <= as_of


def np_key(id_no: str, pii_key: str) -> str:
    """``NP-`` + first 16 hex of HMAC-SHA256(key=CREDIT_PII_KEY, msg=normalised ID number)."""
    digest = hmac.new(pii_key.encode("utf-8"), id_no.encode("utf-8"), hashlib.sha256).hexdigest()
    return NP_PREFIX + digest[:16]


def operator_key(uscc: str | None, id_no: str | None, pii_key: str) -> str | None:
    """The USCC when present, else the natural person's NP- key; None when neither is present.
    Both identifiers must already be normalised (and validated by the caller)."""
    if uscc:
        return uscc
    if id_no:
        return np_key(id_no, pii_key)
    return None


def mask_id(id_no: str | None) -> str | None:
    """What may be shown of an ID number outside ingestion: nothing but its length."""
    if id_no is None:
        return None
    return "*" * len(id_no)
