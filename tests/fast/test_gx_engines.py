"""Which files of a run GX validates on pandas (``expectations.local_files``): the smallest, each
up to a size, up to a budget of rows in all."""

from ecredit.quality.expectations import local_files


def f(name, rows):
    return {"name": name, "rows": rows}


def test_the_smallest_files_up_to_the_budget():
    files = [f("a", 50), f("b", 10), f("c", 30), f("d", 1_000)]
    assert [x["name"] for x in local_files(files, 40, 10**6)] == ["b", "c"]
    assert [x["name"] for x in local_files(files, 89, 10**6)] == ["b", "c"]
    assert [x["name"] for x in local_files(files, 90, 10**6)] == ["b", "c", "a"]
    assert [x["name"] for x in local_files(files, 10**6, 10**6)] == ["b", "c", "a", "d"]


def test_a_file_over_the_budget_alone_goes_to_spark():
    assert local_files([f("big", 101)], 100, 10**6) == []
    assert local_files([], 100, 10**6) == []
    assert [x["name"] for x in local_files([f("empty", 0), f("big", 101)], 100, 10**6)] == ["empty"]


def test_a_file_over_the_file_limit_goes_to_spark_with_every_bigger_one():
    files = [f("a", 50), f("b", 10), f("c", 30), f("d", 1_000)]
    assert [x["name"] for x in local_files(files, 10**6, 30)] == ["b", "c"]
    assert [x["name"] for x in local_files(files, 10**6, 999)] == ["b", "c", "a"]
    assert [x["name"] for x in local_files(files, 10**6, 1_000)] == ["b", "c", "a", "d"]


def test_the_defaults():
    from ecredit.quality import expectations as ex

    files = [f("a", ex.LOCAL_FILE_MAX_ROWS), f("b", ex.LOCAL_FILE_MAX_ROWS + 1)]
    assert [x["name"] for x in local_files(files)] == ["a"]
    many = [f(str(i), 20_000) for i in range(10)]
    assert len(local_files(many)) == ex.LOCAL_MAX_ROWS // 20_000
