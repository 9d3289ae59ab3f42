"""Delivery-level verdicts after parsing (``quality.md``): apply the whole delivery, or none of it.

The gate (``delivery.py``) decides what can be checked without parsing (manifest, files, SHA-256,
row counts, header). Once its files are parsed, a delivery is rejected when more than
``quality.max_quarantined_ratio`` of a file's rows are quarantined, and warned when a file has
more than ``quality.volume_factor`` times the median rows of that feed's last
``quality.volume_history`` deliveries. Every verdict is a pure function of the deliveries in the
landing zone (and the rules file), computed from the small JSON results in the lake.
"""

from __future__ import annotations

import datetime as dt
import statistics
from decimal import Decimal

from ecredit.core import checks as checks_mod
from ecredit.core import lake
from ecredit.core.feeds import DEPARTMENTS
from ecredit.core.records import DeliveryStatus, DqCheck, ParsedFile, Severity, Verdict
from ecredit.core.rules import Rules
from ecredit.core.settings import Settings
from ecredit.ingest import gate as delivery

APPLIED = DeliveryStatus.APPLIED
PENDING = DeliveryStatus.PENDING


def volume_median(settings: Settings, dept: str, feed_id: str, before: dt.date, history: int) -> float | None:
    """Median rows of the feed in the department's last ``history`` accepted deliveries before D."""
    counts = []
    for d in reversed(delivery.delivery_dates(settings, dept, before - dt.timedelta(days=1))):
        g = delivery.current_gate(settings, dept, d)
        if g and g.status == delivery.ACCEPTED:
            counts += [f.rows for f in g.files if f.feed_id == feed_id]
        if len(counts) >= history:
            break
    return statistics.median(counts[:history]) if counts else None


def verdict(settings: Settings, rules: Rules, dept: str, date: dt.date, with_volume: bool = True) -> Verdict:
    """status (a DeliveryStatus): ``missing`` | ``rejected`` | ``applied`` | ``pending`` (accepted by
    the gate, not parsed yet); with reasons, warnings, per-file counts and the dq_result checks
    (DqCheck records). The volume check
    (a warning: it never changes the status) reads earlier deliveries; ``with_volume=False`` skips it
    where only the status and counts are needed."""
    gate = delivery.current_gate(settings, dept, date)
    out = Verdict(
        dept=dept,
        date=date.isoformat(),
        status=delivery.MISSING,
        manifest_sha256=gate.manifest_sha256 if gate else None,
    )
    if gate is None:
        return out
    error, warning = Severity.ERROR, Severity.WARNING
    out.warnings = list(gate.warnings)
    out.checks = [
        DqCheck(
            feed="*",
            check="delivery_gate",
            success=gate.status == delivery.ACCEPTED,
            severity=error,
            element_count=len(gate.files),
            unexpected_count=len(gate.reasons),
            detail="; ".join(gate.reasons) or "ok",
        )
    ]
    if gate.status == delivery.REJECTED:
        out.status, out.reasons = delivery.REJECTED, list(gate.reasons)
        return out
    q = rules.get("quality")
    limit = Decimal(str(q["max_quarantined_ratio"]))
    status = APPLIED
    for f in gate.files:
        counts = lake.read_done(settings, f.info(dept, date.isoformat()))
        if counts is None:
            status = PENDING
            continue
        stem = f.feed_id.split(".", 1)[1]
        out.files.append(
            ParsedFile(
                file=f,
                rows_in=counts["rows_in"],
                rows_loaded=counts["rows_loaded"],
                rows_quarantined=counts["rows_quarantined"],
                per_reason=counts.get("per_reason", {}),
                per_warning=counts.get("per_warning", {}),
            )
        )
        rows_in, bad = counts["rows_in"], counts["rows_quarantined"]
        too_many = rows_in > 0 and Decimal(bad) > limit * rows_in
        out.checks.append(
            DqCheck(
                feed=stem,
                check="quarantined_ratio",
                success=not too_many,
                severity=error,
                element_count=rows_in,
                unexpected_count=bad,
                detail=f"{bad} of {rows_in} rows quarantined (limit {limit:%})",
            )
        )
        for e in counts.get("expectations", []):  # the feed's GX suite, run by the ingest job on this file
            detail = (
                f"{e['reason_code']}: {e['unexpected_count']} of {e['element_count']} parsed rows unexpected"
                if e["column"] is not None
                # the row count: rows set aside before GX ran
                else f"{e['reason_code']}: {e['unexpected_count']} of {e['element_count']} rows in the file set aside "
                "before GX ran (never validated by the other expectations)"
            )
            out.checks.append(
                DqCheck(
                    feed=stem,
                    check=f"gx:{e['expectation']}({e['column'] or ''})",
                    success=e["success"],
                    severity=error,
                    element_count=e["element_count"],
                    unexpected_count=e["unexpected_count"],
                    detail=detail,
                )
            )
        for code, n in sorted(counts.get("per_reason", {}).items()):
            out.checks.append(
                DqCheck(
                    feed=stem,
                    check=f"rows:{code}",
                    success=n == 0,
                    severity=error,
                    element_count=rows_in,
                    unexpected_count=n,
                    detail=f"{n} rows with {code}",
                )
            )
        # warnings: a check that found something is not a success, and its severity says it kept
        # the rows (as the volume check); the file's own (header) from the gate, the rows' from ingest
        for w in f.warnings:
            out.checks.append(
                DqCheck(
                    feed=stem,
                    check=f"header:{w.code}",
                    success=False,
                    severity=warning,
                    element_count=w.columns,
                    unexpected_count=w.count,
                    detail=w.detail,
                )
            )
        for code, n in sorted(counts.get("per_warning", {}).items()):
            out.checks.append(
                DqCheck(
                    feed=stem,
                    check=f"rows:{code}",
                    success=n == 0,
                    severity=warning,
                    element_count=rows_in,
                    unexpected_count=n,
                    detail=f"{n} rows kept with {code}: {checks_mod.WARNING_TEXT.get(code, code)}",
                )
            )
            out.warnings.append(f"{f.name}: {n} rows kept with {code} ({checks_mod.WARNING_TEXT.get(code, code)})")
        if too_many:
            status = delivery.REJECTED
            out.reasons.append(f"{f.name}: {bad} of {rows_in} rows quarantined, more than {limit:%}")
        if not with_volume:
            continue
        median = volume_median(settings, dept, f.feed_id, date, int(q["volume_history"]))
        high = median is not None and median > 0 and f.rows > q["volume_factor"] * median
        if median is not None:
            out.checks.append(
                DqCheck(
                    feed=stem,
                    check="volume",
                    success=not high,
                    severity=warning,
                    element_count=f.rows,
                    unexpected_count=int(high),
                    detail=f"{f.rows} rows; median of the last deliveries {median:g}",
                )
            )
        if high:
            out.warnings.append(f"{f.name}: {f.rows} rows, more than {q['volume_factor']} x the median {median:g}")
    out.status = status
    return out


def applied_files(settings: Settings, rules: Rules, up_to: dt.date) -> list[dict]:
    """The files of every delivery dated <= up_to whose verdict is ``applied``."""
    out = []
    for dept in DEPARTMENTS:
        for d in delivery.delivery_dates(settings, dept, up_to):
            v = verdict(settings, rules, dept, d, with_volume=False)
            if v.status == APPLIED:
                out += [
                    f.info(dept, d.isoformat(), str(delivery.delivery_dir(settings, dept, d) / f.name)) for f in v.files
                ]
    return out
