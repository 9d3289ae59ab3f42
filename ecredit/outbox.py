"""The outbox (推送): files for the departments, UTF-8 with BOM so a spreadsheet opens them, written
atomically (temporary name, then rename), with cells a spreadsheet would run as a formula
neutralised.

So far: ``<dept>/<delivery date>/rejections.csv`` for every checked delivery (its quarantined rows,
or the reason the whole delivery was rejected). The list changes and measures come with scoring.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from pathlib import Path

from ecredit import delivery, ingest, rules as rules_mod, validation
from ecredit.feeds import DEPARTMENTS
from ecredit.settings import Settings

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell) -> str:
    s = "" if cell is None else str(cell)
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


def rejections(settings: Settings, rules, dept: str, date: dt.date) -> Path | None:
    """``<dept>/<delivery date>/rejections.csv``: the quarantined rows of an applied delivery, or
    the reasons a delivery was rejected as a whole."""
    v = validation.verdict(settings, rules, dept, date, with_volume=False)
    if v["status"] in (delivery.MISSING, "pending"):
        return None
    path = settings.outbox_dir / dept / date.isoformat() / "rejections.csv"
    if v["status"] == delivery.REJECTED:
        rows = [("", "", "DELIVERY_REJECTED", json.dumps({"reasons": v["reasons"]}, ensure_ascii=False))]
    else:
        rows = [(f["name"], r["source_line"], ";".join(r["reasons"]), r["payload"])
                for f in v["files"] for r in ingest.quarantined(settings, {**f, "dept": dept, "date": date.isoformat()})]
    write_csv_atomic(path, ["file", "line", "reasons", "content"], rows)
    return path


def push(settings: Settings, run_date: dt.date) -> dict:
    rule_set = rules_mod.load(settings.rules_path)
    written = []
    for dept in DEPARTMENTS:
        for d in delivery.delivery_dates(settings, dept, run_date):
            target = settings.outbox_dir / dept / d.isoformat() / "rejections.csv"
            if d == run_date or not target.exists():
                p = rejections(settings, rule_set, dept, d)
                if p:
                    written.append(str(p))
    return {"files": len(written)}
