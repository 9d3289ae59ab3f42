"""`ecredit run` over three generated dates: the published tables hold exactly the operators and
credit records of the deliveries, computed independently from the files (tests/expected.py)."""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata

import pytest
from sqlalchemy import create_engine, select, text

from tests.expected import ENCODING, expected_state, is_withdrawn
from tests.integration.conftest import DATES, PII_KEY, REJECTED, log_file, run_cli

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
    # the latest date behind each row (decision 112): the deliveries' dates and licence edges up to
    # the last date, most rows unchanged since the history delivery of the first
    since = {str(r["updated_run_date"]) for r in query(e2e, "SELECT DISTINCT updated_run_date FROM dim_operator")}
    assert DATES[0] in since and since <= set(DATES), since


def test_fact_credit_record_holds_every_record(e2e, expected):
    got = {r["record_key"] for r in query(e2e, "SELECT record_key FROM fact_credit_record")}
    assert got == set(expected["records"])


def test_withdrawals_fold_latest_wins(e2e, expected):
    got = {
        r["record_key"]: bool(r["withdrawn"])
        for r in query(e2e, "SELECT record_key, withdrawn FROM fact_credit_record")
    }
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
    dq = query(
        e2e, "SELECT * FROM dq_result WHERE dept = :dept AND delivery_date = :d", dept=REJECTED[0], d=REJECTED[1]
    )
    assert [(r["check"], bool(r["success"])) for r in dq] == [("delivery_gate", False)]
    assert "manifest" in dq[0]["detail"]
    meta = create_engine(f"sqlite:///{e2e['root'] / 'airflow' / 'airflow.db'}")
    with meta.connect() as c:
        # validate is mapped over the departments; each instance is named by its department
        states = {
            (r.rendered_map_index, r.state)
            for r in c.execute(
                text(
                    "SELECT rendered_map_index, state FROM task_instance WHERE task_id = 'validate' AND run_id IN "
                    "(SELECT run_id FROM dag_run WHERE conf LIKE :d)"
                ),
                {"d": f"%{REJECTED[1]}%"},
            )
        }
    assert (REJECTED[0], "failed") in states
    assert {d for d, _ in states} == set(DEPTS)
    assert {s for d, s in states if d != REJECTED[0]} == {"success"}
    runs = query(e2e, "SELECT status, warnings FROM pipeline_run WHERE run_date = :d", d=REJECTED[1])
    assert runs[0]["status"] == "success" and "rejected" in runs[0]["warnings"]


PERSONAL = {"证件号码": "id", "id_no": "id", "法定代表人": "name", "投诉人姓名": "name", "投诉人电话": "phone"}
SOURCE_NAME = {"主体名称", "name"}  # a natural person's name as a source gives it (not the registry's shop name)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def personal_data(landing):
    """The personal data the departments sent, read from the files with the standard library:
    ID numbers, legal representatives, complainants' names and phones, and the names sources give
    natural persons (a row with an ID number and no USCC, unless the name is a registry shop name).
    Every value of every other column is public text (shop names, inspectors, reasons): a name
    that is also such a text cannot be told apart and is not searched."""
    from tests.expected import NULLS, norm_id

    rows = []
    for path in sorted(landing.glob("*/*/*.*")):
        if path.name == "manifest.json":
            continue
        data = path.read_bytes().decode(ENCODING.get(path.parts[-3], "utf-8"), "replace").lstrip("\ufeff")
        if path.suffix == ".jsonl":
            for line in data.splitlines():
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    rows.append({k: v if isinstance(v, str) else None for k, v in obj.items()})
        else:
            rows += list(csv.DictReader(io.StringIO(data, newline="")))
    shops = {(r.get("主体名称") or "").strip() for r in rows if r.get("主体类型")}
    found = {"id": set(), "name": set(), "phone": set()}
    public = set()
    for r in rows:

        def val(k, r=r):
            v = r.get(k)
            return v.strip() if isinstance(v, str) and v.strip() not in NULLS else None

        natural = (val("证件号码") or val("id_no")) and not (val("统一社会信用代码") or val("uscc") or val("USCC"))
        for k in r:
            v = val(k) if isinstance(k, str) else None
            if v is None:
                continue
            if k in PERSONAL:
                found[PERSONAL[k]].add(norm_id(v) if PERSONAL[k] == "id" else v)
            elif k in SOURCE_NAME and natural and v not in shops:
                found["name"].add(v)
            else:
                public.update(_CJK.findall(v))
    found["id"] = {v for v in found["id"] if re.fullmatch(r"\d{17}[\dX]", v)}
    found["phone"] = {re.sub(r"\D", "", v) for v in found["phone"] if len(re.sub(r"\D", "", v)) == 11}
    found["name"] = {v for v in found["name"] if len(v) >= 2 and _CJK.fullmatch(v) and v not in public}
    return found


