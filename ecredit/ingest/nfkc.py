"""NFKC normalisation of identifiers, dates, numbers and district codes as Spark column expressions.

Spark has no NFKC. ``normalise_identifier`` is ``ids.normalise`` (NFKC, strip, upper, '' -> null)
and ``normalise_value`` is ``checks._nfkc`` (NFKC, strip, '' -> null), built from Spark functions
only (no UDF), exact on every value that can pass its column's rule (decision 99). Any other value
comes out holding a character outside the valid alphabet, so it fails its rule in the engine as it
does in Python.

The valid alphabet ``ALPHABET`` is every character a value of these kinds can hold when it passes
its rule (``checks.checker``): ASCII (USCC, ID number, the ISO, slash and compact dates, months,
ISO timestamps, numbers) and 年 月 日 (the ``chinese`` date format). All of ASCII, not only the
printable part: Python 3.11's ``datetime.fromisoformat`` accepts a C0 control between the time and
the offset ("2026-01-01T12:00:00\\x01+08:00") and a NUL at the end. District codes are the
exception: ``startswith("4401")`` accepts any text after the prefix (see below).

Method. ``B`` is the alphabet plus the whitespace ``str.strip`` removes that NFKD leaves as it is
(``STABLE_WHITESPACE``) plus the characters outside the alphabet whose ``str.upper`` is in it and
that NFKC leaves as they are (``UPPER_INTO_ALPHABET``: ı and ß). Every character of ``B`` is a
starter (canonical combining class 0), its own NFKD, and no two characters of ``B`` make a primary
composite (``alphabet_conditions`` checks the three against ``unicodedata``; the tests call it). The engine
maps each code point c whose NFKC differs from c and lies entirely in ``B`` to NFKC(c) (one-to-one
with ``translate``, one-to-many with a lookup over the code points, only for values holding one),
leaves every other code point as it is, strips the characters ``str.strip`` strips, upper-cases
what ``str.upper`` upper-cases in ``B`` (identifiers), and turns '' into null.

Why that is NFKC. For a string s, NFKC(s) = compose(reorder(concat NFKD(c))). Composition only
ever replaces a starter by a primary composite, which has a canonical decomposition and so is not
in ``B``. Hence if NFKC(s) lies in ``B`` nothing composed, NFKC(s) = NFKD(s); its characters are
all starters, so nothing was reordered and NFKD(s) = concat NFKD(c); each NFKD(c) lies in ``B``,
does not compose, so NFKD(c) = NFKC(c) and the engine maps c to it: the engine's string is NFKC(s).
Conversely if the engine's string lies in ``B`` then each NFKC(c) does (a character of ``B`` is its
own NFKC), and the same steps show NFKC(s) = concat NFKC(c), the engine's string. So the engine's
mapped string lies in ``B`` exactly when NFKC(s) does, and then they are equal. Stripping: the
whitespace in an NFKC string is the NFKD-stable whitespace (the rest decomposes to ' '), which is in
``B``; so Python's stripped value lies in the alphabet only when NFKC(s) lies in ``B``, and the
engine strips the same characters from the same string. Upper-casing (identifiers): a character
whose ``str.upper`` lies in the alphabet is ASCII, ı or ß, or is changed by NFKD and is
no primary composite (the ligatures ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ, ſ) and so never occurs in an NFKC string; the engine
upper-cases a-z, ı and ß as Python does and leaves every other character as it is, which keeps a
value outside the alphabet outside it (Spark's ``upper`` is not used on such values: it is the
JVM's, of another Unicode version, and locale-dependent on non-ASCII). A value that is all ASCII
(``_ascii``: its UTF-8 bytes as many as its code points) is its own NFKC: it is only stripped and,
an identifier, upper-cased by ``upper``, which on ASCII maps a-z and nothing else, as ``str.upper``.
tests/unit/test_nfkc.py checks the claim over every code point in several templates and over
random mixed strings.

What is not exact: a string whose NFKC holds characters outside the alphabet (composed letters, a
fraction slash from '½', any Chinese text but 年 月 日) is left partly unnormalised. Such a value
fails every rule but the district rule, whose ``startswith("4401")`` accepts "4401½" or "4401é" and
stores the normalised value: there the engine would store "4401½" where Python stores "44011⁄2".
Decision 99 recommends the district rule ``^4401\\d{2}$`` (six ASCII digits, as feeds.md says).
"""

from __future__ import annotations

import itertools
import unicodedata

from ecredit.ingest import sqlexpr as F
from ecredit.ingest.sqlexpr import E

CHINESE_DATE = "年月日"  # DATE_FORMATS["chinese"]
# Every character a value that passes its rule can hold (district codes aside).
ALPHABET = frozenset([chr(c) for c in range(0x80)] + list(CHINESE_DATE))


def _code_points() -> itertools.chain[int]:
    """Every code point but the surrogates (a Python str from a decoded file holds none)."""
    return itertools.chain(range(0xD800), range(0xE000, 0x110000))


# What str.strip() strips (str.isspace); NFKC maps some of it to ' ' and leaves the rest.
WHITESPACE = "".join(chr(c) for c in _code_points() if chr(c).isspace())
STABLE_WHITESPACE = frozenset(w for w in WHITESPACE if unicodedata.normalize("NFKD", w) == w)
# Characters outside the alphabet that str.upper turns into the alphabet and NFKC leaves alone.
UPPER_INTO_ALPHABET = frozenset(
    ch
    for ch in map(chr, _code_points())
    if ch not in ALPHABET and set(ch.upper()) <= ALPHABET and unicodedata.is_normalized("NFKC", ch)
)
MAPPED_ALPHABET = ALPHABET | STABLE_WHITESPACE | UPPER_INTO_ALPHABET  # ``B`` above


