"""`ecredit run` over three generated dates: the published tables hold exactly the operators and
credit records of the deliveries, computed independently from the files (tests/expected.py)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from tests.expected import expected_state, is_withdrawn
from tests.integration.conftest import DATES, PII_KEY, REJECTED, run_cli

pytestmark = pytest.mark.integration
DEPTS = ("amr", "ndrc", "cac", "psb", "commerce", "finance", "gds", "post", "customs")


def query(e2e, sql, **params):
    with create_engine(e2e["warehouse"]).connect() as c:
        return [dict(r._mapping) for r in c.execute(text(sql), params)]


@pytest.fixture(scope="module")
def expected(e2e):
    return expected_state(e2e["root"] / "landing", DATES, DATES[-1], PII_KEY, skip={REJECTED})


def test_every_run_succeeded_and_was_recorded(e2e):
    rows = query(e2e, "SELECT run_date, status, rules_version FROM pipeline_run ORDER BY attempt_id")
    assert [(str(r["run_date"]), r["status"]) for r in rows] == [(d, "success") for d in DATES]
    assert len({r["rules_version"] for r in rows}) == 1 and len(rows[0]["rules_version"]) == 64


def test_dim_operator_holds_every_registered_operator(e2e, expected):
    got = {r["operator_key"] for r in query(e2e, "SELECT operator_key FROM dim_operator")}
    assert got == expected["operators"]
    assert any(k.startswith("NP-") for k in got)  # natural persons, by pseudonym only
    assert {str(r["updated_run_date"]) for r in query(e2e, "SELECT DISTINCT updated_run_date FROM dim_operator")} == {DATES[-1]}


def test_fact_credit_record_holds_every_record(e2e, expected):
    got = {r["record_key"] for r in query(e2e, "SELECT record_key FROM fact_credit_record")}
    assert got == set(expected["records"])


def test_withdrawals_fold_latest_wins(e2e, expected):
    got = {r["record_key"]: bool(r["withdrawn"]) for r in query(e2e, "SELECT record_key, withdrawn FROM fact_credit_record")}
    want = {k: is_withdrawn(k, r) for k, r in expected["records"].items()}
    assert got == want
    assert sum(want.values()) > 0  # the generator's increments revoke and withdraw records


def test_orphans_are_published_but_not_in_registry(e2e, expected):
    rows = query(e2e, "SELECT operator_key, in_registry FROM fact_credit_record")
    orphans = {r["operator_key"] for r in rows if not r["in_registry"]}
    assert orphans and not (orphans & expected["operators"])
    assert all(r["in_registry"] for r in rows if r["operator_key"] in expected["operators"])


def test_feed_status_counts_match_the_manifests(e2e, expected):
    rows = query(e2e, "SELECT * FROM feed_status WHERE run_date = :d", d=DATES[-1])
    assert len(rows) == 9
    for r in rows:
        assert r["status"] == "ok", r
        assert r["rows_in"] == expected["manifest_rows"][r["dept"]] == r["rows_loaded"] + r["rows_quarantined"]
        assert r["deliveries_applied"] == (2 if r["dept"] == REJECTED[0] else 3)
    assert len(query(e2e, "SELECT * FROM feed_status")) == 9 * len(DATES)


def test_a_rejected_delivery_marks_its_department_and_the_run_goes_on(e2e):
    """psb's delivery of 2026-11-02 no longer matches its manifest: rejected, nothing of it applied,
    its department's validate task failed in Airflow, and every run still succeeded."""
    rows = query(e2e, "SELECT * FROM feed_status WHERE dept = :dept AND run_date = :d", dept=REJECTED[0], d=REJECTED[1])
    assert rows[0]["status"] == "rejected" and rows[0]["rows_loaded"] == 0 and rows[0]["rows_quarantined"] == 0
    dq = query(e2e, "SELECT * FROM dq_result WHERE dept = :dept AND delivery_date = :d", dept=REJECTED[0], d=REJECTED[1])
    assert [(r["check"], bool(r["success"])) for r in dq] == [("delivery_gate", False)]
    assert "manifest" in dq[0]["detail"]
    meta = create_engine(f"sqlite:///{e2e['root'] / 'airflow' / 'airflow.db'}")
    with meta.connect() as c:
        # validate is mapped over the departments; each instance is named by its department
        states = {(r.rendered_map_index, r.state) for r in c.execute(text(
            "SELECT rendered_map_index, state FROM task_instance WHERE task_id = 'validate' AND run_id IN "
            "(SELECT run_id FROM dag_run WHERE conf LIKE :d)"), {"d": f'%{REJECTED[1]}%'})}
    assert (REJECTED[0], "failed") in states
    assert {d for d, _ in states} == set(DEPTS)
    assert {s for d, s in states if d != REJECTED[0]} == {"success"}
    runs = query(e2e, "SELECT status, warnings FROM pipeline_run WHERE run_date = :d", d=REJECTED[1])
    assert runs[0]["status"] == "success" and "rejected" in runs[0]["warnings"]


def test_no_personal_data_in_the_warehouse(e2e):
    """ID numbers and the registry's legal representatives never reach the published tables."""
    import csv
    import io

    landing = e2e["root"] / "landing"
    text_ops = (landing / "amr" / DATES[0] / "operators.csv").read_bytes().decode("gb18030")
    from tests.expected import NULLS, norm_id

    rows = list(csv.DictReader(io.StringIO(text_ops)))
    reps = {r["法定代表人"].strip() for r in rows if (r["法定代表人"] or "").strip() not in NULLS}
    ids = {norm_id(r["证件号码"]) for r in rows if (r["证件号码"] or "").strip() not in NULLS}
    assert reps and ids
    dump = json.dumps([query(e2e, f"SELECT * FROM {t}") for t in ("dim_operator", "fact_credit_record", "feed_status", "pipeline_run")],
                      ensure_ascii=False, default=str)
    assert not [x for x in ids if x in dump]
    assert not [x for x in reps if len(x) >= 2 and x in dump]


PER_RUN = ("feed_status", "operator_score", "supervision_measure", "serious_dishonest_list", "dishonest_list_change",
           "risk_alert", "inspector", "inspection_plan", "inspection_draw", "draw_commitment")


def test_a_backfill_gives_the_same_tables_as_the_original_runs(e2e):
    """Rerunning D2..D3 (D3 already published when D2 runs again) replaces their rows with the
    same rows: previous classes, list changes and commitments come from the run date before."""
    def snapshot():
        out = {t: sorted(json.dumps(r, sort_keys=True, default=str) for r in query(e2e, f"SELECT * FROM {t}"))
               for t in ("dim_operator", "fact_credit_record", *PER_RUN)}
        return out

    before = snapshot()
    attempts = len(query(e2e, "SELECT * FROM pipeline_run"))
    proc = run_cli(["backfill", "--from", DATES[1], "--to", DATES[-1]], e2e["env"])
    assert proc.returncode == 0, proc.stdout[-4000:]
    after = snapshot()
    for t in before:
        assert after[t] == before[t], t
    assert sum(len(v) for v in before.values()) > 0
    assert len(query(e2e, "SELECT * FROM pipeline_run")) == attempts + 2


def test_a_wrong_setting_stops_the_run_with_its_name(e2e):
    env = {**e2e["env"], "CREDIT_RULES": "/nonexistent/rules.yaml"}
    proc = run_cli(["run", "--date", DATES[0]], env, timeout=120)
    assert proc.returncode != 0
    assert "CREDIT_RULES" in proc.stderr and "Traceback" not in proc.stderr
