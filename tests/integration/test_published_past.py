"""The published past (issue 14 items 3 and 8): what a run date takes from the run date before it
(previous classes, list changes, the commitment to its draw) is the warehouse's published rows, so
a publish killed after its commit leaves the next date right; a draw date's salt is compared with
its commitment; and every published version of a draw date's plan is kept, one in force, each
verifiable.

One reference run of three dates (40 operators, a daily draw so that the second and third dates
draw), with its folders kept after D2's state build, after D2's publish and after D3's publish.
Each case starts from a copy of one of them and compares with the reference row for row, as
``test_faults.py`` does. The kill uses a plain Python child crashed by a failpoint
(``ecredit/core/failpoints.py``); the rest runs in-process on the session's SparkSession."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from ecredit import pipeline
from ecredit.core import rules as rules_mod
from ecredit.core import settings as settings_mod
from ecredit.ingest import gate as delivery
from ecredit.ops import cli
from ecredit.scoring import draw
from ecredit.state import build as state
from ecredit.warehouse import migrations, publish
from ecredit.warehouse import schema as wh
from tests.helpers import gates_accepted

ROOT = Path(__file__).resolve().parents[2]
D1, D2, D3 = dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)
OPERATORS, SEED = 40, 47
SECRET, OTHER_SECRET = "published-past-draw-secret", "a-changed-draw-secret"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
PG_PIPELINE = "postgresql+psycopg://ecredit_pipeline@127.0.0.1:5432/{db}"
CHILD_PUBLISH = (
    "import datetime as dt, sys\n"
    "from ecredit.warehouse import publish\nfrom ecredit.core import settings\n"
    "publish.publish_run(settings.load(), dt.date.fromisoformat(sys.argv[1]), 'killed')\n"
)


# ---------------------------------------------------------------- helpers


def cfg_at(root: Path, rules: Path, url: str | None = None, secret: str = SECRET) -> settings_mod.Settings:
    env = {
        "CREDIT_DATA_DIR": str(root),
        "CREDIT_RULES": str(rules),
        "CREDIT_PII_KEY": "published-past-pii-key",
        "CREDIT_DRAW_SECRET": secret,
    }
    return settings_mod.load({**env, **({"CREDIT_WAREHOUSE_URL": url} if url else {})})


def run_date(spark, cfg, d: dt.date, publish_it: bool = True) -> None:
    """A run of D in-process: the gates, ingest, the state build and (unless told) publish."""
    pipeline.run_stages(
        spark, cfg, d, run_id=f"run-{d}", until="publish" if publish_it else "build", after=gates_accepted
    )


def snapshot(url: str, when: bool = False) -> dict:
    """Every published table but pipeline_run, row for row, without the validation tables' run_id
    and (unless ``when``) the draw's published_at, the wall-clock time of its publish."""
    out = {}
    with create_engine(url).connect() as c:
        for name, t in wh.metadata.tables.items():
            if name in wh.BOOKKEEPING_TABLES:
                continue
            cols = [col for col in t.columns if col.name != "run_id" and (when or col.name != "published_at")]
            out[name] = sorted(
                json.dumps(dict(r._mapping), sort_keys=True, default=str) for r in c.execute(select(*cols))
            )
    return out


def rows(url: str, sql: str, **params) -> list[dict]:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            return [dict(r._mapping) for r in c.execute(text(sql), params)]
    finally:
        eng.dispose()


def gold(cfg, d) -> dict:
    import pyarrow.parquet as pq

    out = {}
    for name in state.GOLD_TABLES + state.RUN_TABLES:
        files = sorted((state.gold_dir(cfg, d) / name).glob("*.parquet"))
        out[name] = sorted(
            json.dumps(r, sort_keys=True, default=str) for f in files for r in pq.read_table(str(f)).to_pylist()
        )
    return out


def successes(url: str, d: dt.date) -> list[dict]:
    return [r for r in rows(url, "SELECT * FROM pipeline_run WHERE status = 'success'") if str(r["run_date"]) == str(d)]


def warnings_of(url: str, d: dt.date) -> list[str]:
    return json.loads(successes(url, d)[-1]["warnings"])


def fresh(history, which: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(history[which], tmp_path / "data"))


