"""`supervision_measure` (lifecycle.md §3) and the three published fact tables `fact_license`,
`fact_spot_check`, `fact_complaint` (warehouse.md) of the three-date end-to-end run, against the
independent oracle (tests/expected_scores.py: the landing files read again by hand, no pyspark,
nothing computed by `ecredit`)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, select, text

from ecredit.warehouse import schema as wh
from tests.expected import read_rows
from tests.expected_scores import expected_facts, expected_measures, expected_scores

MEASURE_COLUMNS = ("final_class", "responsible_dept", "basis", "legal_basis", "under_objection")
FACT_TABLES = ("fact_license", "fact_spot_check", "fact_complaint")


def _rows(url: str, table: str) -> list[dict]:
    """The table's rows read through its typed definition (dates as dates, booleans as booleans)."""
    with create_engine(url).connect() as c:
        return [dict(r._mapping) for r in c.execute(select(wh.metadata.tables[table]))]


def measure_differences(
    url: str,
    landing: Path,
    dates: list[str],
    pii_key: str,
    rules_path: Path,
    skip=frozenset(),
    only: list[str] | None = None,
) -> tuple[list[str], Counter]:
    """Every difference between the published supervision_measure rows and the oracle, per date of
    `only` (default: every date); and what the oracle's rows cover (to show the comparison is not
    vacuous)."""
    with create_engine(url).connect() as c:
        rows = [dict(r._mapping) for r in c.execute(text("SELECT * FROM supervision_measure"))]
    diffs, seen = [], Counter()
    for d in only or dates:
        scores = expected_scores(landing, dates, d, pii_key, rules_path, skip)
        want = expected_measures(landing, dates, d, pii_key, rules_path, skip, scores=scores)
        got = {(r["operator_key"], r["measure_code"]): r for r in rows if str(r["run_date"]) == d}
        if len(got) != len([r for r in rows if str(r["run_date"]) == d]):
            diffs.append(f"{d}: more than one row for an (operator, measure)")
        for k in sorted(set(want) - set(got)):
            diffs.append(f"{d} {k}: expected ({want[k]['basis']}), not published")
        for k in sorted(set(got) - set(want)):
            diffs.append(f"{d} {k}: published ({got[k].get('final_class')}, {got[k].get('basis')}), not expected")
        for k in sorted(set(want) & set(got)):
            for col in MEASURE_COLUMNS:
                g = got[k].get(col, "<no such column>")
                g = bool(g) if col == "under_objection" and g in (0, 1) else g
                if g != want[k][col]:
                    diffs.append(f"{d} {k}: {col} expected {want[k][col]!r}, published {g!r}")
        for (op, code), w in want.items():
            seen[("listed" if not w["basis"].startswith("class:") else w["basis"], code)] += 1
        seen["classified operators without a measure"] += len({op for op in scores} - {op for op, _ in want})
    return diffs, seen


def test_every_published_measure_follows_lifecycle_3(e2e):
    """Every row of supervision_measure on the three dates (one delivery rejected, backfilled dates):
    which operators get which measures, the department, the basis, the legal basis and the
    objection flag, as the oracle gives them; the run covers every kind of row."""
    from tests.integration.conftest import DATES, PII_KEY, REJECTED

    diffs, seen = measure_differences(
        e2e["warehouse"], e2e["root"] / "landing", DATES, PII_KEY, e2e["rules"], skip={REJECTED}
    )
    assert not diffs, f"{len(diffs)} supervision_measure differences from the oracle, the first 10:\n" + "\n".join(
        diffs[:10]
    )
    # class D without the list: on-site inspection only; the listed: all nine; A-C without the list: none
    assert seen[("class:D", "ONSITE_INSPECTION")] > 0 and not [
        k for k in seen if k[0] == "class:D" and k[1] != "ONSITE_INSPECTION"
    ]
    assert all(seen[("listed", code)] > 0 for code in ("ONSITE_INSPECTION", "NO_COMMITMENT", "PLATFORM_PROMOTION"))
    assert seen["classified operators without a measure"] > 0


def test_the_measure_comparison_can_fail(e2e, tmp_path):
    """A measure of a class-D operator moved to a class-C one, or a basis changed, in a copy of the
    warehouse, is reported."""
    from tests.integration.conftest import DATES, PII_KEY, REJECTED

    copy = tmp_path / "w.db"
    shutil.copy(e2e["root"] / "warehouse.db", copy)
    url = f"sqlite:///{copy}"
    d = DATES[-1]
    with create_engine(url).begin() as c:
        moved = c.execute(
            text(
                "UPDATE supervision_measure SET basis = 'class:D' WHERE run_date = :d AND operator_key = "
                "(SELECT MIN(operator_key) FROM supervision_measure WHERE run_date = :d "
                "AND basis <> 'class:D')"
            ),
            {"d": d},
        ).rowcount
        c_op = c.execute(
            text("SELECT MIN(operator_key) FROM operator_score WHERE run_date = :d AND final_class = 'C'"), {"d": d}
        ).scalar()
        c.execute(
            text(
                "INSERT INTO supervision_measure SELECT run_date, :op, 'PLATFORM_PROMOTION', 'C', 'commerce', "
                "'class:C', legal_basis, under_objection FROM supervision_measure WHERE run_date = :d LIMIT 1"
            ),
            {"d": d, "op": c_op},
        )
    diffs, _ = measure_differences(
        url, e2e["root"] / "landing", DATES, PII_KEY, e2e["rules"], skip={REJECTED}, only=[d]
    )
    assert any(f"'{c_op}', 'PLATFORM_PROMOTION'): published" in x for x in diffs), diffs[:5]
    assert sum("basis expected" in x for x in diffs) == moved == 9 and len(diffs) == 1 + moved


