"""The rules file (``scoring.md``): loaded, validated, and versioned by its SHA-256.

The whole file is checked against ``SCHEMA`` when it is loaded: every key known, none missing,
every value of its type and range (ratios and amounts exact decimals), and the parts consistent
with each other and with the feeds (``feeds.md``: the values a department sends). A malformed file
raises ``RulesError``, a ``SettingError``, with one sentence naming ``CREDIT_RULES``, the file and
the key path, e.g. ``CREDIT_RULES (/x/rules.yaml): conduct.points_by_severity.3 must be an
integer, not 'abc'.`` The run's first task loads the file (``pipeline.resolve_run_date``), so a
wrong rules file stops the run there. Code reads numbers from ``Rules`` only; no weight, window,
threshold, severity or count is written in code.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, cast

import yaml

from ecredit.core.feeds import CREDIT, DEPARTMENTS, FEEDS, PENALTY_CATEGORIES, REGISTRATION_STATUSES
from ecredit.core.settings import SettingError

#: The severity scale of a credit record (scoring.md §1: 1 minor, 2 general, 3 serious, 4 very
#: serious). It is the model's, not a rule: a bump never goes past the top ("max 4").
SEVERITIES = (1, 2, 3, 4)
CLASSES = ("A", "B", "C", "D")  # best to worst (scoring.md §3)


class RulesError(SettingError):
    """The rules file named by CREDIT_RULES is unreadable or malformed; one sentence naming the key."""


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


# ---------------------------------------------------------------- the schema


class _Bad(Exception):
    """A problem at a key path; ``load`` turns it into the one-sentence RulesError."""

    def __init__(self, where: tuple, problem: str):
        super().__init__(problem)
        self.where, self.problem = where, problem


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return _show(value)


class Spec:
    def check(self, value: Any, where: tuple) -> None:
        raise NotImplementedError


@dataclass
class Int(Spec):
    min: int | None = None
    max: int | None = None

    def check(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(where, f"must be an integer, not {_kind(value)}")
        if self.min is not None and value < self.min or self.max is not None and value > self.max:
            raise _Bad(where, f"must be an integer {_range(self.min, self.max)}, not {value!r}")


def _range(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"from {lo} to {hi}"
    return f">= {lo}" if lo is not None else f"<= {hi}"


@dataclass
class Dec(Spec):
    """An exact decimal: an integer, a decimal number as written in YAML (0.20) or a quoted
    decimal ("0.03"); never a boolean, NaN or infinity."""

    min: Decimal | int | None = None
    max: Decimal | int | None = None
    positive: bool = False
    text_ok: bool = True  # False: a YAML number only (the code multiplies it with a float)

    def check(self, value, where):
        d = to_decimal(value) if self.text_ok or not isinstance(value, str) else None
        if d is None:
            raise _Bad(where, f"must be a decimal number, not {_kind(value)}")
        if self.positive and d <= 0:
            raise _Bad(where, f"must be a decimal number > 0, not {value!r}")
        if self.min is not None and d < self.min or self.max is not None and d > self.max:
            raise _Bad(where, f"must be a decimal number {_range(self.min, self.max)}, not {value!r}")


def to_decimal(value) -> Decimal | None:
    """The exact decimal a rules-file number stands for (a YAML float by its shortest repr,
    which is the decimal written in the file), or None when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


RATIO = Dec(0, 1)


@dataclass
class Str(Spec):
    choices: tuple | None = None
    pattern: str | None = None
    what: str = ""  # what the choices are, for the message

    def check(self, value, where):
        if not isinstance(value, str) or not value.strip():
            raise _Bad(where, f"must be a non-empty text, not {_kind(value)}")
        if self.choices is not None and value not in self.choices:
            raise _Bad(where, f"must be one of {', '.join(map(str, self.choices))}{self.what}, not {value!r}")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise _Bad(where, f"must match {self.pattern}, not {value!r}")


@dataclass
class Bool(Spec):
    def check(self, value, where):
        if not isinstance(value, bool):
            raise _Bad(where, f"must be true or false, not {_kind(value)}")


@dataclass
class List(Spec):
    item: Spec
    min_len: int = 0

    def check(self, value, where):
        if not isinstance(value, list):
            raise _Bad(where, f"must be a list, not {_kind(value)}")
        if len(value) < self.min_len:
            raise _Bad(where, f"must list at least {self.min_len} value(s)")
        for i, v in enumerate(value):
            self.item.check(v, where + (i,))
        seen = set()
        for i, v in enumerate(value):
            key = repr(v)
            if key in seen:
                raise _Bad(where + (i,), f"repeats {_show(v)}")
            seen.add(key)


