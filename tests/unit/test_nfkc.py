"""The engine's NFKC (ecredit/ingest/nfkc.py) against Python's: ``checks._nfkc`` and ``ids.normalise``.

The claim (decision 99): on every string, the engine's result is Python's whenever Python's lies in
the valid alphabet (ASCII and 年 月 日), and lies outside that alphabet otherwise. Each test
evaluates one DataFrame.
"""

from __future__ import annotations

import random
import time
import unicodedata

import pyarrow as pa
from pyspark.sql import functions as F

from ecredit.core import checks, ids
from ecredit.ingest import nfkc, sqlexpr

# written out here, not taken from the module under test
VALID = frozenset([chr(c) for c in range(0x80)] + ["年", "月", "日"])
OUTSIDE_VALID = "[^\\x{0}-\\x{7F}年月日]"  # a Java regex: a character outside the alphabet
TEMPLATES = ("{c}", "1{c}2", " a{c}\u3000", "2026{c}11{c}01")


def _in_valid(value: str | None) -> bool:
    return value is None or set(value) <= VALID


def _frame(spark, columns: dict[str, list]):
    return spark.createDataFrame(pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()}))


def _template(template: str):
    """The template as a Spark column over the column ``c``."""
    pieces = template.split("{c}")
    parts = [F.lit(pieces[0])]
    for piece in pieces[1:]:
        parts += [F.col("c"), F.lit(piece)]
    return F.concat(*parts)


def _mismatches(df, inputs: list[str], limit: int = 20) -> list:
    """Rows where the engine breaks the claim, for each input column and both functions; the
    DataFrame holds, per input column ``x``, Python's results ``x_val`` and ``x_id``. The engine's
    results are columns of their own, so each is computed once."""
    fns = {"val": nfkc.normalise_value, "id": nfkc.normalise_identifier}
    pairs = [(f"{x}_{suffix}", fn(sqlexpr.col(x))) for x in inputs for suffix, fn in fns.items()]
    staged = df.select("*", *[eng.alias(f"{name}_engine") for name, eng in pairs])
    broken = F.lit(False)
    for name, _ in pairs:
        py, eng = F.col(name), F.col(f"{name}_engine")
        py_valid = py.isNull() | ~py.rlike(OUTSIDE_VALID)
        ok = (py_valid & eng.eqNullSafe(py)) | (~py_valid & eng.isNotNull() & eng.rlike(OUTSIDE_VALID))
        broken = broken | ~ok
    return staged.where(broken).limit(limit).collect()


def test_the_alphabet_meets_the_proofs_conditions():
    assert nfkc.alphabet_conditions() == []
    assert nfkc.ALPHABET == VALID
    assert nfkc.UPPER_INTO_ALPHABET == {"ß", "ı"}
    # whitespace NFKC does not leave alone, and characters whose upper case is in the alphabet but
    # which NFKC changes, never occur in an NFKC string: NFKD changes them, and they are no
    # primary composite (the only characters composition makes)
    for c in range(0x110000):
        ch = chr(c)
        if 0xD800 <= c <= 0xDFFF or unicodedata.is_normalized("NFKC", ch):
            continue
        if ch.isspace() or (ch not in VALID and set(ch.upper()) <= VALID):
            nfd = unicodedata.normalize("NFD", ch)
            assert unicodedata.normalize("NFKD", ch) != ch, hex(c)
            assert nfd == ch or unicodedata.normalize("NFC", nfd) != ch, hex(c)


