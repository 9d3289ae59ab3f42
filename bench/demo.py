"""``make bench-demo``: what a user waits for, with the machine's yardstick beside it (issue 16).

    python -m bench.demo [--operators 2000] [--dates 2026-11-01,2026-11-02,2026-11-03] [--repeat 1]
                         [--work-dir data/bench-demo]

1. the yardstick: ``ecredit.generate`` of the same deliveries in this process, timed: the
   generator's rows/s (pure Python, untouched by the pipeline's changes) says how fast the machine
   is today;
2. ``ecredit demo`` (what ``make demo`` runs after set-up) in a fresh data directory, ``--repeat``
   times: its wall time, each date's time through the DAG (``ecredit run``'s own figure, Airflow's
   test runner in-process) and every task's seconds, read from the demo's console.

Prints one line per run and, last, one JSON line. The best run (the shortest demo) is ``best``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATE_HEADER = re.compile(r"^ecommerce_credit_daily (\d{4}-\d{2}-\d{2}):$")
TASK_LINE = re.compile(r"^  (\S+)\s+([a-z_]+)\s+([0-9.]+) s$")
RUN_LINE = re.compile(r"^== ecommerce_credit_daily \S+: ([a-z_]+) in ([0-9.]+) s$")
DEMO_LINE = re.compile(r"^demo finished in ([0-9.]+) s$")


def parse_console(text: str) -> dict:
    """The demo's console: ``dates`` {date: {"state", "seconds", "tasks": {task: seconds}}} and
    ``demo_s`` (the demo's own figure, generation included)."""
    dates: dict = {}
    current = None
    demo_s = None
    for line in text.splitlines():
        if m := DATE_HEADER.match(line):
            current = dates.setdefault(m.group(1), {"tasks": {}})
        elif (m := TASK_LINE.match(line)) and current is not None:
            current["tasks"][m.group(1)] = float(m.group(3))
        elif (m := RUN_LINE.match(line)) and current is not None:
            current["state"], current["seconds"] = m.group(1), float(m.group(2))
            current = None
        elif m := DEMO_LINE.match(line):
            demo_s = float(m.group(1))
    return {"dates": dates, "demo_s": demo_s}


def delivered_rows(landing: Path) -> int:
    """Rows of every delivered file, from the manifests (the departments' own counts)."""
    return sum(e["rows"] for m in landing.glob("*/*/manifest.json") for e in json.loads(m.read_text("utf-8"))["files"])


def yardstick(work: Path, operators: int, dates: list[dt.date], seed: int) -> dict:
    from ecredit.generate import generate

    out = work / "yardstick"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    generate(out, operators, dates, seed=seed, progress=lambda m: None)
    seconds = time.perf_counter() - t0
    rows = delivered_rows(out)
    shutil.rmtree(out, ignore_errors=True)
    return {"generator_rows": rows, "generator_s": round(seconds, 2), "generator_rows_per_s": round(rows / seconds)}


def demo_once(work: Path, operators: int, dates: list[dt.date], seed: int, i: int) -> dict:
    data = work / f"demo-{i}"
    shutil.rmtree(data, ignore_errors=True)
    cmd = [
        str(Path(sys.executable).with_name("ecredit")),
        "demo",
        "--data-dir",
        str(data),
        "--operators",
        str(operators),
        "--dates",
        ",".join(d.isoformat() for d in dates),
        "--seed",
        str(seed),
    ]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=os.environ.copy(), check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"ecredit demo failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    got = parse_console(done.stdout)
    shutil.rmtree(data, ignore_errors=True)
    return {"wall_s": round(wall, 1), **got}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--operators", type=int, default=2000)
    p.add_argument("--dates", default="2026-11-01,2026-11-02,2026-11-03")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--work-dir", default=str(ROOT / "data" / "bench-demo"))
    a = p.parse_args(argv)
    dates = [dt.date.fromisoformat(d) for d in a.dates.split(",")]
    work = Path(a.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"operators": a.operators, "dates": [d.isoformat() for d in dates], "cpus": os.cpu_count()}
    result.update(yardstick(work, a.operators, dates, a.seed))
    print(f"yardstick: the generator made {result['generator_rows_per_s']:,} rows/s", flush=True)
    runs = []
    for i in range(a.repeat):
        run = demo_once(work, a.operators, dates, a.seed, i)
        per_date = ", ".join(f"{d} {r.get('seconds')} s" for d, r in run["dates"].items())
        print(f"run {i + 1}: ecredit demo {run['wall_s']} s; through the DAG: {per_date}", flush=True)
        runs.append(run)
    result["runs"] = runs
    result["best"] = min(runs, key=lambda r: r["wall_s"]) if runs else None
    result["loadavg"] = os.getloadavg()
    print(json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main()
