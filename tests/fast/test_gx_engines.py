"""Which files of a run GX validates on pandas (``expectations.local_files``): the smallest, up to a
budget of rows in all."""

from ecredit.quality.expectations import local_files


def f(name, rows):
    return {"name": name, "rows": rows}


def test_the_smallest_files_up_to_the_budget():
    files = [f("a", 50), f("b", 10), f("c", 30), f("d", 1_000)]
    assert [x["name"] for x in local_files(files, 40)] == ["b", "c"]
    assert [x["name"] for x in local_files(files, 89)] == ["b", "c"]
    assert [x["name"] for x in local_files(files, 90)] == ["b", "c", "a"]
    assert [x["name"] for x in local_files(files, 10**6)] == ["b", "c", "a", "d"]


def test_a_file_over_the_budget_alone_goes_to_spark():
    assert local_files([f("big", 101)], 100) == []
    assert local_files([], 100) == []
    assert [x["name"] for x in local_files([f("empty", 0), f("big", 101)], 100)] == ["empty"]