def leaks(text, needles):
    """The needles found in a text: an ID number or a phone not touching another digit or letter,
    a name as a whole run of CJK characters (after decoding \\uXXXX escapes)."""
    text = unicodedata.normalize("NFKC", re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text))
    digits = set(re.findall(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{11})(?![0-9A-Za-z])", text))
    return (
        ({x.upper() for x in digits} & needles["id"])
        | (digits & needles["phone"])
        | (set(_CJK.findall(text)) & needles["name"])
    )


@pytest.mark.parametrize("city", ["dirty_e2e", "e2e"])
def test_no_personal_data_in_the_warehouse_or_the_outbox(request, city):
    """warehouse.md: no ID number, consumer name or phone, legal representative or natural person's
    source name in any table, quarantine included, nor in any outbox file. The dirty city's
    quarantine holds rows carrying each kind (conftest.plant_dirty_copies): their content must be
    there, the personal data masked."""
    from ecredit.warehouse import schema as wh

    run = request.getfixturevalue(city)
    needles = personal_data(run["root"] / "landing")
    assert len(needles["id"]) > 10 and len(needles["name"]) > 10 and len(needles["phone"]) > 10, {
        k: len(v) for k, v in needles.items()
    }
    found = {}
    with create_engine(run["warehouse"]).connect() as c:
        for name, table in wh.metadata.tables.items():
            cells = "\n".join(str(v) for r in c.execute(select(table)) for v in r if v is not None)
            found[f"table {name}"] = leaks(cells, needles)
    files = [p for p in sorted((run["root"] / "outbox").rglob("*")) if p.is_file()]
    assert len(files) >= 9 * len(DATES) * 2
    for p in files:
        found[f"file {p.relative_to(run['root'])}"] = leaks(p.read_bytes().decode("utf-8-sig", "replace"), needles)
    assert {k: len(v) for k, v in found.items() if v} == {}  # counts only: the values stay out of the report
    if city == "dirty_e2e":  # the rows that carry personal data were quarantined, with their content
        quarantine = {
            (r["dept"], r["feed"], str(r["delivery_date"]), r["source_line"]): r
            for r in query(run, "SELECT * FROM quarantine")
        }
        for p in run["planted"]:
            q = quarantine[(p["dept"], p["file"].rsplit(".", 1)[0], DATES[0], p["line"])]
            masked = json.loads(q["payload"])
            assert q["reasons"] == "BAD_DATE" and "_withheld" not in masked, (p["dept"], p["file"], q["reasons"])
            carried = {k for k, v in p["row"].items() if v and leaks(str(v), needles)}
            assert carried, (p["dept"], p["file"])  # the row holds personal data; in quarantine, masked:
            assert all(set(masked[k]) == {"*"} for k in carried), (p["dept"], p["file"], sorted(carried))


PER_RUN = (
    "feed_status",
    "operator_score",
    "supervision_measure",
    "serious_dishonest_list",
    "dishonest_list_change",
    "risk_alert",
    "inspector",
    "inspection_plan",
    "inspection_draw",
    "draw_commitment",
)


def test_a_backfill_gives_the_same_tables_as_the_original_runs(e2e):
    """Rerunning D2..D3 (D3 already published when D2 runs again) replaces their rows with the
    same rows: previous classes, list changes and commitments come from the run date before."""

    def snapshot():
        out = {
            t: sorted(json.dumps(r, sort_keys=True, default=str) for r in query(e2e, f"SELECT * FROM {t}"))
            for t in ("dim_operator", "fact_credit_record", *PER_RUN)
        }
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


def test_the_first_job_wrote_the_class_data_archive_and_the_later_ones_mapped_it(e2e):
    """Decision 118: D1's spark-submit (a new cache folder) wrote Spark's classes to an archive at
    its exit, the backfill's two jobs mapped it (the Spark connection's command names the option)."""
    from ecredit import spark as spark_mod

    cache = e2e["root"] / "jvm"
    key = spark_mod.class_archive_key()
    assert key and sorted(p.name for p in cache.iterdir()) == [f"spark-classes-{key}.jsa"]
    assert (cache / f"spark-classes-{key}.jsa").stat().st_size > 10_000_000
    logs = {args: log_file(run["proc"]).read_text("utf-8", "replace") for args, run in e2e["runs"].items()}
    first, backfill = logs[f"run --date {DATES[0]}"], logs[f"backfill --from {DATES[1]} --to {DATES[-1]}"]
    assert first.count(f"-XX:ArchiveClassesAtExit={cache}/spark-classes-{key}.") == 1
    assert "SharedArchiveFile" not in first
    assert backfill.count(f"-XX:SharedArchiveFile={cache}/spark-classes-{key}.jsa") == 2
    assert "ArchiveClassesAtExit" not in backfill


def test_a_wrong_setting_stops_the_run_with_its_name(e2e):
    env = {**e2e["env"], "CREDIT_RULES": "/nonexistent/rules.yaml"}
    proc = run_cli(["run", "--date", DATES[0]], env, timeout=120)
    assert proc.returncode != 0
    assert "CREDIT_RULES" in proc.stderr and "Traceback" not in proc.stderr
