"""docker/: the compose stack's files agree with the code, the lock file and each other.

No Docker engine runs here, so nothing is built or started: these tests read the files. They
interpolate ``docker/compose.yaml`` the way ``docker compose`` does (``${VAR}``, ``${VAR:-default}``,
``${VAR:?message}``, ``$$``) with the values of ``docker/.env.example``, and check:

- the files parse; every service has an image or a build; the expected services are there;
- every ``CREDIT_*`` / ``SPARK_MASTER`` variable the compose file sets is a name that
  ``ecredit.core.settings.load()`` reads (the names are taken from its source, not listed here), and the
  settings a production run needs are set, from docker/.env, for every service that runs pipeline
  code; ``settings.load()`` accepts the Airflow worker's environment as it is;
- ``SPARK_MASTER`` points at the compose spark-master service and port;
- the pins of the Dockerfile and requirements-docker.txt agree with requirements.lock, and the base
  image's Python is the project's major.minor;
- Airflow workers and Spark workers run the same image and see the data folders at the same paths;
- docker/.env.example defines every variable the compose file references, and ships no secret.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from ecredit.core import settings as settings_mod

ROOT = settings_mod.PROJECT_ROOT
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
DOCKERFILES = sorted(DOCKER.glob("*Dockerfile"))
REQ_DOCKER = DOCKER / "requirements-docker.txt"
LOCK = ROOT / "requirements.lock"

# The deployment's own requirement: without these a production run is refused (the two secrets) or
# does not use the stack's warehouse and cluster (the embedded SQLite file, local[*]).
PRODUCTION_REQUIRED = ("CREDIT_PII_KEY", "CREDIT_DRAW_SECRET", "CREDIT_WAREHOUSE_URL", "SPARK_MASTER")
SECRETS = ("CREDIT_PII_KEY", "CREDIT_DRAW_SECRET")
DATA_DIRS = ("CREDIT_LANDING_DIR", "CREDIT_LAKE_DIR", "CREDIT_OUTBOX_DIR")
EXPECTED_SERVICES = {
    "postgres",
    "redis",
    "warehouse-migrate",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "spark-master",
    "spark-worker",
}
# Long-running Airflow components: each may run pipeline code (tasks, callbacks, DAG parsing).
AIRFLOW_COMPONENT = re.compile(r"^airflow (api-server|scheduler|dag-processor|triggerer|celery worker)\b")


# --------------------------------------------------------------------------------------------------
# Reading the files


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines) -> dict[str, str]:
    """``name==version`` lines (comments and blanks skipped) as {normalised name: version}."""
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;]+)", line)
        assert m, f"not pinned with ==: {line!r}"
        out[_norm(m.group(1))] = m.group(3)
    return out


def read_env_file(path: Path) -> dict[str, str]:
    """A compose ``.env`` file: KEY=VALUE lines; comments and blank lines skipped."""
    env = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", s)
        assert m, f"{path.name}:{n}: not KEY=VALUE: {line!r}"
        assert m.group(1) not in env, f"{path.name}:{n}: {m.group(1)} defined twice"
        env[m.group(1)] = m.group(2)
    return env


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation of one string."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        value = env.get(name)
        if op in (":-", "-"):
            if value is None or (op == ":-" and value == ""):
                return interpolate(arg, env)
            return value
        if op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                raise MissingVariable(f"{name}: {arg}")
            return value
        return value or ""

    return _VAR.sub(sub, text)


def referenced_variables(text: str) -> set[str]:
    return {m.group(1) or m.group(4) for m in _VAR.finditer(text) if m.group(0) != "$$"}


def compose_raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def compose_strings(node=...) -> list[str]:
    """Every string value of the compose file (not its comments), where compose interpolates."""
    node = compose_raw() if node is ... else node
    if isinstance(node, dict):
        return [s for v in node.values() for s in compose_strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in compose_strings(v)]
    return [node] if isinstance(node, str) else []


def compose_interpolated(env: dict[str, str]) -> dict:
    def walk(node):
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return interpolate(node, env)
        return node

    return walk(compose_raw())


def example_env_with_secrets() -> dict[str, str]:
    """docker/.env.example with every empty value filled in, as an administrator would."""
    return {
        k: (v or f"test-{k.lower().replace('_', '-')}-0123456789abcdef") for k, v in read_env_file(ENV_EXAMPLE).items()
    }


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command(service: dict) -> str:
    cmd = service.get("command") or ""
    return " ".join(cmd) if isinstance(cmd, list) else cmd


def mounts(service: dict) -> dict[str, str]:
    """{container path: source} of a service's volumes (short syntax)."""
    out = {}
    for v in service.get("volumes") or []:
        parts = v.split(":")
        out[parts[1]] = parts[0]
    return out


