"""The double-random inspection draw (双随机、一公开), scoring.md §5, in pure Python.

* 双随机: operators are drawn at random within each final class, and inspectors on duty (在岗)
  at random for each drawn operator (the rules file's ``plan.inspectors_per_operator``, 2 by default).
* 一公开: the draw is public and checkable. Each draw date D has a salt, HMAC-SHA256 of D with
  CREDIT_DRAW_SECRET; a run publishes SHA-256 of the *next* draw's salt in ``draw_commitment``
  before that draw, and the draw reveals the salt in ``inspection_draw``. Anyone can then re-run
  the draw from the published tables alone (:func:`verify_plan`, ``ecredit verify-plan``).

All randomness is SHA-256 ordering from the seed; ratios are exact decimals, never floats.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.engine import Engine

from ecredit.warehouse.schema import (
    draw_commitment,
    engine_for,
    inspection_draw,
    inspection_draw_input,
    inspection_plan,
    inspector,
    operator_score,
    serious_dishonest_list,
)

SCHEDULES = ("monthly", "daily")
#: How many inspectors a draw published before the count was in its ``counts`` gave each operator
#: (scoring.md §5's "the first 2", fixed in code then). Only ``verify_plan`` reads it, for those
#: draws; a new draw takes the rules file's ``plan.inspectors_per_operator`` and publishes it.
LEGACY_INSPECTORS_PER_OPERATOR = 2


def parameters(rules) -> tuple[str, dict[str, str], dict[str, bool]]:
    """(schedule, sampling ratio per class as a decimal string, on-site per class) from the rules
    file (``plan.schedule``, ``measures.classes.<class>.sampling_ratio`` / ``onsite``)."""
    measures = rules.get("measures.classes")
    return (
        str(rules.get("plan.schedule")),
        {c: str(m["sampling_ratio"]) for c, m in measures.items()},
        {c: bool(m["onsite"]) for c, m in measures.items()},
    )


def inspectors_per_operator(rules) -> int:
    """How many inspectors on duty each drawn operator gets (``plan.inspectors_per_operator``)."""
    return int(rules.get("plan.inspectors_per_operator"))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def salt(secret: str, draw_date: dt.date) -> str:
    """salt_D: hex HMAC-SHA256 keyed with CREDIT_DRAW_SECRET over "<D>" (YYYY-MM-DD), scoring.md §5."""
    return hmac.new(secret.encode("utf-8"), draw_date.isoformat().encode("utf-8"), hashlib.sha256).hexdigest()


def salt_commitment(salt: str) -> str:
    """The commitment to a salt: hex SHA-256 of the UTF-8 bytes of its (lowercase hex) string, scoring.md §5."""
    return _sha256(salt)


def seed(draw_date: dt.date, salt: str) -> str:
    """The draw's seed: hex SHA-256 of "<D>|<salt_D>", scoring.md §5."""
    return _sha256(f"{draw_date.isoformat()}|{salt}")


def _check_schedule(schedule: str) -> None:
    if schedule not in SCHEDULES:
        raise ValueError(f"draw schedule must be 'monthly' or 'daily', not {schedule!r}")


def is_draw_date(d: dt.date, schedule: str) -> bool:
    """Whether a run date is a draw date (scoring.md §5): monthly = the 1st of a month, daily = every run."""
    _check_schedule(schedule)
    return schedule == "daily" or d.day == 1


def next_draw_date(d: dt.date, schedule: str) -> dt.date:
    """The first draw date strictly after ``d`` (the date a run of ``d`` commits to), scoring.md §5."""
    _check_schedule(schedule)
    if schedule == "daily":
        return d + dt.timedelta(days=1)
    return dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def _ratio(cls: str, value: str | Decimal) -> Decimal:
    if isinstance(value, float):  # a float has already lost the ratio's exact decimal value
        raise TypeError(f"ratio of class {cls} must be a string or Decimal, not the float {value!r}")
    try:
        r = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"ratio of class {cls} is not a decimal number: {value!r}") from None
    if not (r.is_finite() and 0 <= r <= 1):
        raise ValueError(f"ratio of class {cls} must be between 0 and 1, not {value!r}")
    return r


