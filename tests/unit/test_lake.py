"""One owner of the lake (decision 0089) and the typed records (decision 0090).

- ``ecredit.core.lake`` imports no Spark (a driver-only task reads the lake through it);
- no module of ``ecredit/``, ``jobs/`` or ``bench/`` but ``core/lake.py`` builds a lake path;
- the records serialise to the JSON the lake held before they were typed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ecredit.core import lake
from ecredit.core.records import (
    DeliveryFile,
    DeliveryStatus,
    DqCheck,
    FileWarning,
    GateResult,
    ParsedFile,
    Severity,
    Verdict,
)
from ecredit.core.settings import PROJECT_ROOT

# What building a lake path looked like before lake.py: the lake's folder joined with a name, the
# lake's top-level folders, and its marker files by name.
LAKE_PATH = re.compile(
    r"""lake_dir\s*/"""
    r"""|\blake\s*/\s*["']"""
    r"""|/\s*["'](parsed|gates|data_docs|state|gold|reports|runs|unrecorded)["']"""
    r"""|["'](_built\.json|_pii_key\.json|lock\.json|warnings\.json)["']"""
)
OWNER = PROJECT_ROOT / "ecredit" / "core" / "lake.py"


def _sources() -> list[Path]:
    return sorted(p for d in ("ecredit", "jobs", "bench") for p in (PROJECT_ROOT / d).rglob("*.py") if p != OWNER)


def lake_paths_built(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if LAKE_PATH.search(ln)]


