"""The adversarial corpus (``tests/corpus/``, issue 8): every case goes through the delivery gate,
the ingest job with the GX suites, the state build and the publish to the embedded warehouse, in
this test's SparkSession. For each case: no exception, the outcome and reason stated in
``tests/corpus/README.md``, rows in = loaded + quarantined, and the value the pipeline keeps.
Every expected value below is worked out by hand from the corpus files, not by the pipeline's code.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata

import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, inspect, text

from ecredit import pipeline
from ecredit.core import feeds, ids
from ecredit.core import rules as rules_mod
from ecredit.core import settings as settings_mod
from ecredit.ingest import gate as delivery
from ecredit.ingest import load as ingest
from ecredit.quality import verdict as validation
from tests.corpus import generate as corpus

D = dt.date.fromisoformat(corpus.RUN_DATE)
GATE_REJECTED = {
    ("ndrc", "2026-11-01"),
    ("ndrc", "2026-11-02"),
    ("ndrc", "2026-11-03"),
    ("finance", "2026-11-01"),
    ("post", "2026-11-02"),
    ("post", "2026-11-03"),
    ("gds", "2026-11-02"),
}
KEY = "k"  # CREDIT_PII_KEY
NP_ID1 = ids.np_key(corpus.ID1, KEY)
NP_ID2 = ids.np_key(corpus.ID2, KEY)  # the natural person of amr operators line 7 and ndrc line 2
BIG_URL = "https://shop.example/?q=" + "A" * corpus.BIG
# Natural persons' names, phones and ID numbers in the landing files; none may be stored anywhere.
PERSONAL = [
    "测试",
    "13800000",
    "Robert'); DROP TABLE students;--",
    corpus.ID1,
    corpus.ID2,
    corpus.ID3,
    "44010619900202007x",
    "４４０１０６",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("corpus")
    corpus.lay_out(root / "landing")
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(root), "CREDIT_PII_KEY": KEY})
    rule_set = rules_mod.load(cfg.rules_path)
    gates = {}

    def gates_as_recorded(stage, got):  # the gates' records, read before ingest runs
        if stage == "gate":
            gates.update(
                {
                    (dept, d.isoformat()): delivery.current_gate(cfg, dept, d).to_json()  # as stored
                    for dept in feeds.DEPARTMENTS
                    for d in delivery.delivery_dates(cfg, dept, D)
                }
            )

    got = pipeline.run_stages(spark, cfg, D, run_id="corpus", rules=rule_set, after=gates_as_recorded)
    checked, result = got["gate"], got["ingest"]
    lake = pq.read_table(str(ingest.rows_path(cfg))).to_pylist()
    eng = create_engine(cfg.warehouse_url)

    def query(sql, **params):
        with eng.connect() as c:
            return [dict(r._mapping) for r in c.execute(text(sql), params)]

    return {
        "cfg": cfg,
        "rules": rule_set,
        "checked": checked,
        "gates": gates,
        "result": result,
        "lake": lake,
        "query": query,
        "engine": eng,
    }


def _info(run, dept, date, name):
    g = run["gates"][(dept, date)]
    f = next(f for f in g["files"] if f["name"] == name)
    return {**f, "dept": dept, "date": date}


def counts(run, dept, date, name):
    c = ingest.file_counts(run["cfg"], _info(run, dept, date, name))
    return c["rows_in"], c["rows_loaded"], c["rows_quarantined"]


def rows(run, dept, date, name) -> dict:
    """The file's rows in the lake by source line."""
    sha = _info(run, dept, date, name)["sha256"]
    return {r["source_line"]: r for r in run["lake"] if r["file_sha"] == sha}


def loaded(run, dept, date, name) -> dict:
    return {n: r for n, r in rows(run, dept, date, name).items() if not r["reasons"]}


def reasons(run, dept, date, name) -> dict:
    return {n: sorted(r["reasons"]) for n, r in rows(run, dept, date, name).items() if r["reasons"]}


def detail(row) -> str:
    return json.loads(row["payload"])["_detail"]


def verdict(run, dept, date):
    return validation.verdict(run["cfg"], run["rules"], dept, dt.date.fromisoformat(date), with_volume=False)


# ---------------------------------------------------------------- nothing lost


