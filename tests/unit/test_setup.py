"""Issue 14 item 9, set-up: the Makefile takes any Python >= 3.11 by name; the demo draw secret warns
like the demo PII key; in CI (``CI=true``) a test that would skip fails instead (tests/ci_strict.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from ecredit.core import settings

ROOT = Path(__file__).resolve().parents[2]


# ---- make: the interpreter of the venv


def fake_python(folder: Path, name: str, version: tuple[int, int] | None) -> None:
    """An executable ``name`` that runs as Python ``version`` (the real interpreter behind it) for
    the Makefile's version check; None: one that cannot run at all (a pyenv shim without it)."""
    p = folder / name
    if version is None:
        p.write_text("#!/bin/sh\necho 'pyenv: version not installed' >&2\nexit 127\n")
    else:
        # the check is `<python> -c 'import sys; sys.exit(sys.version_info < (3, 11))'`
        p.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'import sys; sys.exit({tuple(version)!r} < (3, 11))'\n")
    p.chmod(0o755)


def make_python(tmp_path: Path, pythons: dict, **variables) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, version in pythons.items():
        fake_python(bin_dir, name, version)
    (bin_dir / "echo").symlink_to(shutil.which("echo"))  # make runs `echo x` itself, without a shell
    make = shutil.which("make")
    args = [make, "-s", "-f", str(ROOT / "Makefile"), "python", *(f"{k}={v}" for k, v in variables.items())]
    return subprocess.run(
        args,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine (apt-get install make)")
@pytest.mark.parametrize(
    "pythons, chosen",
    [
        ({"python3.11": (3, 11), "python3": (3, 12)}, "python3.11"),
        ({"python3.12": (3, 12)}, "python3.12"),  # no python3.11 at all
        ({"python3.11": None, "python3.13": (3, 13)}, "python3.13"),  # a shim that cannot run 3.11
        ({"python3": (3, 11)}, "python3"),
        ({"python3.11": (3, 10), "python3": (3, 14)}, "python3"),  # a python3.11 that is no 3.11
    ],
)
def test_make_takes_the_first_python_of_at_least_3_11(tmp_path, pythons, chosen):
    r = make_python(tmp_path, pythons)
    assert r.returncode == 0 and r.stdout.strip() == chosen, (r.stdout, r.stderr)


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine (apt-get install make)")
def test_make_without_a_python_of_at_least_3_11_says_so(tmp_path):
    r = make_python(tmp_path, {"python3": (3, 10), "python3.11": None})
    assert r.returncode != 0
    assert "Python 3.11 or newer is needed: none of python3.11 python3.12 python3.13 python3 on PATH is" in r.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine (apt-get install make)")
@pytest.mark.parametrize("given, version, ok", [("oldpython", (3, 9), False), ("newpython", (3, 12), True)])
def test_make_takes_a_given_python_only_if_it_is_at_least_3_11(tmp_path, given, version, ok):
    r = make_python(tmp_path, {"python3.11": (3, 11), given: version}, PYTHON=given)
    if ok:
        assert r.returncode == 0 and r.stdout.strip() == given, (r.stdout, r.stderr)
    else:
        assert r.returncode != 0 and f"{given} does not run as Python 3.11 or newer" in r.stdout


# ---- the demo secrets warn


@pytest.mark.parametrize(
    "name, other", [("CREDIT_DRAW_SECRET", "CREDIT_PII_KEY"), ("CREDIT_PII_KEY", "CREDIT_DRAW_SECRET")]
)
def test_a_demo_secret_warns_naming_itself(name, other):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        s = settings.load({other: "x" * 32})
    said = [str(w.message) for w in got if issubclass(w.category, UserWarning)]
    assert len(said) == 1 and said[0].startswith(f"{name} is not set: using the DEMO"), said
    assert s.uses_demo_draw_secret is (name == "CREDIT_DRAW_SECRET")
    assert settings.DEMO_DRAW_SECRET not in said[0] and settings.DEMO_PII_KEY not in said[0]


def test_no_warning_with_both_secrets_set():
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        s = settings.load({"CREDIT_DRAW_SECRET": "d" * 32, "CREDIT_PII_KEY": "k" * 32})
    assert [str(w.message) for w in got if issubclass(w.category, UserWarning)] == []
    assert not s.uses_demo_draw_secret and not s.uses_demo_pii_key


# ---- CI=true: no test may skip

SKIPPING = """
import pytest



@pytest.fixture
def database():
    pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")


def test_skips_in_its_body():
    pytest.skip("no chromium on this machine")


def test_skips_in_a_fixture(database):
    pass


@pytest.mark.skipif(True, reason="no docker")
def test_skipped_by_a_mark():
    pass


@pytest.mark.xfail(reason="a known bug", strict=True)
def test_expected_to_fail():
    assert False


def test_passes():
    pass
"""

SKIPPED_MODULE = """
import pytest

pytest.importorskip("no_such_module_for_ecredit")


def test_never_collected():
    pass
"""


def run_pytest(tmp_path: Path, ci: str | None, name: str, text: str) -> tuple[int, str]:
    (tmp_path / name).write_text(textwrap.dedent(text))
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    unit: a unit test\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(ROOT)
    if ci is not None:
        env["CI"] = ci
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.ci_strict", "-p", "no:cacheprovider", "-q", "-rA", name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return r.returncode, r.stdout


def test_in_ci_a_skip_fails_with_its_reason(tmp_path):
    code, out = run_pytest(tmp_path, "true", "test_skipping.py", SKIPPING)
    last = out.strip().splitlines()[-1]
    assert code == 1 and "skipped" not in last, out
    # the body's skip fails the test; a fixture's and a mark's fail its set-up (errors); xfail stays
    assert "1 failed" in last and "1 passed" in last and "1 xfailed" in last and "2 errors" in last, last
    for reason in ("no chromium on this machine", "PostgreSQL on 127.0.0.1:5432 is not reachable", "no docker"):
        assert f"CI=true: no test may skip (operations.md), and this one would have: {reason}" in out, reason


def test_in_ci_a_skipped_module_fails(tmp_path):
    code, out = run_pytest(tmp_path, "true", "test_skipped_module.py", SKIPPED_MODULE)
    assert code != 0 and "1 error" in out.strip().splitlines()[-1], out
    assert (
        "CI=true: no test may skip (operations.md), and this one would have: "
        "could not import 'no_such_module_for_ecredit'"
    ) in out


@pytest.mark.parametrize("ci", [None, "false", ""])
def test_elsewhere_a_skip_stays_a_skip(tmp_path, ci):
    code, out = run_pytest(tmp_path, ci, "test_skipping.py", SKIPPING)
    last = out.strip().splitlines()[-1]
    assert code == 0 and "3 skipped" in last and "1 passed" in last and "1 xfailed" in last, out
    code, out = run_pytest(tmp_path, ci, "test_skipped_module.py", SKIPPED_MODULE)
    assert code in (0, 5) and "1 skipped" in out.strip().splitlines()[-1], out  # 5: no test ran
