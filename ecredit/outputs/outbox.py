"""The outbox (推送): files for the departments, UTF-8 with BOM so a spreadsheet opens them, written
atomically (temporary name, then rename), with cells a spreadsheet would run as a formula
neutralised.

Per department: ``<dept>/<delivery date>/rejections.csv`` for every checked delivery (its
quarantined rows, or the reason the whole delivery was rejected), and for every run date
``<dept>/<D>/serious_dishonest_changes.csv`` (the list's ADDED / REMOVED, the same for all nine) and
``<dept>/<D>/measures.csv`` (the measures that department applies, each with its basis and legal
basis: lifecycle.md §3).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from decimal import Decimal
from pathlib import Path

from ecredit.core import lake
from ecredit.core import rules as rules_mod
from ecredit.core.feeds import DEPARTMENTS
from ecredit.core.records import DeliveryStatus
from ecredit.core.settings import Settings
from ecredit.ingest import gate as delivery
from ecredit.quality import verdict as validation

# What a spreadsheet may run as a formula (OWASP "CSV injection"): = + - @ and a leading tab or
# CR, and the full-width forms a CJK input method types.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def neutralise(cell) -> str:
    """A text cell that starts like a formula gets a leading ``'`` (shown as text, the value
    otherwise unchanged), negative numbers written as text included; a number (int, Decimal,
    float: the line column) is written as it is, never prefixed."""
    if cell is None:
        return ""
    if isinstance(cell, (int, float, Decimal)) and not isinstance(cell, bool):
        return str(cell)
    s = str(cell)
    return "'" + s if s.startswith(FORMULA_START) else s


def write_csv_atomic(path: Path, header: list[str], rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for r in rows:
        w.writerow([neutralise(c) for c in r])
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(buf.getvalue().encode("utf-8-sig"))
    os.replace(tmp, path)


ERROR, WARNING = "error", "warning"
REJECTIONS_HEADER = ["file", "line", "severity", "reasons", "content"]


def rejections(settings: Settings, rules, dept: str, date: dt.date) -> Path | None:
    """``<dept>/<delivery date>/rejections.csv``: for an applied delivery, its quarantined rows
    (severity ``error``) and what it was warned about, though kept (severity ``warning``): a
    file's header (line 1: columns in another order than feeds.md, an unknown extra column) and
    the rows kept with a warning (a retired district code); or the reasons a delivery was rejected
    as a whole. By file, then line; the content's personal data masked."""
    v = validation.verdict(settings, rules, dept, date, with_volume=False)
    if v.status in (DeliveryStatus.MISSING, DeliveryStatus.PENDING):
        return None
    path = settings.outbox_dir / dept / date.isoformat() / "rejections.csv"
    rows: list[tuple]
    if v.status == DeliveryStatus.REJECTED:
        rows = [("", "", ERROR, "DELIVERY_REJECTED", json.dumps({"reasons": v.reasons}, ensure_ascii=False))]
    else:
        rows = []
        for f in v.files:
            info = f.info(dept, date.isoformat())
            lines = [(1, WARNING, w.code, json.dumps({"detail": w.detail}, ensure_ascii=False)) for w in f.warnings]
            lines += [
                (r["source_line"], ERROR, ";".join(r["reasons"]), r["payload"])
                for r in lake.quarantined_rows(settings, info)
            ]
            lines += [
                (r["source_line"], WARNING, ";".join(r["warnings"]), r["payload"])
                for r in lake.warned_rows(settings, info)
            ]
            rows += [(f.name, *line) for line in sorted(lines, key=lambda x: x[0])]
    write_csv_atomic(path, REJECTIONS_HEADER, rows)
    return path


def run_files(settings: Settings, run_date: dt.date) -> list[Path]:
    """The run date's list changes (all departments) and each department's own measures."""
    names = {
        r["operator_key"]: r["name"]
        for r in lake.gold_rows(settings, run_date, "dim_operator", ["operator_key", "name"])
    }
    names.update(
        {
            r["operator_key"]: r["name"]
            for r in lake.gold_rows(settings, run_date, "serious_dishonest_list", ["operator_key", "name"])
        }
    )
    changes = sorted(
        lake.gold_rows(settings, run_date, "dishonest_list_change", ["operator_key", "record_type", "change"]),
        key=lambda r: (r["change"], r["operator_key"], r["record_type"]),
    )
    measures = lake.gold_rows(
        settings,
        run_date,
        "supervision_measure",
        ["operator_key", "measure_code", "final_class", "responsible_dept", "basis", "legal_basis", "under_objection"],
    )
    out = []
    for dept in DEPARTMENTS:
        folder = settings.outbox_dir / dept / run_date.isoformat()
        p = folder / "serious_dishonest_changes.csv"
        write_csv_atomic(
            p,
            ["operator_key", "name", "record_type", "change"],
            [(r["operator_key"], names.get(r["operator_key"], ""), r["record_type"], r["change"]) for r in changes],
        )
        out.append(p)
        mine = sorted(
            (r for r in measures if r["responsible_dept"] == dept), key=lambda r: (r["measure_code"], r["operator_key"])
        )
        p = folder / "measures.csv"
        write_csv_atomic(
            p,
            ["operator_key", "name", "final_class", "measure_code", "basis", "legal_basis", "under_objection"],
            [
                (
                    r["operator_key"],
                    names.get(r["operator_key"], ""),
                    r["final_class"],
                    r["measure_code"],
                    r["basis"],
                    r["legal_basis"],
                    "true" if r["under_objection"] else "false",
                )
                for r in mine
            ],
        )
        out.append(p)
    return out


def push(settings: Settings, run_date: dt.date) -> dict:
    rule_set = rules_mod.load(settings.rules_path)
    written = [str(p) for p in run_files(settings, run_date)]
    for dept in DEPARTMENTS:
        for d in delivery.delivery_dates(settings, dept, run_date):
            target = settings.outbox_dir / dept / d.isoformat() / "rejections.csv"
            if d == run_date or not target.exists():
                p = rejections(settings, rule_set, dept, d)
                if p:
                    written.append(str(p))
    return {"files": len(written)}
