"""The records passed between the stages, typed, and the one vocabulary of a delivery's status.

Spark-free. Each record serialises to exactly the JSON the lake's markers and the published
tables held before it was typed (``to_json``/``from_json``), so nothing stored changes
(decision 0090).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class DeliveryStatus(StrEnum):
    """A delivery's status end to end: the gate says accepted / rejected (missing: no complete
    delivery); the verdict after parsing says applied / rejected / pending; ``feed_status``
    publishes an applied delivery as ok or partial (some rows quarantined)."""

    ACCEPTED = "accepted"  # the gate: manifest, files, SHA-256, row counts and headers agree
    REJECTED = "rejected"  # the gate, or the verdict (too many rows quarantined)
    MISSING = "missing"  # no complete delivery (no manifest)
    PENDING = "pending"  # accepted by the gate, not parsed yet
    APPLIED = "applied"  # the verdict: the delivery's loaded rows enter the state
    OK = "ok"  # feed_status: applied, no row quarantined
    PARTIAL = "partial"  # feed_status: applied, some rows quarantined

    def published(self, rows_quarantined: int) -> DeliveryStatus:
        """The word ``feed_status`` (and the validate task's summary) uses: an applied delivery
        is ok, or partial when rows of it were quarantined; any other status is itself."""
        if self is DeliveryStatus.APPLIED:
            return DeliveryStatus.PARTIAL if rows_quarantined else DeliveryStatus.OK
        return self


class Severity(StrEnum):
    ERROR = "error"  # rows quarantined, delivery rejected
    WARNING = "warning"  # rows and files kept


def _file_info(record: dict, dept: str, date: str, path: str | None) -> dict:
    """A file's record as the plain dict the ingest stage hands its executors: the record's JSON
    with the department, the delivery date and, when given, the file's path."""
    out = {**record, "dept": dept, "date": date}
    if path is not None:
        out["path"] = path
    return out


@dataclass(frozen=True)
class FileWarning:
    """A warning about a delivery file itself (its header): it keeps the file."""

    code: str
    count: int
    columns: int
    detail: str

    def to_json(self) -> dict:
        return {"code": self.code, "count": self.count, "columns": self.columns, "detail": self.detail}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FileWarning:
        return cls(code=d["code"], count=d["count"], columns=d["columns"], detail=d["detail"])


@dataclass(frozen=True)
class DeliveryFile:
    """A file of a delivery, as the gate found it."""

    name: str
    feed_id: str
    rows: int
    sha256: str
    warnings: tuple[FileWarning, ...] = ()

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "feed_id": self.feed_id,
            "rows": self.rows,
            "sha256": self.sha256,
            "warnings": [w.to_json() for w in self.warnings],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DeliveryFile:
        return cls(
            name=d["name"],
            feed_id=d["feed_id"],
            rows=d["rows"],
            sha256=d["sha256"],
            warnings=tuple(FileWarning.from_json(w) for w in d.get("warnings", [])),
        )

    def info(self, dept: str, date: str, path: str | None = None) -> dict:
        """The dict the ingest stage hands its executors for this file (picklable, no record)."""
        return _file_info(self.to_json(), dept, date, path)


@dataclass
class GateResult:
    """The delivery-level gate's result for one delivery (cached in the lake under its manifest's
    SHA-256). Built up while the gate checks the files, hence not frozen."""

    dept: str
    date: str
    manifest_sha256: str
    status: DeliveryStatus = DeliveryStatus.ACCEPTED
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[DeliveryFile] = field(default_factory=list)

    def reject(self, reason: str) -> GateResult:
        self.status = DeliveryStatus.REJECTED
        self.reasons.append(reason)
        return self

    def to_json(self) -> dict:
        return {
            "dept": self.dept,
            "date": self.date,
            "manifest_sha256": self.manifest_sha256,
            "status": str(self.status),
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "files": [f.to_json() for f in self.files],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> GateResult:
        return cls(
            dept=d["dept"],
            date=d["date"],
            manifest_sha256=d["manifest_sha256"],
            status=DeliveryStatus(d["status"]),
            reasons=list(d["reasons"]),
            warnings=list(d["warnings"]),
            files=[DeliveryFile.from_json(f) for f in d["files"]],
        )


@dataclass(frozen=True)
class DqCheck:
    """One check of a delivery, a row of ``dq_result`` (with the delivery's keys and the run)."""

    feed: str
    check: str
    success: bool
    severity: Severity
    element_count: int
    unexpected_count: int
    detail: str

    def to_json(self) -> dict:
        return {
            "feed": self.feed,
            "check": self.check,
            "success": self.success,
            "severity": str(self.severity),
            "element_count": self.element_count,
            "unexpected_count": self.unexpected_count,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DqCheck:
        return cls(
            feed=d["feed"],
            check=d["check"],
            success=d["success"],
            severity=Severity(d["severity"]),
            element_count=d["element_count"],
            unexpected_count=d["unexpected_count"],
            detail=d["detail"],
        )


@dataclass(frozen=True)
class ParsedFile:
    """A file of an accepted delivery with its counts after parsing (its done-marker's)."""

    file: DeliveryFile
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    per_reason: Mapping[str, int] = field(default_factory=dict)  # rows quarantined per reason code
    per_warning: Mapping[str, int] = field(default_factory=dict)  # rows kept with a warning, per code

    name = property(lambda self: self.file.name)
    feed_id = property(lambda self: self.file.feed_id)
    rows = property(lambda self: self.file.rows)
    sha256 = property(lambda self: self.file.sha256)
    warnings = property(lambda self: self.file.warnings)

    def to_json(self) -> dict:
        return {
            **self.file.to_json(),
            "rows_in": self.rows_in,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "per_reason": dict(self.per_reason),
            "per_warning": dict(self.per_warning),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ParsedFile:
        return cls(
            file=DeliveryFile.from_json(d),
            rows_in=d["rows_in"],
            rows_loaded=d["rows_loaded"],
            rows_quarantined=d["rows_quarantined"],
            per_reason=dict(d.get("per_reason", {})),
            per_warning=dict(d.get("per_warning", {})),
        )

    def info(self, dept: str, date: str, path: str | None = None) -> dict:
        return _file_info(self.to_json(), dept, date, path)


@dataclass
class Verdict:
    """The verdict on one delivery after parsing (``quality/verdict.py``): its status, reasons,
    warnings, parsed files and the checks ``dq_result`` publishes. Built up file by file."""

    dept: str
    date: str
    status: DeliveryStatus = DeliveryStatus.MISSING
    manifest_sha256: str | None = None
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[ParsedFile] = field(default_factory=list)
    checks: list[DqCheck] = field(default_factory=list)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    def to_json(self) -> dict:
        return {
            "dept": self.dept,
            "date": self.date,
            "status": str(self.status),
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "files": [f.to_json() for f in self.files],
            "checks": [c.to_json() for c in self.checks],
            "manifest_sha256": self.manifest_sha256,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Verdict:
        return cls(
            dept=d["dept"],
            date=d["date"],
            status=DeliveryStatus(d["status"]),
            manifest_sha256=d["manifest_sha256"],
            reasons=list(d["reasons"]),
            warnings=list(d["warnings"]),
            files=[ParsedFile.from_json(f) for f in d["files"]],
            checks=[DqCheck.from_json(c) for c in d["checks"]],
        )
