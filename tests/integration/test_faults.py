"""Fault injection (issue 8): the Spark job killed mid-ingest, publish killed between staging and swap
and inside its transaction, the warehouse unreachable, a full disk under the lake, a corrupt Parquet
file in the lake. After each: the warehouse holds the previous run's state, the failed attempt is
recorded with a clear reason, and a rerun gives exactly the rows of an unfaulted run (parsed rows,
gold tables, every warehouse table), nothing lost and nothing twice.

One unfaulted reference run of two dates (40 operators) is computed once; each fault starts from a
copy of its data folder after the first date (or after the second date's state build) and runs the
second date with the fault. The stages run in-process on the session's SparkSession; only the kill
cases use child processes: ``spark-submit jobs/ingest.py`` through the DAG's own operator, and
``publish_run`` in a plain Python child, each crashed by a failpoint (``ecredit/core/failpoints.py``).
Failures are recorded through the DAG's failure callback (``ecredit.airflow.callbacks.on_task_failure``)."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, select, text

from ecredit.airflow.callbacks import on_task_failure
from ecredit.core import feeds, lake
from ecredit.core import rules as rules_mod
from ecredit.core import settings as settings_mod
from ecredit.core.settings import SettingError
from ecredit.ingest import gate as delivery
from ecredit.ingest import load as ingest
from ecredit.state import build as state
from ecredit.state import fold, rescore
from ecredit.warehouse import migrations, publish
from ecredit.warehouse import schema as wh

ROOT = Path(__file__).resolve().parents[2]
D1, D2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
OPERATORS, SEED = 40, 31
SECRETS = {"CREDIT_PII_KEY": "faults-pii-key", "CREDIT_DRAW_SECRET": "faults-draw-secret"}
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
PG_PIPELINE = "postgresql+psycopg://ecredit_pipeline@127.0.0.1:5432/{db}"
RUN_ID = "manual__faulted"


# ---------------------------------------------------------------- helpers


def cfg_at(root: Path, url: str | None = None) -> settings_mod.Settings:
    return settings_mod.load(
        {"CREDIT_DATA_DIR": str(root), **SECRETS, **({"CREDIT_WAREHOUSE_URL": url} if url else {})}
    )


def gates(cfg, d):
    for dept in feeds.DEPARTMENTS:
        assert delivery.check(cfg, dept, d)["status"] == "accepted"


def build(spark, cfg, d, full=False):
    return state.build(spark, cfg, rules_mod.load(cfg.rules_path), d, full=full)


def snapshot(url: str) -> dict:
    """Every published table but pipeline_run, row for row, without the validation tables' run_id
    (typed reads: the same rows compare equal on SQLite and PostgreSQL)."""
    out = {}
    with create_engine(url).connect() as c:
        for name, t in wh.metadata.tables.items():
            if name in wh.BOOKKEEPING_TABLES:
                continue
            cols = [col for col in t.columns if col.name != "run_id"]
            out[name] = sorted(
                json.dumps(dict(r._mapping), sort_keys=True, default=str) for r in c.execute(select(*cols))
            )
    return out


def runs(url: str) -> list[dict]:
    with create_engine(url).connect() as c:
        return [dict(r._mapping) for r in c.execute(select(wh.pipeline_run).order_by(wh.pipeline_run.c.attempt_id))]


def parsed_rows(cfg) -> list[tuple]:
    """(feed, delivery date, file sha, line, record key, reasons) of every parsed row a reader of
    the lake sees (pyarrow's dataset rules, like Spark's: names starting with '.' or '_' are not read)."""
    t = pq.read_table(
        str(ingest.rows_path(cfg)),
        columns=["feed_id", "delivery_date", "file_sha", "source_line", "key_str", "reasons"],
    )
    return sorted(
        (
            str(r["feed_id"]),
            str(r["delivery_date"]),
            str(r["file_sha"]),
            r["source_line"],
            r["key_str"] or "",
            ",".join(r["reasons"]),
        )
        for r in t.to_pylist()
    )


def gold(cfg, d) -> dict:
    out = {}
    for name in state.GOLD_TABLES + state.RUN_TABLES:
        path = state.gold_dir(cfg, d) / name
        files = sorted(path.glob("*.parquet"))
        out[name] = sorted(
            json.dumps(r, sort_keys=True, default=str) for f in files for r in pq.read_table(str(f)).to_pylist()
        )
    return out


def fail(cfg, task_id: str, exc: BaseException | str, monkeypatch) -> None:
    """What Airflow does when the task fails for good: its failure callback, with the task's
    exception, in an environment holding the run's settings."""
    for k in list(os.environ):
        if k.startswith("CREDIT_"):
            monkeypatch.delenv(k)
    for k, v in cfg.as_env().items():
        monkeypatch.setenv(k, v)
    ti = SimpleNamespace(task_id=task_id, run_id=RUN_ID, xcom_pull=lambda **kw: {"run_date": D2.isoformat()})
    on_task_failure({"ti": ti, "exception": exc, "run_id": RUN_ID, "params": {}})