def test_every_accepted_file_reconciles(run):
    files = delivery.accepted_files(run["cfg"], D)
    want = {
        (dept, date, name): n
        for (dept, date), fs in corpus.DELIVERIES.items()
        for name, n in fs.items()
        if (dept, date) not in GATE_REJECTED
    }
    assert {(f["dept"], f["date"], f["name"]): f["rows"] for f in files} == want
    for f in files:
        rows_in, ok, bad = counts(run, f["dept"], f["date"], f["name"])
        assert rows_in == f["rows"] == ok + bad == len(rows(run, f["dept"], f["date"], f["name"])), f
    assert run["result"] == {"files_parsed": 15, "rows": sum(want.values())} == {"files_parsed": 15, "rows": 86}
    assert len(run["lake"]) == 86


def test_rejected_deliveries_are_whole_and_say_why(run):
    g = run["gates"]
    assert {k for k, v in g.items() if v["status"] == "rejected"} == GATE_REJECTED
    assert not {(f["dept"], f["date"]) for f in delivery.accepted_files(run["cfg"], D)} & GATE_REJECTED
    assert {r["dept"] + r["delivery_date"] for r in run["lake"]}.isdisjoint({d + t for d, t in GATE_REJECTED})


# ---------------------------------------------------------------- the manifest


def test_manifest_not_valid_json(run):
    g = run["gates"][("ndrc", "2026-11-01")]
    assert g["status"] == "rejected" and g["files"] == []
    assert g["reasons"] == [
        "manifest.json is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 91 (char 90)"
    ]


def test_manifest_nested_too_deeply(run):
    g = run["gates"][("ndrc", "2026-11-02")]
    assert g["status"] == "rejected" and g["reasons"] == ["manifest.json is not valid JSON: nested too deeply to read"]


def test_manifest_row_count_of_the_wrong_type(run):
    g = run["gates"][("ndrc", "2026-11-03")]
    assert g["status"] == "rejected" and g["reasons"] == ['credit_lists.jsonl: 1 rows, the manifest says "1"']


def test_a_file_listed_twice(run):
    assert run["gates"][("gds", "2026-11-02")]["reasons"] == ["licenses.csv: listed more than once in the manifest"]


def test_gate_reasons_are_published(run):
    got = {
        (r["delivery_date"].isoformat() if hasattr(r["delivery_date"], "isoformat") else str(r["delivery_date"])): (
            r["success"],
            r["detail"],
        )
        for r in run["query"](
            "SELECT delivery_date, success, detail FROM dq_result WHERE dept = 'ndrc' AND \"check\" = 'delivery_gate'"
        )
    }
    assert got["2026-11-02"] == (False, "manifest.json is not valid JSON: nested too deeply to read")
    assert got["2026-11-03"] == (False, 'credit_lists.jsonl: 1 rows, the manifest says "1"')
    assert got["2026-11-04"] == (True, "ok")


# ---------------------------------------------------------------- line ends and quoting


def test_lone_cr_line_ends_are_one_line(run):
    """feeds.md: a lone CR ends nothing, so a file with CR line ends is its header alone."""
    g = run["gates"][("finance", "2026-11-01")]
    assert g["reasons"] == ["finance_risk.csv: 0 rows, the manifest says 3"]


def test_quoted_fields_and_mixed_line_ends(run):
    """gds licences: CRLF and LF mixed, a quoted field with a comma, one spanning three lines
    (CRLF then LF inside, doubled quotes), a lone CR inside an unquoted field, a tab, no final LF."""
    assert counts(run, "gds", "2026-11-01", "licenses.csv") == (6, 5, 1)
    got = {
        n: (r["licence_no"], r["licence_name"], r["valid_to"])
        for n, r in loaded(run, "gds", "2026-11-01", "licenses.csv").items()
    }
    assert got == {
        2: ("L1", "食品经营许可证,网络销售", "2031-01-01"),
        3: ("L2", '第一行\n第二行\n第三行 "引号"', "2031-02-01"),  # a record spanning lines gives its first
        6: ("L3", "a\rb", None),
        7: ("L4", "spaced", "2031-04-01"),  # quoted or not, values are trimmed
        8: ("L5", "许可证\t名称", None),  # "" is null
    }
    assert loaded(run, "gds", "2026-11-01", "licenses.csv")[7]["uscc"] == corpus.U5