def pg_available() -> bool:
    try:
        with create_engine(PG_ADMIN.format(db="postgres")).connect() as c:
            c.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def pg_admin(sql: str) -> None:
    eng = create_engine(PG_ADMIN.format(db="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as c:
            c.execute(text(sql))
    finally:
        eng.dispose()


@pytest.fixture
def pg_empty():
    """A new empty PostgreSQL database, dropped afterwards (skips or, in CI, fails without a server)."""
    if not pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL on 127.0.0.1:5432 is not reachable (CI starts it in .ci/run)")
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable: install and start postgresql to run this case")
    name = f"ecredit_past_{uuid.uuid4().hex[:10]}"
    pg_admin(f'CREATE DATABASE "{name}"')
    yield name
    pg_admin(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )
    pg_admin(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def pg_db(pg_empty):
    """The same, migrated."""
    migrations.migrate(wh.engine_for(PG_ADMIN.format(db=pg_empty)))
    return pg_empty


def warehouse_for(kind: str, root: Path, rules: Path, pg_name: str | None, upto: list[dt.date]) -> str:
    """The warehouse of a copied folder: its own SQLite file, or a PostgreSQL database holding the
    dates ``upto`` published from the copied lake (the reference's rows)."""
    if kind == "sqlite":
        return cfg_at(root, rules).warehouse_url
    url = PG_PIPELINE.format(db=pg_name)
    for d in upto:
        publish.publish_run(cfg_at(root, rules, url), d, f"pg-{d}")
    return url


def kill_publish(cfg, d: dt.date, point: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_")}
    env.update(cfg.as_env(), CREDIT_FAILPOINT=point, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", CHILD_PUBLISH, d.isoformat()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# ---------------------------------------------------------------- the undisturbed reference


@pytest.fixture(scope="module")
def history(tmp_path_factory, spark):
    from ecredit.generate import generate

    base = tmp_path_factory.mktemp("published_past")
    rules = base / "rules.yaml"  # the default rules with a daily draw: D2 and D3 are draw dates
    default = (ROOT / "rules" / "default.yaml").read_text("utf-8")
    assert "  schedule: monthly" in default
    rules.write_text(default.replace("  schedule: monthly", "  schedule: daily"), "utf-8")
    root = base / "reference"
    generate(root / "landing", OPERATORS, [D1, D2, D3], seed=SEED, dirty_rate=0.0, progress=lambda m: None)
    cfg = cfg_at(root, rules)
    run_date(spark, cfg, D1)
    run_date(spark, cfg, D2, publish_it=False)
    d2_built = shutil.copytree(root, base / "d2_built")
    publish.publish_run(cfg, D2, f"run-{D2}")
    d2_published = shutil.copytree(root, base / "d2_published")
    run_date(spark, cfg, D3)
    out = {
        "rules": rules,
        "d2_built": d2_built,
        "d2_published": d2_published,
        "wh_d2": snapshot(cfg_at(d2_published, rules).warehouse_url),
        "wh_d3": snapshot(cfg.warehouse_url),
        "gold_d3": gold(cfg, D3),
    }
    # the reference is worth comparing with: D2 and D3 drew, and D3's previous state is D2's
    url = cfg.warehouse_url
    for d in (D2, D3):
        assert rows(url, "SELECT count(*) AS n FROM inspection_plan WHERE run_date = :d", d=d)[0]["n"] > 0, d
    assert rows(url, "SELECT count(*) AS n FROM inspection_plan WHERE run_date = :d", d=D1)[0]["n"] == 0
    assert {str(r["draw_date"]): str(r["published_run_date"]) for r in rows(url, "SELECT * FROM draw_commitment")} == {
        str(D2): str(D1),
        str(D3): str(D2),
        "2026-11-04": str(D3),
    }
    return out


# ---------------------------------------------------------------- item 8: a kill between commit and what follows


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_publish_killed_after_its_commit_then_the_next_date(history, tmp_path, spark, kind, request):
    pg_name = request.getfixturevalue("pg_db") if kind == "postgresql" else None
    root = fresh(history, "d2_built", tmp_path)
    url = warehouse_for(kind, root, history["rules"], pg_name, [D1])
    cfg = cfg_at(root, history["rules"], url)
    proc = kill_publish(cfg, D2, "publish.committed")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    # D2's transaction committed: its rows are the reference's; the attempt recorded no success
    assert snapshot(url) == history["wh_d2"]
    assert successes(url, D2) == []

    # the next date runs without D2 being rerun: its previous state is D2's published rows
    run_date(spark, cfg, D3)
    assert gold(cfg, D3) == history["gold_d3"]
    assert snapshot(url) == history["wh_d3"]
    # the same, said without the reference: previous_class is D2's final class, D3 drew
    d2 = {
        r["operator_key"]: r["final_class"]
        for r in rows(url, "SELECT operator_key, final_class FROM operator_score WHERE run_date = :d", d=D2)
    }
    d3 = rows(url, "SELECT operator_key, previous_class FROM operator_score WHERE run_date = :d", d=D3)
    assert d3 and all(r["previous_class"] == d2.get(r["operator_key"]) for r in d3)
    assert draw.verify_plan(wh.engine_for(url), D3)[0]


# ---------------------------------------------------------------- item 3: the draw and its commitment


def test_a_changed_draw_secret_makes_no_plan_and_says_so(history, tmp_path, spark):
    root = fresh(history, "d2_built", tmp_path)
    rules = history["rules"]
    cfg = cfg_at(root, rules, secret=OTHER_SECRET)  # D1 committed to D2's draw with SECRET
    state.build(spark, cfg, rules_mod.load(cfg.rules_path), D2)
    publish.publish_run(cfg, D2, "changed-secret")
    url = cfg.warehouse_url
    assert rows(url, "SELECT * FROM inspection_draw") == [] and rows(url, "SELECT * FROM inspection_plan") == []
    said = [w for w in warnings_of(url, D2) if w.startswith(f"no inspection plan for {D2}")]
    assert (
        len(said) == 1
        and "CREDIT_DRAW_SECRET does not give the salt that the run of 2026-11-01 committed to" in said[0]
    ), said
    assert OTHER_SECRET not in json.dumps(warnings_of(url, D2)) and SECRET not in json.dumps(warnings_of(url, D2))
    ok, messages = draw.verify_plan(wh.engine_for(url), D2)
    assert not ok and messages == [f"no draw was published for {D2} (no inspection_draw row)"]
    # everything else is as with the right secret; the commitment to D3 is the new secret's
    ref, now = history["wh_d2"], snapshot(url)
    for t in ref:
        if t not in ("inspection_draw", "inspection_plan", "draw_commitment"):
            assert now[t] == ref[t], t
    committed = rows(url, "SELECT salt_sha256 FROM draw_commitment WHERE draw_date = :d", d=D3)
    new_salt = hmac.new(OTHER_SECRET.encode(), D3.isoformat().encode(), hashlib.sha256).hexdigest()  # by hand
    assert committed == [{"salt_sha256": hashlib.sha256(new_salt.encode()).hexdigest()}]
    # so the next draw date draws with the new secret, and verifies
    run_date(spark, cfg, D3)
    assert rows(url, "SELECT count(*) AS n FROM inspection_plan WHERE run_date = :d", d=D3)[0]["n"] > 0
    assert draw.verify_plan(wh.engine_for(url), D3)[0]


def test_a_rerun_with_a_changed_secret_keeps_the_plan_in_force(history, tmp_path, spark):
    root = fresh(history, "d2_published", tmp_path)
    rules = history["rules"]
    cfg = cfg_at(root, rules, secret=OTHER_SECRET)
    state.build(spark, cfg, rules_mod.load(cfg.rules_path), D2)
    publish.publish_run(cfg, D2, "rerun-changed-secret")  # before: the commitment to D3 stopped the publish
    url = cfg.warehouse_url
    said = warnings_of(url, D2)
    assert any("CREDIT_DRAW_SECRET does not give the salt that the run of 2026-11-01" in w for w in said), said
    assert any(
        w == f"inspection plan {D2}: this run made no plan; version 1 of {D2}'s plan, published earlier, stays in force"
        for w in said
    ), said
    assert any(
        w.startswith(
            f"CREDIT_DRAW_SECRET does not give the commitment to the draw of {D3} that the run of {D2} published"
        )
        for w in said
    ), said
    # the published plan and commitments are the reference's; the plan's inputs are kept
    ref, now = history["wh_d2"], snapshot(url)
    assert now["inspection_plan"] == ref["inspection_plan"] and now["draw_commitment"] == ref["draw_commitment"]
    assert [(r["version"], r["in_force"], r["inputs_kept"]) for r in rows(url, "SELECT * FROM inspection_draw")] == [
        (1, True, True)
    ]
    ok, messages = draw.verify_plan(wh.engine_for(url), D2)
    assert ok, messages
    assert "counts match the classes the version was drawn on (inspection_draw_input)" in messages


# ---------------------------------------------------------------- item 3: versions of a draw date's plan


def correct_roster(cfg, d: dt.date, off_duty: str) -> None:
    """A corrected amr delivery of D: inspector ``off_duty`` is 在岗 否 from D on (its row as in the
    history load, with the last field changed), the manifest rewritten for the new bytes."""
    folder = delivery.delivery_dir(cfg, "amr", d)
    history_rows = (delivery.delivery_dir(cfg, "amr", D1) / "inspectors.csv").read_bytes().decode("gb18030")
    line = next(ln for ln in history_rows.split("\r\n") if ln.startswith(off_duty + ","))
    assert line.endswith(",是")
    path = folder / "inspectors.csv"
    lines = [ln for ln in path.read_bytes().decode("gb18030").split("\r\n") if ln and not ln.startswith(off_duty + ",")]
    lines.append(line[: -len("是")] + "否")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    entry = next(f for f in manifest["files"] if f["name"] == "inspectors.csv")
    entry.update(rows=len(lines) - 1, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), "utf-8")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_corrected_delivery_adds_a_plan_version_and_keeps_the_first(
    history, tmp_path, spark, kind, request, monkeypatch, capsys
):
    pg_name = request.getfixturevalue("pg_db") if kind == "postgresql" else None
    root = fresh(history, "d2_published", tmp_path)
    rules = history["rules"]
    url = warehouse_for(kind, root, rules, pg_name, [D1, D2])
    cfg = cfg_at(root, rules, url)
    first = rows(url, "SELECT * FROM inspection_plan WHERE run_date = :d", d=D2)
    first_draw = rows(url, "SELECT * FROM inspection_draw WHERE run_date = :d", d=D2)
    classes = {
        r["operator_key"]: r["final_class"]
        for r in rows(url, "SELECT operator_key, final_class FROM operator_score WHERE run_date = :d", d=D2)
    }
    on_duty = {
        r["inspector_id"] for r in rows(url, "SELECT inspector_id FROM inspector WHERE run_date = :d AND on_duty", d=D2)
    }
    drawn_inspector = first[0]["inspector_ids"].split(",")[0]
    assert [(r["version"], r["in_force"]) for r in first_draw] == [(1, True)]

    # amr sends a corrected delivery of D2: one inspector of the plan was not on duty; D2 is rerun
    correct_roster(cfg, D2, drawn_inspector)
    run_date(spark, cfg, D2)
    versions = rows(url, "SELECT * FROM inspection_draw WHERE run_date = :d ORDER BY version", d=D2)
    assert [(r["version"], r["in_force"], r["inputs_kept"]) for r in versions] == [(1, False, True), (2, True, False)]
    strip = ("in_force", "inputs_kept")
    assert {k: v for k, v in versions[0].items() if k not in strip} == {
        k: v for k, v in first_draw[0].items() if k not in strip
    }  # version 1 as it was published
    assert versions[1]["published_at"] is not None and versions[1]["seed"] == versions[0]["seed"]
    plans = rows(url, "SELECT * FROM inspection_plan WHERE run_date = :d", d=D2)
    key = lambda r: (r["version"], r["operator_key"])
    assert sorted([r for r in plans if r["version"] == 1], key=key) == sorted(first, key=key)
    second = [r for r in plans if r["version"] == 2]
    assert second and all(drawn_inspector not in r["inspector_ids"].split(",") for r in second)
    # what version 1 was drawn on is kept: D2's classes and inspectors on duty before the rerun
    kept = rows(url, "SELECT * FROM inspection_draw_input WHERE run_date = :d", d=D2)
    assert {r["item_key"]: r["final_class"] for r in kept if r["kind"] == "operator"} == classes
    assert {r["item_key"] for r in kept if r["kind"] == "inspector"} == on_duty
    assert {r["version"] for r in kept} == {1}
    now = {
        r["inspector_id"] for r in rows(url, "SELECT inspector_id FROM inspector WHERE run_date = :d AND on_duty", d=D2)
    }
    assert now == on_duty - {drawn_inspector}

    # both versions verify, each from what it was drawn on
    engine = wh.engine_for(url)
    ok, messages = draw.verify_plan(engine, D2)
    assert ok and messages[0].startswith(f"version 2 of 2 of the draw of {D2} (in force; published "), messages
    ok, messages = draw.verify_plan(engine, D2, 1)
    assert ok and messages[0].startswith(
        f"version 1 of 2 of the draw of {D2} (superseded: version 2 is in force; published "
    ), messages
    ok, messages = draw.verify_plan(engine, D2, 3)
    assert not ok and messages == [f"the draw of {D2} has no version 3 (published versions: 1, 2)"]
    for k in [k for k in os.environ if k.startswith("CREDIT_")]:
        monkeypatch.delenv(k)
    for k, v in cfg.as_env().items():
        monkeypatch.setenv(k, v)
    assert cli.main(["verify-plan", "--date", D2.isoformat(), "--version", "1"]) == 0
    assert f"plan for {D2} version 1 verified" in capsys.readouterr().out

    # the same corrected delivery again: an identical plan adds no version, the tables stay as they are
    before = snapshot(url, when=True)
    run_date(spark, cfg, D2)
    assert snapshot(url, when=True) == before


# ---------------------------------------------------------------- migration 0003 on PostgreSQL


@pytest.mark.postgres
def test_migration_0003_on_postgres_keeps_the_published_plans_as_version_1(pg_empty):
    """A database migrated before 0003 with a published draw: after 0003 the draw is version 1, in
    force, published when the date's last successful run finished; the departments read the
    versions and the kept inputs, and cannot write them."""
    name = pg_empty
    admin = PG_ADMIN.format(db=name)
    assert migrations.migrate(wh.engine_for(admin), "0002") == [
        "0001_tables.postgresql.sql",
        "0002_roles.postgresql.sql",
    ]
    with create_engine(admin).begin() as c:
        c.execute(text("INSERT INTO inspection_draw VALUES ('2026-12-01', 'aa', 'bb', 'cc', '{}')"))
        c.execute(text("INSERT INTO inspection_plan VALUES ('2026-12-01', 'OP1', 'cc', 'D', 'ZF-1,ZF-2', true)"))
        for at, status in (
            ("2026-12-02 02:10:00+00", "success"),
            ("2026-12-02 03:10:00+00", "success"),
            ("2026-12-02 04:10:00+00", "failed"),
        ):
            c.execute(
                text(
                    "INSERT INTO pipeline_run (run_date, run_id, finished_at, status) "
                    "VALUES ('2026-12-01', 'r', :at, :s)"
                ),
                {"at": at, "s": status},
            )
    # 0003 alone first (later migrations, 0004 on, are not what this test is about), then the rest
    assert migrations.migrate(wh.engine_for(admin), "0003") == ["0003_draw_versions.postgresql.sql"]
    assert migrations.migrate(wh.engine_for(admin))[0].startswith("0004_")
    draws = rows(admin, "SELECT version, in_force, inputs_kept, published_at FROM inspection_draw")
    assert draws == [
        {
            "version": 1,
            "in_force": True,
            "inputs_kept": False,
            "published_at": dt.datetime(2026, 12, 2, 3, 10, tzinfo=dt.UTC),
        }
    ]
    assert rows(admin, "SELECT version, operator_key FROM inspection_plan") == [{"version": 1, "operator_key": "OP1"}]
    with pytest.raises(Exception, match="ux_inspection_draw_in_force"):  # one version in force per date
        with create_engine(admin).begin() as c:
            c.execute(
                text("INSERT INTO inspection_draw VALUES ('2026-12-01', 'aa', 'bb', 'cc', '{}', 2, true, false, now())")
            )
    with create_engine(admin).connect() as c:
        owners = dict(
            c.execute(text("SELECT tablename, tableowner FROM pg_tables WHERE tablename LIKE 'inspection%'")).all()
        )
    assert set(owners.values()) == {"ecredit_pipeline"}, owners
    for role in ("ecredit_amr", "ecredit_customs"):
        dept = f"postgresql+psycopg://{role}@127.0.0.1:5432/{name}"
        for t in ("inspection_draw", "inspection_plan", "inspection_draw_input"):
            assert rows(dept, f"SELECT * FROM {t}") == rows(admin, f"SELECT * FROM {t}"), (role, t)
        with pytest.raises(Exception, match="permission denied"):
            with create_engine(dept).begin() as c:
                c.execute(text("DELETE FROM inspection_draw_input"))
