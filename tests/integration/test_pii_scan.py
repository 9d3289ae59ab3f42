"""No personal data and no secret anywhere after the end-to-end run (the session's `e2e` fixture:
`ecredit run` + `ecredit backfill` through the real DAG): `ecredit scan-pii` over the warehouse,
the outbox, the lake, the Airflow task logs and metadata DB, and the runs' console output finds
nothing, while it searched for the generated ID numbers, phones and names and both secrets, and
it finds the same run's values when they are planted in copies of those locations."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecredit.core import settings as settings_mod
from ecredit.ops import scan_pii
from tests.integration.conftest import DRAW_SECRET, PII_KEY, full_output


@pytest.fixture(scope="module")
def scanned(e2e, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pii_scan")
    console = tmp / "console.log"
    # the console and the log file of every command (the log is also under AIRFLOW_HOME/logs)
    console.write_text("".join(full_output(r["proc"]) for r in e2e["runs"].values()), "utf-8")
    cfg = settings_mod.load(e2e["env"])
    report = scan_pii.scan(cfg, env=e2e["env"], extra=[console])
    return {"report": report, "cfg": cfg, "console": console, "tmp": tmp}


def test_the_end_to_end_run_leaks_nothing(scanned):
    report = scanned["report"]
    n = report.needles
    # it really searched for the run's personal data and both secrets
    assert len(n.ids) > 20 and len(n.phones) > 20
    kinds = set(n.names.values())
    assert {"name:legal_rep", "name:complainant", "name:natural_person"} <= kinds, kinds
    assert set(n.secrets.values()) == {scan_pii.PII_KEY, scan_pii.DRAW_SECRET}
    assert n.secrets[PII_KEY] == scan_pii.PII_KEY and n.secrets[DRAW_SECRET] == scan_pii.DRAW_SECRET
    # ... everywhere
    assert report.scanned["warehouse"]["tables"] >= 15 and report.scanned["warehouse"]["rows"] > 1000
    assert report.scanned["lake"]["parquet files"] > 10 and report.scanned["lake"]["files"] > 10
    assert report.scanned["outbox"]["files"] >= 9 * 3 * 2
    assert report.scanned["airflow-db"]["tables"] > 10 and report.scanned["airflow-db"]["rows"] > 100
    assert report.scanned["extra"]["files"] == 1 and scanned["console"].stat().st_size > 10_000
    assert "warehouse" not in report.absent and "airflow-db" not in report.absent
    assert report.hits == [], report.render()  # the render masks every value


def test_the_scanner_finds_this_runs_values_planted_in_copies(e2e, scanned, tmp_path):
    """The proof that the zero above means something: the same needles planted in a copy of each
    location (warehouse, outbox, lake, Airflow metadata DB and task log) are found there."""
    root, n = e2e["root"], scanned["report"].needles
    an_id = sorted(n.ids)[0]
    a_phone = sorted(n.phones)[0]
    a_rep = sorted(k for k, v in n.names.items() if v == "name:legal_rep" and k in n.names_inside)[0]
    a_complainant = sorted(k for k, v in n.names.items() if v == "name:complainant")[0]
    shutil.copy(root / "warehouse.db", tmp_path / "warehouse.db")
    with sqlite3.connect(tmp_path / "warehouse.db") as c:
        c.execute(
            "UPDATE dim_operator SET name = ? WHERE rowid = (SELECT min(rowid) FROM dim_operator)", (f"店主{an_id}",)
        )
    shutil.copytree(root / "outbox" / "amr", tmp_path / "outbox" / "amr")
    csv = next((tmp_path / "outbox" / "amr").rglob("measures.csv"))
    csv.write_bytes(csv.read_bytes() + f"NP-0000000000000000,{a_phone},D,M1\r\n".encode())
    (tmp_path / "lake").mkdir()
    pq.write_table(pa.table({"name": [f"法定代表人{a_rep}"]}), tmp_path / "lake" / "part-0.parquet")
    (tmp_path / "airflow" / "logs").mkdir(parents=True)
    shutil.copy(root / "airflow" / "airflow.db", tmp_path / "airflow" / "airflow.db")
    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as c:
        assert c.execute("SELECT count(*) FROM xcom").fetchone()[0] > 0
        c.execute(
            "UPDATE xcom SET value = ? WHERE rowid = (SELECT min(rowid) FROM xcom)",
            (json.dumps({"complainant": a_complainant}),),
        )
        assert c.execute("SELECT count(*) FROM rendered_task_instance_fields").fetchone()[0] > 0
        c.execute(
            "UPDATE rendered_task_instance_fields SET rendered_fields = ? "
            "WHERE rowid = (SELECT min(rowid) FROM rendered_task_instance_fields)",
            (json.dumps({"env_vars": {"CREDIT_PII_KEY": PII_KEY}}),),
        )
    (tmp_path / "airflow" / "logs" / "attempt=1.log").write_text(f"INFO secret {DRAW_SECRET}\n", "utf-8")
    env = {
        **e2e["env"],
        "CREDIT_LANDING_DIR": str(root / "landing"),
        "CREDIT_LAKE_DIR": str(tmp_path / "lake"),
        "CREDIT_OUTBOX_DIR": str(tmp_path / "outbox"),
        "CREDIT_WAREHOUSE_URL": f"sqlite:///{tmp_path / 'warehouse.db'}",
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
    }
    report = scan_pii.scan(settings_mod.load(env), env=env, needles=n)
    got = sorted(
        {
            (
                h.location.split(":", 1)[0],
                h.location.rsplit(":", 1)[-1]
                if h.location.startswith("lake")
                else h.location.split(":", 1)[1].split("/")[0],
                h.kind,
            )
            for h in report.hits
        }
    )
    assert got == [
        ("airflow-db", "rendered_task_instance_fields.rendered_fields", "secret:CREDIT_PII_KEY"),
        ("airflow-db", "xcom.value", "name:complainant"),
        ("airflow-logs", "attempt=1.log:1", "secret:CREDIT_DRAW_SECRET"),
        ("lake", "name", "name:legal_rep"),
        ("outbox", "amr", "phone"),
        ("warehouse", "dim_operator.name", "id_no"),
    ], report.render()
    assert an_id not in report.render() and a_rep not in report.render()


def test_the_pii_key_is_nowhere_in_airflow(e2e, scanned):
    """Byte for byte: not in the metadata DB file (rendered fields, XCom, the log table, freed
    pages), the task logs or the console, though the Spark tasks' rendered fields are stored
    there and the key went to every spark-submit."""
    home = e2e["root"] / "airflow"
    with sqlite3.connect(home / "airflow.db") as c:
        fields = {
            t: json.loads(f)
            for t, f in c.execute(
                "SELECT task_id, rendered_fields FROM rendered_task_instance_fields WHERE task_id = 'ingest_and_build'"
            )
        }
    assert set(fields) == {"ingest_and_build"} and all("env_vars" in f for f in fields.values())
    assert all("--date" in f["application_args"] for f in fields.values())  # the rendered fields are real
    key = PII_KEY.encode()
    files = [p for p in home.rglob("*") if p.is_file() and (p.name.startswith("airflow.db") or "logs" in p.parts)]
    assert files
    for p in files:
        assert key not in p.read_bytes(), p.relative_to(home)
    assert PII_KEY not in scanned["console"].read_text("utf-8")


def test_the_scanner_reads_the_published_licences_spot_checks_and_complaints(e2e, scanned, tmp_path):
    """fact_license, fact_spot_check and fact_complaint are scanned like every table: a complainant's
    name and phone and an ID number planted in a copy of each are found there (and the zero of the
    end-to-end scan covers them)."""
    root, n = e2e["root"], scanned["report"].needles
    a_complainant = sorted(k for k, v in n.names.items() if v == "name:complainant")[0]
    shutil.copy(root / "warehouse.db", tmp_path / "warehouse.db")
    with sqlite3.connect(tmp_path / "warehouse.db") as c:
        for table, col, value in (
            ("fact_complaint", "complaint_category", a_complainant),
            ("fact_spot_check", "product_category", sorted(n.phones)[0]),
            ("fact_license", "license_name", sorted(n.ids)[0]),
        ):
            assert c.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0
            c.execute(f"UPDATE {table} SET {col} = ? WHERE rowid = (SELECT min(rowid) FROM {table})", (value,))
    for d in ("lake", "outbox", "airflow"):
        (tmp_path / d).mkdir()
    env = {
        **e2e["env"],
        "CREDIT_LANDING_DIR": str(root / "landing"),
        "CREDIT_LAKE_DIR": str(tmp_path / "lake"),
        "CREDIT_OUTBOX_DIR": str(tmp_path / "outbox"),
        "CREDIT_WAREHOUSE_URL": f"sqlite:///{tmp_path / 'warehouse.db'}",
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
    }
    report = scan_pii.scan(settings_mod.load(env), env=env, needles=n)
    assert sorted({(h.location.split(":", 1)[1], h.kind) for h in report.hits}) == [
        ("fact_complaint.complaint_category", "name:complainant"),
        ("fact_license.license_name", "id_no"),
        ("fact_spot_check.product_category", "phone"),
    ], report.render()