def _nfkc_map() -> dict[str, str]:
    out = {}
    for c in _code_points():
        ch = chr(c)
        if unicodedata.is_normalized("NFKC", ch):
            continue
        n = unicodedata.normalize("NFKC", ch)
        if set(n) <= MAPPED_ALPHABET:
            out[ch] = n
    return out


# code point -> its NFKC, for every code point whose NFKC differs from it and lies in ``B``
NFKC_MAP = _nfkc_map()
_ONE = {k: v for k, v in NFKC_MAP.items() if len(v) == 1}
_MANY = {k: v for k, v in NFKC_MAP.items() if len(v) > 1}
# str.upper on ``B``, where it changes a character
UPPER_MAP = {ch: ch.upper() for ch in sorted(MAPPED_ALPHABET) if ch.upper() != ch}


def alphabet_conditions() -> list[str]:
    """What the proof needs of ``B``: every character a starter, its own NFKD, and no primary
    composite made of two of them. The failures (none expected)."""
    bad = [
        f"U+{ord(b):04X} is not a starter that NFKD leaves alone"
        for b in sorted(MAPPED_ALPHABET)
        if unicodedata.combining(b) or unicodedata.normalize("NFKD", b) != b
    ]
    # Hangul composition is by algorithm, of conjoining jamo
    bad += [f"U+{ord(b):04X} is a conjoining jamo" for b in MAPPED_ALPHABET if 0x1100 <= ord(b) <= 0x11FF]
    for c in _code_points():
        d = unicodedata.decomposition(chr(c))
        if d and not d.startswith("<"):
            parts = [chr(int(h, 16)) for h in d.split()]
            if len(parts) == 2 and all(p in MAPPED_ALPHABET for p in parts):
                bad.append(f"U+{c:04X} composes from two characters of the alphabet")
    return bad


_SEPARATOR = "\ue000"


def _images(items: tuple) -> E:
    """The one-to-many images in the order of their code points, as an array: a string literal
    split (a few nodes, not hundreds of literals; Spark folds it into one array literal). The
    separator U+E000 lies outside ``B``: no image holds it."""
    assert all(_SEPARATOR not in v for _, v in items)
    return F.split(F.lit(_SEPARATOR.join(v for _, v in items)), _SEPARATOR)


def _map_code_points(col: E, one: dict[str, str], many: dict[str, str]) -> E:
    """Replace each code point by its image (the others stay). No image holds a code point that is
    replaced, so the order of the steps does not matter."""
    out = F.translate(col, "".join(one), "".join(one.values())) if one else col
    if not many:
        return out
    if len(many) <= 2:
        for k, v in many.items():
            out = F.replace(out, F.lit(k), F.lit(v))
        return out
    items = tuple(sorted(many.items()))
    keys = "".join(k for k, _ in items)  # one code point each: its place in the text is its index
    images = _images(items)

    def expand(value: E) -> E:
        # Only for the rare value holding a code point to expand, found by deleting them all. Each
        # character's image is found by its place in ``keys`` (``instr``: a search of the bytes; UTF-8
        # matches a whole code point only at a code point's start), not by a map's lookup, which
        # compares the character with each of the map's 353 keys in turn.
        holds_one = F.length(F.translate(value, keys, "")) < F.length(value)

        def image(ch: E) -> E:  # (``element_at`` of a null index threw in the JVM: no null here)
            place = F.instr(F.lit(keys), ch)
            return F.when(place > 0, F.element_at(images, place)).otherwise(ch)

        each = F.transform(F.split(value, ""), image)
        return F.when(holds_one, F.array_join(each, "")).otherwise(value)

    return F.let(out, expand)  # ``out`` (a translate of 1,102 code points) written once


def _ascii(col: E) -> E:
    """The value is all ASCII (as many UTF-8 bytes as code points: a count of the bytes and a pass
    over them, no lookup). NFKC leaves ASCII as it is, so such a value skips the code-point
    mapping, by far the dearest step (a hash lookup per character); almost every value a
    department sends is ASCII."""
    return F.octet_length(col) == F.length(col)


def _nfkc_stripped(col: E) -> E:
    """NFKC and ``str.strip``; ``col`` is written twice (pass a column, not a long expression)."""
    mapped = F.when(_ascii(col), col).otherwise(F.interpreted(_map_code_points(col, _ONE, _MANY)))
    return F.btrim(mapped, F.lit(WHITESPACE))


def normalise_value(col: E | str) -> E:
    """``checks._nfkc``: NFKC, stripped, '' -> null (dates, months, timestamps, numbers, districts)."""
    return F.nullif(_nfkc_stripped(F.col(col) if isinstance(col, str) else col), F.lit(""))


def normalise_identifier(col: E | str) -> E:
    """``ids.normalise``: NFKC, stripped, upper-cased, '' -> null (USCC, ID number). An ASCII value
    is only stripped and upper-cased (``upper`` of ASCII text maps a-z and nothing else)."""
    c = F.col(col) if isinstance(col, str) else col
    upper_one = {k: v for k, v in UPPER_MAP.items() if len(v) == 1}
    upper_many = {k: v for k, v in UPPER_MAP.items() if len(v) > 1}
    general = _map_code_points(F.btrim(_map_code_points(c, _ONE, _MANY), F.lit(WHITESPACE)), upper_one, upper_many)
    plain = F.upper(F.btrim(c, F.lit(WHITESPACE)))
    return F.nullif(F.when(_ascii(c), plain).otherwise(F.interpreted(general)), F.lit(""))