def draw(
    seed: str,
    final_classes: dict[str, str],
    ratios: Mapping[str, str | Decimal],
    onsite: dict[str, bool],
    inspectors_on_duty: list[str],
    per_operator: int,
    listed=frozenset(),
) -> tuple[list[dict], dict, list[str]]:
    """Draw the inspection plan (scoring.md §5) from the seed, deterministically.

    ``final_classes`` maps operator key -> final class at D; ``inspectors_on_duty`` are the 执法人员编号
    of the inspectors 在岗 at D. For each class c, n_c = ceil(ratio_c x operators of c) in exact
    decimals; operators are ordered by SHA-256("<seed>|<operator key>") and the first n_c drawn. Each
    drawn operator gets the first ``per_operator`` inspectors by
    SHA-256("<seed>|<operator key>|<inspector id>").
    A drawn operator is inspected on site when its class is (``onsite``) or when it is on the
    serious-dishonesty list of D (``listed``: operator keys; lifecycle.md §3), whatever its class;
    the list changes no draw.

    Returns the plan rows (sorted by class, then draw order), the counts per class (JSON-able, with
    ``per_operator`` as ``inspectors_per_operator``: what ``verify_plan`` re-runs) and warnings. A
    class with operators but no ratio raises ValueError.
    """
    if isinstance(per_operator, bool) or not isinstance(per_operator, int) or per_operator < 1:
        raise ValueError(f"inspectors per operator must be an integer >= 1, not {per_operator!r}")
    by_class: dict[str, list[str]] = {}
    for key, cls in final_classes.items():
        by_class.setdefault(cls, []).append(key)
    missing = sorted(set(by_class) - set(ratios))
    if missing:
        raise ValueError(f"no draw ratio for final class(es) {', '.join(missing)}")
    pool = list(dict.fromkeys(inspectors_on_duty))

    rows: list[dict] = []
    counts: dict[str, dict] = {}
    for cls in sorted(ratios):
        r = _ratio(cls, ratios[cls])
        keys = sorted(by_class.get(cls, []), key=lambda k: (_sha256(f"{seed}|{k}"), k))
        n = int((r * len(keys)).to_integral_value(rounding=ROUND_CEILING))
        required = bool(onsite.get(cls, False))
        counts[cls] = {
            "operators": len(keys),
            "ratio": str(r),
            "drawn": n,
            "onsite": required,
            "inspectors_per_operator": per_operator,
        }
        for key in keys[:n]:
            ids = sorted(pool, key=lambda i: (_sha256(f"{seed}|{key}|{i}"), i))[:per_operator]
            rows.append(
                {
                    "operator_key": key,
                    "final_class": cls,
                    "inspector_ids": ",".join(ids),
                    "onsite_required": required or key in listed,
                    "seed": seed,
                }
            )

    warnings: list[str] = []
    if rows and len(pool) < per_operator:
        warnings.append(
            f"only {len(pool)} inspector(s) on duty (在岗): each of the {len(rows)} operators drawn "
            f"gets fewer than {per_operator} inspectors"
        )
    return rows, counts, warnings


def _keys(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:10]) + (f", ... ({len(keys) - 10} more)" if len(keys) > 10 else "")


def _compare_plan(published: dict[str, dict], expected: dict[str, dict]) -> list[str]:
    problems = []
    extra, absent = set(published) - set(expected), set(expected) - set(published)
    if extra:
        problems.append(f"{len(extra)} operator(s) drawn that the draw does not give: {_keys(extra)}")
    if absent:
        problems.append(f"{len(absent)} operator(s) the draw gives that are not in the plan: {_keys(absent)}")
    for field in ("final_class", "inspector_ids", "onsite_required", "seed"):
        diff = [k for k in set(published) & set(expected) if published[k][field] != expected[k][field]]
        if diff:
            problems.append(f"{field} differs for {len(diff)} operator(s): {_keys(diff)}")
    return problems