def fact_differences(
    url: str, landing: Path, dates: list[str], pii_key: str, rules_path: Path, skip=frozenset()
) -> tuple[list[str], dict]:
    """Every difference between the three fact tables and the oracle's state at the latest date."""
    want_all = expected_facts(landing, dates, max(dates), pii_key, rules_path, skip)
    diffs, sizes = [], {}
    for table in FACT_TABLES:
        key = wh.metadata.tables[table].primary_key.columns.keys()[0]
        got = {r[key]: r for r in _rows(url, table)}
        want = want_all[table]
        sizes[table] = len(want)
        for k in sorted(set(want) ^ set(got)):
            diffs.append(f"{table} {k}: {'expected, not published' if k in want else 'published, not expected'}")
        for k in sorted(set(want) & set(got)):
            if set(got[k]) != set(want[k]):
                diffs.append(f"{table} {k}: columns {sorted(got[k])}, expected {sorted(want[k])}")
            for col, v in want[k].items():
                if got[k].get(col) != v:
                    diffs.append(f"{table} {k}: {col} expected {v!r}, published {got[k].get(col)!r}")
    return diffs, sizes


def test_the_fact_tables_hold_the_latest_state_of_licences_spot_checks_and_complaints(e2e):
    """warehouse.md: the feed's columns with operator_key for the identifiers, source_delivery_date
    and source_line, for every licence, spot check and complaint of the state at the latest date."""
    from tests.integration.conftest import DATES, PII_KEY, REJECTED

    diffs, sizes = fact_differences(
        e2e["warehouse"], e2e["root"] / "landing", DATES, PII_KEY, e2e["rules"], skip={REJECTED}
    )
    assert not diffs, f"{len(diffs)} differences from the oracle, the first 10:\n" + "\n".join(diffs[:10])
    assert all(n > 20 for n in sizes.values()), sizes
    # later deliveries replaced earlier versions: some rows come from each date
    for table in FACT_TABLES:
        assert {str(r["source_delivery_date"]) for r in _rows(e2e["warehouse"], table)} == set(DATES), table


def test_the_fact_comparison_can_fail(e2e, tmp_path):
    from tests.integration.conftest import DATES, PII_KEY, REJECTED

    copy = tmp_path / "w.db"
    shutil.copy(e2e["root"] / "warehouse.db", copy)
    url = f"sqlite:///{copy}"
    with create_engine(url).begin() as c:
        c.execute(
            text(
                "UPDATE fact_complaint SET handling_status = '已办结' "
                "WHERE complaint_no = (SELECT MIN(complaint_no) FROM fact_complaint WHERE handling_status = '办理中')"
            )
        )
        c.execute(text("DELETE FROM fact_license WHERE license_no = (SELECT MIN(license_no) FROM fact_license)"))
    diffs, _ = fact_differences(url, e2e["root"] / "landing", DATES, PII_KEY, e2e["rules"], skip={REJECTED})
    assert len(diffs) == 2, diffs
    assert sum("handling_status expected '办理中'" in x for x in diffs) == 1
    assert sum("fact_license" in x and "expected, not published" in x for x in diffs) == 1


def test_no_complainant_name_or_phone_in_fact_complaint(e2e):
    """The complaint feed's personal columns (投诉人姓名, 投诉人电话) are not published: no such column,
    and none of the delivered names or phones in any cell."""
    from tests.integration.conftest import DATES

    cols = set(wh.metadata.tables["fact_complaint"].columns.keys())
    assert "complaint_no" in cols and not [c for c in cols if c.startswith("complainant")]
    personal = set()
    for d in DATES:
        for r in read_rows(e2e["root"] / "landing" / "amr" / d / "complaints.csv", "amr"):
            personal |= {r["投诉人姓名"], r["投诉人电话"]} - {None}
    assert len(personal) > 20
    cells = {str(v) for r in _rows(e2e["warehouse"], "fact_complaint") for v in r.values()}
    assert len(cells) > 20 and not cells & personal
    names = [p for p in personal if not p.isdigit() and len(p) >= 3]
    assert names and not any(p in cell for cell in cells for p in names)