@dataclass
class Record(Spec):
    """A mapping with known keys: each required unless in ``optional``; no other key."""

    fields: dict
    optional: frozenset = frozenset()

    def check(self, value, where):
        if not isinstance(value, dict):
            raise _Bad(where, f"must be a mapping of {', '.join(map(str, self.fields))}, not {_kind(value)}")
        for k in value:
            if k not in self.fields:
                of = "of " + ".".join(map(str, where)) if where else "at the top level"
                raise _Bad(where + (k,), f"is not a known key {of} (known: {', '.join(map(str, self.fields))})")
        for k, spec in self.fields.items():
            if k not in value:
                if k in self.optional:
                    continue
                raise _Bad(where + (k,), "is missing")
            spec.check(value[k], where + (k,))


@dataclass
class Table(Spec):
    """A mapping whose keys are data (the values a feed sends, classes, severities)."""

    key: Spec
    value: Spec
    keys_exactly: tuple | None = None  # every one of these keys and no other

    def check(self, value, where):
        if not isinstance(value, dict):
            raise _Bad(where, f"must be a mapping, not {_kind(value)}")
        for k in value:
            if self.keys_exactly is not None and k not in self.keys_exactly:
                quoted = isinstance(k, str) and k in map(str, self.keys_exactly)
                raise _Bad(
                    where + (k,),
                    f"is not a known key of {'.'.join(map(str, where))} "
                    f"(known: {', '.join(map(str, self.keys_exactly))})"
                    + ("; write the number without quotes" if quoted else ""),
                )
            try:
                self.key.check(k, where)
            except _Bad as e:
                raise _Bad(where + (k,), "is not a valid key: it " + e.problem) from None
        for k in self.keys_exactly or ():
            if k not in value:
                raise _Bad(where + (k,), "is missing")
        for k, v in value.items():
            self.value.check(v, where + (k,))


@dataclass
class Custom(Spec):
    fn: Callable[[Any, tuple], None] = field(default=lambda v, w: None)

    def check(self, value, where):
        self.fn(value, where)


def _credit_feeds():
    return [f for f in FEEDS if f.table == CREDIT]


NON_NEG = Int(min=0)
POSITIVE = Int(min=1)
DAYS = Int(min=1)
SEVERITY = Int(min=SEVERITIES[0], max=SEVERITIES[-1])
BUMP = Int(min=0, max=SEVERITIES[-1] - SEVERITIES[0])
CLASS = Str(choices=CLASSES)
LABEL = Str()
RECORD_TYPE = Str(pattern=r"[A-Z][A-Z0-9_]*")


def _severity_table(value: Spec) -> Table:
    return Table(Int(), value, keys_exactly=SEVERITIES)


def _record_spec(value, where):
    Record(
        {"type": RECORD_TYPE, "severity": SEVERITY, "polarity": Str(choices=("negative", "positive"))},
        optional=frozenset({"severity", "polarity"}),
    ).check(value, where)
    if value.get("polarity", "negative") == "negative" and "severity" not in value:
        raise _Bad(where + ("severity",), "is missing (a negative record has a severity from 1 to 4)")
    if value.get("polarity") == "positive" and "severity" in value:
        raise _Bad(where + ("severity",), "must not be given: a positive record has no severity")


def _record_types_spec() -> Record:
    tables = {}
    for f in _credit_feeds():
        col = f.column(f.type_column)
        tables[f.feed_id] = Table(
            Str(choices=col.values, what=f" (the values of {f.feed_id}'s {col.source})"), Custom(_record_spec)
        )
    return Record(tables)


MEASURE_CODE = Str(pattern=r"[A-Z][A-Z0-9_]{0,39}")


def _check_ratio(value, where):
    ratio = to_decimal(value) if isinstance(value, str) else None
    if ratio is None or not 0 <= ratio <= 1:
        raise _Bad(where, f'must be a decimal between 0 and 1, quoted ("0.03"), not {_show(value)}')


# §4 and lifecycle.md §3: per final class the draw's sampling ratio, on-site and the class's
# measures; the serious list's measures; per measure code its department and legal basis.
MEASURES = Record(
    {
        "classes": Table(
            CLASS,
            Record({"sampling_ratio": Custom(_check_ratio), "onsite": Bool(), "measures": List(MEASURE_CODE)}),
            keys_exactly=CLASSES,
        ),
        "serious_list": List(MEASURE_CODE),
        "codes": Table(
            MEASURE_CODE,
            Record({"dept": Str(choices=tuple(DEPARTMENTS), what=" (a department code)"), "legal_basis": Str()}),
        ),
    }
)