def last_failure(url: str) -> dict:
    failed = [r for r in runs(url) if r["status"] == "failed"]
    assert failed, "no failed attempt in pipeline_run"
    return failed[-1]


def published_before(url: str, d: dt.date):
    with create_engine(url).connect() as c:
        return publish.previous_published_date(c, d)


def assert_previous_state(ref, cfg):
    """Nothing of D2 was published: the warehouse is the reference after D1, D1 the latest published date."""
    assert snapshot(cfg.warehouse_url) == ref["wh_d1"]
    assert published_before(cfg.warehouse_url, D2 + dt.timedelta(days=1)) == D1
    assert [r["run_date"] for r in runs(cfg.warehouse_url) if r["status"] == "success"] == [D1]


def assert_same_as_reference(ref, cfg):
    """The rerun's parsed rows, gold and warehouse are the unfaulted run's, row for row."""
    rows = parsed_rows(cfg)
    assert len(rows) == len(set(rows))  # no row twice
    assert rows == ref["parsed"]
    for f in delivery.accepted_files(cfg, D2):
        assert ingest.file_counts(cfg, f)["rows_in"] == f["rows"], f["name"]
    assert gold(cfg, D2) == ref["gold"]
    assert snapshot(cfg.warehouse_url) == ref["wh_d2"]
    assert published_before(cfg.warehouse_url, D2 + dt.timedelta(days=1)) == D2


