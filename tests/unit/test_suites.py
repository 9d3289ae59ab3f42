import json


def test_suite_files_are_up_to_date():
    from ecredit.core.feeds import FEEDS
    from ecredit.quality import expectations as ex

    for f in FEEDS:
        assert json.loads(ex.suite_path(f).read_text("utf-8")) == ex.suite_dict(f), (
            f"{ex.suite_path(f)} is out of date: run `.venv/bin/python -m ecredit.quality.expectations`"
        )
        suite = ex.load_suite(f)  # every custom expectation type is registered and kept
        assert len(suite.expectations) == len(ex.suite_dict(f)["expectations"])


def _validate_one(spark, expectation_cls, column, values, **kwargs):
    """One custom expectation on a one-column Spark DataFrame, through GX's own validation."""
    import great_expectations as gx

    from ecredit.quality import expectations as ex

    df = spark.createDataFrame([(v,) for v in values], f"{column} string")
    ctx = ex.context()
    batch = (
        ctx.data_sources.add_spark(name="t", persist=False)
        .add_dataframe_asset("a")
        .add_batch_definition_whole_dataframe("b")
        .get_batch(batch_parameters={"dataframe": df})
    )
    suite = gx.ExpectationSuite(name="s", expectations=[expectation_cls(column=column, **kwargs)])
    res = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    r = res.results[0]
    assert ex.raised(r.exception_info) is None, r.exception_info
    return r.result["unexpected_count"], sorted(r.result["unexpected_list"])


def test_custom_uscc_expectation(spark):
    from ecredit.quality import expectations as ex

    # 91440300568520498A is valid (GB 32100 check character A); the same with a wrong check
    # character, a 17-character code and the letter I (not in the alphabet) are not; a null passes
    cls = ex.CUSTOM_EXPECTATIONS["expect_column_values_to_be_valid_uscc"]
    got = _validate_one(
        spark, cls, "uscc", ["91440300568520498A", "91440300568520498B", "9144030056852049", "9I440300568520498A", None]
    )
    assert got == (3, sorted(["91440300568520498B", "9144030056852049", "9I440300568520498A"]))


def test_custom_id_no_expectation(spark):
    from ecredit.quality import expectations as ex

    # 11010519491231002X is the GB 11643 example (check character X); a wrong check character, a
    # 30 February birth date, and a birth date after the as_of date fail
    cls = ex.CUSTOM_EXPECTATIONS["expect_column_values_to_be_valid_id_no"]
    good = "11010519491231002X"
    born_later = "110105202611160010"  # born 2026-11-16, after as_of; check character computed below
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(c) * w for c, w in zip(born_later[:17], weights)) % 11]
    born_later = born_later[:17] + check
    feb30 = "110105194902300011"
    feb30 = feb30[:17] + "10X98765432"[sum(int(c) * w for c, w in zip(feb30[:17], weights)) % 11]
    got = _validate_one(spark, cls, "id_no", [good, good[:17] + "1", feb30, born_later, None], as_of="2026-11-15")
    assert got == (3, sorted([good[:17] + "1", feb30, born_later]))
