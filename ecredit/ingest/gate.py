"""Deliveries in the landing zone and their delivery-level gate (``quality.md``).

A delivery is one department's folder for one date. It is complete once its ``manifest.json``
exists. The gate checks the manifest against the files (presence, SHA-256, row count) and the
headers against the feed registry; its result is cached in the lake under the manifest's own
SHA-256, so a delivery is checked once and a corrected redelivery (a new manifest) is checked anew.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path
from zoneinfo import ZoneInfo

from ecredit.core import checks, lake
from ecredit.core import feeds as feeds_mod
from ecredit.core.records import DeliveryFile, DeliveryStatus, FileWarning, GateResult
from ecredit.core.settings import Settings
from ecredit.ingest import parse

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")

ACCEPTED = DeliveryStatus.ACCEPTED
REJECTED = DeliveryStatus.REJECTED
MISSING = DeliveryStatus.MISSING


def delivery_dir(settings: Settings, dept: str, date: dt.date) -> Path:
    return settings.landing_dir / dept / date.isoformat()


def manifest_path(settings: Settings, dept: str, date: dt.date) -> Path:
    return delivery_dir(settings, dept, date) / "manifest.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def delivery_dates(settings: Settings, dept: str, up_to: dt.date) -> list[dt.date]:
    """Dates <= up_to of the department's complete deliveries (folders with a manifest)."""
    root = settings.landing_dir / dept
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        try:
            d = dt.date.fromisoformat(p.name)
        except ValueError:
            continue
        if d <= up_to and (p / "manifest.json").is_file():
            out.append(d)
    return sorted(out)


def manifest_ready(
    settings: Settings, dept: str, run_date: dt.date, scheduled: bool, now: dt.datetime | None = None
) -> bool:
    if manifest_path(settings, dept, run_date).is_file() or not scheduled:
        return True
    hh, mm = (int(x) for x in settings.manifest_deadline.split(":"))
    deadline = dt.datetime.combine(run_date + dt.timedelta(days=1), dt.time(hh, mm), SHANGHAI)
    now = now or dt.datetime.now(SHANGHAI)
    if now >= deadline:
        log.warning(
            "%s: no manifest for %s by the deadline %s: the department is missing", dept, run_date, deadline.isoformat()
        )
        return True
    return False


def current_gate(settings: Settings, dept: str, date: dt.date) -> GateResult | None:
    """The gate result of the delivery as it is in the landing zone now (None: not checked yet
    or no manifest)."""
    mp = manifest_path(settings, dept, date)
    if not mp.is_file():
        return None
    stored = lake.read_json(lake.gate_result(settings, dept, date, sha256_file(mp)))
    return GateResult.from_json(stored) if stored is not None else None