def test_lake_imports_no_spark():
    code = (
        "import sys; import ecredit.core.lake, ecredit.core.records; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'great_expectations', 'py4j')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_driver_only_modules_import_no_spark():
    """The gate, the verdict, publish, the outbox and the report read the lake without Spark."""
    code = (
        "import sys; import ecredit.ingest.gate, ecredit.quality.verdict, ecredit.warehouse.publish, "
        "ecredit.outputs.outbox, ecredit.outputs.report, ecredit.pipeline; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'great_expectations')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_the_check_finds_a_lake_path_built_elsewhere():
    """The grep below can fail: it sees each way a lake path was built before lake.py."""
    for line in (
        'return settings.lake_dir / "gold" / run_date.isoformat()',
        'parsed = lake / "parsed"',
        'p = root / "runs" / "unrecorded"',
        '(gdir / "warnings.json").write_text(x)',
        'BUILT_MARKER = "_built.json"',
    ):
        assert lake_paths_built(line), line
    assert not lake_paths_built("path = lake.gold_table(settings, run_date, name)")


def test_no_module_but_lake_py_builds_a_lake_path():
    found = {
        str(p.relative_to(PROJECT_ROOT)): hits for p in _sources() if (hits := lake_paths_built(p.read_text("utf-8")))
    }
    assert found == {}, "build lake paths with ecredit.core.lake: " + json.dumps(found, indent=1, ensure_ascii=False)


def test_the_layout(tmp_path):
    class S:
        lake_dir = tmp_path

    info = {"feed_id": "amr.spot_checks", "date": "2026-11-01", "sha256": "ab" * 32}
    d = dt.date(2026, 11, 1)
    assert lake.done_marker(S, info) == tmp_path / "parsed/done/amr.spot_checks/2026-11-01" / f"{'ab' * 32}.json"
    assert lake.partition_dir(S, info) == (
        tmp_path / "parsed/rows/feed_id=amr.spot_checks/delivery_date=2026-11-01" / f"file_sha={'ab' * 32}"
    )
    assert lake.gate_result(S, "amr", d, "cd") == tmp_path / "gates/amr/2026-11-01/cd.json"
    assert lake.validation_result(S, info) == tmp_path / "validations/amr.spot_checks/2026-11-01" / f"{'ab' * 32}.json"
    assert lake.data_docs_index(S, "2026-11-01") == tmp_path / "data_docs/2026-11-01/index.html"
    assert lake.built_marker(S, d) == tmp_path / "gold/2026-11-01/_built.json"
    assert lake.report_index(S, d) == tmp_path / "reports/2026-11-01/index.html"
    assert lake.lease_file(S) == tmp_path / "runs/lock.json"
    assert lake.pii_key_mark(tmp_path) == tmp_path / "parsed/_pii_key.json"
    assert lake.read_done(S, info) is None
    lake.write_done(S, info, {"rows_in": 3})
    assert lake.read_done(S, info) == {"rows_in": 3}
    lake.write_gold_warnings(S, d, ["w"])
    assert lake.gold_warnings_file(S, d).read_text("utf-8") == '["w"]' and lake.read_gold_warnings(S, d) == ["w"]
    assert not lake.is_built(S, d)
    lake.write_built(S, d)
    marker = json.loads(lake.built_marker(S, d).read_text("utf-8"))
    assert lake.is_built(S, d) and marker["run_date"] == "2026-11-01" and set(marker) == {"run_date", "build"}
    assert lake.build_id(S, d) == marker["build"] and len(marker["build"]) == 32
    lake.write_built(S, d)  # each build of D has its own id (decision 112)
    assert lake.build_id(S, d) != marker["build"]
    assert lake.build_id(S, dt.date(2026, 11, 2)) is None
    assert lake.changes_marker(S, d) == tmp_path / "gold/2026-11-01/changes/_against.json"
    assert lake.gold_table(S, d, lake.change_table("dim_operator")) == tmp_path / "gold/2026-11-01/changes/dim_operator"


STORED_GATE = {  # a gate result as the lake held it before the records were typed
    "dept": "amr",
    "date": "2026-11-01",
    "manifest_sha256": "ef" * 32,
    "status": "accepted",
    "reasons": [],
    "warnings": ["spot_checks.csv: unknown extra column 'x' ignored"],
    "files": [
        {
            "name": "spot_checks.csv",
            "feed_id": "amr.spot_checks",
            "rows": 10,
            "sha256": "ab" * 32,
            "warnings": [
                {"code": "EXTRA_COLUMN", "count": 1, "columns": 12, "detail": "unknown extra columns ignored: 'x'"}
            ],
        },
        {"name": "inspectors.csv", "feed_id": "amr.inspectors", "rows": 0, "sha256": "cd" * 32, "warnings": []},
    ],
}


def test_a_gate_result_round_trips_to_the_same_json():
    g = GateResult.from_json(STORED_GATE)
    assert g.status is DeliveryStatus.ACCEPTED and g.files[0].warnings[0] == FileWarning(
        "EXTRA_COLUMN", 1, 12, "unknown extra columns ignored: 'x'"
    )
    assert g.to_json() == STORED_GATE
    pretty = dict(ensure_ascii=False, indent=1, sort_keys=True)  # how the gate writes it
    assert json.dumps(g.to_json(), **pretty) == json.dumps(STORED_GATE, **pretty)
    rejected = GateResult("ndrc", "2026-11-02", "00" * 32).reject("manifest.json has no 'files' list")
    assert rejected.to_json()["status"] == "rejected" and GateResult.from_json(rejected.to_json()) == rejected


def test_a_file_record_gives_the_ingest_info():
    f = DeliveryFile.from_json(STORED_GATE["files"][1])
    assert f.info("amr", "2026-11-01", "/landing/amr/2026-11-01/inspectors.csv") == {
        **STORED_GATE["files"][1],
        "dept": "amr",
        "date": "2026-11-01",
        "path": "/landing/amr/2026-11-01/inspectors.csv",
    }
    with pytest.raises(AttributeError):
        f.rows = 3  # frozen


def test_a_dq_check_round_trips_to_the_published_row():
    row = {
        "feed": "spot_checks",
        "check": "volume",
        "success": False,
        "severity": "warning",
        "element_count": 21,
        "unexpected_count": 1,
        "detail": "21 rows; median of the last deliveries 2",
    }
    c = DqCheck.from_json(row)
    assert c.severity is Severity.WARNING and c.to_json() == row
    assert list(c.to_json()) == ["feed", "check", "success", "severity", "element_count", "unexpected_count", "detail"]
    assert all(type(v) is not Severity for v in c.to_json().values())  # plain strings into the warehouse


def test_one_status_vocabulary_with_the_strings_of_before():
    assert {s.value for s in DeliveryStatus} == {
        "accepted",
        "rejected",
        "missing",
        "pending",
        "applied",
        "ok",
        "partial",
    }
    assert json.dumps({"status": DeliveryStatus.REJECTED}) == '{"status": "rejected"}'
    assert f"{DeliveryStatus.MISSING}" == "missing" and DeliveryStatus.APPLIED == "applied"
    # feed_status's words (publish and the validate task): an applied delivery is ok or partial
    assert DeliveryStatus.APPLIED.published(0) is DeliveryStatus.OK
    assert DeliveryStatus.APPLIED.published(3) is DeliveryStatus.PARTIAL
    for s in (DeliveryStatus.REJECTED, DeliveryStatus.MISSING, DeliveryStatus.PENDING):
        assert s.published(3) is s


def test_a_verdict_round_trips_with_its_files_and_checks():
    parsed = {
        **STORED_GATE["files"][0],
        "rows_in": 10,
        "rows_loaded": 7,
        "rows_quarantined": 3,
        "per_reason": {"INVALID_DATE": 3},
        "per_warning": {},
    }
    stored = {
        "dept": "amr",
        "date": "2026-11-01",
        "status": "rejected",
        "reasons": ["spot_checks.csv: 3 of 10"],
        "warnings": [],
        "files": [parsed],
        "checks": [
            {
                "feed": "*",
                "check": "delivery_gate",
                "success": True,
                "severity": "error",
                "element_count": 2,
                "unexpected_count": 0,
                "detail": "ok",
            }
        ],
        "manifest_sha256": "ef" * 32,
    }
    v = Verdict.from_json(stored)
    assert v.status is DeliveryStatus.REJECTED and v.rows_quarantined == 3 and v.files[0].name == "spot_checks.csv"
    assert isinstance(v.files[0], ParsedFile) and v.files[0].warnings[0].code == "EXTRA_COLUMN"
    assert v.to_json() == stored
    # the dict the ingest and the build read a parsed file by (its done-marker's keys)
    assert v.files[0].info("amr", "2026-11-01") == {**parsed, "dept": "amr", "date": "2026-11-01"}
    assert Verdict("cac", "2026-11-01").to_json()["status"] == "missing"


def _run_date_folders(lake_dir, days, built=True):
    """state/<D>/ (a checkpoint with its marker and a table) and gold/<D>/ (a table, and the build's
    marker when ``built``) for each date."""
    for d in days:
        day = dt.date.fromisoformat(d)
        (lake.folded_dir(lake_dir, day) / "feed_id=amr.penalties").mkdir(parents=True)
        (lake.folded_dir(lake_dir, day) / "feed_id=amr.penalties" / "part-0.parquet").write_bytes(b"x")
        lake.folded_marker(lake_dir, day).write_text("{}")
        lake.gold_table(lake_dir, day, "operator_score").mkdir(parents=True)
        (lake.gold_table(lake_dir, day, "operator_score") / "part-0.parquet").write_bytes(b"x")
        if built:
            lake.write_built(lake_dir, day)


def test_pruning_keeps_the_newest_run_dates_and_never_d_or_later(tmp_path):
    """lake.prune_run_dates (decision 115): the newest ``keep`` run dates stay, and so do D and every
    date after it (a backfill from an old date keeps the date its next date folds from); the others'
    state/ and gold/ go, with everything under them."""
    days = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-06"]
    _run_date_folders(tmp_path, days)
    (tmp_path / lake.STATE / "not-a-date").mkdir()  # not a run date: left alone
    assert lake.run_dates(tmp_path) == [dt.date.fromisoformat(d) for d in reversed(days)]

    # a backfill publishing 11-02 with keep 2: 11-01 goes; 11-02 (D) and 11-05, 11-06 (newest) stay,
    # 11-03 and 11-04 are after D: kept too
    gone = lake.prune_run_dates(tmp_path, dt.date(2026, 11, 2), 2)
    assert gone == [dt.date(2026, 11, 1)]
    assert not lake.state_dir(tmp_path, "2026-11-01").exists() and not lake.gold_dir(tmp_path, "2026-11-01").exists()
    # then its next date 11-03: 11-02 goes (11-03 folded from it already)
    assert lake.prune_run_dates(tmp_path, dt.date(2026, 11, 3), 2) == [dt.date(2026, 11, 2)]
    # the daily run of 11-06 with keep 2: 11-03 and 11-04 go
    assert lake.prune_run_dates(tmp_path, dt.date(2026, 11, 6), 2) == [dt.date(2026, 11, 3), dt.date(2026, 11, 4)]
    assert lake.run_dates(tmp_path) == [dt.date(2026, 11, 6), dt.date(2026, 11, 5)]
    assert lake.checkpoint_dates(tmp_path) == [dt.date(2026, 11, 6), dt.date(2026, 11, 5)]
    assert lake.is_built(tmp_path, "2026-11-05") and (tmp_path / lake.STATE / "not-a-date").is_dir()
    assert lake.prune_run_dates(tmp_path, dt.date(2026, 11, 6), 2) == []  # nothing more to do
    with pytest.raises(ValueError, match="keep must be at least 1"):
        lake.prune_run_dates(tmp_path, dt.date(2026, 11, 6), 0)


def test_a_pruning_cut_short_leaves_no_checkpoint_or_build_that_looks_whole(tmp_path, monkeypatch):
    """The markers go first: when deleting the files fails half way, the date is no checkpoint the
    fold would start from and no build publish would take."""
    import shutil

    _run_date_folders(tmp_path, ["2026-11-01", "2026-11-02"])

    def fail(path, *a, **k):
        raise OSError(f"disk error under {path}")

    monkeypatch.setattr(shutil, "rmtree", fail)
    with pytest.raises(OSError, match="disk error"):
        lake.prune_run_dates(tmp_path, dt.date(2026, 11, 2), 1)
    assert lake.state_dir(tmp_path, "2026-11-01").is_dir()  # the files are still there ...
    assert lake.checkpoint_dates(tmp_path) == [dt.date(2026, 11, 2)]  # ... but no checkpoint
    assert not lake.is_built(tmp_path, "2026-11-01") and lake.is_built(tmp_path, "2026-11-02")
    monkeypatch.undo()
    assert lake.prune_run_dates(tmp_path, dt.date(2026, 11, 2), 1) == [dt.date(2026, 11, 1)]  # the next try ends it
    assert lake.run_dates(tmp_path) == [dt.date(2026, 11, 2)]


def test_a_publish_prunes_the_lake_after_it_succeeded_only(tmp_path, monkeypatch):
    """pipeline.publish_and_prune (the publish task and run_stages): after the warehouse took D, the
    lake's older run dates beyond CREDIT_LAKE_KEEP_RUN_DATES go and the result lists them; a publish
    that fails deletes nothing."""
    from ecredit import pipeline
    from ecredit.core import settings as settings_mod
    from ecredit.warehouse import publish as publish_mod

    (tmp_path / "landing").mkdir()
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(tmp_path), "CREDIT_LAKE_KEEP_RUN_DATES": "2"})
    _run_date_folders(cfg.lake_dir, ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"])

    def failing(settings, run_date, run_id):
        raise RuntimeError("the warehouse is down")

    monkeypatch.setattr(publish_mod, "publish_run", failing)
    with pytest.raises(RuntimeError, match="warehouse is down"):
        pipeline.publish_and_prune(cfg, dt.date(2026, 11, 4), "run-x")
    assert len(lake.run_dates(cfg)) == 4

    monkeypatch.setattr(publish_mod, "publish_run", lambda settings, run_date, run_id: {"run_date": str(run_date)})
    out = pipeline.publish_and_prune(cfg, dt.date(2026, 11, 4), "run-x")
    assert out == {"run_date": "2026-11-04", "lake_pruned": ["2026-11-01", "2026-11-02"]}
    assert lake.run_dates(cfg) == [dt.date(2026, 11, 4), dt.date(2026, 11, 3)]