def test_a_nul_character_is_malformed(run):
    """A NUL is no text (and PostgreSQL's text refuses it): the row is MALFORMED, naming the column."""
    assert reasons(run, "gds", "2026-11-01", "licenses.csv") == {9: ["MALFORMED"]}
    bad = rows(run, "gds", "2026-11-01", "licenses.csv")[9]
    assert detail(bad) == "a NUL character in: 许可证名称"
    assert json.loads(bad["payload"])["许可证名称"] == "坏\x00字节"  # the content as sent, for the department
    assert verdict(run, "gds", "2026-11-01").status == "applied"  # 1 of 6
    r = rows(run, "customs", "2026-11-01", "violations.jsonl")[11]
    assert r["reasons"] == ["MALFORMED"] and detail(r) == "a NUL character in: DECISION_NO"


# ---------------------------------------------------------------- BOMs and encodings


def test_bom_in_a_utf8_file_that_declares_none(run):
    assert run["gates"][("commerce", "2026-11-01")]["warnings"] == []
    got = loaded(run, "commerce", "2026-11-01", "evaluations.csv")
    assert got[2]["platform"] == "某宝" and got[2]["uscc"] == corpus.U1  # the first column is read


def test_fullwidth_digits_in_numbers_and_months_are_digits(run):
    r = loaded(run, "commerce", "2026-11-01", "evaluations.csv")[3]
    assert (
        r["eval_month"],
        r["overall_satisfaction"],
        r["product_quality"],
        r["review_count"],
        r["deleted_review_count"],
    ) == ("2026-09", "95", "88.5", "120", "0")


def test_counts_too_large_for_the_warehouse(run):
    """评价数 of 5,000 digits (int() refuses to read it) is BAD_NUMBER; 10^14 - 1 and 5 with leading
    zeros are counts."""
    assert counts(run, "commerce", "2026-11-01", "evaluations.csv") == (6, 5, 1)
    assert reasons(run, "commerce", "2026-11-01", "evaluations.csv") == {5: ["BAD_NUMBER"]}
    got = loaded(run, "commerce", "2026-11-01", "evaluations.csv")
    assert (got[6]["review_count"], got[7]["review_count"]) == ("99999999999999", "5")


def test_utf8_bom_in_a_file_declared_gbk_is_read_as_utf8(run):
    g = run["gates"][("post", "2026-11-01")]
    assert g["status"] == "accepted"
    assert g["warnings"] == [
        "express_violations.csv: begins with the UTF-8 byte-order mark though feeds.md declares GBK; read as UTF-8"
    ]
    got = {
        n: (r["record_no"], r["violation_type"], r["handled_date"], r["amount_yuan"])
        for n, r in loaded(run, "post", "2026-11-01", "express_violations.csv").items()
    }
    assert got == {2: ("E1", "虚假发货", "2026-10-05", "500"), 3: ("E2", "延误投递", "2026-09-30", "1200")}


def test_a_utf16_file_is_rejected_by_name(run):
    assert run["gates"][("post", "2026-11-02")]["reasons"] == [
        "express_violations.csv: UTF-16 (it begins with the byte-order mark FF FE); feeds.md declares GBK"
    ]


def test_a_column_named_twice_is_rejected(run):
    assert run["gates"][("post", "2026-11-03")]["reasons"] == [
        "express_violations.csv: the header names a column more than once: 统一社会信用代码"
    ]


def test_gb18030_bom_and_gb18030_only_characters(run):
    """amr lists: GB18030's own BOM, and characters that need GB18030's four-byte sequences."""
    got = {
        n: (r["list_type"], r["reason"], r["listed_date"], r["removed_date"])
        for n, r in loaded(run, "amr", "2026-11-03", "lists.csv").items()
    }
    assert got == {
        2: ("经营异常名录", "通过登记的住所无法联系\U0002a6a5\U0001f600", "2026-11-02", None),
        3: ("严重违法失信名单", "\u4dae", "2026-11-01", "2026-11-03"),
    }


# ---------------------------------------------------------------- names


def _dim(run) -> dict:
    return {r["operator_key"]: r for r in run["query"]("SELECT * FROM dim_operator")}