def _class_rule(fields: dict) -> Record:
    return Record({**fields, "label": LABEL}, optional=frozenset({"label"}))


SCHEMA = Record(
    {
        "version_label": Str(),
        # §1
        "windows": Record({"default_by_severity": _severity_table(DAYS)}),
        "record_types": _record_types_spec(),
        "penalties": Record(
            {
                "light_categories": List(Str(choices=PENALTY_CATEGORIES, what=" (amr.penalties' 处罚类别)")),
                "light_severity": SEVERITY,
                "light_window_days": DAYS,
                "heavy_categories": List(Str(choices=PENALTY_CATEGORIES, what=" (amr.penalties' 处罚类别)")),
                "heavy_severity": SEVERITY,
                "window_days": DAYS,
                "large_amount_yuan": Dec(min=0),
                "large_amount_severity_bump": BUMP,
            }
        ),
        "lists": Record({"serious_max_days": DAYS}),
        "cac": Record({"unrectified_severity_bump": BUMP, "rectified_window_days": DAYS}),
        "customs_violations": Record({"large_amount_yuan": Dec(min=0), "large_amount_severity_bump": BUMP}),
        # quality.md
        "quality": Record(
            {
                "max_quarantined_ratio": RATIO,
                "volume_factor": Dec(positive=True, text_ok=False),
                "volume_history": POSITIVE,
            }
        ),
        "registry": Record(
            {
                "active_statuses": List(
                    Str(choices=REGISTRATION_STATUSES, what=" (amr.operators' 登记状态)"), min_len=1
                ),
                "revoked_status": Str(choices=REGISTRATION_STATUSES, what=" (amr.operators' 登记状态)"),
                "unclassified_statuses": List(Str(choices=REGISTRATION_STATUSES, what=" (amr.operators' 登记状态)")),
            }
        ),
        # §2
        "identity": Record(
            {
                "registered_points": NON_NEG,
                "licence_displayed_points": NON_NEG,
                "verified_recent_days": DAYS,
                "verified_recent_points": NON_NEG,
                "verified_days": DAYS,
                "verified_points": NON_NEG,
            }
        ),
        "evaluation": Record(
            {
                "months": POSITIVE,
                "weights": Table(
                    Str(),
                    RATIO,
                    keys_exactly=("overall_satisfaction", "product_quality", "brand_reputation", "after_sales"),
                ),
                "scale": POSITIVE,
                "no_reviews_score": NON_NEG,
                "deleted_reviews_penalty": NON_NEG,
                "max": NON_NEG,
            }
        ),
        "quality_score": Record(
            {
                "spot_check_days": DAYS,
                "no_spot_check_points": NON_NEG,
                "spot_check_scale": NON_NEG,
                "passed_result": Str(choices=("合格", "不合格"), what=" (amr.spot_checks' 抽查结果)"),
                "complaint_days": DAYS,
                "complaint_in_progress": NON_NEG,
                "complaint_done_without_compensation": NON_NEG,
                "complaint_done_with_compensation": NON_NEG,
                "complaint_cap": NON_NEG,
            }
        ),
        "conduct": Record(
            {"base": NON_NEG, "points_by_severity": _severity_table(NON_NEG), "positive_bonus": NON_NEG, "max": NON_NEG}
        ),
        # §3
        "classes": Record(
            {
                "thresholds": Table(Str(), Int(), keys_exactly=CLASSES[:-1]),
                "labels": Table(Str(), LABEL, keys_exactly=CLASSES),
            }
        ),
        "class_rules": Record(
            {
                "R_NEW": _class_rule({"established_days": DAYS, "base_class": CLASS}),
                "R_SERIOUS": _class_rule({"record_types": List(RECORD_TYPE, min_len=1), "class": CLASS}),
                "R_REVOKED": _class_rule({"class": CLASS}),
                "R_SEV4": _class_rule({"severity": SEVERITY, "class": CLASS}),
                "R_ABNORMAL": _class_rule({"record_types": List(RECORD_TYPE, min_len=1), "class": CLASS}),
            }
        ),
        # §4
        "measures": MEASURES,
        # §5
        "plan": Record({"schedule": Str(choices=("monthly", "daily")), "inspectors_per_operator": POSITIVE}),
        # §6
        "dishonest_list": Record({"record_types": List(RECORD_TYPE, min_len=1)}),
        "risk_alerts": Record({"levels": Table(CLASS, LABEL), "max_reasons": POSITIVE}),
    },
    optional=frozenset({"version_label"}),
)


