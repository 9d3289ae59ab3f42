"""Decoding and parsing of one delivery file, row by row (pure Python, streaming).

``feeds.md``: a CSV file's rows are its records after the header (RFC 4180: a quoted field may
hold a line break); a JSON Lines file's rows are its lines. Lines end with LF or CRLF (a lone CR
ends nothing); a blank line is a row, and a malformed one. GBK is decoded as GB18030.

Every row comes out as a ``RawRow``: its physical line number (1-based; the CSV header is line 1;
a record spanning lines gives its first), its values by canonical column name (trimmed, null
markers turned into None) or None when the row is MALFORMED, and the reason. The functions here
never raise on bad data.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO

from ecredit.core.feeds import Feed

MALFORMED = "MALFORMED"
BOM_UTF8 = b"\xef\xbb\xbf"

# feeds.md sets no limit on a field's length (the csv module's default is 128 KiB): a long field is
# data, not a malformed row.
csv.field_size_limit(2**31 - 1)

# feeds.md: after trimming, these mean null (the dash may be U+2014 or U+2015).
NULL_MARKERS = frozenset({"", "—", "― ―", "— —", "―", "/", "无", "—―", "―—", "— ―", "― —"})


def is_null_marker(value: str) -> bool:
    return value in NULL_MARKERS


def clean_csv_value(value: str) -> str | None:
    v = value.strip()
    return None if v in NULL_MARKERS else v


@dataclass
class RawRow:
    line: int
    values: dict | None  # canonical name -> str | None; None when MALFORMED
    malformed: str | None = None  # detail when MALFORMED
    fields: list = field(default_factory=list)  # what could be split, for the masked payload
    # CSV: the file's header (names as sent, in file order) when ``fields`` is a sound split of the
    # record, so that a MALFORMED row's fields are masked by the header's names, never by position
    header: list | None = None


@dataclass
class Header:
    columns: list  # header names as sent, in file order
    missing: list  # required sources absent (schema drift)
    extra: list  # unknown columns (warning)
    out_of_place: list = field(default_factory=list)  # the feed's columns not where feeds.md lists them (warning)


def out_of_place(columns: list, feed: Feed) -> list:
    """The feed's columns that a header names in another order than feeds.md: comparing the
    header's known columns with feeds.md's order of the same columns, those whose position
    differs (unknown extra columns and absent optional ones move nothing)."""
    sent = [c for c in columns if c in {x.source for x in feed.columns}]
    listed = [c.source for c in feed.columns if c.source in sent]
    return [a for a, b in zip(sent, listed) if a != b]


def _physical_lines(stream: BinaryIO, limit: int | None = None) -> Iterator[bytes]:
    """Split on LF only; a trailing CR (CRLF) is removed. A lone CR stays inside the line. The
    empty remainder after a final LF is not a line. ``limit``: read at most that many bytes."""
    pending = b""
    left = limit
    while True:
        chunk = stream.read(1 << 20 if left is None else min(1 << 20, left))
        if not chunk:
            break
        if left is not None:
            left -= len(chunk)
        pending += chunk
        parts = pending.split(b"\n")
        pending = parts.pop()
        for p in parts:
            yield p[:-1] if p.endswith(b"\r") else p
    if pending:
        yield pending[:-1] if pending.endswith(b"\r") else pending


def _decode(raw: bytes, encoding: str) -> tuple[str, bool]:
    try:
        return raw.decode(encoding), True
    except UnicodeDecodeError:
        return raw.decode(encoding, errors="replace"), False


def csv_records(
    stream: BinaryIO, encoding: str, limit: int | None = None, first_line: int = 1
) -> Iterator[tuple[int, str, bool]]:
    """(first physical line number, record text, decodable) for every CSV record, header
    included. A record continues over line breaks while a quoted field is open. A BOM is dropped,
    declared or not; a file declared GBK that begins with the UTF-8 BOM is read as UTF-8 (its own
    declaration: GB18030 text cannot begin with a known header and those bytes), and GB18030's own
    BOM (84 31 95 33) is dropped too. ``limit`` and ``first_line``: a slice of the file that
    starts at a record boundary (``split_points``) is read as the whole file reads it."""
    text_parts: list[str] = []
    start = 0
    ok_all = True
    quotes = 0
    for n, raw in enumerate(_physical_lines(stream, limit), start=first_line):
        if n == 1 and raw.startswith(BOM_UTF8):
            raw = raw[3:]
            if encoding == "gb18030":
                encoding = "utf-8"
        text, ok = _decode(raw, encoding)
        if n == 1 and text.startswith("\ufeff"):
            text = text[1:]
        if not text_parts:
            start = n
        text_parts.append(text)
        ok_all = ok_all and ok
        quotes += text.count('"')
        if quotes % 2 == 0:
            yield start, "\n".join(text_parts), ok_all
            text_parts, ok_all, quotes = [], True, 0
    if text_parts:  # an unterminated quote at the end of the file: the record is what is left
        yield start, "\n".join(text_parts), ok_all


@dataclass(frozen=True)
class Slice:
    """A part of one file that parses on its own exactly as it parses inside the whole file:
    ``start`` is a byte offset at a record boundary (0, or just after an LF that ends a record),
    ``length`` bytes are read (None: to the end), ``first_line`` is the physical line at ``start``."""

    start: int
    length: int | None
    first_line: int


def split_points(path: str, feed: Feed, target_bytes: int) -> list[Slice]:
    """Cut a file into slices of about ``target_bytes`` at record boundaries, so that a big file
    is parsed by several tasks. A JSON Lines record ends at every LF. A CSV record ends at an LF
    after which the file holds an even number of '"' bytes (``csv_records`` joins lines while a
    record's count of quotes is odd; the byte 0x22 is never part of another character in UTF-8,
    GBK or GB18030, and a decoding error never swallows it). The line number at each cut is
    counted, so every row keeps its source line. Reads the file once, in C (bytes.count/find)."""
    size = os.path.getsize(path)
    if size <= target_bytes:
        return [Slice(0, None, 1)]
    csv_mode = feed.fmt != "jsonl"
    cuts: list[tuple[int, int]] = [(0, 1)]  # (offset, first line)
    quotes = 0  # '"' bytes before ``pos``
    lines = 0  # LF bytes before ``pos``
    pos = 0
    want = target_bytes
    block_size = 1 << 23
    with open(path, "rb") as f:
        while True:
            block = f.read(block_size)
            if not block:
                break
            i = 0
            while True:
                if pos + len(block) <= want:
                    break
                j = max(i, want - pos)
                # count up to j, then look for the first LF at or after j that ends a record
                quotes += block.count(b'"', i, j)
                lines += block.count(b"\n", i, j)
                i = j
                found = False
                while True:
                    k = block.find(b"\n", i)
                    if k < 0:
                        break
                    quotes += block.count(b'"', i, k + 1)
                    lines += 1
                    i = k + 1
                    if not csv_mode or quotes % 2 == 0:
                        found = True
                        break
                if not found:
                    break
                if pos + i < size:
                    cuts.append((pos + i, lines + 1))
                want = pos + i + target_bytes
            quotes += block.count(b'"', i)
            lines += block.count(b"\n", i)
            pos += len(block)
    out = []
    for n, (start, line) in enumerate(cuts):
        end = cuts[n + 1][0] if n + 1 < len(cuts) else None
        out.append(Slice(start, None if end is None else end - start, line))
    return out


def count_rows(path: str, feed: Feed) -> int:
    """Data rows as feeds.md counts them (for the manifest check)."""
    with open(path, "rb") as f:
        if feed.fmt == "jsonl":
            return sum(1 for _ in _physical_lines(f))
        return max(0, sum(1 for _ in csv_records(f, feed.encoding)) - 1)


_CR = "\ue000"  # stands in for a lone CR while the csv module splits (a lone CR ends nothing)


def _split(text: str) -> list[str] | None:
    try:
        rows = list(csv.reader(io.StringIO(text.replace("\r", _CR), newline=""), strict=True))
    except csv.Error:
        return None
    if len(rows) != 1:
        return None if len(rows) > 1 else [""]
    return [f.replace(_CR, "\r") for f in rows[0]]


def read_header(path: str, feed: Feed) -> Header:
    """The header of a CSV file, or the union of JSON keys is not checked (JSON has no header)."""
    if feed.fmt == "jsonl":
        return Header([c.source for c in feed.columns], [], [])
    with open(path, "rb") as f:
        first = next(csv_records(f, feed.encoding), None)
    cols = [c.strip() for c in (_split(first[1]) or [])] if first else []
    known = {c.source for c in feed.columns}
    missing = [s for s in feed.required_sources if s not in cols]
    extra = [c for c in cols if c not in known]
    return Header(cols, missing, extra, out_of_place(cols, feed))


def iter_rows(stream: BinaryIO, feed: Feed, part: Slice | None = None) -> Iterator[RawRow]:
    """Every data row of a file, or of one slice of it (``split_points``; the stream must be
    seekable then: a CSV slice reads the header from the file's start)."""
    if feed.fmt == "jsonl":
        yield from _iter_jsonl(stream, feed, part)
    else:
        yield from _iter_csv(stream, feed, part)


def _iter_csv(stream: BinaryIO, feed: Feed, part: Slice | None = None) -> Iterator[RawRow]:
    if part is not None and part.start > 0:
        stream.seek(0)
        encoding = "utf-8" if stream.read(3) == BOM_UTF8 else feed.encoding
        stream.seek(0)
        first = next(csv_records(stream, feed.encoding), None)
        stream.seek(part.start)
        records = csv_records(stream, encoding, part.length, part.first_line)
    else:
        records = csv_records(stream, feed.encoding, None if part is None else part.length)
        first = next(records, None)
    if first is None:
        return
    header = [c.strip() for c in (_split(first[1]) or [])]
    by_source = {c.source: c.name for c in feed.columns}
    names = [by_source.get(h) for h in header]  # None for an unknown extra column
    for line, text, decodable in records:
        fields = _split(text)
        if not decodable:
            yield RawRow(
                line,
                None,
                "undecodable bytes in the declared encoding",
                fields or [],
                header if fields is not None else None,
            )
            continue
        if text == "":
            yield RawRow(line, None, "blank line", [])
            continue
        if fields is None:
            yield RawRow(line, None, "unbalanced quotes", [text])
            continue
        if len(fields) != len(header):
            yield RawRow(line, None, f"{len(fields)} fields, the header has {len(header)}", fields, header)
            continue
        nul = [h for h, f in zip(header, fields) if "\x00" in f]
        if nul:
            yield RawRow(line, None, f"a NUL character in: {', '.join(nul)}", fields, header)
            continue
        values: dict[str, str | None] = {c.name: None for c in feed.columns}
        for name, raw in zip(names, fields):
            if name is not None:
                values[name] = clean_csv_value(raw)
        yield RawRow(line, values, None, fields, header)


def _json_scalar(v) -> tuple[str | None, bool]:
    """A JSON value as the string the checks see; (value, ok). Nested values are not scalars."""
    if v is None:
        return None, True
    if isinstance(v, bool):
        return ("true" if v else "false"), True
    if isinstance(v, int):
        return str(v), True
    if isinstance(v, Decimal):  # a JSON number with a fraction or exponent, exactly as sent
        return str(v), True
    if isinstance(v, str):
        return (v.strip() or None), True  # trimmed, as CSV values are
    return None, False


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _unique_fields(pairs: list) -> dict:
    """An object naming a field twice is not read (which value would count?)."""
    seen = set()
    for k, _ in pairs:
        if k in seen:
            raise ValueError(f"the field {json.dumps(k, ensure_ascii=False)[:60]} appears twice")
        seen.add(k)
    return dict(pairs)


def _unicode_ok(v) -> bool:
    """False for a string holding a lone surrogate (a JSON escape like \\ud800 that is no character)."""
    if not isinstance(v, str):
        return True
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _iter_jsonl(stream: BinaryIO, feed: Feed, part: Slice | None = None) -> Iterator[RawRow]:
    if part is not None:
        stream.seek(part.start)
    lines = _physical_lines(stream, None if part is None else part.length)
    for n, raw in enumerate(lines, start=1 if part is None else part.first_line):
        if n == 1 and raw.startswith(BOM_UTF8):
            raw = raw[3:]
        text, ok = _decode(raw, feed.encoding)
        if not ok:
            yield RawRow(n, None, "undecodable bytes in the declared encoding", [text])
            continue
        if text.strip() == "":
            yield RawRow(n, None, "blank line", [])
            continue
        try:
            obj = json.loads(text, parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_unique_fields)
        except ValueError as e:
            yield RawRow(n, None, f"invalid JSON: {str(e)[:200]}", [text])
            continue
        except RecursionError:
            yield RawRow(n, None, "invalid JSON: nested too deeply to read", [text])
            continue
        if not isinstance(obj, dict):
            yield RawRow(n, None, "a JSON line must be an object", [text])
            continue
        values = {}
        bad = []
        for c in feed.columns:
            v, good = _json_scalar(obj.get(c.source))
            values[c.name] = v
            if not good:
                bad.append(c.source)
        if bad:
            yield RawRow(n, None, f"nested value where a scalar is expected: {', '.join(bad)}", [text])
            continue
        broken = [c.source for c in feed.columns if not _unicode_ok(obj.get(c.source))]
        if broken:
            yield RawRow(n, None, f"a lone surrogate escape (no Unicode character) in: {', '.join(broken)}", [text])
            continue
        nul = [c.source for c in feed.columns if "\x00" in (values[c.name] or "")]
        if nul:
            yield RawRow(n, None, f"a NUL character in: {', '.join(nul)}", [text])
            continue
        yield RawRow(n, values, None, [text])
