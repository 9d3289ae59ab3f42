"""The published `operator_score` rows equal an independent re-computation of scoring.md §1-§3 from
the landing files (tests/expected_scores.py: no pyspark, nothing imported from `ecredit`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.expected_scores import expected_scores

SCORE_COLUMNS = [
    "identity_score",
    "evaluation_score",
    "quality_score",
    "conduct_score",
    "total_score",
    "score_class",
    "final_class",
    "rules_applied",
]


def _reason_records(reasons: dict) -> list:
    """(record key, type, severity) of the active records a reasons JSON names; the key is None when
    the JSON carries none."""
    out = []
    for r in reasons.get("records", []):
        out.append((r.get("record_key"), r.get("record_type", r.get("type")), r.get("severity")))
    return sorted(out, key=repr)


def _reason_rules(reasons: dict) -> str:
    return ",".join(sorted(r.get("rule") if isinstance(r, dict) else r for r in reasons.get("rules", [])))


def score_differences(
    warehouse_url: str, landing: Path, dates: list[str], pii_key: str, rules_path: Path, skip=frozenset()
) -> list[str]:
    """Every difference between the published operator_score rows of `dates` and the oracle."""
    with create_engine(warehouse_url).connect() as c:
        rows = [dict(r._mapping) for r in c.execute(text("SELECT * FROM operator_score"))]
    published: dict[str, dict] = {}
    for r in rows:
        published.setdefault(str(r["run_date"]), {})[r["operator_key"]] = r
    published_dates = sorted(published)
    rules_version = hashlib.sha256(Path(rules_path).read_bytes()).hexdigest()

    diffs: list[str] = []
    oracle: dict[str, dict] = {}
    for d in sorted(dates):
        want = oracle[d] = expected_scores(landing, dates, d, pii_key, rules_path, skip)
        got = published.get(d, {})
        for k in sorted(set(want) - set(got)):
            diffs.append(f"{d} {k}: classified by the oracle, no operator_score row ({want[k]['final_class']})")
        for k in sorted(set(got) - set(want)):
            diffs.append(f"{d} {k}: published ({got[k]['final_class']}), not classified by the oracle")
        earlier = [x for x in published_dates if x < d]
        previous = earlier[-1] if earlier else None
        for k in sorted(set(want) & set(got)):
            w, g = want[k], got[k]
            for col in SCORE_COLUMNS:
                gv = g[col] if col != "rules_applied" else (g[col] or "")
                if gv != w[col]:
                    diffs.append(f"{d} {k}: {col} expected {w[col]!r}, published {gv!r}")
            if previous is None or previous in oracle:
                prev = oracle[previous].get(k, {}).get("final_class") if previous else None
                if g["previous_class"] != prev:
                    diffs.append(
                        f"{d} {k}: previous_class expected {prev!r} (at {previous}), published {g['previous_class']!r}"
                    )
            if g["rules_version"] != rules_version:
                diffs.append(
                    f"{d} {k}: rules_version {g['rules_version']!r}, the rules file's SHA-256 is {rules_version}"
                )
            try:
                reasons = json.loads(g["reasons"])
                recs, rules_named = _reason_records(reasons), _reason_rules(reasons)
            except (TypeError, ValueError, AttributeError) as e:
                diffs.append(f"{d} {k}: reasons is not the expected JSON ({e})")
                continue
            with_keys = all(rk is not None for rk, _t, _s in recs)  # compare keys when the JSON names them
            want_recs = sorted(((rk if with_keys else None), t, s) for rk, t, s in w["active_records"])
            want_recs.sort(key=repr)
            if recs != want_recs:
                missing = sorted(set(want_recs) - set(recs), key=repr)
                extra = sorted(set(recs) - set(want_recs), key=repr)
                diffs.append(f"{d} {k}: reasons records differ: missing {missing}, unexpected {extra}")
            if rules_named != w["rules_applied"]:
                diffs.append(f"{d} {k}: reasons rules {rules_named!r}, expected {w['rules_applied']!r}")
    return diffs


def assert_scores_match(
    warehouse_url: str, landing: Path, dates: list[str], pii_key: str, rules_path: Path, skip=frozenset()
) -> None:
    """For every date, the operator_score rows equal the oracle's: the same operator keys, every
    score, class, rule, previous class and the rules version; the first 10 differences on failure."""
    diffs = score_differences(warehouse_url, landing, dates, pii_key, rules_path, skip)
    assert not diffs, f"{len(diffs)} operator_score differences from the oracle, the first 10:\n" + "\n".join(
        diffs[:10]
    )


def test_every_published_score_follows_the_spec(e2e):
    """The three-date end-to-end run (one delivery rejected, backfilled dates): every number of
    operator_score, its previous class, reasons and rules version, as the oracle computes them."""
    from tests.integration.conftest import DATES, PII_KEY, REJECTED

    assert_scores_match(e2e["warehouse"], e2e["root"] / "landing", DATES, PII_KEY, e2e["rules"], skip={REJECTED})


def test_the_oracle_can_fail(e2e, tmp_path):
    """A changed number in a copy of the warehouse is reported (the comparison is not vacuous)."""
    import shutil

    from tests.integration.conftest import DATES, PII_KEY, REJECTED

    copy = tmp_path / "w.db"
    shutil.copy(e2e["root"] / "warehouse.db", copy)
    with create_engine(f"sqlite:///{copy}").begin() as c:
        c.execute(
            text(
                "UPDATE operator_score SET quality_score = quality_score + 1 WHERE operator_key = "
                "(SELECT MIN(operator_key) FROM operator_score WHERE run_date = :d) AND run_date = :d"
            ),
            {"d": DATES[1]},
        )
    diffs = score_differences(
        f"sqlite:///{copy}", e2e["root"] / "landing", DATES, PII_KEY, e2e["rules"], skip={REJECTED}
    )
    assert len(diffs) == 1 and "quality_score" in diffs[0]
