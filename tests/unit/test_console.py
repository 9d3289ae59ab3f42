"""The quiet console of `ecredit run`, `backfill` and `demo` (ecredit/airflow/runner.py, decision 92):
the progress bar, the task lines, and the log file taking everything else, child processes included.
No Airflow, no Spark."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import textwrap
from types import SimpleNamespace

from ecredit.airflow import runner
from ecredit.core.settings import PROJECT_ROOT


def test_the_progress_bar():
    assert runner.progress_bar(0, 3) == "[..........] 0/3 dates"
    assert runner.progress_bar(1, 3) == "[###.......] 1/3 dates"
    assert runner.progress_bar(2, 3, "dates generated") == "[#######...] 2/3 dates generated"
    assert runner.progress_bar(10, 10) == "[##########] 10/10 dates"
    assert runner.progress_bar(0, 0) == "[##########] 0/0 dates"


def test_task_lines_one_per_instance_in_the_order_they_started():
    t = dt.datetime(2026, 11, 1, 2, tzinfo=dt.UTC)
    state = SimpleNamespace(value="success")
    tis = [
        SimpleNamespace(task_id="publish", map_index=-1, state=state, duration=3.25, start_date=t.replace(minute=3)),
        SimpleNamespace(task_id="release_lock", map_index=-1, state=None, duration=None, start_date=None),
        SimpleNamespace(
            task_id="validate",
            map_index=1,
            rendered_map_index="ndrc",
            state=SimpleNamespace(value="failed"),
            duration=1.0,
            start_date=t.replace(minute=2),
        ),
        SimpleNamespace(task_id="resolve_run_date", map_index=-1, state=state, duration=0.04, start_date=t),
    ]
    lines = runner.task_lines(tis)
    assert [line.split() for line in lines] == [
        ["resolve_run_date", "success", "0.0", "s"],
        ["validate[ndrc]", "failed", "1.0", "s"],
        ["publish", "success", "3.2", "s"],
        ["release_lock", "none", "0.0", "s"],  # not run: last
    ]
    assert len({line.index(line.split()[1]) for line in lines}) == 1  # the states line up


def test_generation_progress_one_bar_per_date_written(capsys):
    out = io.StringIO()
    progress = runner.GenerationProgress(runner.Console(out), [dt.date(2026, 11, 1), dt.date(2026, 11, 2)])
    for message in (
        "generate: 2026-11-01 history 100/200 operators",
        "generate: amr 2026-11-01 operators.csv 9 rows",
        "generate: amr 2026-11-01 licenses.csv 9 rows",
        "generate: amr 2026-11-02 operators.csv 1 rows",
        "generate: done: 4 files, 28 rows in 0.1 s",
    ):
        progress(message)
    assert out.getvalue().splitlines() == ["[#####.....] 1/2 dates generated", "[##########] 2/2 dates generated"]
    assert capsys.readouterr().err.count("generate: ") == 5  # every message, to stderr (the log file)


def test_the_log_file_takes_everything_but_the_console_lines(tmp_path):
    """In a process of its own: print(), sys.stderr, the raw descriptors, a child process and a
    logging handler made before all go to the log file; the console gets the Console's lines only,
    and the streams are back afterwards."""
    log = tmp_path / "logs" / "console" / "ecredit-run.log"
    code = textwrap.dedent(f"""
        import logging, os, subprocess, sys
        from ecredit.airflow import runner

        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
        print("before", flush=True)
        with runner.output_to_log_file({str(log)!r}) as console:
            print("print inside")
            print("stderr inside", file=sys.stderr)
            os.write(1, b"fd1 inside\\n")
            os.write(2, b"fd2 inside\\n")
            subprocess.run(["sh", "-c", "echo child out; echo child err >&2"], check=True)
            logging.getLogger("airflow.task").info("a log record inside")
            console.line("  a_task  success  1.0 s")
        print("after")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
        env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["before", "  a_task  success  1.0 s", "after"]
    assert proc.stderr == ""
    logged = log.read_text("utf-8").splitlines()
    for line in (
        "print inside",
        "stderr inside",
        "fd1 inside",
        "fd2 inside",
        "child out",
        "child err",
        "INFO:airflow.task:a log record inside",
    ):
        assert line in logged, (line, logged)
    assert "before" not in logged and "after" not in logged


def test_the_log_file_is_beside_the_task_logs(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", raising=False)
    at = dt.datetime(2026, 12, 6, 6, 30, 1, 123456, tzinfo=dt.UTC)
    assert runner.log_file_path("run", at) == tmp_path / "logs" / "console" / "ecredit-run-20261206T063001123456Z.log"
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path / "elsewhere"))
    assert runner.log_file_path("demo", at).parent == tmp_path / "elsewhere" / "console"
