"""In CI (``CI=true``) no test may skip (``operations.md``): a skip becomes a failure.

Elsewhere a test that needs a service the machine lacks (PostgreSQL, chromium, docker, ...) skips
with a sentence saying what to install. In CI, ``.ci/run`` provides every service, so such a skip
means the service is missing there, and a green run that tested nothing would hide it. One place
does it for every test: these hooks turn a skipped test (``pytest.skip``, a ``skip``/``skipif``
mark, a skipping fixture) and a skipped module (``pytest.importorskip`` at import) into a failure
that keeps the skip's reason. An expected failure (``xfail``) is left alone.

``tests/conftest.py`` imports the hooks; a test runs a pytest with ``-p tests.ci_strict``.
"""

from __future__ import annotations

import os

import pytest

TRUE = ("true", "1", "yes")


def in_ci(env=None) -> bool:
    """``CI`` is set to true (GitHub Actions, GitLab CI and most others set ``CI=true``)."""
    return (os.environ if env is None else env).get("CI", "").strip().lower() in TRUE


def _reason(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (file, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _failed(rep) -> None:
    rep.longrepr = f"CI=true: no test may skip (operations.md), and this one would have: {_reason(rep.longrepr)}"
    rep.outcome = "failed"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and not hasattr(rep, "wasxfail") and in_ci():
        _failed(rep)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and in_ci():
        _failed(rep)