def test_rare_cjk_and_emoji_names_are_kept_exactly(run):
    lake = loaded(run, "amr", "2026-11-01", "operators.csv")
    dim = _dim(run)
    want = {
        corpus.U1: "\U00020bb7野家\U00020000\u4dae记",
        corpus.U2: "小店\U0001f600\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466\U0001f1e8\U0001f1f3\u2764\ufe0f",
        corpus.U3: "ＡＢＣ優品\uf9f1",
    }  # no NFKC: full-width letters and the compatibility ideograph stay
    for key, name in want.items():
        assert dim[key]["name"].encode("utf-8") == name.encode("utf-8")
    assert [lake[n]["name"] for n in (2, 3, 4)] == list(want.values())
    # ndrc's 失信联合惩戒对象 (2026-10-01, open) puts U1 on the 严重失信 list, under the registry's name
    lst = run["query"](
        "SELECT operator_key, record_type, name FROM serious_dishonest_list WHERE run_date = :d", d=D.isoformat()
    )
    assert [(r["operator_key"], r["record_type"], r["name"]) for r in lst] == [
        (corpus.U1, "NDRC_JOINT_PUNISH", want[corpus.U1])
    ]
    assert unicodedata.normalize("NFKC", want[corpus.U3]) != want[corpus.U3]


def test_hostile_strings_in_enterprise_names_load_as_data(run):
    dim = _dim(run)
    assert {k: dim[k]["name"] for k in (corpus.U4, corpus.U5, corpus.U7, corpus.U8)} == {
        corpus.U4: "'; DROP TABLE dim_operator; --",
        corpus.U5: '=HYPERLINK("http://x.example","y")',
        corpus.U7: "<script>alert('x')</script>&amp;",
        corpus.U8: "@SUM(1+1)*cmd|' /C calc'!A0",
    }
    assert dim[corpus.U5]["shop_url"] == "https://shop.example/5?a=1,b=2"
    # nothing was dropped or broken: every table is there, every operator of the corpus in dim_operator
    assert set(inspect(run["engine"]).get_table_names()) >= {
        "dim_operator",
        "fact_credit_record",
        "quarantine",
        "feed_status",
        "dq_result",
        "operator_score",
    }
    assert sorted(dim) == sorted(
        [
            corpus.U1,
            corpus.U2,
            corpus.U3,
            corpus.U4,
            corpus.U5,
            corpus.U6,
            corpus.U7,
            corpus.U8,
            corpus.U9,
            corpus.U10,
            NP_ID2,
        ]
    )


def test_hostile_record_keys_load_as_data(run):
    recs = {r["record_key"]: r for r in run["query"]("SELECT * FROM fact_credit_record WHERE dept = 'amr'")}
    drop = recs["amr:penalties:'; DROP TABLE fact_credit_record; --"]
    assert drop["operator_key"] == corpus.U3 and drop["in_registry"] in (1, True)
    assert float(drop["amount_yuan"]) == 15000.0  # "１.５" 万元
    link = recs['amr:penalties:=HYPERLINK("http://x.example","y")']
    assert link["operator_key"] == corpus.U5 and float(link["amount_yuan"]) == 20000.0
    person = recs["amr:penalties:穗市监罚〔2026〕1号"]
    assert person["operator_key"] == NP_ID1 and person["in_registry"] in (0, False)
    assert counts(run, "amr", "2026-11-01", "penalties.csv") == (3, 3, 0)


def test_spaces_are_trimmed(run):
    r = loaded(run, "amr", "2026-11-01", "operators.csv")[8]  # spaces, a tab and U+3000 around values
    assert (r["uscc"], r["name"], r["district_code"], r["shop_url"]) == (
        corpus.U6,
        "空格商行",
        "440115",
        "https://shop.example/7",
    )
    assert _dim(run)[NP_ID2]["name"] == "我的小铺"


def test_fullwidth_and_lower_case_identifiers(run):
    ops = loaded(run, "amr", "2026-11-01", "operators.csv")
    assert (
        ops[4]["operator_key"] == ops[4]["uscc"] == "92440104MA5D0C0D1M"
    )  # from "９２４４０１０４ｍａ５ｄ０ｃ０ｄ１ｍ"
    assert (ops[4]["district_code"], ops[4]["last_verified_date"]) == ("440105", "2026-10-03")
    assert ops[7]["operator_key"] == NP_ID2 and ops[7]["natural_person"]  # ID number in full width, lower-case x
    assert counts(run, "amr", "2026-11-01", "operators.csv") == (9, 9, 0)
    nd = loaded(run, "ndrc", "2026-11-04", "credit_lists.jsonl")
    assert nd[2]["operator_key"] == NP_ID2  # "44010619900202007x" in ndrc: the same person, the same key


