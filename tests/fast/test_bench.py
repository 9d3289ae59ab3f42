"""make bench's DuckDB baseline on a hand-made Parquet input (no Spark), and the bench's JSON line.

Every expected number is worked out in the comments from scoring.md's text and the default rules
file, not by calling the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pytest.importorskip("duckdb")

from bench import baseline, run  # noqa: E402

D = dt.date(2026, 11, 15)


def days(n: int) -> dt.date:
    return D - dt.timedelta(days=n)


DEC = pa.decimal128(7, 3)
SCHEMAS = {
    "operators": pa.schema(
        [
            ("operator_key", pa.string()),
            ("registration_status", pa.string()),
            ("established_date", pa.date32()),
            ("natural_person", pa.bool_()),
            ("license_displayed", pa.string()),
            ("last_verified_date", pa.date32()),
        ]
    ),
    "records": pa.schema(
        [
            ("operator_key", pa.string()),
            ("record_type", pa.string()),
            ("polarity", pa.string()),
            ("severity", pa.int32()),
            ("active", pa.bool_()),
        ]
    ),
    "evaluations": pa.schema(
        [
            ("operator_key", pa.string()),
            ("eval_month", pa.date32()),
            ("overall_satisfaction", DEC),
            ("product_quality", DEC),
            ("brand_reputation", DEC),
            ("after_sales", DEC),
            ("review_count", pa.int64()),
            ("deleted_review_count", pa.int64()),
        ]
    ),
    "spot_checks": pa.schema([("operator_key", pa.string()), ("check_date", pa.date32()), ("result", pa.string())]),
    "complaints": pa.schema(
        [
            ("operator_key", pa.string()),
            ("registered_date", pa.date32()),
            ("handling_status", pa.string()),
            ("advance_compensation", pa.string()),
        ]
    ),
}
OLD = days(3000)
OCT = dt.date(2026, 10, 1)


def ev(key, v, n, deleted=0, month=OCT):
    d = Decimal(str(v))
    return (key, month, d, d, d, d, n, deleted)


ROWS = {
    "operators": [
        # key, status, established, natural person, 亮照亮证, verified
        ("OP_A", "存续", OLD, False, "是", days(10)),
        ("OP_B", "存续", OLD, False, "是", days(179)),
        ("OP_C", "在业", OLD, False, "否", days(200)),
        ("OP_N", "存续", days(100), False, "是", days(10)),
        ("OP_R", "吊销", OLD, False, "是", days(300)),
        ("NP-V", None, OLD, True, "是", days(10)),
        ("OP_X", "注销", OLD, False, "是", days(10)),  # not classified
    ],
    "records": [
        ("OP_B", "PEN_FALSE_AD", "negative", 2, True),
        ("OP_B", "PEN_OTHER", "negative", 1, True),
        ("OP_B", "PSB_FRAUD", "negative", 4, False),
        ("OP_B", "NDRC_REWARD", "positive", None, True),
        ("OP_C", "LIST_SERIOUS", "negative", 4, True),
        ("OP_R", "LIST_ABNORMAL", "negative", 2, True),
        ("OP_R", "PSB_FRAUD", "negative", 4, True),
        ("NP-V", "LIST_ABNORMAL", "negative", 2, True),
        ("NP-V", "NDRC_REWARD", "positive", None, True),
        ("OP_N", "PEN_OTHER", "negative", 1, False),  # inactive: OP_N has no active record
        ("ORPHAN", "LIST_SERIOUS", "negative", 4, True),  # not in the registry: no score row
    ],
    "evaluations": [
        ev("OP_A", 80, 5),
        ev("OP_A", 81, 1),
        ("OP_B", OCT, Decimal("90"), Decimal("80"), Decimal("70"), Decimal("60"), 100, 0),
        ev("OP_B", 50, 300, deleted=2),
        ev("OP_B", 10, 1000, month=dt.date(2025, 10, 1)),
        ev("OP_R", 100, 0, deleted=1),
        ev("NP-V", 90, 10),
    ],
    "spot_checks": [
        ("OP_A", days(30), "合格"),
        ("OP_A", days(400), "合格"),
        ("OP_B", days(10), "合格"),
        ("OP_B", days(20), "合格"),
        ("OP_B", days(30), "不合格"),
        ("OP_B", days(1095), "不合格"),  # 1095 days before D: outside (D - 1095, D]
        *[("OP_C", days(5 + i), "合格" if i == 0 else "不合格") for i in range(16)],
        ("OP_N", days(3), "合格"),
        ("NP-V", days(3), "合格"),
    ],
    "complaints": [
        ("OP_B", days(10), "办理中", None),
        ("OP_B", days(20), "已办结", None),
        ("OP_B", days(30), "已办结", "是"),
        ("OP_B", days(400), "办理中", None),
        *[("OP_R", days(i + 1), None, None) for i in range(11)],  # null status = 办理中
    ],
}

# Worked by hand (scoring.md §2-3, rules/default.yaml):
EXPECTED = {
    # identity 40 + 30 + 30 (verified within 180) = 100; evaluation: composites 80 (5 reviews) and
    # 81 (1): mean 481/6, x3 = 240.5 -> 241 (half-up; banker's rounding would give 240); quality: one
    # check in 1095 days, passed -> 200, no complaint; conduct 400; total 941 -> A.
    "OP_A": (100, 241, 200, 400, 941, "A", "", "A"),
    # identity 100 (179 days); evaluation (79.5 x 100 + 50 x 300) / 400 = 57.375, x3 = 172.125 -> 172,
    # one row deleting -> 152 (the 2025-10 row is outside the 12 months); quality: 2 of 3 passed ->
    # round(133.33) = 133, complaints 10 + 3 + 0 = 13 -> 120; conduct 400 - 60 - 20 + 50 = 370;
    # total 742 -> B.
    "OP_B": (100, 152, 120, 370, 742, "B", "", "B"),
    # identity 40 + 0 + 15 (200 days) = 55; no evaluation 180; quality 1 of 16: 200/16 = 12.5 -> 13;
    # conduct 400 - 400 = 0; total 248 -> D; R_SERIOUS -> D.
    "OP_C": (55, 180, 13, 0, 248, "D", "R_SERIOUS", "D"),
    # identity 100; 180; one passed check 200; 400; total 880 -> A; established 100 days ago, no
    # active record, no evaluation row: R_NEW, base class B -> B.
    "OP_N": (100, 180, 200, 400, 880, "A", "R_NEW", "B"),
    # identity 0 (吊销) + 30 + 15 (300 days) = 45; evaluation: counts sum to 0 -> 180, one row
    # deleting -> 160; quality 150 - min(110, 100) = 50; conduct 400 - 60 - 400 < 0 -> 0; total 255
    # -> D; R_ABNORMAL (C), R_REVOKED (D), R_SEV4 (C) -> D.
    "OP_R": (45, 160, 50, 0, 255, "D", "R_ABNORMAL,R_REVOKED,R_SEV4", "D"),
    # natural person, status null: 40 + 30 + 30 = 100; evaluation 90 x 3 = 270; quality 200;
    # conduct 400 - 60 + 50 = 390; total 960 -> A; R_ABNORMAL: no better than C -> C.
    "NP-V": (100, 270, 200, 390, 960, "A", "R_ABNORMAL", "C"),
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_inputs")
    paths = {}
    for name, rows in ROWS.items():
        schema = SCHEMAS[name]
        cols = list(zip(*rows))
        table = pa.table({f.name: pa.array(list(c), f.type) for f, c in zip(schema, cols)}, schema=schema)
        paths[name] = root / f"{name}.parquet"
        pq.write_table(table, paths[name])
    return paths


def test_baseline_classes_are_the_hand_computed_ones(inputs, default_rules):
    con = baseline.connect(threads=1)
    table, secs = baseline.run(con, default_rules, D, inputs)
    got = {r["operator_key"]: tuple(r[c] for c in baseline.RESULT_COLUMNS[1:]) for r in table.to_pylist()}
    assert got == EXPECTED
    assert secs >= 0


def test_baseline_compare_counts_disagreements(inputs, default_rules, tmp_path):
    con = baseline.connect(threads=1)
    table, _ = baseline.run(con, default_rules, D, inputs)
    # a "pipeline" operator_score equal to the hand-computed rows but OP_B classed C and OP_A missing
    rows = [dict(zip(baseline.RESULT_COLUMNS, (k, *v))) for k, v in EXPECTED.items() if k != "OP_A"]
    for r in rows:
        if r["operator_key"] == "OP_B":
            r["final_class"] = "C"
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "operator_score.parquet")
    cmp = baseline.compare(con, table, tmp_path / "operator_score.parquet")
    assert (cmp["only_in_pipeline"], cmp["only_in_baseline"], cmp["differ"]["final_class"]) == (0, 1, 1)
    assert cmp["class_disagreements"] == 2 and cmp["agrees"] is False
    assert cmp["differ"]["total_score"] == 0
    pq.write_table(
        pa.Table.from_pylist([dict(zip(baseline.RESULT_COLUMNS, (k, *v))) for k, v in EXPECTED.items()]),
        tmp_path / "same.parquet",
    )
    assert baseline.compare(con, table, tmp_path / "same.parquet")["agrees"] is True


def test_the_sql_takes_its_numbers_from_the_rules_file(inputs, default_rules):
    # a regulator moves the A threshold to 950: OP_A (941) becomes B, the SQL follows the file
    class Moved:
        version = default_rules.version

        def get(self, dotted):
            v = default_rules.get(dotted)
            return {**v, "A": 950} if dotted == "classes.thresholds" else v

    con = baseline.connect(threads=1)
    table, _ = baseline.run(con, Moved(), D, inputs)
    got = {r["operator_key"]: r["final_class"] for r in table.to_pylist()}
    assert got["OP_A"] == "B" and got["NP-V"] == "C"


def _fake_result():
    stages = {"generate": 1.0, "gate": 0.5, "ingest": 10.0, "validate": 5.0, "score": 20.0, "plan": 1.0, "publish": 2.0}
    cmp = {
        "operators": 100,
        "only_in_pipeline": 0,
        "only_in_baseline": 0,
        "class_disagreements": 0,
        "agrees": True,
        "differ": {c: 0 for c in baseline.RESULT_COLUMNS[1:]},
    }
    return {
        "scale": 100,
        "dates": ["2026-11-01", "2026-11-02"],
        "session_start_s": 9.0,
        "history": {"stages": stages, "records": 2000, "publish_rows": 4000},
        "daily": {"stages": {k: v / 10 for k, v in stages.items()}, "records": 20, "publish_rows": 400},
        "spark_score": {"full_s": 3.0, "classes_s": 2.0},
        "daily_spark_score": {"full_s": 1.0, "classes_s": 1.0},
        "baseline": {"connect_s": 0.01, "query_s": 0.5, "compare": cmp},
        "daily_baseline": {
            "connect_s": 0.01,
            "query_s": 0.1,
            "compare": {**cmp, "class_disagreements": 2, "agrees": False},
        },
        "memory": {"driver_python": 100.0, "jvm": 1000.0, "python_workers": 200.0, "total": 1300.0},
    }


def test_the_json_line_has_the_required_keys_and_sums():
    table, line = run.report(_fake_result())
    assert "\n" not in line
    got = json.loads(line)
    for key in run.REQUIRED_KEYS:
        assert key in got
    assert got["scale"] == 100 and got["records"] == 2020
    assert set(got["stages"]) == set(run.STAGES)
    assert got["total_s"] == pytest.approx(38.5)  # gate + ingest + validate + score + plan + publish
    assert got["daily_total_s"] == pytest.approx(3.85)
    assert got["baseline_s"] == 0.5 and got["spark_score_s"] == 3.0 and got["baseline_ratio"] == pytest.approx(6.0)
    assert got["baseline_agrees"] is False and got["baseline_disagreements"] == 2  # the daily date disagreed
    assert got["publish_rows_per_s"] == 2000
    assert "ingest" in table and "6.00x" in table


def test_the_demo_bench_reads_the_demo_console():
    from bench import demo

    console = """demo: Airflow, Spark and GX logs in /x/ecredit-demo.log
