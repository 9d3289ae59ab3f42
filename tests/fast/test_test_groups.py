"""`make test` runs the tests in two processes (pytest-xdist) by groups (tests/conftest.py): a test
on one of the session's end-to-end cities belongs to that city's group, whichever way it asks for
it, so that each city's DAG runs are made by one process only; any other test belongs to its
module's group, so that a module's fixtures are built once."""

from __future__ import annotations

from types import SimpleNamespace

from tests.conftest import ROOT, xdist_group


def item(module: str, fixtures=(), params=None):
    it = SimpleNamespace(fspath=ROOT / module, fixturenames=list(fixtures))
    if params is not None:
        it.callspec = SimpleNamespace(params=params)
    return it


def test_a_test_on_a_city_is_in_the_city_group():
    assert xdist_group(item("tests/integration/test_supervision.py", ["e2e", "tmp_path"])) == "e2e"
    # through a module fixture built on the city (its closure names the city)
    assert xdist_group(item("tests/integration/test_late_delivery.py", ["late", "dirty_e2e"])) == "dirty_e2e"


def test_a_city_asked_for_by_name_wins_over_the_fixtures_it_also_uses():
    # request.getfixturevalue(city): the parameter says which city the test builds
    both = ["request", "e2e", "city"]
    assert xdist_group(item("tests/integration/test_end_to_end.py", both, {"city": "dirty_e2e"})) == "dirty_e2e"
    assert xdist_group(item("tests/integration/test_end_to_end.py", both, {"city": "e2e"})) == "e2e"


def test_any_other_test_is_in_its_module_group():
    assert xdist_group(item("tests/unit/test_scoring.py", ["spark"], {"case": "x"})) == "tests/unit/test_scoring.py"
    assert xdist_group(item("tests/fast/test_ids.py")) == "tests/fast/test_ids.py"