def settings_names_read() -> set[str]:
    """The environment variables ``settings.load()`` reads, from its source: ``env.get("X")``,
    ``env["X"]`` and helpers called with ``env`` and a name (``_path(env, "X", ...)``)."""
    tree = ast.parse(Path(settings_mod.__file__).read_text(encoding="utf-8"))
    load = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "load")
    names = set()
    for node in ast.walk(load):
        if isinstance(node, ast.Call):
            f = node.func
            if (
                isinstance(f, ast.Attribute)
                and f.attr == "get"
                and isinstance(f.value, ast.Name)
                and f.value.id == "env"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(node.args[0].value)
            elif any(isinstance(a, ast.Name) and a.id == "env" for a in node.args):
                names.update(
                    a.value
                    for a in node.args
                    if isinstance(a, ast.Constant)
                    and isinstance(a.value, str)
                    and re.fullmatch(r"[A-Z][A-Z0-9_]+", a.value)
                )
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == "env"
            and isinstance(node.slice, ast.Constant)
        ):
            names.add(node.slice.value)
    return names


def is_setting_name(name: str) -> bool:
    return name.startswith("CREDIT_") or name == "SPARK_MASTER"


@pytest.fixture(scope="module")
def stack() -> dict:
    return compose_interpolated(example_env_with_secrets())


@pytest.fixture(scope="module")
def services(stack) -> dict:
    return stack["services"]


@pytest.fixture(scope="module")
def pipeline_services(services) -> dict:
    found = {name: s for name, s in services.items() if AIRFLOW_COMPONENT.match(command(s))}
    assert {"airflow-worker", "airflow-scheduler", "airflow-dag-processor"} <= set(found), sorted(found)
    return found


def image_home() -> str:
    """Where the Dockerfile puts the project (ENV ECREDIT_HOME)."""
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    m = re.search(r"\bECREDIT_HOME=(\S+)", text)
    assert m, "docker/Dockerfile sets no ECREDIT_HOME"
    return m.group(1)


# --------------------------------------------------------------------------------------------------
# The files parse; every service can start


def test_compose_parses_with_every_expected_service(services):
    assert EXPECTED_SERVICES <= set(services), sorted(EXPECTED_SERVICES - set(services))
    for name, s in services.items():
        assert s.get("image") or s.get("build"), f"service {name} has neither image nor build"


def test_every_image_is_pinned_to_a_version():
    raw = compose_raw()["services"]
    images = {name: s["image"] for name, s in raw.items() if "image" in s}
    assert images
    for name, image in images.items():
        if raw[name].get("build"):
            continue  # built here from docker/Dockerfile
        repo, _, tag = image.rpartition(":")
        assert repo and re.match(r"\d+\.\d+", tag), f"{name}: image {image!r} is not pinned to a version"
    assert compose_raw()["services"]["postgres"]["image"].split(":")[1].startswith("15.")


def test_build_context_is_the_repository_and_the_dockerfiles_exist(services):
    built = {name: s["build"] for name, s in services.items() if s.get("build")}
    assert built
    for name, b in built.items():
        context = (COMPOSE.parent / b["context"]).resolve()
        assert context == ROOT, f"{name}: build context {context}"
        assert (context / b["dockerfile"]).is_file(), f"{name}: no {b['dockerfile']}"
    # the secrets file stays out of the image
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert "docker/.env" in ignore and ".venv" in ignore and ".git" in ignore


def test_scripts_the_stack_runs_are_in_the_tree_and_executable(services):
    home = image_home()
    scripts = set()
    for s in services.values():
        for word in shlex.split(command(s)):
            if word.startswith(home + "/"):
                scripts.add(word)
    assert scripts
    for path in scripts:
        local = ROOT / path[len(home) + 1 :]
        assert local.is_file(), path
        if local.suffix != ".py":
            assert local.stat().st_mode & 0o111, f"{local} is not executable"
    entry = DOCKER / "entrypoint.sh"
    assert entry.stat().st_mode & 0o111
    assert f'ENTRYPOINT ["{home}/docker/entrypoint.sh"]' in (DOCKER / "Dockerfile").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# The settings: names the code reads, values a production run accepts


