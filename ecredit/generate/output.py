"""Streaming writers: one per delivery file.

A ``FeedOut`` takes rows (CSV: a list of values in header order; JSON: a dict), with ``None`` for
a null, and turns each into text: nulls become one of the CSV null markers (or JSON null, an absent
field, or ""), a few values get the harmless variations a reader must normalise (padding spaces,
lower-case or full-width identifiers), and at ``dirty_rate`` a row is replaced by a dirty one of
a reason code of ``quality.md``. Text is buffered and encoded in chunks; the bytes go through a
SHA-256 and a row counter on their way to the file, so the manifest costs nothing.

Undecodable bytes are written as lone surrogates (U+DC80..U+DCFF) encoded with
``surrogateescape``: '\\udcff' becomes the raw byte 0xFF, invalid in UTF-8 and in GB18030.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from random import Random
from typing import Any

from ecredit.core import ids
from ecredit.core.checks import (
    BAD_DATE,
    BAD_DISTRICT,
    BAD_ENUM,
    BAD_ID_NO,
    BAD_NUMBER,
    BAD_USCC,
    DUPLICATE_KEY,
    MALFORMED,
    MISSING_REQUIRED,
    REASON_CODES,
)
from ecredit.core.feeds import (
    DATE,
    DECIMAL,
    DISTRICT,
    ENUM,
    ID_NO,
    INT,
    MONTH,
    RETIRED_DISTRICTS,
    SCORE,
    TIMESTAMP,
    USCC,
    Feed,
)

from .formats import FORMATS, ISO, MONTH_INDEX
from .formats import MONTH as MONTHS

# feeds.md null markers, weighted; 32 entries so that getrandbits(5) picks one.
CSV_NULLS = ("",) * 14 + ("—",) * 4 + ("―",) * 3 + ("— —",) * 3 + ("/",) * 3 + ("无",) * 3 + (" ",) * 2
assert len(CSV_NULLS) == 32

INVALID_BYTES = "\udcff\udcfe"  # -> b"\xff\xfe" with surrogateescape
FULL_WIDTH = str.maketrans(
    "0123456789ABCDEFGHJKLMNPQRTUWXY", "０１２３４５６７８９ＡＢＣＤＥＦＧＨＪＫＬＭＮＰＱＲＴＵＷＸＹ"
)

# Per department: CSV line terminator and quoting; JSON line terminator, ensure_ascii, separators.
CSV_STYLE: dict[str, tuple[str, Any]] = {  # (line terminator, csv quoting)
    "amr": ("\r\n", csv.QUOTE_MINIMAL),
    "cac": ("\n", csv.QUOTE_ALL),
    "commerce": ("\n", csv.QUOTE_MINIMAL),
    "finance": ("\r\n", csv.QUOTE_MINIMAL),
    "gds": ("\n", csv.QUOTE_MINIMAL),
    "post": ("\r\n", csv.QUOTE_MINIMAL),
}
JSON_STYLE = {
    "ndrc": ("\n", False, (", ", ": ")),
    "psb": ("\r\n", False, (",", ":")),
    "customs": ("\n", True, (", ", ": ")),
}
CODECS = {"GBK": ("gbk", b""), "UTF-8 with BOM": ("utf-8", b"\xef\xbb\xbf"), "UTF-8": ("utf-8", b"")}

BAD_ENUM_VALUES = ("未知", "其它", "待定", "Y", "0")
BAD_DISTRICTS = ("440304", "440604", "310104", "110108", "441900")
BAD_NUMBERS = {
    DECIMAL: ("12,5a", "-1200.5", "壹万"),
    INT: ("12.5", "-3", "1,000"),
    SCORE: ("105", "-5", "8O"),
}
BAD_JSON_NUMBERS = ("12,5a", -100, "abc")
_UNPARSEABLE = {  # (format key or kind) -> functions of (y, m, d) giving a value that does not parse
    "iso": (lambda y, m, d: f"{y}-13-45", lambda y, m, d: f"{y}/{m:02d}/{d:02d}", lambda y, m, d: f"{y}{m:02d}{d:02d}"),
    "slash": (lambda y, m, d: f"{y}-{m:02d}-{d:02d}", lambda y, m, d: f"{y}/13/45"),
    "compact": (lambda y, m, d: f"{y}-{m:02d}-{d:02d}", lambda y, m, d: f"{y}1345"),
    "chinese": (lambda y, m, d: f"{y}-{m:02d}-{d:02d}", lambda y, m, d: f"{y}年13月45日"),
    MONTH: (lambda y, m, d: f"{y}-13", lambda y, m, d: f"{y}/{m:02d}", lambda y, m, d: f"{y}{m:02d}"),
    TIMESTAMP: (
        lambda y, m, d: f"{y}-{m:02d}-{d:02d}T10:00:00",
        lambda y, m, d: f"{y}-{m:02d}-{d:02d} 25:61:00+08:00",
        lambda y, m, d: f"{y}/{m}/{d} 10:00",
    ),
}


class FeedMeta:
    """Where things are in a feed's rows: slot = column index (CSV) or JSON field name."""

    def __init__(self, feed: Feed):
        self.feed = feed
        self.csv = feed.fmt == "csv"
        self.sources = [c.source for c in feed.columns]
        slot = (lambda i, c: i) if self.csv else (lambda i, c: c.source)
        self.slots = [slot(i, c) for i, c in enumerate(feed.columns)]
        by_name = {c.name: self.slots[i] for i, c in enumerate(feed.columns)}
        kinds = {c.name: c.kind for c in feed.columns}
        self.ucol = by_name.get("uscc") if kinds.get("uscc") == USCC else None
        self.icol = by_name.get("id_no") if kinds.get("id_no") == ID_NO else None
        self.dcol = next((self.slots[i] for i, c in enumerate(feed.columns) if c.kind == DISTRICT), None)
        self.missing_opts = [("col", self.slots[i]) for i, c in enumerate(feed.columns) if c.required]
        if feed.identifiers:
            self.missing_opts.append(("ids", None))
        self.enum_opts = [(self.slots[i], c.values) for i, c in enumerate(feed.columns) if c.kind == ENUM]
        self.date_opts = []
        if feed.event_date and feed.feed_id != "customs.enterprise_credit":
            self.date_opts.append(("future", by_name[feed.event_date], kinds[feed.event_date], 0))
        for i, c in enumerate(feed.columns):
            if c.kind in (DATE, MONTH, TIMESTAMP):
                key = feed.date_format if c.kind == DATE else c.kind
                for v in range(len(_UNPARSEABLE[key])):
                    self.date_opts.append(("garbage", self.slots[i], key, v))
        self.num_opts = [
            (self.slots[i], c.kind, v)
            for i, c in enumerate(feed.columns)
            if c.kind in (DECIMAL, INT, SCORE)
            for v in range(3)
        ]
        codes = [MALFORMED, MISSING_REQUIRED]
        if self.ucol is not None:
            codes.append(BAD_USCC)
        if self.icol is not None:
            codes.append(BAD_ID_NO)
        if self.enum_opts:
            codes.append(BAD_ENUM)
        if self.date_opts:
            codes.append(BAD_DATE)
        if self.num_opts:
            codes.append(BAD_NUMBER)
        if self.dcol is not None:
            codes.append(BAD_DISTRICT)
        codes.append(DUPLICATE_KEY)
        self.codes = tuple(codes)
        self.date_fmt = FORMATS[feed.date_format]


