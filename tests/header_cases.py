"""Hand-made rows of every feed for the header tests (issue 14, items 1 and 6).

feeds.md: a file is read by its header's names, whatever their order. These helpers write a
feed's file with its columns in the order of feeds.md, in another order, or with an unknown extra
column, each holding natural persons' rows (an ID number and every personal field filled) and one
row of each MALFORMED kind. Values are built here from the column kinds, independently of the
parser and the checks; the personal values are listed in ``PERSONAL`` so that a test can look for
them in whatever the pipeline wrote.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

from ecredit.core.feeds import (
    DATE,
    DECIMAL,
    DISTRICT,
    ENUM,
    ID_NO,
    INT,
    MONTH,
    PII,
    SCORE,
    TIMESTAMP,
    USCC,
    Feed,
)

# GB 11643 by hand (not ecredit.core.ids): weights and check characters for Σ mod 11 = 0..10
_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_no(n: int) -> str:
    """A valid resident ID number of Guangzhou 天河 (440106), born 1990-03-07, sequence ``n``."""
    first17 = f"44010619900307{n % 1000:03d}"
    return first17 + "10X98765432"[sum(int(c) * w for c, w in zip(first17, _W)) % 11]


# A valid USCC for the customs feeds, which name operators by USCC only (GB 32100's example).
CUSTOMS_USCC = "91440300568520498A"
NAMES = {"legal_rep": "欧阳测试", "complainant_name": "郑测试甲", "party_name": "黄测试乙"}
PHONE = "13912345678"
# An unknown extra column (CSV) or field (JSON) that holds personal data: it must never be stored.
EXTRA_SOURCE = "备注"
EXTRA_NAME = "司马测试丙"
EXTRA_PHONE = "13698765432"
EXTRA_ID = id_no(999)
EXTRA_VALUE = f"联系人{EXTRA_NAME} 电话{EXTRA_PHONE} 身份证{EXTRA_ID}"
JSON_EXTRA = {"legal_rep": EXTRA_NAME, "phone": EXTRA_PHONE, "id_card": EXTRA_ID}


def personal(ids: list[str]) -> list[str]:
    """Every personal value a file built from ``person`` rows with these ID numbers holds."""
    return [*ids, *(i.lower() for i in ids), *NAMES.values(), PHONE, EXTRA_NAME, EXTRA_PHONE, EXTRA_ID]


_DATE = {"iso": "2026-10-{d:02d}", "slash": "2026/10/{d:02d}", "compact": "202610{d:02d}", "chinese": "2026年10月{d}日"}


def person(feed: Feed, n: int) -> dict:
    """A row (canonical name -> value as written, None for empty) that passes every check of
    quality.md for a delivery dated 2026-11-01 or later: a natural person (ID number, no USCC)
    wherever the feed has an ID number, with every personal field filled; record keys unique
    by ``n``."""
    day = 1 + n % 28
    row = {}
    for c in feed.columns:
        k = c.kind
        if k == USCC:
            v = CUSTOMS_USCC if "id_no" not in {x.name for x in feed.columns} else None
        elif k == ID_NO:
            v = id_no(n)
        elif k == PII:
            v = PHONE if c.name == "complainant_phone" else NAMES[c.name]
        elif k == DATE:
            v = _DATE[feed.date_format].format(d=day)
        elif k == MONTH:
            v = "2026-10"
        elif k == TIMESTAMP:
            v = f"2026-10-{day:02d}T10:00:00+08:00"
        elif k == DECIMAL:
            v = "100.5"
        elif k == INT:
            v = "5"
        elif k == SCORE:
            v = "90"
        elif k == ENUM:
            v = "否" if c.values == ("是", "否") else "false" if c.values == ("true", "false") else c.values[0]
        elif k == DISTRICT:
            v = "440106"
        else:
            v = f"S{n:05d}"
        row[c.name] = v
    return row


def target(feed: Feed):
    """The column a MALFORMED row is broken in: the first that holds no personal data."""
    return next(c for c in feed.columns if c.kind not in (PII, ID_NO, USCC))


def rule_breaker(feed: Feed, row: dict) -> tuple[dict, str]:
    """The row made to fail a row rule (not MALFORMED), with the reason code."""
    row = dict(row)
    enum = next((c for c in feed.columns if c.kind == ENUM), None)
    if enum is not None:
        row[enum.name] = "未知"
        return row, "BAD_ENUM"
    num = next(c for c in feed.columns if c.kind in (DECIMAL, INT, SCORE))
    row[num.name] = "-1"
    return row, "BAD_NUMBER"


# ---------------------------------------------------------------- CSV


def header(feed: Feed, order: str = "ordered", extra: bool = False) -> list[str]:
    """The header: feeds.md's order (optional columns included), ``reversed``, or ``rotated``;
    with ``extra``, the unknown column ``EXTRA_SOURCE`` third."""
    cols = [c.source for c in feed.columns]
    if order == "reversed":
        cols = cols[::-1]
    elif order == "rotated":
        cols = cols[3:] + cols[:3]
    if extra:
        cols.insert(2, EXTRA_SOURCE)
    return cols


def fields(feed: Feed, head: list[str], row: dict) -> list[str]:
    by_source = {c.source: row[c.name] for c in feed.columns}
    by_source[EXTRA_SOURCE] = EXTRA_VALUE
    return ["" if by_source[h] is None else by_source[h] for h in head]


def csv_line(values: list[str]) -> str:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerow(values)
    return buf.getvalue()


def csv_cases(feed: Feed, head: list[str], n: int) -> list[tuple[str, str, dict]]:
    """(case, line text, the row as written) for one row of each kind, record keys from ``n`` on.
    Undecodable bytes are lone surrogates (encode with ``surrogateescape``)."""
    t = target(feed)
    out = []
    clean = person(feed, n)
    out.append(("clean", csv_line(fields(feed, head, clean)), clean))
    bad = dict(person(feed, n + 1))
    bad[t.name] = bad[t.name][:1] + "\udcff\udcfe" + bad[t.name][1:]
    out.append(("undecodable", csv_line(fields(feed, head, bad)), bad))
    row = person(feed, n + 2)
    out.append(("too_many_fields", csv_line(fields(feed, head, row) + ["多余字段"]), row))
    row = person(feed, n + 3)
    out.append(("too_few_fields", csv_line(fields(feed, head, row)[1:]), row))  # the first field dropped
    row = dict(person(feed, n + 4))
    row[t.name] = row[t.name][:1] + "\x00" + row[t.name][1:]
    out.append(("nul", csv_line(fields(feed, head, row)), row))
    out.append(("blank_line", "\r\n", {}))
    row, _ = rule_breaker(feed, person(feed, n + 5))
    out.append(("rule", csv_line(fields(feed, head, row)), row))
    return out


def csv_bytes(feed: Feed, head: list[str], lines: list[str]) -> bytes:
    text = csv_line(head) + "".join(lines)
    bom = b"\xef\xbb\xbf" if feed.encoding == "utf-8-sig" else b""
    codec = "utf-8" if feed.encoding == "utf-8-sig" else feed.encoding
    return bom + text.encode(codec, "surrogateescape")


# ---------------------------------------------------------------- JSON Lines


def json_obj(feed: Feed, row: dict, order: str = "ordered", extra: bool = False) -> dict:
    items = [(c.source, row[c.name]) for c in feed.columns]
    if order != "ordered":
        items = items[::-1]
    obj = dict(items)
    if extra:
        obj.update(JSON_EXTRA)
    return obj


def json_cases(feed: Feed, order: str, extra: bool, n: int) -> list[tuple[str, str, dict]]:
    t = target(feed)
    out = []

    def line(row):
        return json.dumps(json_obj(feed, row, order, extra), ensure_ascii=False) + "\n"

    clean = person(feed, n)
    out.append(("clean", line(clean), clean))
    row = person(feed, n + 1)
    text = line(row)
    cut = text.index(json.dumps(row[t.name], ensure_ascii=False)) + 2
    out.append(("undecodable", text[:cut] + "\udcff" + text[cut:], row))
    row = person(feed, n + 2)
    out.append(("invalid_json", line(row)[:-3] + "\n", row))
    row = dict(person(feed, n + 4))
    row[t.name] = row[t.name][:1] + "\x00" + row[t.name][1:]
    out.append(("nul", line(row), row))
    out.append(("blank_line", "\n", {}))
    row, _ = rule_breaker(feed, person(feed, n + 5))
    out.append(("rule", line(row), row))
    return out


def json_bytes(lines: list[str]) -> bytes:
    return "".join(lines).encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------- a delivery


def write_files(folder: Path, files: dict[str, tuple[bytes, int]], dept: str, date: str) -> None:
    """Write the files (name -> (bytes, data rows)) and the manifest, last."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, (data, rows) in files.items():
        (folder / name).write_bytes(data)
        entries.append({"name": name, "rows": rows, "sha256": hashlib.sha256(data).hexdigest()})
    (folder / "manifest.json").write_text(json.dumps({"dept": dept, "date": date, "files": entries}), "utf-8")