def test_natural_persons_names_are_stored_nowhere(run):
    for r in run["lake"]:
        blob = json.dumps(r, ensure_ascii=False, default=str)
        assert not any(p in blob for p in PERSONAL), r["source_line"]
    for table in inspect(run["engine"]).get_table_names():
        for r in run["query"](f'SELECT * FROM "{table}"'):
            blob = json.dumps(r, ensure_ascii=False, default=str)
            assert not any(p in blob for p in PERSONAL), table


# ---------------------------------------------------------------- size, emptiness, truncation


def test_a_1mb_field_loads_whole(run):
    assert counts(run, "amr", "2026-11-02", "operators.csv") == (2, 2, 0)
    assert loaded(run, "amr", "2026-11-02", "operators.csv")[2]["shop_url"] == BIG_URL
    dim = _dim(run)
    assert dim[corpus.U9]["shop_url"] == BIG_URL and dim[corpus.U10]["shop_url"] == "https://shop.example/10"


def test_an_empty_file_is_zero_rows(run):
    g = run["gates"][("commerce", "2026-11-02")]
    assert g["status"] == "accepted" and g["warnings"] == ["breaches.csv: an empty file (no header): zero rows"]
    assert counts(run, "commerce", "2026-11-02", "breaches.csv") == (0, 0, 0)
    assert verdict(run, "commerce", "2026-11-02").status == "applied"


def test_a_header_only_file_is_zero_rows(run):
    g = run["gates"][("cac", "2026-11-01")]  # its manifest gives the SHA-256 in upper-case hex
    assert g["status"] == "accepted" and g["warnings"] == []
    assert counts(run, "cac", "2026-11-01", "pi_violations.csv") == (0, 0, 0)
    assert verdict(run, "cac", "2026-11-01").status == "applied"


def test_a_csv_line_cut_inside_a_character(run):
    assert counts(run, "amr", "2026-11-02", "complaints.csv") == (5, 4, 1)
    assert reasons(run, "amr", "2026-11-02", "complaints.csv") == {6: ["MALFORMED"]}
    bad = rows(run, "amr", "2026-11-02", "complaints.csv")[6]
    assert detail(bad) == "undecodable bytes in the declared encoding"
    assert json.loads(bad["payload"])["_withheld"].startswith("6 fields, ")  # a complainant's name: withheld
    assert verdict(run, "amr", "2026-11-02").status == "applied"  # 1 of 5 is not more than 20 %
    q = run["query"]("SELECT source_line, reasons, payload FROM quarantine WHERE dept = 'amr' AND feed = 'complaints'")
    assert [(r["source_line"], r["reasons"]) for r in q] == [(6, "MALFORMED")]
    assert "王" not in q[0]["payload"]


def test_a_json_line_cut_short(run):
    assert counts(run, "psb", "2026-11-01", "cases.jsonl") == (5, 4, 1)
    assert reasons(run, "psb", "2026-11-01", "cases.jsonl") == {5: ["MALFORMED"]}
    assert (
        detail(rows(run, "psb", "2026-11-01", "cases.jsonl")[5])
        == "invalid JSON: Unterminated string starting at: line 1 column 27 (char 26)"
    )


# ---------------------------------------------------------------- JSON types and nesting


def test_json_types_that_are_accepted(run):
    got = loaded(run, "psb", "2026-11-01", "cases.jsonl")
    assert {
        n: (r["case_id"], r["uscc"], r["case_type"], r["filed_at"], r["filed_at_date"], r["status"])
        for n, r in got.items()
    } == {
        1: ("P1", corpus.U1, "网络诈骗", "2026-10-01T12:00:00Z", "2026-10-01", "立案侦查"),
        2: ("2", corpus.U2, "刷单炒信", "2026-10-31T16:30:00Z", "2026-11-01", "移送起诉"),  # a number as the key
        3: ("P3", corpus.U4, "网络传销", "2026-10-02T12:00:00.123000Z", "2026-10-02", None),  # strings trimmed
        4: (
            "P4",
            corpus.U5,
            "销售假冒商品",
            "2026-10-03T00:00:00Z",
            "2026-10-03",
            "撤案",
        ),  # unknown nested field ignored
    }
    v = loaded(run, "customs", "2026-11-01", "violations.jsonl")
    assert {n: (r["decision_no"], r["amount_yuan"], r["decision_date"], r["withdrawn"]) for n, r in v.items()} == {
        1: ("C1", "1200.5", "2026-10-01", None),
        2: ("C2", "300", "2026-10-02", "false"),
    }