demo: running the DAG for 2026-11-01
ecommerce_credit_daily 2026-11-01:
  resolve_run_date            success             2.6 s
  amr.wait_for_manifest       success             0.0 s
  validate[amr]               failed              0.1 s
  ingest_and_build            success            57.2 s
== ecommerce_credit_daily manual__2026-12-06T10:02:41.740775+00:00: success in 68.1 s
[#####.....] 1/2 dates
ecommerce_credit_daily 2026-11-02:
  ingest_and_build            success            61.0 s
== ecommerce_credit_daily manual__2026-12-06T10:03:49.827181+00:00: failed in 66.0 s
demo finished in 136 s
"""
    got = demo.parse_console(console)
    assert got["demo_s"] == 136.0
    assert got["dates"]["2026-11-01"] == {
        "tasks": {
            "resolve_run_date": 2.6,
            "amr.wait_for_manifest": 0.0,
            "validate[amr]": 0.1,
            "ingest_and_build": 57.2,
        },
        "state": "success",
        "seconds": 68.1,
    }
    assert got["dates"]["2026-11-02"] == {"tasks": {"ingest_and_build": 61.0}, "state": "failed", "seconds": 66.0}


def test_the_demo_bench_counts_rows_from_the_manifests(tmp_path):
    import json

    from bench import demo

    for dept, date, rows in (("amr", "2026-11-01", [3, 4]), ("psb", "2026-11-02", [5])):
        d = tmp_path / dept / date
        d.mkdir(parents=True)
        files = [{"name": f"f{i}.csv", "rows": n} for i, n in enumerate(rows)]
        (d / "manifest.json").write_text(json.dumps({"files": files}))
    assert demo.delivered_rows(tmp_path) == 12