def test_every_setting_set_in_compose_is_a_name_the_code_reads(services):
    read = settings_names_read()
    # the parse found what load() reads: at least everything it hands to spark-submit
    assert set(settings_mod.load({}).as_env()) <= read, sorted(set(settings_mod.load({}).as_env()) - read)
    set_in_compose = {(name, var) for name, s in services.items() for var in environment(s) if is_setting_name(var)}
    assert set_in_compose
    unknown = sorted(f"{name}: {var}" for name, var in set_in_compose if var not in read)
    assert not unknown, f"set in compose but never read by ecredit/core/settings.py: {unknown}"
    # and docker/.env names no CREDIT_* variable the code does not read either
    stray = sorted(v for v in read_env_file(ENV_EXAMPLE) if is_setting_name(v) and v not in read)
    assert not stray, stray


def test_production_settings_are_set_for_every_service_that_runs_pipeline_code(pipeline_services):
    for name, s in pipeline_services.items():
        env = environment(s)
        missing = [v for v in PRODUCTION_REQUIRED if not env.get(v)]
        assert not missing, f"{name} lacks {missing}"
        assert env.get("CREDIT_ENV") == "production", name
        assert urlsplit(env["CREDIT_WAREHOUSE_URL"]).hostname == "postgres", name


def test_secrets_come_from_docker_env_and_a_missing_one_stops_compose():
    raw = compose_raw()
    text = "\n".join(compose_strings())
    for name in (*SECRETS, "ECREDIT_PIPELINE_PASSWORD", "POSTGRES_PASSWORD", "AIRFLOW_DB_PASSWORD"):
        assert re.search(r"\$\{" + name + r":\?[^}]+\}", text), f"{name} is not required with ${{{name}:?...}}"
    for name, s in raw["services"].items():
        env = environment(s)
        for secret in SECRETS:
            if secret in env:
                assert env[secret].startswith("${" + secret + ":?"), f"{name}: {secret} is not taken from docker/.env"
    # with docker/.env.example as it is (empty secrets), compose refuses to start
    with pytest.raises(MissingVariable):
        compose_interpolated(read_env_file(ENV_EXAMPLE))
    # each secret alone, missing, is enough
    for secret in SECRETS:
        env = example_env_with_secrets()
        del env[secret]
        with pytest.raises(MissingVariable, match=secret):
            compose_interpolated(env)


def test_settings_load_accepts_the_airflow_workers_environment(services, monkeypatch):
    """The worker's environment, with the image's project path mapped to this checkout, passes
    ``settings.load()`` under CREDIT_ENV=production: no demo secret, a valid URL, master, rules."""
    home = image_home()
    env = {
        k: (str(ROOT) + v[len(home) :] if v.startswith(home + "/") else v)
        for k, v in environment(services["airflow-worker"]).items()
    }
    monkeypatch.chdir(ROOT)
    cfg = settings_mod.load(env)
    assert cfg.env == "production"
    assert not cfg.uses_demo_pii_key
    assert cfg.spark_master.startswith("spark://")
    url = urlsplit(cfg.warehouse_url)
    assert url.scheme == "postgresql+psycopg" and url.username == "ecredit_pipeline" and url.path == "/ecredit"
    assert cfg.rules_path == settings_mod.DEFAULT_RULES
    for var in DATA_DIRS:
        assert Path(env[var]).is_absolute(), var


