"""Scores, classes, measures, list, alerts and the inspection plan of the three-date end-to-end run
(scoring.md §3-6, warehouse.md). The scores' numbers are checked against an independent oracle
elsewhere; here, the relations between the published tables and the spec's tables."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict

import pytest
from sqlalchemy import create_engine, text

from tests.integration.conftest import DATES, run_cli

# lifecycle.md §3, written out again: the measures of a class, those of the serious-dishonesty list
# (whatever the class), and the responsible departments
CLASS_MEASURES = {"A": set(), "B": set(), "C": set(), "D": {("ONSITE_INSPECTION", "amr")}}
LIST_MEASURES = {
    ("ONSITE_INSPECTION", "amr"),
    ("NO_COMMITMENT", "gds"),
    ("GOV_FUNDING", "ndrc"),
    ("GOV_PROCUREMENT", "ndrc"),
    ("CREDIT_FINANCING", "finance"),
    ("CUSTOMS_CLEARANCE", "customs"),
    ("PLATFORM_ENTRY", "amr"),
    ("PLATFORM_LISTING", "amr"),
    ("PLATFORM_PROMOTION", "commerce"),
}
POINTS = {1: 20, 2: 60, 3: 150, 4: 400}
LIST_TYPES = {"LIST_SERIOUS", "NDRC_JOINT_PUNISH", "CUS_SERIOUS_DISHONEST"}


def query(url, sql, **params):
    with create_engine(url).connect() as c:
        return [dict(r._mapping) for r in c.execute(text(sql), params)]


@pytest.fixture(scope="module")
def wh(e2e):
    return lambda sql, **p: query(e2e["warehouse"], sql, **p)


def scores_by_date(wh):
    out = defaultdict(dict)
    for r in wh("SELECT * FROM operator_score"):
        out[str(r["run_date"])][r["operator_key"]] = r
    return out


def test_every_classified_operator_has_a_score_each_date(e2e, wh):
    scores = scores_by_date(wh)
    assert sorted(scores) == DATES
    ops = {
        r["operator_key"]: r["registration_status"]
        for r in wh("SELECT operator_key, registration_status FROM dim_operator")
    }
    latest = scores[DATES[-1]]
    assert set(latest) == {k for k, s in ops.items() if s not in ("注销", "迁出")}
    assert not set(latest) - set(ops)  # orphans are never classified
    classes = {r["final_class"] for r in latest.values()}
    assert classes == {"A", "B", "C", "D"}, classes  # the generated city has every class
    for r in latest.values():
        assert r["total_score"] == r["identity_score"] + r["evaluation_score"] + r["quality_score"] + r["conduct_score"]
        assert 0 <= r["identity_score"] <= 100 and 0 <= r["evaluation_score"] <= 300
        assert 0 <= r["quality_score"] <= 200 and 0 <= r["conduct_score"] <= 400
        assert len(r["rules_version"]) == 64


def test_previous_class_is_the_final_class_of_the_run_date_before(wh):
    scores = scores_by_date(wh)
    assert all(r["previous_class"] is None for r in scores[DATES[0]].values())
    for before, d in zip(DATES, DATES[1:]):
        for k, r in scores[d].items():
            prev = scores[before].get(k)
            assert r["previous_class"] == (prev["final_class"] if prev else None), (d, k)


def test_reasons_list_every_active_record_and_every_rule(wh):
    latest = scores_by_date(wh)[DATES[-1]]
    active = defaultdict(list)
    for r in wh(
        "SELECT operator_key, record_key, record_type, polarity, severity FROM fact_credit_record WHERE active"
    ):
        active[r["operator_key"]].append(r)
    assert sum(len(v) for v in active.values()) > 0
    for k, s in latest.items():
        reasons = json.loads(s["reasons"])
        got = {(x["record_key"], x["points"]) for x in reasons["records"]}
        want = {(r["record_key"], -POINTS[r["severity"]] if r["polarity"] == "negative" else 0) for r in active[k]}
        assert got == want, k
        assert ",".join(sorted(x["rule"] for x in reasons["rules"])) == s["rules_applied"], k
        assert reasons["dimensions"]["conduct_score"] == s["conduct_score"]


def test_measures_follow_the_class_and_the_serious_list(wh):
    """lifecycle.md §3 against the published list: a listed classified operator has the nine measures
    resting on its list records, any other the measures of its class resting on the class."""
    for d in DATES:
        got, basis = defaultdict(set), defaultdict(set)
        for r in wh("SELECT * FROM supervision_measure WHERE run_date = :d", d=d):
            got[r["operator_key"]].add((r["measure_code"], r["responsible_dept"]))
            basis[r["operator_key"]].add(r["basis"])
        listed = {
            r["operator_key"] for r in wh("SELECT operator_key FROM serious_dishonest_list WHERE run_date = :d", d=d)
        }
        scores = scores_by_date(wh)[d]
        assert listed & set(scores) and set(scores) - listed
        for k, s in scores.items():
            assert got.get(k, set()) == CLASS_MEASURES[s["final_class"]] | (LIST_MEASURES if k in listed else set()), (
                d,
                k,
            )
            if k in listed:
                assert len(basis[k]) == 1 and not next(iter(basis[k])).startswith("class:"), (d, k)
            elif k in got:
                assert basis[k] == {f"class:{s['final_class']}"}, (d, k)
        assert not set(got) - set(scores)  # orphans and deregistered operators have no measures
    # the latest date's bases are the active list records of the latest state
    keys = defaultdict(list)
    for r in wh("SELECT operator_key, record_key, record_type FROM fact_credit_record WHERE active"):
        if r["record_type"] in LIST_TYPES:
            keys[r["operator_key"]].append(r["record_key"])
    for r in wh("SELECT * FROM supervision_measure WHERE run_date = :d", d=DATES[-1]):
        assert r["basis"] == (
            ",".join(sorted(keys[r["operator_key"]])) if keys[r["operator_key"]] else f"class:{r['final_class']}"
        ), r


def test_dishonest_list_and_its_changes(wh):
    lists = {}
    for d in DATES:
        lists[d] = {
            (r["operator_key"], r["record_type"])
            for r in wh("SELECT * FROM serious_dishonest_list WHERE run_date = :d", d=d)
        }
    # the latest list is exactly the active records of the three types in the latest state
    want = {
        (r["operator_key"], r["record_type"])
        for r in wh("SELECT operator_key, record_type FROM fact_credit_record WHERE active")
        if r["record_type"] in LIST_TYPES
    }
    assert lists[DATES[-1]] == want and want
    changes = defaultdict(set)
    for r in wh("SELECT * FROM dishonest_list_change"):
        changes[str(r["run_date"])].add((r["operator_key"], r["record_type"], r["change"]))
    assert changes[DATES[0]] == {(*k, "ADDED") for k in lists[DATES[0]]}
    for before, d in zip(DATES, DATES[1:]):
        assert changes[d] == {(*k, "ADDED") for k in lists[d] - lists[before]} | {
            (*k, "REMOVED") for k in lists[before] - lists[d]
        }, d
    names = {r["operator_key"]: r["name"] for r in wh("SELECT operator_key, name FROM dim_operator")}
    for r in wh("SELECT * FROM serious_dishonest_list"):
        assert r["name"] == names.get(r["operator_key"], "")  # the registry's name, empty for an orphan


def test_risk_alerts_for_c_and_d_only(wh):
    latest = scores_by_date(wh)[DATES[-1]]
    alerts = {r["operator_key"]: r for r in wh("SELECT * FROM risk_alert WHERE run_date = :d", d=DATES[-1])}
    assert set(alerts) == {k for k, s in latest.items() if s["final_class"] in "CD"}
    for k, a in alerts.items():
        assert a["level"] == {"C": "关注", "D": "高风险"}[latest[k]["final_class"]]
        assert a["message"].startswith(f"信用等级{latest[k]['final_class']}") and "主要原因" in a["message"]
    serious = [k for k, s in latest.items() if "R_SERIOUS" in s["rules_applied"]]
    assert serious and all("列入严重失信名单" in alerts[k]["message"] for k in serious)


def test_plan_needs_an_earlier_commitment_and_verifies(e2e, wh, tmp_path):
    runs = {str(r["run_date"]): r for r in wh("SELECT run_date, warnings FROM pipeline_run")}
    assert "no inspection plan" in runs[DATES[0]]["warnings"]  # nothing was committed before the first run
    assert not wh("SELECT * FROM inspection_plan WHERE run_date = :d", d=DATES[0])
    commits = {str(r["draw_date"]): str(r["published_run_date"]) for r in wh("SELECT * FROM draw_commitment")}
    assert commits == {DATES[1]: DATES[0], DATES[2]: DATES[1], "2026-11-04": DATES[2]}
    # one version per draw date, in force (a backfill with the same deliveries, test_end_to_end, adds none)
    draws = wh("SELECT run_date, version, in_force, inputs_kept FROM inspection_draw ORDER BY run_date")
    assert [(str(r["run_date"]), r["version"], r["in_force"], r["inputs_kept"]) for r in draws] == [
        (d, 1, True, False) for d in DATES[1:]
    ]
    for d in DATES[1:]:
        plan = wh("SELECT * FROM inspection_plan WHERE run_date = :d", d=d)
        assert plan and all(len(r["inspector_ids"].split(",")) == 2 for r in plan)
        listed = {
            r["operator_key"] for r in wh("SELECT operator_key FROM serious_dishonest_list WHERE run_date = :d", d=d)
        }
        assert all(r["onsite_required"] == (r["final_class"] == "D" or r["operator_key"] in listed) for r in plan)
        proc = run_cli(["verify-plan", "--date", d], e2e["env"], timeout=120)
        assert proc.returncode == 0 and f"plan for {d} verified" in proc.stdout, proc.stdout + proc.stderr
    # a tampered copy of the warehouse: one planned operator swapped for an unplanned one
    copy = tmp_path / "tampered.db"
    shutil.copy(e2e["root"] / "warehouse.db", copy)
    url = f"sqlite:///{copy}"
    planned = {
        r["operator_key"]
        for r in query(url, "SELECT operator_key FROM inspection_plan WHERE run_date = :d", d=DATES[1])
    }
    other = next(
        r["operator_key"]
        for r in query(url, "SELECT operator_key FROM operator_score WHERE run_date = :d", d=DATES[1])
        if r["operator_key"] not in planned
    )
    with create_engine(url).begin() as c:
        c.execute(
            text("UPDATE inspection_plan SET operator_key = :o WHERE run_date = :d AND operator_key = :p"),
            {"o": other, "d": DATES[1], "p": sorted(planned)[0]},
        )
    proc = run_cli(["verify-plan", "--date", DATES[1]], {**e2e["env"], "CREDIT_WAREHOUSE_URL": url}, timeout=120)
    assert proc.returncode == 1 and "does NOT match" in proc.stdout, proc.stdout + proc.stderr


def test_outbox_has_changes_and_each_departments_measures(e2e, wh):
    import csv
    import io

    outbox = e2e["root"] / "outbox"
    for d in DATES:
        changes = {
            (r["operator_key"], r["record_type"], r["change"])
            for r in wh("SELECT * FROM dishonest_list_change WHERE run_date = :d", d=d)
        }
        measures = defaultdict(set)
        for r in wh("SELECT * FROM supervision_measure WHERE run_date = :d", d=d):
            measures[r["responsible_dept"]].add((r["operator_key"], r["measure_code"], r["basis"], r["legal_basis"]))
        for dept in ("amr", "ndrc", "cac", "psb", "commerce", "finance", "gds", "post", "customs"):
            folder = outbox / dept / d
            rows = list(
                csv.DictReader(io.StringIO((folder / "serious_dishonest_changes.csv").read_bytes().decode("utf-8-sig")))
            )
            assert {(r["operator_key"], r["record_type"], r["change"]) for r in rows} == changes
            rows = list(csv.DictReader(io.StringIO((folder / "measures.csv").read_bytes().decode("utf-8-sig"))))
            assert {(r["operator_key"], r["measure_code"], r["basis"], r["legal_basis"]) for r in rows} == measures[
                dept
            ], (dept, d)
            assert all(r["under_objection"] == "false" for r in rows)


def test_the_run_report_shows_classes_feed_status_changes_and_links_the_data_docs(e2e, wh):
    import re
    from pathlib import Path

    page = e2e["root"] / "lake" / "reports" / DATES[-1] / "index.html"
    html = page.read_text("utf-8")
    latest = scores_by_date(wh)[DATES[-1]]
    for c in "ABCD":  # the chart's bars carry the counts of D
        n = sum(1 for r in latest.values() if r["final_class"] == c)
        assert f"<title>{c} now: {n}</title>" in html
    # the feed-status matrix: every department, every run date so far, psb's rejected delivery
    assert html.count("<th>psb</th>") == 1 and "rejected" in html
    heads = [html.find(f"<th>{d[5:]}</th>") for d in DATES]  # a column per run date, in date order
    assert -1 not in heads and heads == sorted(heads), heads
    status = {
        (r["dept"], str(r["run_date"])): r["status"] for r in wh("SELECT dept, run_date, status FROM feed_status")
    }
    for dept in ("amr", "ndrc", "cac", "psb", "commerce", "finance", "gds", "post", "customs"):
        row = re.search(rf"<tr><th>{dept}</th>(.*?)</tr>", html).group(1)
        assert re.findall(r"<td[^>]*>([^<]*)</td>", row) == [status[(dept, d)] for d in DATES], dept
    changed = [k for k, r in latest.items() if r["previous_class"] and r["previous_class"] != r["final_class"]]
    assert f"({len(changed)} in all)" in html
    link = re.search(r'href="([^"]+)">Data Docs', html).group(1)
    assert (page.parent / link).resolve() == Path(
        e2e["root"] / "lake" / "data_docs" / DATES[-1] / "index.html"
    ).resolve()
    assert (page.parent / link).is_file()
