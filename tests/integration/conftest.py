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


def run_cli(args: list[str], env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(ECREDIT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


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
    env.update(CREDIT_DATA_DIR=str(root), CREDIT_PII_KEY=PII_KEY, AIRFLOW_HOME=str(root / "airflow"),
               SPARK_LOCAL_IP="127.0.0.1", CREDIT_RULES=str(rules), CREDIT_DRAW_SECRET=DRAW_SECRET)
    summary = generate(root / "landing", 150, [dt.date.fromisoformat(d) for d in DATES], seed=11,
                       dirty_rate=0.0, progress=lambda m: None)
    # one delivery is broken in transit: its bytes no longer match its manifest (rejected)
    with open(root / "landing" / REJECTED[0] / REJECTED[1] / "cases.jsonl", "ab") as f:
        f.write(b'{"case_id": "X-1"}\n')
    runs = {}
    # the first date by `ecredit run`, the others by `ecredit backfill`: both commands are exercised
    for args in (["run", "--date", DATES[0]], ["backfill", "--from", DATES[1], "--to", DATES[-1]]):
        t0 = time.time()
        proc = run_cli(args, env)
        runs[" ".join(args)] = {"proc": proc, "seconds": time.time() - t0}
        assert proc.returncode == 0, f"ecredit {' '.join(args)} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return {"root": root, "env": env, "summary": summary, "runs": runs, "rules": rules,
            "warehouse": f"sqlite:///{root / 'warehouse.db'}"}