def test_examples(spark):
    rows = [
        # (input, normalise_value, normalise_identifier)
        ("\u3000９１４４０１０１ＭＡ５Ｄ０Ｃ０Ｄ１Ｍ\t", "91440101MA5D0C0D1M", "91440101MA5D0C0D1M"),
        ("４４０１０６１９８００１０１００１ｘ", "44010619800101001x", "44010619800101001X"),
        ("２０２６年１１月１日", "2026年11月1日", "2026年11月1日"),
        ("2026年㋀1日", "2026年1月1日", "2026年1月1日"),  # ㋀ is "1月"
        ("2026年1月㏠", "2026年1月1日", "2026年1月1日"),  # ㏠ is "1日"
        ("\u2028 １２．５０ \u00a0", "12.50", "12.50"),
        ("ß ı ﬀ", "ß ı ff", "SS I FF"),
        ("𝟐𝟎𝟐𝟔-𝟏𝟏-𝟎𝟏", "2026-11-01", "2026-11-01"),  # mathematical digits, outside the BMP
        ("Ⅻ…", "XII...", "XII..."),
        ("\u3000\u2003\x85", None, None),
        ("", None, None),
        (None, None, None),
        # outside the alphabet: left partly as sent (decision 99)
        ("4401½", "4401½", "4401½"),
        ("4401e\u0301", "4401e\u0301", "4401E\u0301"),
    ]
    df = spark.createDataFrame([(r[0],) for r in rows], "v string")
    got = df.select(nfkc.normalise_value("v").column(), nfkc.normalise_identifier(sqlexpr.col("v")).column()).collect()
    assert [tuple(g) for g in got] == [(r[1], r[2]) for r in rows]
    # Python agrees where the result is in the alphabet, and not on the last two
    for v, val, ident in rows[:-2]:
        assert (checks._nfkc(v), ids.normalise(v)) == (val, ident)
    assert checks._nfkc("4401½") == "44011⁄2" and checks._nfkc("4401e\u0301") == "4401é"


def test_every_code_point(spark):
    """Every code point but the surrogates, in each template: one DataFrame of 1.1M rows."""
    started = time.monotonic()
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    columns: dict[str, list] = {"c": chars}
    inputs = []
    for i, template in enumerate(TEMPLATES):
        texts = [template.format(c=c) for c in chars]
        columns[f"t{i}_val"] = [checks._nfkc(t) for t in texts]
        columns[f"t{i}_id"] = [ids.normalise(t) for t in texts]
        inputs.append(f"t{i}")
    df = _frame(spark, columns).withColumns({f"t{i}": _template(t) for i, t in enumerate(TEMPLATES)})
    bad = _mismatches(df, inputs)
    assert bad == [], bad
    # the claim is not empty: over a thousand code points outside ASCII normalise into the alphabet
    assert sum(1 for c, v in zip(chars, columns["t1_val"]) if not c.isascii() and _in_valid(v)) > 1000
    print(f"every code point: {time.monotonic() - started:.1f} s")


# pieces of random strings: ASCII, full-width forms, ideographic and other spaces, combining marks,
# 年 月 日 and their compatibility forms, letters that compose, characters whose NFKC is partly
# outside the alphabet
PIECES = (
    list("0123456789abcxyzABCXYZ-/.:+ ")
    + [chr(0xFF10 + d) for d in range(10)]
    + list("ＡＢＣｘｙｚ－／．：＋")
    + ["\u3000", "\u00a0", "\u2003", "\u2028", "\t", "\x85", "\u1680", "\u202f"]
    + ["\u0301", "\u0308", "\u0327", "\u3099", "\u20dd", "\u0345"]
    + list("年月日㋀㋋㏠㏾⽇⽉年🈷")
    + list("éÅ中ßıſﬀﬁ½²Ⅻ…№℡ǅĳ𝟏𝐀ＫKΩÅ가가")
)


def _random_string(r: random.Random) -> str:
    if r.random() < 0.5:  # near a valid value: digits and separators, some full-width, spaces round
        core = r.choice(
            ["2026-11-01", "2026/1/31", "20261101", "2026年1月1日", "12.50", "914401", "2026-11-01T08:00:00+08:00"]
        )
        out = "".join(
            unicodedata.normalize("NFKC", ch) if r.random() < 0.5 else chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch
            for ch in core
        )
        if r.random() < 0.3:
            i = r.randrange(len(out) + 1)
            out = out[:i] + r.choice(PIECES) + out[i:]
        return r.choice(["", " ", "\u3000", "\u2028"]) + out + r.choice(["", " ", "\u3000", "\t"])
    return "".join(r.choice(PIECES) for _ in range(r.randrange(0, 12)))


def test_random_strings(spark):
    r = random.Random(16)
    texts = [_random_string(r) for _ in range(200_000)]
    columns = {"s": texts, "s_val": [checks._nfkc(t) for t in texts], "s_id": [ids.normalise(t) for t in texts]}
    bad = _mismatches(_frame(spark, columns), ["s"])
    assert bad == [], bad
    # a good share of them lands in the alphabet, where equality is asserted
    assert sum(1 for v in columns["s_val"] if _in_valid(v)) > 60_000