def test_the_pipeline_role_and_databases_exist_after_initialisation(services):
    """The logins the URLs use are the ones the init script and the migrations create."""
    worker = environment(services["airflow-worker"])
    warehouse = urlsplit(worker["CREDIT_WAREHOUSE_URL"])
    metadata = urlsplit(worker["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    admin = urlsplit(environment(services["warehouse-migrate"])["WAREHOUSE_ADMIN_URL"])
    assert admin.path == warehouse.path and admin.hostname == warehouse.hostname
    roles = (ROOT / "sql" / "migrations" / "0002_roles.postgresql.sql").read_text(encoding="utf-8")
    assert f"'{warehouse.username}'" in roles
    init = "\n".join(p.read_text(encoding="utf-8") for p in sorted((DOCKER / "postgres-init").iterdir()))
    assert f"CREATE ROLE {metadata.username} LOGIN" in init
    for db in (warehouse.path.strip("/"), metadata.path.strip("/")):
        assert re.search(rf"CREATE DATABASE {db}\b", init), db
    assert "./postgres-init:/docker-entrypoint-initdb.d:ro" in compose_raw()["services"]["postgres"]["volumes"]


# --------------------------------------------------------------------------------------------------
# Airflow's configuration


def test_airflow_configuration_is_consistent(pipeline_services, services):
    # Airflow's option list, read without importing Airflow (an import would configure it)
    airflow_pkg = Path(importlib.util.find_spec("airflow").submodule_search_locations[0])
    airflow_cfg = yaml.safe_load((airflow_pkg / "config_templates" / "config.yml").read_text(encoding="utf-8"))
    celery_keys = {"broker_url", "result_backend", "worker_concurrency"}  # the provider's section
    for name, s in pipeline_services.items():
        env = environment(s)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == image_home() + "/dags", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False", name
        assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).hostname in services, name
        assert urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]).hostname == "airflow-apiserver"
        for var in env:
            if var.startswith("AIRFLOW__"):
                section, key = (p.lower() for p in var[len("AIRFLOW__") :].split("__", 1))
                if section == "celery":
                    assert key in celery_keys, var
                else:
                    assert key in airflow_cfg.get(section, {}).get("options", {}), f"{name}: no option {var}"
    # every Airflow service shares one configuration (secrets included)
    envs = [{k: v for k, v in environment(s).items() if k.startswith("AIRFLOW__")} for s in pipeline_services.values()]
    assert all(e == envs[0] for e in envs)
    # the Celery executor's packages are installed by the image
    assert "apache-airflow-providers-celery" in _pins(REQ_DOCKER.read_text().splitlines())


# --------------------------------------------------------------------------------------------------
# Spark


def test_spark_master_url_points_at_the_compose_master(services, pipeline_services):
    master = services["spark-master"]
    args = shlex.split(command(master))
    assert "org.apache.spark.deploy.master.Master" in args
    host, port = args[args.index("--host") + 1], args[args.index("--port") + 1]
    assert host == "spark-master" == master.get("hostname")
    url = f"spark://{host}:{port}"
    for name, s in pipeline_services.items():
        assert environment(s)["SPARK_MASTER"] == url, name
    worker_args = shlex.split(command(services["spark-worker"]))
    assert "org.apache.spark.deploy.worker.Worker" in worker_args and url in worker_args
    assert services["spark-worker"].get("deploy", {}).get("replicas", 1) >= 2


def test_airflow_workers_and_spark_workers_run_the_same_image(services):
    """Same image: the same pyspark (driver and cluster versions must match), the same Python path
    (spark.pyspark.python) and the same project path (spark.executorEnv.PYTHONPATH)."""
    names = ("airflow-worker", "spark-master", "spark-worker")
    images = {services[n]["image"] for n in names}
    builds = {(services[n]["build"]["context"], services[n]["build"]["dockerfile"]) for n in names}
    assert len(images) == 1 and len(builds) == 1, (images, builds)


def test_data_folders_are_mounted_at_the_same_paths_in_airflow_and_spark_workers(services):
    env = environment(services["airflow-worker"])
    airflow_mounts, spark_mounts = mounts(services["airflow-worker"]), mounts(services["spark-worker"])
    assert airflow_mounts and spark_mounts
    for var in DATA_DIRS:
        path = env[var]
        assert path in airflow_mounts, f"{var}={path} is not mounted in airflow-worker"
        assert path in spark_mounts, f"{var}={path} is not mounted in spark-worker"
        assert airflow_mounts[path] == spark_mounts[path], var
    # named volumes are declared
    declared = set(compose_raw()["volumes"])
    for src in airflow_mounts.values():
        if not src.startswith((".", "/")):
            assert src in declared, src
    # executors get no pipeline secret: the jobs ship what they need with the tasks
    assert not set(SECRETS) & set(environment(services["spark-worker"]))