def _consistent(data: dict) -> None:
    """What the schema of each key alone cannot say: the parts agree with each other."""
    types: dict[str, tuple] = {}
    for feed_id, table in data["record_types"].items():
        for value, spec in table.items():
            meaning = (spec.get("polarity", "negative"), spec.get("severity"))
            if types.setdefault(spec["type"], meaning) != meaning:
                raise _Bad(
                    ("record_types", feed_id, value, "type"),
                    f"gives {spec['type']} another polarity or severity than an earlier value does",
                )
    for where in (
        ("class_rules", "R_SERIOUS", "record_types"),
        ("class_rules", "R_ABNORMAL", "record_types"),
        ("dishonest_list", "record_types"),
    ):
        node = data
        for part in where:
            node = node[part]
        for i, t in enumerate(node):
            if t not in types:
                raise _Bad(where + (i,), f"names {t!r}, which is no record type of record_types")
            if types[t][0] != "negative":
                raise _Bad(where + (i,), f"names {t!r}, a positive record type")
    p = data["penalties"]
    both = sorted(set(p["light_categories"]) & set(p["heavy_categories"]))
    if both:
        raise _Bad(("penalties", "heavy_categories"), f"must not repeat a light category ({', '.join(both)})")
    reg = data["registry"]
    both = sorted(set(reg["active_statuses"]) & set(reg["unclassified_statuses"]))
    if both:
        raise _Bad(("registry", "unclassified_statuses"), f"must not hold an active status ({', '.join(both)})")
    t = data["classes"]["thresholds"]
    if not t["A"] > t["B"] > t["C"]:
        raise _Bad(("classes", "thresholds"), f"must have A > B > C, not {t['A']}, {t['B']}, {t['C']}")
    m = data["measures"]
    named: list[tuple[tuple, str]] = [
        (("measures", "classes", c, "measures", i), code)
        for c in m["classes"]
        for i, code in enumerate(m["classes"][c]["measures"])
    ]
    named += [(("measures", "serious_list", i), code) for i, code in enumerate(m["serious_list"])]
    for where, code in named:
        if code not in m["codes"]:
            raise _Bad(where, f"names {code!r}, which is no measure code of measures.codes")
    weights = data["evaluation"]["weights"]
    total = sum((cast(Decimal, to_decimal(w)) for w in weights.values()), Decimal(0))  # numbers: checked above
    if total != 1:
        raise _Bad(("evaluation", "weights"), f"must add up to 1 exactly, not {total}")


def _where(parts: tuple) -> str:
    return ".".join(str(p) for p in parts)


def validate(data: Any, path: str) -> None:
    """Raise RulesError naming CREDIT_RULES, the file and the key path when ``data`` (the parsed
    file) is not a valid rule set."""
    if not isinstance(data, dict):
        raise RulesError(
            f"CREDIT_RULES ({path}) must hold a mapping of the rules (scoring.md), not "
            f"{'an empty file' if data is None else _kind(data)}."
        )
    try:
        SCHEMA.check(data, ())
        _consistent(data)
    except _Bad as e:
        raise RulesError(f"CREDIT_RULES ({path}): {_where(e.where)} {e.problem}.") from None


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, except that a key given twice in one mapping is an error (PyYAML
    would keep the last silently, hiding the first)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"the key {key!r} is given twice", key_node.start_mark
                        )
                    seen.add(key)
                except TypeError:  # an unhashable key: the base constructor says so
                    break
        return super().construct_mapping(node, deep)


# The rules of the files read so far in this process, by path and content: a DAG run in one process
# (`ecredit run`) loads the file in a dozen tasks, and parsing and validating the YAML costs ~0.1 s
# each time. The file is read every time; changed bytes are parsed again. A copy is handed out.
_LOADED: dict[tuple[str, str], Rules] = {}


def load(path: str | Path) -> Rules:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise RulesError(f"CREDIT_RULES ({p}) cannot be read ({e.strerror}).") from None
    key = (str(p), hashlib.sha256(raw).hexdigest())
    if key not in _LOADED:
        if len(_LOADED) >= 8:
            _LOADED.clear()
        _LOADED[key] = _parse(p, raw, key[1])
    rules = _LOADED[key]
    return Rules(data=copy.deepcopy(rules.data), version=rules.version, path=rules.path)


def _parse(p: Path, raw: bytes, version: str) -> Rules:
    try:
        data = yaml.load(raw, Loader=_Loader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        why = " ".join(str(getattr(e, "problem", None) or e).split())
        raise RulesError(f"CREDIT_RULES ({p}) is not valid YAML: {at}{why}.") from None
    validate(data, str(p))
    return Rules(data=data, version=version, path=str(p))