def test_json_wrong_types_and_nesting_are_quarantined(run):
    assert counts(run, "customs", "2026-11-01", "violations.jsonl") == (12, 2, 10)
    assert reasons(run, "customs", "2026-11-01", "violations.jsonl") == {
        3: ["BAD_NUMBER"],
        4: ["MALFORMED"],
        5: ["BAD_USCC"],
        6: ["MALFORMED"],
        7: ["MALFORMED"],
        8: ["MALFORMED"],
        9: ["BAD_ENUM"],
        10: ["MALFORMED"],
        11: ["MALFORMED"],
        12: ["MALFORMED"],
    }
    r = rows(run, "customs", "2026-11-01", "violations.jsonl")
    assert {n: detail(r[n]) for n in (4, 6, 7, 8, 10, 12)} == {
        4: "nested value where a scalar is expected: PENALTY_CNY",
        6: "a JSON line must be an object",
        7: "a lone surrogate escape (no Unicode character) in: DECISION_NO",
        8: "invalid JSON: NaN is not JSON",
        10: "nested value where a scalar is expected: TYPE",
        12: 'invalid JSON: the field "USCC" appears twice',
    }
    assert json.loads(r[3]["payload"])["PENALTY_CNY"] == "true"
    assert counts(run, "customs", "2026-11-01", "enterprise_credit.jsonl") == (4, 2, 2)
    e = rows(run, "customs", "2026-11-01", "enterprise_credit.jsonl")
    assert (detail(e[2]), detail(e[3])) == (
        "invalid JSON: nested too deeply to read",
        "nested value where a scalar is expected: USCC",
    )
    assert (e[4]["customs_code"], e[4]["effective_date"]) == ("4401234568", "2026-12-01")
    v = verdict(run, "customs", "2026-11-01")
    assert v.status == "rejected" and v.reasons[0].startswith("violations.jsonl: 10 of 12 rows quarantined")


# ---------------------------------------------------------------- numbers


def test_numbers_in_other_scripts_and_formats(run):
    """finance: full-width digits and full stop are read; Arabic-Indic digits, Chinese numerals, a
    thousands separator, an amount beyond what the warehouse holds and one with a billion decimals
    are BAD_NUMBER."""
    assert counts(run, "finance", "2026-11-02", "finance_risk.csv") == (25, 20, 5)
    assert reasons(run, "finance", "2026-11-02", "finance_risk.csv") == {
        3: ["BAD_NUMBER"],
        4: ["BAD_NUMBER"],
        5: ["BAD_NUMBER"],
        17: ["BAD_NUMBER"],
        22: ["BAD_NUMBER"],
    }
    r = rows(run, "finance", "2026-11-02", "finance_risk.csv")
    assert [json.loads(r[n]["payload"])["金额(元)"] for n in (3, 4, 5, 17, 22)] == [
        "٣٠٠",
        "一千",
        "1,200",
        "1e30",
        "1e-999999999",
    ]
    assert (r[2]["amount_yuan"], r[2]["decided_date"], r[6]["amount_yuan"]) == ("1200.5", "2026-10-01", "1200.5")
    fact = {x["record_key"]: x for x in run["query"]("SELECT * FROM fact_credit_record WHERE dept = 'finance'")}
    assert float(fact["finance:finance_risk:F01"]["amount_yuan"]) == 1200.5
    assert str(fact["finance:finance_risk:F01"]["event_date"]) == "2026-10-01"
    assert len(fact) == 20
    dq = {
        x["check"]: x
        for x in run["query"]("SELECT * FROM dq_result WHERE dept = 'finance' AND delivery_date = '2026-11-02'")
    }
    # the column is named where the rule is: GX's expectation on amount_yuan saw the four rows
    assert dq["gx:expect_column_values_to_be_valid_number(amount_yuan)"]["unexpected_count"] == 5
    assert dq["rows:BAD_NUMBER"]["unexpected_count"] == 5
    q = run["query"]("SELECT source_line FROM quarantine WHERE dept = 'finance' ORDER BY source_line")
    assert [x["source_line"] for x in q] == [3, 4, 5, 17, 22]