class FeedOut:
    """One delivery file, written as a stream."""

    FLUSH_AT = 512  # buffered lines per file

    def __init__(self, feed: Feed, folder: Path, seed: int, date_ord: int, dirty_rate: float):
        self.feed = feed
        self.meta = meta = FeedMeta(feed)
        self.path = folder / feed.file
        self.codec, bom = CODECS[feed.declared_encoding]
        self.fh = open(self.path, "wb")
        self.sha = hashlib.sha256()
        self.bytes = 0
        self.buf: list[str] = []
        self.write = self.buf.append  # what csv.writer calls
        tag = f"{seed}|{feed.dept}|{ISO[date_ord]}|{feed.file}"
        st = Random(tag + "|style")
        self.rnd, self.bits = st.random, st.getrandbits
        dr = Random(tag + "|dirty")
        self.drng, self.drnd = dr, dr.random
        self.date_ord = date_ord
        self.dirty_rate = dirty_rate
        self.cap = dirty_rate <= 0.2  # keep every file under the 20 % rejection threshold
        self.rows = 0
        self.ndirty = 0
        self.dirty_counts = {c: 0 for c in REASON_CODES}
        self.variants = {c: 0 for c in REASON_CODES}
        self.code_offset = int(dr.random() * len(meta.codes))
        self.retired = 0
        if bom:
            self._raw(bom)
        if meta.csv:
            self.lt, quoting = CSV_STYLE.get(feed.dept, ("\n", csv.QUOTE_MINIMAL))
            self.writer = csv.writer(self, lineterminator=self.lt, quoting=quoting)
            self._writerow = self.writer.writerow
            self._writerow(meta.sources)
            self.emit: Callable[[Any], None] = self._emit_csv
        else:
            self.lt, ascii_, seps = JSON_STYLE.get(feed.dept, ("\n", False, (", ", ": ")))
            enc = json.JSONEncoder(ensure_ascii=ascii_, separators=seps)
            self._dumps = enc.encode
            self.emit = self._emit_json
        self.dcol = meta.dcol if meta.dcol is not None else -1

    # ---- bytes ----
    def _raw(self, data: bytes) -> None:
        self.sha.update(data)
        self.fh.write(data)
        self.bytes += len(data)

    def flush(self) -> None:
        if self.buf:
            data = "".join(self.buf).encode(self.codec, "surrogateescape")
            self.buf.clear()
            self._raw(data)

    def close(self) -> tuple[int, str]:
        self.flush()
        self.fh.close()
        return self.rows, self.sha.hexdigest()

    # ---- clean rows ----
    def _emit_csv(self, row: list) -> None:
        if (
            self.dirty_rate
            and self.drnd() < self.dirty_rate
            and (not self.cap or (self.ndirty + 1) * 5 <= self.rows + 1)
        ):
            self._dirty(row)
            return
        if None in row:
            b = self.bits
            row = [CSV_NULLS[b(5)] if v is None else v for v in row]
        if self.rnd() < 0.03:
            self._style_csv(row)
        self._writerow(row)
        self.rows += 1
        if self.dcol >= 0 and row[self.dcol] in RETIRED_DISTRICTS:
            self.retired += 1
        if len(self.buf) >= self.FLUSH_AT:
            self.flush()

    def _emit_json(self, obj: dict) -> None:
        if (
            self.dirty_rate
            and self.drnd() < self.dirty_rate
            and (not self.cap or (self.ndirty + 1) * 5 <= self.rows + 1)
        ):
            self._dirty(obj)
            return
        self._json_nulls(obj)
        if self.rnd() < 0.03:
            self._style_json(obj)
        self.write(self._dumps(obj) + self.lt)
        self.rows += 1
        if len(self.buf) >= self.FLUSH_AT:
            self.flush()

    def _json_nulls(self, obj: dict) -> None:
        nulls = [k for k, v in obj.items() if v is None]
        for k in nulls:
            x = self.bits(3)
            if x >= 7:
                obj[k] = ""
            elif x >= 4:
                del obj[k]

    def _ident_variant(self, v: str) -> str:
        x = self.rnd()
        if x < 0.35:
            return v.lower()
        if x < 0.7:
            return v.translate(FULL_WIDTH)
        return (" " * (1 + self.bits(1))) + v + (" " if x < 0.85 else "")

    def _style_csv(self, row: list) -> None:
        """Harmless variations that normalisation undoes (trim; NFKC + upper for identifiers)."""
        m = self.meta
        x = self.rnd()
        if x < 0.5 or (m.ucol is None and m.icol is None):
            c = int(self.rnd() * len(row))
            row[c] = (" " if x < 0.3 else "  ") + row[c] + (" " if x > 0.15 else "")
            return
        for col in (m.ucol, m.icol):
            if col is not None and len(row[col]) == 18:
                row[col] = self._ident_variant(row[col])
                return

    def _style_json(self, obj: dict) -> None:
        m = self.meta
        for c in (m.ucol, m.icol):
            if c is not None and isinstance(obj.get(c), str) and len(obj[c]) == 18:
                obj[c] = self._ident_variant(obj[c])
                return

    # ---- dirty rows (quality.md) ----
    def _write_clean_copy(self, row) -> str:
        """Render without style; returns the rendered text line (JSON) or writes (CSV)."""
        if self.meta.csv:
            b = self.bits
            self._writerow([CSV_NULLS[b(5)] if v is None else v for v in row])
            return ""
        self._json_nulls(row)
        line = self._dumps(row) + self.lt
        self.write(line)
        return line

    def _dirty(self, row) -> None:
        m = self.meta
        code = m.codes[(self.code_offset + self.ndirty) % len(m.codes)]
        v = self.variants[code]
        self.variants[code] += 1
        getattr(self, "_d_" + code)(row, v)
        self.ndirty += 1
        self.dirty_counts[code] += 1
        if len(self.buf) >= self.FLUSH_AT:
            self.flush()

    def _d_MALFORMED(self, row, v: int) -> None:
        if self.meta.csv:
            kind = v % 3
            if kind == 0:  # undecodable bytes inside a field
                c = (v // 3) % len(row)
                s = row[c] or ""
                row[c] = s[:1] + INVALID_BYTES + "x" + s[1:]
                self._write_clean_copy(row)
            elif kind == 1:  # wrong number of fields
                b = self.bits
                vals = [CSV_NULLS[b(5)] if x is None else x for x in row]
                self._writerow(vals + ["多余字段"] if (v // 3) % 2 == 0 else vals[:-2])
            else:  # a blank line
                self.write(self.lt)
        else:
            kind = v % 4
            self._json_nulls(row)
            line = self._dumps(row)
            if kind == 0:
                line = "{" + INVALID_BYTES + line[1:]
            elif kind == 1:
                line = line[:-2]  # truncated: the closing brace is gone
            elif kind == 2:
                line = ""
            else:
                line = line.replace('"', "'")
            self.write(line + self.lt)
        self.rows += 1

    def _d_MISSING_REQUIRED(self, row, v: int) -> None:
        m = self.meta
        what, slot = m.missing_opts[v % len(m.missing_opts)]
        if what == "col":
            row[slot] = None
        else:
            for c in (m.ucol, m.icol):
                if c is not None:
                    row[c] = None
        self._write_clean_copy(row)
        self.rows += 1

    def _fresh_uscc(self) -> str:
        r = self.drnd
        a = ids.USCC_ALPHABET
        first17 = "91440106" + "".join(a[int(r() * 31)] for _ in range(9))
        return first17 + ids.uscc_check_char(first17)

    def _d_BAD_USCC(self, row, v: int) -> None:
        c = self.meta.ucol
        cur = ids.normalise(row[c]) if isinstance(row[c], str) else None
        base = cur if cur and ids.uscc_valid(cur) else self._fresh_uscc()
        a = ids.USCC_ALPHABET
        kind = v % 3
        if kind == 0:  # wrong check character
            good = a.index(base[17])
            bad = base[:17] + a[(good + 1 + int(self.drnd() * 30)) % 31]
        elif kind == 1:  # a letter outside the alphabet
            p = 8 + int(self.drnd() * 9)
            bad = base[:p] + "IOSVZ"[(v // 3) % 5] + base[p + 1 :]
        else:  # wrong length
            bad = base[:17] if (v // 3) % 2 == 0 else base + "1"
        row[c] = bad
        self._write_clean_copy(row)
        self.rows += 1

    def _d_BAD_ID_NO(self, row, v: int) -> None:
        c = self.meta.icol
        cur = ids.normalise(row[c]) if isinstance(row[c], str) else None
        if not (cur and ids.id_valid(cur)):
            cur = "440106" + "19850612" + f"{int(self.drnd() * 1000):03d}"
            cur += ids.id_check_char(cur)
        kind = v % 3
        if kind == 0:  # wrong check character
            chars = ids.ID_CHECK_CHARS
            good = chars.index(cur[17])
            bad = cur[:17] + chars[(good + 1 + int(self.drnd() * 10)) % 11]
        elif kind == 1:  # not a calendar date
            first17 = cur[:6] + "19990231" + cur[14:17]
            bad = first17 + ids.id_check_char(first17)
        else:  # born after the delivery date
            b = self.date_ord + 1 + int(self.drnd() * 3000)
            first17 = cur[:6] + _compact(b) + cur[14:17]
            bad = first17 + ids.id_check_char(first17)
        row[c] = bad
        self._write_clean_copy(row)
        self.rows += 1

    def _d_BAD_ENUM(self, row, v: int) -> None:
        opts = self.meta.enum_opts
        slot, values = opts[v % len(opts)]
        if values == ("true", "false"):
            row[slot] = "Y"
        else:
            bad = [b for b in BAD_ENUM_VALUES if b not in values]
            row[slot] = bad[(v // len(opts)) % len(bad)]
        self._write_clean_copy(row)
        self.rows += 1

    def _d_BAD_DATE(self, row, v: int) -> None:
        opts = self.meta.date_opts
        what, slot, kind, k = opts[v % len(opts)]
        D = self.date_ord
        if what == "future":
            f = D + 1 + int(self.drnd() * 30)
            if kind == MONTH:
                row[slot] = MONTHS[MONTH_INDEX[D] + 1 + int(self.drnd() * 3)]
            elif kind == TIMESTAMP:
                row[slot] = f"{ISO[f]}T10:00:00+08:00"
            else:
                row[slot] = self.meta.date_fmt[f]
        else:
            d = ISO[D]
            y, mo, dd = int(d[:4]), int(d[5:7]), int(d[8:10])
            row[slot] = _UNPARSEABLE[kind][k](y, mo, dd)
        self._write_clean_copy(row)
        self.rows += 1

    def _d_BAD_NUMBER(self, row, v: int) -> None:
        opts = self.meta.num_opts
        slot, kind, k = opts[v % len(opts)]
        row[slot] = BAD_NUMBERS[kind][k] if self.meta.csv else BAD_JSON_NUMBERS[k]
        self._write_clean_copy(row)
        self.rows += 1

    def _d_BAD_DISTRICT(self, row, v: int) -> None:
        row[self.meta.dcol] = BAD_DISTRICTS[v % len(BAD_DISTRICTS)]
        self._write_clean_copy(row)
        self.rows += 1

    def _d_DUPLICATE_KEY(self, row, v: int) -> None:
        if self.meta.csv:
            b = self.bits
            vals = [CSV_NULLS[b(5)] if x is None else x for x in row]
            self._writerow(vals)
            self._writerow(vals)
        else:
            line = self._write_clean_copy(row)
            self.write(line)
        self.rows += 2


def _compact(o: int) -> str:
    d = ISO[o]
    return d[:4] + d[5:7] + d[8:10]
