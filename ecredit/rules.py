"""The rules file (``scoring.md``): loaded, validated, and versioned by its SHA-256.

A malformed file raises ``RulesError`` with one sentence naming the key. Code reads numbers from
``Rules`` only; no weight, window or threshold is written in code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

from ecredit.feeds import FEEDS, CREDIT


class RulesError(ValueError):
    pass


@dataclass(frozen=True)
class Rules:
    data: dict
    version: str  # SHA-256 of the file's bytes
    path: str

    def record_type_table(self, feed_id: str) -> dict:
        return self.data["record_types"][feed_id]

    def default_window(self, severity: int) -> int:
        return int(self.data["windows"]["default_by_severity"][severity])

    def get(self, dotted: str):
        node = self.data
        for part in dotted.split("."):
            node = node[part]
        return node


def _require(data: dict, dotted: str, kind, path: str, parts: tuple | None = None):
    node = data
    for part in parts or dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise RulesError(f"The rules file {path} lacks the key {dotted!r}.")
        node = node[part]
    if kind is not None and not isinstance(node, kind):
        raise RulesError(f"The rules file {path} has {dotted!r} of the wrong type "
                         f"({type(node).__name__}, expected {getattr(kind, '__name__', kind)}).")
    return node


def load(path: str | Path) -> Rules:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise RulesError(f"CREDIT_RULES: the rules file {p} cannot be read ({e.strerror}).") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise RulesError(f"The rules file {p} is not valid YAML: {e}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise RulesError(f"The rules file {p} must be a mapping at the top level.")
    sev = _require(data, "windows.default_by_severity", dict, str(p))
    for s in (1, 2, 3, 4):
        if not isinstance(sev.get(s), int) or sev[s] <= 0:
            raise RulesError(f"The rules file {p} needs a positive integer at 'windows.default_by_severity.{s}'.")
    for f in FEEDS:
        if f.table != CREDIT:
            continue
        table = _require(data, f"record_types.{f.feed_id}", dict, str(p), ("record_types", f.feed_id))
        for value, spec in table.items():
            where = f"record_types.{f.feed_id}.{value}"
            if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
                raise RulesError(f"The rules file {p} needs a 'type' at {where!r}.")
            if spec.get("polarity", "negative") not in ("negative", "positive"):
                raise RulesError(f"The rules file {p} has a bad polarity at {where!r}.")
            if spec.get("polarity", "negative") == "negative" and spec.get("severity") not in (1, 2, 3, 4):
                raise RulesError(f"The rules file {p} needs a severity 1-4 at {where!r}.")
    for key, kind in (("penalties.light_categories", list), ("penalties.light_window_days", int),
                      ("penalties.heavy_categories", list), ("penalties.window_days", int),
                      ("penalties.large_amount_yuan", (int, float)), ("lists.serious_max_days", int),
                      ("cac.unrectified_severity_bump", int), ("cac.rectified_window_days", int),
                      ("customs_violations.large_amount_yuan", (int, float)),
                      ("quality.max_quarantined_ratio", (int, float)), ("quality.volume_factor", (int, float)),
                      ("quality.volume_history", int)):
        _require(data, key, kind, str(p))
    _check_scoring(data, str(p))
    return Rules(data=data, version=hashlib.sha256(raw).hexdigest(), path=str(p))


NUMBER = (int, float)
SCORING_KEYS = (
    ("registry.active_statuses", list), ("registry.revoked_status", str), ("registry.unclassified_statuses", list),
    ("identity.registered_points", int), ("identity.licence_displayed_points", int),
    ("identity.verified_recent_days", int), ("identity.verified_recent_points", int),
    ("identity.verified_days", int), ("identity.verified_points", int),
    ("evaluation.months", int), ("evaluation.weights", dict), ("evaluation.scale", NUMBER),
    ("evaluation.no_reviews_score", int), ("evaluation.deleted_reviews_penalty", int), ("evaluation.max", int),
    ("quality_score.spot_check_days", int), ("quality_score.no_spot_check_points", int),
    ("quality_score.spot_check_scale", int), ("quality_score.passed_result", str),
    ("quality_score.complaint_days", int), ("quality_score.complaint_in_progress", int),
    ("quality_score.complaint_done_without_compensation", int),
    ("quality_score.complaint_done_with_compensation", int), ("quality_score.complaint_cap", int),
    ("conduct.base", int), ("conduct.points_by_severity", dict), ("conduct.positive_bonus", int), ("conduct.max", int),
    ("classes.thresholds", dict), ("classes.labels", dict),
    ("class_rules.R_NEW.established_days", int), ("class_rules.R_NEW.base_class", str),
    ("class_rules.R_SERIOUS.record_types", list), ("class_rules.R_SERIOUS.class", str),
    ("class_rules.R_REVOKED.class", str), ("class_rules.R_SEV4.severity", int), ("class_rules.R_SEV4.class", str),
    ("class_rules.R_ABNORMAL.record_types", list), ("class_rules.R_ABNORMAL.class", str),
    ("measures.classes", dict), ("measures.serious_list", list), ("measures.codes", dict),
    ("plan.schedule", str), ("dishonest_list.record_types", list),
    ("risk_alerts.levels", dict), ("risk_alerts.max_reasons", int),
)


def _check_scoring(data: dict, path: str) -> None:
    """The scoring.md part of the rules file: every key present, of its type, and coherent."""
    def bad(key: str, why: str):
        raise RulesError(f"The rules file {path} has a bad {key!r}: {why}.")

    for key, kind in SCORING_KEYS:
        _require(data, key, kind, path)
    classes = ("A", "B", "C", "D")
    t = data["classes"]["thresholds"]
    if not all(isinstance(t.get(c), int) for c in "ABC") or not t["A"] > t["B"] > t["C"]:
        bad("classes.thresholds", "needs integers A > B > C")
    for key in ("class_rules.R_NEW.base_class", "class_rules.R_SERIOUS.class", "class_rules.R_REVOKED.class",
                "class_rules.R_SEV4.class", "class_rules.R_ABNORMAL.class"):
        if _require(data, key, str, path) not in classes:
            bad(key, "a class is one of A, B, C, D")
    if set(data["conduct"]["points_by_severity"]) != {1, 2, 3, 4}:
        bad("conduct.points_by_severity", "needs points for severities 1, 2, 3 and 4")
    if set(data["evaluation"]["weights"]) != {"overall_satisfaction", "product_quality", "brand_reputation", "after_sales"}:
        bad("evaluation.weights", "needs overall_satisfaction, product_quality, brand_reputation, after_sales")
    if data["plan"]["schedule"] not in ("monthly", "daily"):
        bad("plan.schedule", "monthly or daily")
    _check_measures(data, path, bad)
    if not set(data["risk_alerts"]["levels"]) <= set(classes):
        bad("risk_alerts.levels", "keys are classes")


def _check_measures(data: dict, path: str, bad) -> None:
    """``measures`` (scoring.md §4, lifecycle.md §3): per class a sampling ratio, an on-site flag and
    measure codes; the serious list's codes; per code its department and legal basis."""
    from decimal import Decimal, InvalidOperation

    from ecredit.feeds import DEPARTMENTS

    codes = data["measures"]["codes"]
    for code, spec in codes.items():
        where = f"measures.codes.{code}"
        if not (isinstance(code, str) and code.isascii() and code.replace("_", "").isalnum() and code.isupper()
                and len(code) <= 40):
            bad(where, "a measure code is upper-case letters, digits and _, at most 40 characters")
        if not isinstance(spec, dict) or spec.get("dept") not in DEPARTMENTS:
            bad(f"{where}.dept", f"one of {', '.join(DEPARTMENTS)}")
        if not (isinstance(spec.get("legal_basis"), str) and spec["legal_basis"].strip()):
            bad(f"{where}.legal_basis", "the provision the measure rests on, a non-empty text")

    def known(key: str, items) -> None:
        if not isinstance(items, list) or any(not isinstance(c, str) or c not in codes for c in items):
            bad(key, f"a list of measure codes of measures.codes, not {items!r}")
        if len(set(items)) != len(items):
            bad(key, "a measure is listed twice")

    if set(data["measures"]["classes"]) != {"A", "B", "C", "D"}:
        bad("measures.classes", "needs the classes A, B, C and D")
    for c in data["measures"]["classes"]:
        key = f"measures.classes.{c}"
        try:
            ratio = Decimal(str(_require(data, f"{key}.sampling_ratio", str, path, ("measures", "classes", c, "sampling_ratio"))))
        except InvalidOperation:
            ratio = Decimal(-1)
        if not Decimal(0) <= ratio <= Decimal(1):
            bad(f"{key}.sampling_ratio", "a decimal between 0 and 1, quoted (\"0.03\")")
        _require(data, f"{key}.onsite", bool, path, ("measures", "classes", c, "onsite"))
        known(f"{key}.measures", _require(data, f"{key}.measures", list, path, ("measures", "classes", c, "measures")))
    known("measures.serious_list", data["measures"]["serious_list"])
