"""The end-to-end run, once per test session: generated deliveries for three dates, `ecredit run`
for each date through the real DAG (Airflow's test runner, spark-submit), the embedded warehouse.
Many tests assert on it."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ECREDIT = Path(sys.executable).parent / "ecredit"
DATES = ["2026-11-01", "2026-11-02", "2026-11-03"]
PII_KEY = "test-pii-key"
DRAW_SECRET = "test-draw-secret"
REJECTED = ("psb", "2026-11-02")  # (dept, date) of the delivery the fixture corrupts


def run_cli(args: list[str], env: dict, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([str(ECREDIT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def log_file(proc: subprocess.CompletedProcess) -> Path:
    """The log file that `ecredit run`, `backfill` or `demo` names on its first console line (the
    Airflow, Spark and GX logs go there; the console has one line per task and the summary)."""
    first = proc.stdout.splitlines()[0] if proc.stdout else ""
    assert " logs in " in first and first.endswith(".log"), proc.stdout[-2000:] + proc.stderr[-2000:]
    return Path(first.rsplit(" logs in ", 1)[1])


def full_output(proc: subprocess.CompletedProcess) -> str:
    """The console of a run command followed by its log file: everything the run wrote."""
    try:
        logged = log_file(proc).read_text("utf-8", "replace")
    except (AssertionError, OSError):
        logged = ""
    return proc.stdout + proc.stderr + logged


@pytest.fixture(scope="session")
def e2e(tmp_path_factory):
    from ecredit.generate import generate

    root = tmp_path_factory.mktemp("e2e")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_", "AIRFLOW"))}
    # the default rules but a daily inspection plan, so that the run dates after the first draw
    rules = root / "rules.yaml"
    text = (ROOT / "rules" / "default.yaml").read_text("utf-8")
    assert "  schedule: monthly" in text
    rules.write_text(text.replace("  schedule: monthly", "  schedule: daily"), "utf-8")
    env.update(
        CREDIT_DATA_DIR=str(root),
        CREDIT_PII_KEY=PII_KEY,
        AIRFLOW_HOME=str(root / "airflow"),
        SPARK_LOCAL_IP="127.0.0.1",
        CREDIT_RULES=str(rules),
        CREDIT_DRAW_SECRET=DRAW_SECRET,
        # a class-data archive of its own (decision 118): D1's job writes it, the backfill's map it
        CREDIT_JVM_CACHE_DIR=str(root / "jvm"),
    )
    summary = generate(
        root / "landing",
        150,
        [dt.date.fromisoformat(d) for d in DATES],
        seed=11,
        dirty_rate=0.0,
        progress=lambda m: None,
    )
    # one delivery is broken in transit: its bytes no longer match its manifest (rejected)
    with open(root / "landing" / REJECTED[0] / REJECTED[1] / "cases.jsonl", "ab") as f:
        f.write(b'{"case_id": "X-1"}\n')
    runs = {}
    # the first date by `ecredit run`, the others by `ecredit backfill`: both commands are exercised
    for args in (["run", "--date", DATES[0]], ["backfill", "--from", DATES[1], "--to", DATES[-1]]):
        t0 = time.time()
        proc = run_cli(args, env)
        runs[" ".join(args)] = {"proc": proc, "seconds": time.time() - t0}
        assert proc.returncode == 0, f"ecredit {' '.join(args)} failed:\n{full_output(proc)[-9000:]}"
    return {
        "root": root,
        "env": env,
        "summary": summary,
        "runs": runs,
        "rules": rules,
        "warehouse": f"sqlite:///{root / 'warehouse.db'}",
    }


DIRTY_OPERATORS = 70
NULLS = {"", "—", "―", "— —", "― ―", "/", "无"}  # feeds.md's null spellings


def plant_dirty_copies(landing: Path, day: str) -> list[dict]:
    """Send again, in the deliveries of `day` (manifests updated), one row of each kind of personal
    data with its event date made unparseable: the copy is quarantined (BAD_DATE) with its content,
    personal data masked; the original is applied as before. So the quarantine holds a legal
    representative, a natural person's ID number, a complainant's name and phone, and natural
    persons' names as two sources give them, whatever the generator's random dirt hit. Returns the
    planted rows: dept, file, line (physical, header = 1), row (as sent, before the date was broken)."""
    import csv
    import hashlib
    import io
    import json

    def val(v):
        return None if v is None or str(v).strip() in NULLS else str(v).strip()

    registry = (landing / "amr" / day / "operators.csv").read_bytes().decode("gb18030", "replace")
    shops = {val(r["主体名称"]) for r in csv.DictReader(io.StringIO(registry, newline=""))}
    natural = lambda r, name: val(r.get(name)) and not val(r.get("uscc", r.get("统一社会信用代码")))
    wanted = [  # file, encoding, the date column to break, which row
        ("amr", "operators.csv", "gb18030", "成立日期", lambda r: val(r["法定代表人"])),
        ("amr", "operators.csv", "gb18030", "成立日期", lambda r: natural(r, "证件号码")),
        ("amr", "complaints.csv", "gb18030", "登记日期", lambda r: val(r["投诉人姓名"]) and val(r["投诉人电话"])),
        (
            "cac",
            "pi_violations.csv",
            "utf-8-sig",
            "发现日期",
            lambda r: natural(r, "证件号码") and val(r["主体名称"]) not in shops,
        ),
        (
            "ndrc",
            "credit_lists.jsonl",
            "utf-8",
            "start",
            lambda r: natural(r, "id_no") and val(r.get("name")) not in shops,
        ),
    ]
    planted = []
    for dept, name, encoding, date_column, want in wanted:
        path = landing / dept / day / name
        data = path.read_bytes()
        term = "\r\n" if b"\r\n" in data else "\n"
        lines = data.split(term.encode())
        header = None if name.endswith(".jsonl") else next(csv.reader([lines[0].decode(encoding)]))
        for raw in lines[0 if header is None else 1 :]:
            try:
                text = raw.decode(encoding)
                row = json.loads(text) if header is None else dict(zip(header, next(csv.reader([text]))))
            except (ValueError, StopIteration):
                continue
            if (
                (header is None or len(row) == len(header))
                and val(row.get(date_column))
                and want(row)
                and not any(p["dept"] == dept and p["file"] == name and p["row"] == row for p in planted)
            ):
                break
        else:
            raise AssertionError(f"no row of {dept}/{day}/{name} to plant")
        bad = {**row, date_column: "2026-13-45"}
        if header is None:
            line = json.dumps(bad, ensure_ascii=False) + term
        else:
            buf = io.StringIO(newline="")
            csv.writer(buf, lineterminator=term).writerow([bad[h] for h in header])
            line = buf.getvalue()
        data = data if data.endswith(term.encode()) else data + term.encode()
        n = data.count(term.encode()) + 1  # the physical line of the copy
        path.write_bytes(data + line.encode(encoding.replace("-sig", "")))
        manifest = json.loads((path.parent / "manifest.json").read_text("utf-8"))
        entry = next(f for f in manifest["files"] if f["name"] == name)
        entry["rows"] += 1
        entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        (path.parent / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", "utf-8")
        planted.append({"dept": dept, "file": name, "line": n, "row": row})
    return planted


@pytest.fixture(scope="session")
def dirty_e2e(tmp_path_factory):
    """A small dirty city through the real DAG: 70 operators, the same three dates, 4 % of the rows
    dirty (every reason code of quality.md, so quarantined rows holding ID numbers, legal
    representatives, complainants and natural persons' names), the default rules. The end-to-end
    fixture's data is clean; the tests of quarantine, masking, late deliveries and the summary run
    on this one. D1 by `ecredit run`, D2..D3 by `ecredit backfill`; the data folder as it stood
    after D1 (lake, outbox, warehouse) is kept in `after_first` for the late-delivery test."""
    import shutil

    from ecredit.generate import generate

    root = tmp_path_factory.mktemp("dirty_e2e")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_", "AIRFLOW"))}
    env.update(
        CREDIT_DATA_DIR=str(root),
        CREDIT_PII_KEY=PII_KEY,
        AIRFLOW_HOME=str(root / "airflow"),
        SPARK_LOCAL_IP="127.0.0.1",
        CREDIT_DRAW_SECRET=DRAW_SECRET,
    )
    summary = generate(
        root / "landing",
        DIRTY_OPERATORS,
        [dt.date.fromisoformat(d) for d in DATES],
        seed=29,
        dirty_rate=0.04,
        progress=lambda m: None,
    )
    planted = plant_dirty_copies(root / "landing", DATES[0])
    runs = {}
    after_first = tmp_path_factory.mktemp("dirty_after_first")
    for args in (["run", "--date", DATES[0]], ["backfill", "--from", DATES[1], "--to", DATES[-1]]):
        t0 = time.time()
        proc = run_cli(args, env)
        runs[" ".join(args)] = {"proc": proc, "seconds": time.time() - t0}
        assert proc.returncode == 0, f"ecredit {' '.join(args)} failed:\n{full_output(proc)[-9000:]}"
        if args[0] == "run":
            for sub in ("lake", "outbox"):
                shutil.copytree(root / sub, after_first / sub)
            shutil.copy(root / "warehouse.db", after_first / "warehouse.db")
    return {
        "root": root,
        "env": env,
        "summary": summary,
        "runs": runs,
        "after_first": after_first,
        "planted": planted,
        "rules": ROOT / "rules" / "default.yaml",
        "warehouse": f"sqlite:///{root / 'warehouse.db'}",
    }
