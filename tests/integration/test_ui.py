"""`ecredit ui` starts Airflow with the project's DAG: the API answers, the DAG is parsed without
import errors, a run triggered through the REST API goes green and shows in the grid and graph views
of headless Chromium (screenshots in test-artifacts/), and Ctrl-C stops every process it started."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DAG_ID = "ecommerce_credit_daily"
RUN_DATE = "2026-11-01"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, token=None, data=None, method=None):
    req = urllib.request.Request(
        url,
        data=json.dumps(data).encode() if data is not None else None,
        method=method,
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, json.loads(r.read() or b"{}")


def wait_for(fn, timeout, what):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            out = fn()
            if out:
                return out
        except (urllib.error.URLError, ConnectionError, OSError, KeyError) as e:
            last = e
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what} ({last})")


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    from ecredit.generate import generate

    root = tmp_path_factory.mktemp("ui")
    generate(root / "landing", 40, [dt.date.fromisoformat(RUN_DATE)], seed=7, dirty_rate=0.02, progress=lambda m: None)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREDIT_", "AIRFLOW"))}
    env.update(
        CREDIT_DATA_DIR=str(root),
        CREDIT_PII_KEY="ui-test-key",
        AIRFLOW_HOME=str(root / "airflow"),
        SPARK_LOCAL_IP="127.0.0.1",
        # no scheduled run of yesterday when the test unpauses the DAG: only the triggered one
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
    )
    log = open(root / "ui.log", "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "ecredit"), "ui", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    state = {"proc": proc, "base": base, "root": root, "port": port}
    try:
        wait_for(lambda: call(f"{base}/api/v2/monitor/health")[0] == 200, 240, "the API server")
        pw_file = root / "airflow" / "simple_auth_manager_passwords.json.generated"
        state["password"] = wait_for(lambda: json.loads(pw_file.read_text())["admin"], 60, "the admin password")
        state["token"] = call(f"{base}/auth/token", data={"username": "admin", "password": state["password"]})[1][
            "access_token"
        ]
        yield state
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_the_api_serves_the_dag_without_import_errors(ui):
    base, token = ui["base"], ui["token"]
    status, dag = wait_for(lambda: call(f"{base}/api/v2/dags/{DAG_ID}", token), 180, "the DAG")
    assert status == 200 and dag["dag_id"] == DAG_ID
    assert call(f"{base}/api/v2/importErrors", token)[1]["total_entries"] == 0
    assert "ecredit" in [t["name"] for t in dag.get("tags") or []]


@pytest.fixture(scope="module")
def green_run(ui):
    """A run for RUN_DATE triggered through the REST API, waited for until it ends."""
    base, token = ui["base"], ui["token"]
    wait_for(lambda: call(f"{base}/api/v2/dags/{DAG_ID}", token), 180, "the DAG")
    call(f"{base}/api/v2/dags/{DAG_ID}", token, data={"is_paused": False}, method="PATCH")
    _, run = call(
        f"{base}/api/v2/dags/{DAG_ID}/dagRuns",
        token,
        data={"logical_date": None, "conf": {"run_date": RUN_DATE}},
        method="POST",
    )
    run_id = run["dag_run_id"]
    final = wait_for(
        lambda: (lambda r: r if r["state"] in ("success", "failed") else None)(
            call(f"{base}/api/v2/dags/{DAG_ID}/dagRuns/{urllib.request.quote(run_id)}", token)[1]
        ),
        600,
        "the run to end",
    )
    return {"run_id": run_id, "state": final["state"]}


def test_a_run_triggered_through_the_api_goes_green(ui, green_run):
    assert green_run["state"] == "success", (ui["root"] / "ui.log").read_text()[-4000:]
    _, tis = call(
        f"{ui['base']}/api/v2/dags/{DAG_ID}/dagRuns/{urllib.request.quote(green_run['run_id'])}"
        f"/taskInstances?limit=100",
        ui["token"],
    )
    states = {(t["task_id"], t.get("rendered_map_index")): t["state"] for t in tis["task_instances"]}
    assert states[("publish", None)] == "success" and states[("validate", "amr")] == "success"
    assert (ui["root"] / "lake" / "data_docs" / RUN_DATE / "index.html").is_file()


@pytest.mark.browser
def test_grid_and_graph_views_show_the_departments_and_the_green_run(ui, green_run):
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("no chromium / chromedriver (.ci/run installs Debian's chromium and chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    assert green_run["state"] == "success"
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=2200,1300"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        base = ui["base"]
        driver.get(f"{base}/")
        # the simple auth manager's login form
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.NAME, "username"))
        driver.find_element(By.NAME, "username").send_keys("admin")
        driver.find_element(By.NAME, "password").send_keys(ui["password"])
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(driver, 60).until(lambda d: "/auth/login" not in d.current_url)

        groups = ("amr", "ndrc", "cac", "psb", "commerce", "finance", "gds", "post", "customs")
        # the run's page: the grid (its run bar) beside the task instances, by department group
        driver.get(f"{base}/dags/{DAG_ID}/runs/{urllib.request.quote(green_run['run_id'])}")
        WebDriverWait(driver, 90).until(
            lambda d: all(f"{g}.check_delivery" in d.page_source for g in groups) and "publish" in d.page_source
        )
        WebDriverWait(driver, 30).until(lambda d: "Success" in d.find_element(By.TAG_NAME, "body").text)
        body = driver.find_element(By.TAG_NAME, "body").text
        assert green_run["run_id"] in body and "Failed" not in body
        # a wide grid / graph panel (react-resizable-panels keeps its layout in localStorage)
        driver.execute_script(
            "localStorage.setItem('react-resizable-panels:grid-ltr', JSON.stringify("
            "{'details-panel,main-panel': {'expandToSizes': {}, 'layout': [60, 40]}}))"
        )
        driver.refresh()
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[aria-label^='Show Grid']"))
        driver.find_element(By.CSS_SELECTOR, "[aria-label^='Show Grid']").click()
        time.sleep(3)
        driver.save_screenshot(str(ARTIFACTS / "airflow_grid.png"))
        # the graph view: one node per task group and top-level task
        driver.find_element(By.CSS_SELECTOR, "[aria-label^='Show Graph']").click()
        WebDriverWait(driver, 90).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".react-flow__node")) >= 9)
        nodes = " ".join(n.text for n in driver.find_elements(By.CSS_SELECTOR, ".react-flow__node"))
        assert all(g in nodes for g in groups) and "publish" in nodes, nodes
        driver.save_screenshot(str(ARTIFACTS / "airflow_graph.png"))
    finally:
        driver.quit()
    assert (ARTIFACTS / "airflow_grid.png").stat().st_size > 10000
    assert (ARTIFACTS / "airflow_graph.png").stat().st_size > 10000


def test_ctrl_c_stops_every_process(ui):
    proc, base = ui["proc"], ui["base"]
    os.kill(proc.pid, signal.SIGINT)  # Ctrl-C: ecredit ui stops Airflow's whole process group
    proc.wait(timeout=60)
    time.sleep(2)
    with pytest.raises(urllib.error.URLError):
        call(f"{base}/api/v2/monitor/health")
    out = (ui["root"] / "ui.log").read_text()
    assert f"127.0.0.1:{ui['port']}" in out and "password" in out
