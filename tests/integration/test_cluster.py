"""The same DAG on a real Spark cluster: a standalone master and two workers on localhost (the
installed pyspark's `spark-class`), `ecredit run` with SPARK_MASTER=spark://127.0.0.1:<port>, and
the published tables equal the `local[*]` run of the end-to-end fixture for that date."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, select

from ecredit.warehouse import schema as wh
from tests.integration.conftest import DATES, full_output, run_cli

pytestmark = pytest.mark.cluster
RUN_TABLES = (
    "operator_score",
    "supervision_measure",
    "serious_dishonest_list",
    "dishonest_list_change",
    "risk_alert",
    "inspector",
    "feed_status",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    work = tmp_path_factory.mktemp("cluster")
    port, ui = free_port(), free_port()
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(work / "logs"),
        "SPARK_WORKER_DIR": str(work / "work"),
    }
    logs = []

    def start(name, *args):
        log = open(work / f"{name}.log", "w")
        logs.append(log)
        return subprocess.Popen(
            [str(spark_class()), *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    master = start(
        "master",
        "org.apache.spark.deploy.master.Master",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--webui-port",
        str(ui),
    )
    procs = [master]
    url = f"spark://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while "Starting Spark master" not in (work / "master.log").read_text() or not _listening(port):
            assert time.time() < deadline and master.poll() is None, (work / "master.log").read_text()[-2000:]
            time.sleep(1)
        for i in range(2):
            procs.append(
                start(
                    f"worker{i}",
                    "org.apache.spark.deploy.worker.Worker",
                    url,
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    "1",
                    "--memory",
                    "1g",
                    "--webui-port",
                    str(free_port()),
                    "--work-dir",
                    str(work / f"worker{i}"),
                )
            )
        deadline = time.time() + 90
        while _alive_workers(ui) < 2:
            assert time.time() < deadline, [(work / f"worker{i}.log").read_text()[-1500:] for i in range(2)]
            time.sleep(1)
        yield {"url": url, "ui": ui, "work": work}
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        for log in logs:
            log.close()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive_workers(ui_port: int) -> int:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as r:
            return sum(1 for w in json.loads(r.read())["workers"] if w["state"] == "ALIVE")
    except OSError:
        return 0


def _gold(root: Path, date: str, table: str) -> list[str]:
    rows = pq.ParquetDataset(str(root / "lake" / "gold" / date / table)).read().to_pylist()
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


def _published(url: str, table: str, date: str) -> list[str]:
    t = wh.metadata.tables[table]
    with create_engine(url).connect() as c:
        rows = [dict(r._mapping) for r in c.execute(select(t).where(t.c.run_date == date))]
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


def test_a_date_on_the_cluster_equals_the_local_run(e2e, cluster, tmp_path):
    d = DATES[0]
    root = tmp_path / "data"
    shutil.copytree(
        e2e["root"] / "landing",
        root / "landing",
        ignore=lambda folder, names: [n for n in names if n[:4] == "2026" and n != d],
    )
    env = {
        **e2e["env"],
        "CREDIT_DATA_DIR": str(root),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "SPARK_MASTER": cluster["url"],
    }
    proc = run_cli(["run", "--date", d], env, timeout=900)
    assert proc.returncode == 0, full_output(proc)[-6000:]
    assert f"--master {cluster['url']}" in full_output(proc)  # the Spark jobs went to the cluster (the log file)
    apps = json.loads(
        __import__("urllib.request").request.urlopen(f"http://127.0.0.1:{cluster['ui']}/json/", timeout=5).read()
    )["completedapps"]
    # one application for the date (decision 98): ingest and the state build in one JVM
    assert [a["name"] for a in apps] == ["ecredit-ingest-and-build"]
    for table in ("dim_operator", "fact_credit_record", *RUN_TABLES[:-1]):
        assert _gold(root, d, table) == _gold(e2e["root"], d, table), table
    here = f"sqlite:///{root / 'warehouse.db'}"
    for table in RUN_TABLES:
        assert _published(here, table, d) == _published(e2e["warehouse"], table, d), table