# ---------------------------------------------------------------- the published view


def test_ndrc_bom_trimmed_json_strings_and_feed_status(run):
    got = {
        n: (r["operator_key"], r["list_type"], r["basis"], r["start_date"], r["end_date"])
        for n, r in loaded(run, "ndrc", "2026-11-04", "credit_lists.jsonl").items()
    }
    assert got == {
        1: (corpus.U1, "失信联合惩戒对象", "依据\U0001f600第\U00020000条", "2026-10-01", None),
        2: (NP_ID2, "守信联合激励对象", '=HYPERLINK("http://x.example","y")', "2026-10-02", None),
        4: (corpus.U4, "守信联合激励对象", "x", "2026-10-03", "2027-10-03"),
        5: (corpus.U5, "守信联合激励对象", "x", "2026-10-04", None),
    }
    assert reasons(run, "ndrc", "2026-11-04", "credit_lists.jsonl") == {3: ["BAD_DATE"]}
    # the gate task's answer for D: only ndrc delivered on 2026-11-04
    assert {d: c["status"] for d, c in run["checked"].items()} == {
        d: "accepted" if d == "ndrc" else "missing" for d in feeds.DEPARTMENTS
    }
    fs = {r["dept"]: r for r in run["query"]("SELECT * FROM feed_status WHERE run_date = :d", d=D.isoformat())}
    assert (
        fs["ndrc"]["status"],
        fs["ndrc"]["rows_in"],
        fs["ndrc"]["rows_loaded"],
        fs["ndrc"]["rows_quarantined"],
        fs["ndrc"]["deliveries_applied"],
    ) == ("partial", 5, 4, 1, 1)
    assert {d: (r["status"], r["deliveries_applied"]) for d, r in fs.items() if d != "ndrc"} == {
        "amr": ("missing", 3),
        "cac": ("missing", 1),
        "psb": ("missing", 1),
        "commerce": ("missing", 2),
        "finance": ("missing", 1),
        "gds": ("missing", 1),
        "post": ("missing", 1),
        "customs": ("missing", 0),
    }


def test_published_quarantine_is_every_quarantined_row_of_the_applied_deliveries(run):
    q = run["query"]("SELECT dept, feed, delivery_date, source_line, reasons FROM quarantine")
    assert sorted((r["dept"], r["feed"], str(r["delivery_date"]), r["source_line"], r["reasons"]) for r in q) == sorted(
        [
            ("amr", "complaints", "2026-11-02", 6, "MALFORMED"),
            ("finance", "finance_risk", "2026-11-02", 3, "BAD_NUMBER"),
            ("finance", "finance_risk", "2026-11-02", 4, "BAD_NUMBER"),
            ("finance", "finance_risk", "2026-11-02", 5, "BAD_NUMBER"),
            ("finance", "finance_risk", "2026-11-02", 17, "BAD_NUMBER"),
            ("finance", "finance_risk", "2026-11-02", 22, "BAD_NUMBER"),
            ("commerce", "evaluations", "2026-11-01", 5, "BAD_NUMBER"),
            ("gds", "licenses", "2026-11-01", 9, "MALFORMED"),
            ("ndrc", "credit_lists", "2026-11-04", 3, "BAD_DATE"),
            ("psb", "cases", "2026-11-01", 5, "MALFORMED"),
        ]
    )  # customs is rejected (8 of 10 rows): none of its rows goes to quarantine


def test_rejections_csv_for_the_departments(run):
    import csv

    def read(dept, date):
        path = run["cfg"].outbox_dir / dept / date / "rejections.csv"
        return list(csv.DictReader(path.read_text("utf-8-sig").splitlines()))

    assert [(r["file"], r["line"], r["reasons"]) for r in read("finance", "2026-11-02")] == [
        ("finance_risk.csv", str(n), "BAD_NUMBER") for n in (3, 4, 5, 17, 22)
    ]
    assert [(r["reasons"], json.loads(r["content"])) for r in read("ndrc", "2026-11-02")] == [
        ("DELIVERY_REJECTED", {"reasons": ["manifest.json is not valid JSON: nested too deeply to read"]})
    ]
    assert read("commerce", "2026-11-02") == [] and read("customs", "2026-11-01")[0]["reasons"] == "DELIVERY_REJECTED"
