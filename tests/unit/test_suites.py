import json

import pytest

pytestmark = pytest.mark.unit


def test_suite_files_are_up_to_date():
    from ecredit import expectations as ex
    from ecredit.feeds import FEEDS

    for f in FEEDS:
        assert json.loads(ex.suite_path(f).read_text("utf-8")) == ex.suite_dict(f), (
            f"{ex.suite_path(f)} is out of date: run `.venv/bin/python -m ecredit.expectations`")
        suite = ex.load_suite(f)  # every custom expectation type is registered and kept
        assert len(suite.expectations) == len(ex.suite_dict(f)["expectations"])