def test_the_spark_driver_is_reachable_from_the_cluster(services, monkeypatch):
    from ecredit import spark
    from ecredit.airflow import env as airflow_env

    for var, value in environment(services["airflow-worker"]).items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("SPARK_LOCAL_IP", "172.18.0.5")  # what docker/entrypoint.sh exports
    loopback = ("127.0.0.1", "localhost")
    assert airflow_env.spark_conf().get("spark.driver.host") not in loopback
    assert "spark.driver.host" not in spark.DEFAULT_CONF and spark.driver_host() == "172.18.0.5"


# --------------------------------------------------------------------------------------------------
# Versions


def test_pins_agree_with_the_lock_file():
    lock = _pins(LOCK.read_text(encoding="utf-8").splitlines())
    docker = _pins(REQ_DOCKER.read_text(encoding="utf-8").splitlines())
    assert lock and docker
    # requirements-docker.txt adds packages; one that the lock holds must be at the lock's version
    for name, version in docker.items():
        if name in lock:
            assert version == lock[name], f"requirements-docker.txt pins {name}=={version}, the lock {lock[name]}"
    # every pin written in a Dockerfile (pip ==, ARG X_VERSION) of a lock package matches the lock
    checked = 0
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text(encoding="utf-8")
        for name, version in re.findall(r"\b([A-Za-z][A-Za-z0-9._-]*)==([0-9][^\s\"'\\]*)", text):
            if _norm(name) in lock:
                assert version == lock[_norm(name)], f"{dockerfile.name}: {name}=={version}"
            checked += 1
        for name, version in re.findall(r"ARG\s+([A-Z0-9_]+)_VERSION=(\S+)", text):
            pkg = _norm(name)
            if pkg in lock:
                assert version == lock[pkg], f"{dockerfile.name}: {name}_VERSION={version}"
        # the image installs the lock itself, without re-resolving
        assert re.search(r"pip install --no-deps -r requirements\.lock -r docker/requirements-docker\.txt", text)
    assert DOCKERFILES
    # the Spark images of compose (if any is pulled rather than built) carry the lock's pyspark
    for name, s in compose_raw()["services"].items():
        image = s.get("image", "")
        if "spark" in image.split(":")[0] and not s.get("build"):
            assert image.split(":")[1].split("-")[0] == lock["pyspark"], f"{name}: {image}"


def test_the_base_image_python_is_the_projects():
    requires = re.search(r'requires-python\s*=\s*">=\s*(\d+\.\d+)"', (ROOT / "pyproject.toml").read_text())
    makefile = (ROOT / "Makefile").read_text()
    # make takes the first of these that runs as at least the minimum it checks
    make_python = re.search(r"^PYTHONS := python(\d+\.\d+) ", makefile, re.M)
    minimum = set(re.findall(r"sys\.version_info < \((\d+), (\d+)\)", makefile))
    assert requires and make_python and len(minimum) == 1
    assert requires.group(1) == make_python.group(1) == ".".join(minimum.pop())
    froms = [line.split()[1] for f in DOCKERFILES for line in f.read_text().splitlines() if line.startswith("FROM ")]
    pythons = [f for f in froms if f.startswith("python:")]
    assert pythons
    for image in pythons:
        tag = image.split(":", 1)[1]
        m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)-slim-bookworm", tag)
        assert m, f"{image}: pin the patch release and the Debian release"
        assert f"{m.group(1)}.{m.group(2)}" == requires.group(1), image


# --------------------------------------------------------------------------------------------------
# docker/.env.example


def test_env_example_defines_every_variable_and_ships_no_secret():
    text = "\n".join(compose_strings())
    referenced = referenced_variables(text)
    example = read_env_file(ENV_EXAMPLE)
    assert referenced and example
    assert not referenced - set(example), sorted(referenced - set(example))
    assert not set(example) - referenced, f"unused in compose: {sorted(set(example) - referenced)}"
    required = {m.group(1) for m in _VAR.finditer(text) if m.group(2) == ":?"}
    assert set(SECRETS) <= required
    shipped = sorted(v for v in required if example[v])
    assert not shipped, f"docker/.env.example ships values for required secrets: {shipped}"
    # with values filled in, every reference resolves (a $$ escape is for the container's shell)
    env = example_env_with_secrets()
    for s in compose_strings():
        assert "$" not in interpolate(s.replace("$$", ""), env), s