def fresh(ref, which: str, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(ref[which], root)
    return root


def pg_available() -> bool:
    try:
        with create_engine(PG_ADMIN.format(db="postgres")).connect() as c:
            c.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def pg_admin(sql: str, **params) -> list:
    eng = create_engine(PG_ADMIN.format(db="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            res = c.execute(text(sql), params)
            return res.fetchall() if res.returns_rows else []
    finally:
        eng.dispose()


def pg_kick(db: str) -> None:
    pg_admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()", d=db
    )


@pytest.fixture
def pg_db():
    """A new PostgreSQL database, migrated, dropped afterwards (skips or, in CI, fails without a server)."""
    import uuid

    if not pg_available():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable: install and start postgresql to run this case")
    name = f"ecredit_faults_{uuid.uuid4().hex[:10]}"
    pg_admin(f'CREATE DATABASE "{name}"')
    migrations.migrate(wh.engine_for(PG_ADMIN.format(db=name)))
    yield name
    for n in (name, name + "_away"):
        pg_kick(n)
        pg_admin(f'DROP DATABASE IF EXISTS "{n}"')


def warehouse_for(kind: str, root: Path, pg_name: str | None) -> str:
    """The warehouse of a copied folder: its own SQLite file, or a PostgreSQL database holding D1
    published from the copied lake (the same rows as the reference's D1)."""
    if kind == "sqlite":
        return cfg_at(root).warehouse_url
    url = PG_PIPELINE.format(db=pg_name)
    publish.publish_run(cfg_at(root, url), D1, "pg-d1")
    return url


# ---------------------------------------------------------------- the unfaulted reference


@pytest.fixture(scope="module")
def ref(tmp_path_factory, spark):
    from ecredit.generate import generate

    base = tmp_path_factory.mktemp("faults")
    root = base / "reference"
    generate(root / "landing", OPERATORS, [D1, D2], seed=SEED, dirty_rate=0.0, progress=lambda m: None)
    cfg = cfg_at(root)
    gates(cfg, D1)
    ingest.run(spark, cfg, D1)
    build(spark, cfg, D1)
    publish.publish_run(cfg, D1, "ref-d1")
    after_d1 = shutil.copytree(root, base / "after_d1")
    gates(cfg, D2)
    ingest.run(spark, cfg, D2)
    build(spark, cfg, D2)
    d2_built = shutil.copytree(root, base / "d2_built")
    publish.publish_run(cfg, D2, "ref-d2")
    out = {
        "after_d1": after_d1,
        "d2_built": d2_built,
        "wh_d1": snapshot(cfg_at(after_d1).warehouse_url),
        "wh_d2": snapshot(cfg.warehouse_url),
        "parsed": parsed_rows(cfg),
        "gold": gold(cfg, D2),
    }
    # the reference is worth comparing with: both dates' deliveries parsed, every table filled
    assert len({r[:3] for r in out["parsed"]}) == 32
    assert all(
        out["wh_d2"][t]
        for t in (
            "dim_operator",
            "fact_credit_record",
            "operator_score",
            "feed_status",
            "dq_result",
            "draw_commitment",
            "inspector",
        )
    )
    assert out["wh_d2"] != out["wh_d1"]
    return out


# ---------------------------------------------------------------- 1. the Spark job killed mid-ingest


def test_ingest_killed_after_writing_rows_before_done_markers(ref, tmp_path, spark, airflow_home, monkeypatch):
    from ecredit.airflow.operators import EcreditSparkSubmitOperator

    root = fresh(ref, "after_d1", tmp_path)
    cfg = cfg_at(root)
    gates(cfg, D2)
    todo = ingest.pending_files(cfg, D2)
    assert len(todo) == 16
    for k in list(os.environ):
        if k.startswith("CREDIT_"):
            monkeypatch.delenv(k)
    for k, v in cfg.as_env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("CREDIT_FAILPOINT", "ingest.rows_written")
    monkeypatch.setenv("AIRFLOW_CONN_ECREDIT_SPARK", "{}")  # the operator sets it; restored afterwards
    # the DAG's own task: spark-submit jobs/ingest_and_build.py --date D2, killed by the failpoint
    with pytest.raises(Exception) as killed:
        EcreditSparkSubmitOperator(
            task_id="ingest_and_build", job="ingest_and_build.py", run_date=D2.isoformat()
        ).execute({})
    assert "Error code is: 137" in str(killed.value)
    monkeypatch.delenv("CREDIT_FAILPOINT")

    # it died with the rows of every file written and no done-marker
    assert all(ingest.partition_path(cfg, f).is_dir() for f in todo if f["rows"])
    assert {f["sha256"] for f in ingest.pending_files(cfg, D2)} == {f["sha256"] for f in todo}
    fail(cfg, "ingest_and_build", killed.value, monkeypatch)
    reason = last_failure(cfg.warehouse_url)
    assert reason["run_date"] == D2 and reason["run_id"] == RUN_ID
    assert reason["reason"].startswith("ingest_and_build: the Spark application was killed (SIGKILL")
    assert_previous_state(ref, cfg)
    # a state build on the half-done ingest refuses, naming why
    with pytest.raises(RuntimeError, match="not parsed .*the ingest stage did not finish"):
        build(spark, cfg, D2)

    # a killed writer on a file system without atomic renames may leave a second copy of a file's
    # rows in its partition: the rerun must replace the partition, not read both
    f = max(todo, key=lambda f: f["rows"])
    part = ingest.partition_path(cfg, f)
    shutil.copy(next(part.glob("*.parquet")), part / "part-99999-left-by-the-killed-attempt.c000.snappy.parquet")

    # the rerun (in-process: the same code the job runs) parses every file once
    assert ingest.run(spark, cfg, D2) == {"files_parsed": 16, "rows": sum(f["rows"] for f in todo)}
    build(spark, cfg, D2)
    publish.publish_run(cfg, D2, "rerun")
    assert_same_as_reference(ref, cfg)


# ---------------------------------------------------------------- 2. publish killed

CHILD_PUBLISH = (
    "import datetime as dt, sys\n"
    "from ecredit.warehouse import publish\nfrom ecredit.core import settings\n"
    "publish.publish_run(settings.load(), dt.date.fromisoformat(sys.argv[1]), 'killed')\n"
)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("point", ["publish.staged", "publish.swapping"])
def test_publish_killed(ref, tmp_path, kind, point, request, monkeypatch):
    pg_name = request.getfixturevalue("pg_db") if kind == "postgresql" else None
    root = fresh(ref, "d2_built", tmp_path)
    url = warehouse_for(kind, root, pg_name)
    cfg = cfg_at(root, url)
    assert snapshot(url) == ref["wh_d1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
    env.update(cfg.as_env(), CREDIT_FAILPOINT=point, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD_PUBLISH, D2.isoformat()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]

    # PostgreSQL: the server ends the dead client's session (its transaction: nothing attached);
    # the tables of D its loads committed (decision 116) stay in run_partitions, never partitions
    probe = (
        "SELECT n.nspname, c.relname, c.relispartition FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname LIKE 'stage\\_%' AND c.relkind IN ('r', 'p')"
    )
    if kind == "postgresql":
        eng = create_engine(url)
        mine = "database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        for _ in range(300):  # wait (up to 30 s) for the server to end the dead client's session
            with eng.connect() as c:
                busy = c.execute(text(f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND {mine}")).scalar()
            if not busy:
                break
            time.sleep(0.1)
        with eng.connect() as c:
            left = c.execute(text(probe)).fetchall()
        eng.dispose()
        assert left, "the loads of D committed before the kill"
        assert all(schema == publish.PARTITIONS and not attached for schema, _, attached in left), left
    else:
        with sqlite3.connect(root / "warehouse.db") as c:  # the killed transaction's journal is rolled back
            assert c.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert_previous_state(ref, cfg)
    # the failure is recorded at once: the dead transaction holds nothing the record waits for
    fail(cfg, "publish", "Task process exited with return code -9 (SIGKILL)", monkeypatch)
    assert last_failure(url)["reason"].startswith("publish: Task process exited")
    publish.publish_run(cfg, D2, "rerun")
    assert_same_as_reference(ref, cfg)
    if kind == "postgresql":  # the rerun dropped what the dead one left
        with create_engine(url).connect() as c:
            assert c.execute(text(probe)).fetchall() == []


# ---------------------------------------------------------------- 3. the warehouse unreachable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_closed_warehouse_port_is_named(tmp_path):
    cfg = cfg_at(tmp_path, f"postgresql+psycopg://ecredit_pipeline@127.0.0.1:{_closed_port()}/ecredit")
    with pytest.raises(SettingError, match=r"^CREDIT_WAREHOUSE_URL: the warehouse cannot be reached"):
        publish.connect(cfg)


@pytest.mark.postgres
def test_warehouse_gone_mid_run_then_back(ref, tmp_path, pg_db, monkeypatch):
    root = fresh(ref, "d2_built", tmp_path)
    url = warehouse_for("postgresql", root, pg_db)
    cfg = cfg_at(root, url)
    # the run started with the warehouse up (D2 built); then its database disappears
    pg_kick(pg_db)
    pg_admin(f'ALTER DATABASE "{pg_db}" RENAME TO "{pg_db}_away"')
    with pytest.raises(SettingError) as gone:
        publish.publish_run(cfg, D2, RUN_ID)
    assert str(gone.value).startswith("CREDIT_WAREHOUSE_URL: the warehouse cannot be reached")
    # the failure cannot be written to the warehouse: the lake keeps it
    fail(cfg, "publish", gone.value, monkeypatch)
    kept = list(publish.unrecorded_dir(cfg).glob("*.json"))
    assert len(kept) == 1 and "CREDIT_WAREHOUSE_URL" in json.loads(kept[0].read_text("utf-8"))["reason"]

    pg_kick(pg_db + "_away")
    pg_admin(f'ALTER DATABASE "{pg_db}_away" RENAME TO "{pg_db}"')
    assert_previous_state(ref, cfg)
    publish.publish_run(cfg, D2, "rerun")
    assert_same_as_reference(ref, cfg)
    # the failed attempt reached pipeline_run once the warehouse was back, once
    failed = [r for r in runs(url) if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["run_id"] == RUN_ID and failed[0]["run_date"] == D2
    assert failed[0]["reason"].startswith("publish: CREDIT_WAREHOUSE_URL: the warehouse cannot be reached")
    assert list(publish.unrecorded_dir(cfg).glob("*.json")) == []


# ---------------------------------------------------------------- 4. a full disk under the lake


def test_disk_full_while_ingest_writes_done_markers(ref, tmp_path, spark, monkeypatch):
    root = fresh(ref, "after_d1", tmp_path)
    cfg = cfg_at(root)
    gates(cfg, D2)
    done_dir = str(cfg.lake_dir / "parsed" / "done")
    real = Path.write_text
    written = []

    def full_after_14(self, data, *a, **kw):  # the disk fills while the markers are written
        if str(self).startswith(done_dir):
            if len(written) == 14:
                real(self, data[: len(data) // 2], *a, **kw)  # a partial temporary file, then ENOSPC
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
            written.append(self)
        return real(self, data, *a, **kw)

    monkeypatch.setattr(Path, "write_text", full_after_14)
    with pytest.raises(ingest.LakeFull) as full:
        ingest.run(spark, cfg, D2)
    monkeypatch.setattr(Path, "write_text", real)
    assert "no space left on the device of CREDIT_LAKE_DIR" in str(full.value)
    assert len(ingest.pending_files(cfg, D2)) == 2
    fail(cfg, "ingest_and_build", full.value, monkeypatch)
    assert "no space left" in last_failure(cfg.warehouse_url)["reason"]
    assert_previous_state(ref, cfg)

    assert ingest.run(spark, cfg, D2)["files_parsed"] == 2  # space freed: the rest, once
    build(spark, cfg, D2)
    publish.publish_run(cfg, D2, "rerun")
    assert_same_as_reference(ref, cfg)


def test_disk_full_while_the_state_build_writes_gold(ref, tmp_path, spark, monkeypatch):
    from pyspark.sql.readwriter import DataFrameWriter

    root = fresh(ref, "d2_built", tmp_path)  # D2's gold is there already: a rebuild fails half-way
    cfg = cfg_at(root)
    real = DataFrameWriter.parquet
    victim = state.gold_dir(cfg, D2) / "serious_dishonest_list"

    def full(self, path, *a, **kw):
        if Path(path) == victim:  # as Spark's overwrite does: the old table goes, the new one fails
            shutil.rmtree(path)
            (victim / "_temporary" / "0").mkdir(parents=True)
            (victim / "_temporary" / "0" / "part-00000.snappy.parquet").write_bytes(b"PAR1\x15\x00")
            raise RuntimeError(
                "An error occurred while calling o1234.parquet.\n: org.apache.spark.SparkException: "
                "Job aborted.\nCaused by: java.io.IOException: No space left on device"
            )
        return real(self, path, *a, **kw)

    monkeypatch.setattr(DataFrameWriter, "parquet", full)
    with pytest.raises(ingest.LakeFull) as err:
        build(spark, cfg, D2)
    monkeypatch.setattr(DataFrameWriter, "parquet", real)
    assert str(err.value).startswith(f"[Errno 28] build_state {D2}: no space left on the device of CREDIT_LAKE_DIR")
    fail(cfg, "ingest_and_build", err.value, monkeypatch)
    assert "no space left" in last_failure(cfg.warehouse_url)["reason"]
    # the half-rebuilt gold is never published
    with pytest.raises(RuntimeError, match="not a finished build"):
        publish.publish_run(cfg, D2, "too-early")
    assert_previous_state(ref, cfg)

    build(spark, cfg, D2)
    publish.publish_run(cfg, D2, "rerun")
    assert_same_as_reference(ref, cfg)


# ---------------------------------------------------------------- 5. a corrupt Parquet file in the lake


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_corrupt_parsed_rows_are_parsed_again(ref, tmp_path, spark, damage, monkeypatch):
    root = fresh(ref, "d2_built", tmp_path)
    cfg = cfg_at(root)
    # one file of the history load (D1, published long ago) is damaged in the lake
    f = max((f for f in delivery.accepted_files(cfg, D1)), key=lambda f: f["rows"])
    part_file = next(ingest.partition_path(cfg, f).glob("*.parquet"))
    data = part_file.read_bytes()
    if damage == "truncated":
        part_file.write_bytes(data[: len(data) // 2])
    else:  # same length, footer intact: the bytes of the first column chunk changed
        part_file.write_bytes(data[:4] + bytes(b ^ 0xFF for b in data[4:68]) + data[68:])
    # D2 folds from D1's checkpoint and reads only its own files; a full fold reads the damaged one
    with pytest.raises(fold.ParsedRowsDamaged) as err:
        build(spark, cfg, D2, full=True)
    msg = str(err.value)
    assert str(ingest.partition_path(cfg, f)) in msg and "rerun the date" in msg
    assert "Traceback" not in msg and len(msg) < 1500
    # what is wrong, in Spark's or Parquet's words (a footer check sees a truncation; Hadoop's
    # checksum the changed bytes, when Spark reads them)
    if damage == "truncated":
        assert "is not a readable Parquet file" in msg
    else:
        assert "cannot be read by Spark" in msg and ("Checksum error" in msg or "FAILED_READ_FILE" in msg)
    assert ingest.file_counts(cfg, f) is None  # its done-marker is gone: the rerun parses it again
    fail(cfg, "ingest_and_build", err.value, monkeypatch)
    assert last_failure(cfg.warehouse_url)["reason"].startswith("ingest_and_build: parsed rows in the lake are damaged")
    assert_previous_state(ref, cfg)

    assert ingest.run(spark, cfg, D2) == {"files_parsed": 1, "rows": f["rows"]}
    build(spark, cfg, D2)
    publish.publish_run(cfg, D2, "rerun")
    assert_same_as_reference(ref, cfg)


def test_corrupt_gold_file_stops_publish_and_a_rebuild_recovers(ref, tmp_path, spark, monkeypatch):
    root = fresh(ref, "d2_built", tmp_path)
    cfg = cfg_at(root)
    victim = next((state.gold_dir(cfg, D2) / "operator_score").glob("*.parquet"))
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 100])
    with pytest.raises(RuntimeError) as err:
        publish.publish_run(cfg, D2, RUN_ID)
    assert str(err.value).startswith(f"{victim} cannot be read")
    assert "rerun the date" in str(err.value)
    fail(cfg, "publish", err.value, monkeypatch)
    assert last_failure(cfg.warehouse_url)["reason"].startswith(f"publish: {victim} cannot be read")
    assert_previous_state(ref, cfg)

    build(spark, cfg, D2)  # gold is derived: the rerun's build writes it again
    publish.publish_run(cfg, D2, "rerun")
    assert_same_as_reference(ref, cfg)


# ---------------------------------------------------------------- 6. a damaged or stale checkpoint


@pytest.mark.parametrize("damage", ["marker gone", "part file gone", "part file truncated", "file withdrawn"])
def test_a_checkpoint_that_cannot_be_trusted_is_not_used(ref, tmp_path, spark, damage):
    """D1's checkpoint, D2's base, is damaged (a kill while it was written leaves no marker: the
    marker goes first and comes back last), or holds a file that is no longer applied at D2 (its
    marker names one more). D2's build then folds every applied delivery, and its gold tables are
    the unfaulted run's; D2's new checkpoint is whole."""
    root = fresh(ref, "d2_built", tmp_path)
    cfg = cfg_at(root)
    marker = lake.folded_marker(cfg, D1)
    biggest = max(lake.folded_dir(cfg, D1).rglob("*.parquet"), key=lambda p: p.stat().st_size)
    if damage == "marker gone":
        marker.unlink()
    elif damage == "part file gone":
        biggest.unlink()
    elif damage == "part file truncated":
        biggest.write_bytes(biggest.read_bytes()[:-100])
    else:
        held = lake.read_json(marker)
        lake.write_json(marker, {**held, "files": [*held["files"], "amr.penalties/2026-11-01/" + "0" * 64]})
    out = build(spark, cfg, D2)
    assert out["folded_from"] == "nothing"
    assert gold(cfg, D2) == ref["gold"]
    d2 = lake.read_json(lake.folded_marker(cfg, D2))
    assert d2["base"] is None and d2["rows"] == lake.parquet_rows(lake.folded_dir(cfg, D2)) > 0
    # the unfaulted D2 was folded from D1's checkpoint
    assert lake.read_json(lake.folded_marker(cfg_at(ref["d2_built"]), D2))["base"] == D1.isoformat()


@pytest.mark.parametrize("damage", ["gold not whole", "next change dates gone", "next change dates truncated"])
def test_scores_are_not_carried_from_a_base_that_cannot_be_trusted(ref, tmp_path, spark, damage):
    """D2 carries the untouched operators' scores from D1 (decision 0111) only when D1's gold is
    whole (a kill mid-build leaves no ``_built.json``) and its next change dates are readable;
    otherwise it scores everyone, says why, and its gold is the unfaulted run's."""
    root = fresh(ref, "d2_built", tmp_path)
    cfg = cfg_at(root)
    folder = lake.state_table(cfg, D1, rescore.NEXT_CHANGE)
    if damage == "gold not whole":
        lake.drop_built(cfg, D1)
    elif damage == "next change dates gone":
        shutil.rmtree(folder)
    else:
        biggest = max(folder.glob("*.parquet"), key=lambda p: p.stat().st_size)
        biggest.write_bytes(biggest.read_bytes()[:-100])
    out = build(spark, cfg, D2)
    assert out["folded_from"] == D1.isoformat() and out["rescored"] == "all"
    note = lake.read_json(lake.scored_note(cfg, D2))
    why = {"gold not whole": "is not whole", "next change dates gone": "are missing"}.get(damage, "cannot be read")
    assert note["carried_from"] is None and why in note["why"], note
    assert gold(cfg, D2) == ref["gold"]
    # the unfaulted D2 carried D1's scores
    assert lake.read_json(lake.scored_note(cfg_at(ref["d2_built"]), D2))["carried_from"] == D1.isoformat()


def test_a_changed_rules_file_folds_everything(ref, tmp_path, spark):
    root = fresh(ref, "d2_built", tmp_path)
    changed = root / "rules.yaml"
    changed.write_text((ROOT / "rules" / "default.yaml").read_text("utf-8") + "\n# edited\n", "utf-8")
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(root), "CREDIT_RULES": str(changed), **SECRETS})
    assert build(spark, cfg, D2)["folded_from"] == "nothing"
    assert build(spark, cfg_at(root), D2)["folded_from"] == D1.isoformat()  # D1's was made with these