def _starts_with_utf8_bom(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(3) == parse.BOM_UTF8


def _utf16_bom(path: Path) -> str | None:
    with open(path, "rb") as f:
        head = f.read(2)
    return head.hex(" ").upper() if head in (b"\xff\xfe", b"\xfe\xff") else None


def gate_delivery(settings: Settings, dept: str, date: dt.date) -> GateResult:
    """Check one complete delivery; the result is a GateResult, never an exception for bad data."""
    folder = delivery_dir(settings, dept, date)
    mp = folder / "manifest.json"
    manifest_sha = sha256_file(mp)
    result = GateResult(dept=dept, date=date.isoformat(), manifest_sha256=manifest_sha)
    reject = result.reject

    try:
        manifest = json.loads(mp.read_text("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as e:
        return reject(f"manifest.json is not valid JSON: {e}")
    except RecursionError:
        return reject("manifest.json is not valid JSON: nested too deeply to read")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return reject("manifest.json has no 'files' list")
    if manifest.get("dept") not in (None, dept) or manifest.get("date") not in (None, date.isoformat()):
        return reject(
            f"manifest.json names {manifest.get('dept')}/{manifest.get('date')}, not {dept}/{date.isoformat()}"
        )

    listed = set()
    for entry in manifest["files"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            reject(f"manifest.json has a file entry without a name: {entry!r}")
            continue
        name = entry["name"]
        if name in listed:  # its rows would be read twice
            reject(f"{name}: listed more than once in the manifest")
            continue
        listed.add(name)
        try:
            feed = feeds_mod.feed(dept, name)
        except KeyError:
            result.warnings.append(f"{name}: not a feed of {dept} in feeds.md; ignored")
            continue
        path = folder / name
        if not path.is_file():
            reject(f"{name}: listed in the manifest but absent")
            continue
        sha = sha256_file(path)
        if not isinstance(entry.get("sha256"), str) or sha != entry["sha256"].lower():  # hex in either case
            reject(f"{name}: SHA-256 {sha} differs from the manifest's {entry.get('sha256')}")
            continue
        utf16 = _utf16_bom(path)
        if utf16:  # Excel's "Unicode text": nothing of it reads in the declared encoding
            reject(
                f"{name}: UTF-16 (it begins with the byte-order mark {utf16}); feeds.md declares "
                f"{feed.declared_encoding}"
            )
            continue
        rows = parse.count_rows(str(path), feed)
        claimed = entry.get("rows")
        if isinstance(claimed, bool) or not isinstance(claimed, (int, float)) or rows != claimed:
            reject(f"{name}: {rows} rows, the manifest says {json.dumps(claimed, ensure_ascii=False)}")
            continue
        header = parse.read_header(str(path), feed)
        if feed.fmt == "csv" and rows == 0 and not any(header.columns):
            result.warnings.append(f"{name}: an empty file (no header): zero rows")
        elif header.missing:
            reject(f"{name}: schema drift, required columns missing: {', '.join(header.missing)}")
            continue
        known = {c.source for c in feed.columns}
        twice = sorted({c for c in header.columns if c in known and header.columns.count(c) > 1})
        if twice:  # which of the two would be the value? neither is guessed
            reject(f"{name}: the header names a column more than once: {', '.join(twice)}")
            continue
        # the file's own warnings (quality.md: they keep the file), counted per file in dq_result and
        # listed in rejections.csv at line 1, the header's
        file_warnings = []
        for extra in header.extra:
            result.warnings.append(f"{name}: unknown extra column {extra!r} ignored")
        if header.extra:
            file_warnings.append(
                FileWarning(
                    code=checks.EXTRA_COLUMN,
                    count=len(header.extra),
                    columns=len(header.columns),
                    detail="unknown extra columns ignored: " + ", ".join(map(repr, header.extra)),
                )
            )
        if header.out_of_place:
            result.warnings.append(
                f"{name}: columns in another order than feeds.md, read by the header's "
                f"names: {', '.join(header.columns)}"
            )
            file_warnings.append(
                FileWarning(
                    code=checks.COLUMNS_REORDERED,
                    count=len(header.out_of_place),
                    columns=len(header.columns),
                    detail=f"{len(header.out_of_place)} columns not where feeds.md lists them, "
                    f"read by the header's names: {', '.join(header.columns)}",
                )
            )
        if feed.encoding == "gb18030" and _starts_with_utf8_bom(path):
            result.warnings.append(
                f"{name}: begins with the UTF-8 byte-order mark though feeds.md declares "
                f"{feed.declared_encoding}; read as UTF-8"
            )
        result.files.append(
            DeliveryFile(name=name, feed_id=feed.feed_id, rows=rows, sha256=sha, warnings=tuple(file_warnings))
        )
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name != "manifest.json" and p.name not in listed:
            result.warnings.append(f"{p.name}: present but not listed in the manifest; ignored")
    return result


def gate(settings: Settings, dept: str, date: dt.date) -> tuple[GateResult, bool]:
    """The gate result of a complete delivery as it is now: from the cache, or checked now and
    cached under the manifest's SHA-256. Returns (result, checked_now)."""
    cached = current_gate(settings, dept, date)
    if cached is not None:
        return cached, False
    res = gate_delivery(settings, dept, date)
    lake.write_json(lake.gate_result(settings, dept, date, res.manifest_sha256), res.to_json(), pretty=True)
    if res.status == REJECTED:
        log.warning("%s %s: delivery rejected: %s", dept, date, "; ".join(res.reasons))
    for w in res.warnings:
        log.warning("%s %s: %s", dept, date, w)
    return res, True


def check(settings: Settings, dept: str, run_date: dt.date) -> dict:
    """Gate every delivery of the department dated <= D that has not been gated in its present
    form; return the status of the delivery dated D (``missing`` when there is none)."""
    checked = sum(gate(settings, dept, d)[1] for d in delivery_dates(settings, dept, run_date))
    today = current_gate(settings, dept, run_date)
    status = today.status if today else MISSING
    log.info("%s: delivery of %s is %s (%d deliveries checked now)", dept, run_date, status, checked)
    # a plain dict of plain strings: the task's return value (XCom)
    return {
        "dept": dept,
        "run_date": run_date.isoformat(),
        "status": str(status),
        "checked_now": checked,
        "reasons": list(today.reasons) if today else [],
        "warnings": list(today.warnings) if today else [],
    }


def accepted_files(settings: Settings, up_to: dt.date) -> list[dict]:
    """Every file of every accepted delivery dated <= up_to, as it is in the landing zone now:
    dicts with dept, date, feed_id, name, path, rows, sha256."""
    out = []
    for dept in feeds_mod.DEPARTMENTS:
        for d in delivery_dates(settings, dept, up_to):
            result, _ = gate(settings, dept, d)
            if result.status != ACCEPTED:
                continue
            for f in result.files:
                out.append(f.info(dept, d.isoformat(), str(delivery_dir(settings, dept, d) / f.name)))
    return out


def unparsed_files(settings: Settings, up_to: dt.date) -> list[dict]:
    """The accepted files dated <= up_to that the ingest stage has not parsed (no done-marker);
    Spark-free, so a driver task can ask without importing the ingest job."""
    return [f for f in accepted_files(settings, up_to) if not lake.done_marker(settings, f).is_file()]