def verify_plan(engine: Engine, d: dt.date, version: int | None = None) -> tuple[bool, list[str]]:
    """Re-run a version of the draw of D (default: the one in force) from the published tables alone
    (scoring.md §5, 一公开).

    Needs neither the rules file nor the secret: the salt is revealed in ``inspection_draw``, the
    ratios and on-site classes are in its counts, the classes in ``operator_score``, the operators
    on site whatever their class in ``serious_dishonest_list`` and the pool in ``inspector`` (for a
    version whose inputs were kept because a rerun of D replaced those rows: in
    ``inspection_draw_input``). Returns whether every check matched, and the messages: which
    version was checked, then one per check.
    """
    with engine.connect() as conn:
        versions = (
            conn.execute(
                select(inspection_draw).where(inspection_draw.c.run_date == d).order_by(inspection_draw.c.version)
            )
            .mappings()
            .all()
        )
        if not versions:
            return False, [f"no draw was published for {d} (no inspection_draw row)"]
        in_force = next((v for v in versions if v["in_force"]), None)
        row = in_force if version is None else next((v for v in versions if v["version"] == version), None)
        if row is None:
            published = ", ".join(str(v["version"]) for v in versions)
            return False, [
                f"the draw of {d} has no version {version} (published versions: {published})"
                if version
                else f"no version of the draw of {d} is in force (published versions: {published})"
            ]
        ver = row["version"]
        commit = conn.execute(select(draw_commitment).where(draw_commitment.c.draw_date == d)).mappings().first()
        if row["inputs_kept"]:
            kept = (
                conn.execute(
                    select(inspection_draw_input).where(
                        (inspection_draw_input.c.run_date == d) & (inspection_draw_input.c.version == ver)
                    )
                )
                .mappings()
                .all()
            )
            classes = {k["item_key"]: k["final_class"] for k in kept if k["kind"] == "operator"}
            pool = [k["item_key"] for k in kept if k["kind"] == "inspector"]
            listed = {k["item_key"] for k in kept if k["kind"] == "listed"}
            drawn_on = "the classes the version was drawn on (inspection_draw_input)"
        else:
            classes = dict(
                conn.execute(
                    select(operator_score.c.operator_key, operator_score.c.final_class).where(
                        operator_score.c.run_date == d
                    )
                ).all()
            )
            pool = list(
                conn.execute(
                    select(inspector.c.inspector_id).where(inspector.c.run_date == d, inspector.c.on_duty.is_(True))
                ).scalars()
            )
            listed = set(
                conn.execute(
                    select(serious_dishonest_list.c.operator_key).where(serious_dishonest_list.c.run_date == d)
                ).scalars()
            )
            drawn_on = "the scores of D"
        plan = {
            p["operator_key"]: dict(p)
            for p in conn.execute(
                select(inspection_plan).where((inspection_plan.c.run_date == d) & (inspection_plan.c.version == ver))
            ).mappings()
        }

    status = (
        "in force"
        if row["in_force"]
        else (f"superseded: version {in_force['version']} is in force" if in_force else "not in force")
    )
    at = row["published_at"]
    at = (
        "at an unrecorded time"
        if at is None
        # a version published before migration 0003
        else at.isoformat(sep=" ", timespec="seconds") + (" UTC" if at.tzinfo is None else "")
    )  # SQLite keeps UTC, naive
    header = f"version {ver} of {len(versions)} of the draw of {d} ({status}; published {at})"
    checks: list[tuple[bool, str]] = []
    revealed = salt_commitment(row["salt"])
    if commit is None:
        checks.append((False, f"no commitment published before the draw: draw_commitment has no row for {d}"))
    elif commit["published_run_date"] >= d:
        checks.append(
            (
                False,
                f"no commitment published before the draw: the commitment for {d} was published "
                f"by the run of {commit['published_run_date']}, not before {d}",
            )
        )
    else:
        ok = revealed == commit["salt_sha256"]
        checks.append(
            (
                ok,
                f"salt {'matches' if ok else 'does NOT match'} the commitment published by the run of "
                f"{commit['published_run_date']}"
                + ("" if ok else f": SHA-256(salt) = {revealed}, committed {commit['salt_sha256']}"),
            )
        )
    ok = revealed == row["salt_sha256"]
    checks.append(
        (
            ok,
            "SHA-256 of the salt "
            + (
                "matches the published salt_sha256" if ok else f"is {revealed}, the draw publishes {row['salt_sha256']}"
            ),
        )
    )
    s = seed(d, row["salt"])
    ok = s == row["seed"]
    checks.append(
        (
            ok,
            "seed matches SHA-256 of '<D>|<salt>'"
            if ok
            else f"seed mismatched: SHA-256 of '<D>|<salt>' is {s}, the draw publishes {row['seed']}",
        )
    )

    try:
        counts = json.loads(row["counts"], parse_float=Decimal)
        ratios = {c: v["ratio"] for c, v in counts.items()}
        onsite = {c: bool(v.get("onsite", False)) for c, v in counts.items()}
        per = {v.get("inspectors_per_operator", LEGACY_INSPECTORS_PER_OPERATOR) for v in counts.values()}
        if len(per) > 1:
            raise ValueError(f"the classes give different inspectors per operator ({sorted(per, key=str)})")
        rows, expected_counts, _ = draw(
            s, classes, ratios, onsite, pool, per.pop() if per else LEGACY_INSPECTORS_PER_OPERATOR, listed
        )
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        checks.append((False, f"the draw cannot be re-run from the published counts: {e}"))
    else:
        diff = [
            f"class {c}: published {counts.get(c, {}).get(k)} {k}, {drawn_on} give {n[k]}"
            for c, n in expected_counts.items()
            for k in ("operators", "drawn")
            if counts.get(c, {}).get(k) != n[k]
        ]
        checks.append((not diff, f"counts match {drawn_on}" if not diff else "counts differ: " + "; ".join(diff)))
        problems = _compare_plan(plan, {r["operator_key"]: r for r in rows})
        checks.append(
            (
                not problems,
                f"plan matches the draw ({len(rows)} operators)"
                if not problems
                else "plan differs: " + "; ".join(problems),
            )
        )
    return all(ok for ok, _ in checks), [header] + [msg for _, msg in checks]


def main_verify(date_str: str, warehouse_url: str, version: int | None = None) -> int:
    """``ecredit verify-plan``: print each check and the verdict; 0 when the plan of D (the version
    in force, or ``version``) verifies, else 1."""
    import sys

    from sqlalchemy.exc import SQLAlchemyError

    d = dt.date.fromisoformat(date_str)
    engine = engine_for(warehouse_url)
    try:
        ok, messages = verify_plan(engine, d, version)
    except SQLAlchemyError as e:
        print(f"ecredit: cannot read the published tables of the warehouse ({type(e).__name__})", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    for msg in messages:
        print(msg)
    which = f"plan for {d}" + (f" version {version}" if version is not None else "")
    print(f"{which} verified" if ok else f"{which} does NOT match")
    return 0 if ok else 1
