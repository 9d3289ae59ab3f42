"""`make test` runs the tests in two processes (pytest-xdist) by groups (tests/conftest.py): every
test of a module in which a test uses one of the session's end-to-end cities, whichever way it asks
for it, belongs to the one group of the cities, so that each city's DAG runs are made by one
process only; any other test belongs to its module's group, so that a module's fixtures are built
once."""

from __future__ import annotations

from types import SimpleNamespace

from tests.conftest import CITIES_GROUP, ROOT, uses_a_city, xdist_groups


def item(module: str, name: str, fixtures=(), params=None):
    it = SimpleNamespace(fspath=ROOT / module, fixturenames=list(fixtures), nodeid=f"{module}::{name}")
    if params is not None:
        it.callspec = SimpleNamespace(params=params)
    return it


def test_a_test_uses_a_city_by_its_fixtures_or_by_a_parameter_naming_it():
    assert uses_a_city(item("m.py", "a", ["e2e", "tmp_path"]))
    assert uses_a_city(item("m.py", "b", ["late", "dirty_e2e"]))  # through a fixture built on it
    assert uses_a_city(item("m.py", "c", ["request", "city"], {"city": "dirty_e2e"}))  # getfixturevalue
    assert not uses_a_city(item("m.py", "d", ["spark"], {"case": "e2e-like"}))


def test_every_test_of_a_module_on_a_city_is_in_the_cities_group_the_others_in_their_module():
    pg = "tests/integration/test_warehouse_postgres.py"
    items = [
        item(pg, "uses_both", ["published", "e2e", "published_dirty", "dirty_e2e"]),
        item(pg, "by_parameter", ["request", "city"], {"city": "dirty"}),  # not a city's name: its module
        item(pg, "migrations", ["pg"]),
        item("tests/integration/test_late_delivery.py", "late", ["late", "dirty_e2e"]),
        item("tests/unit/test_scoring.py", "score", ["spark"]),
        item("tests/fast/test_ids.py", "uscc"),
    ]
    groups = xdist_groups(items)
    assert groups == {
        f"{pg}::uses_both": CITIES_GROUP,
        f"{pg}::by_parameter": CITIES_GROUP,
        f"{pg}::migrations": CITIES_GROUP,
        "tests/integration/test_late_delivery.py::late": CITIES_GROUP,
        "tests/unit/test_scoring.py::score": "tests/unit/test_scoring.py",
        "tests/fast/test_ids.py::uscc": "tests/fast/test_ids.py",
    }


def test_test_modules_have_distinct_names():
    """The test folders are not packages: pytest imports a test module by its file name (rootdir
    importing), so two modules of one name in two tiers fail collection ("import file mismatch")."""
    from collections import Counter

    names = Counter(p.name for p in (ROOT / "tests").rglob("test_*.py"))
    assert not [n for n, k in names.items() if k > 1]
