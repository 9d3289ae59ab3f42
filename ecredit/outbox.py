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

import pyarrow.compute as pc
import pyarrow.parquet as pq

from ecredit import delivery, ingest
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


def quarantined_rows(settings: Settings, dept: str, date: dt.date, file: dict):
    part = (ingest.rows_path(settings) / f"feed_id={file['feed_id']}" / f"delivery_date={date.isoformat()}"
            / f"file_sha={file['sha256']}")
    if not part.is_dir():
        return []
    t = pq.read_table(str(part), columns=["source_line", "reasons", "payload"])
    t = t.filter(pc.greater(pc.list_value_length(t["reasons"]), 0)).sort_by("source_line")
    return [(file["name"], r["source_line"], ";".join(r["reasons"]), r["payload"]) for r in t.to_pylist()]


def rejections(settings: Settings, dept: str, date: dt.date) -> Path | None:
    gate = delivery.current_gate(settings, dept, date)
    if gate is None:
        return None
    path = settings.outbox_dir / dept / date.isoformat() / "rejections.csv"
    if gate["status"] == delivery.REJECTED:
        rows = [("", "", "DELIVERY_REJECTED", json.dumps({"reasons": gate["reasons"]}, ensure_ascii=False))]
    else:
        rows = [r for f in gate["files"] for r in quarantined_rows(settings, dept, date, f)]
    write_csv_atomic(path, ["file", "line", "reasons", "content"], rows)
    return path


def push(settings: Settings, run_date: dt.date) -> dict:
    written = []
    for dept in DEPARTMENTS:
        for d in delivery.delivery_dates(settings, dept, run_date):
            target = settings.outbox_dir / dept / d.isoformat() / "rejections.csv"
            if d == run_date or not target.exists():
                p = rejections(settings, dept, d)
                if p:
                    written.append(str(p))
    return {"files": len(written)}
