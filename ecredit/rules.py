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
    return Rules(data=data, version=hashlib.sha256(raw).hexdigest(), path=str(p))
