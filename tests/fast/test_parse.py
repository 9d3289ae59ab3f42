"""The parser on hand-written files: encodings, BOM, quoted line breaks, CRLF, null markers,
malformed rows, line numbers; and the row checks."""

import datetime as dt
import io
import json

import pytest

from ecredit.core import checks
from ecredit.core.feeds import feed
from ecredit.ingest import parse

D = dt.date(2026, 11, 1)
SPOT = feed("amr", "spot_checks.csv")
HEADER = "抽查编号,统一社会信用代码,证件号码,商品类别,抽查结果,抽查日期"


def rows(data: bytes, f=SPOT):
    return list(parse.iter_rows(io.BytesIO(data), f))


def test_gbk_crlf_and_quoted_newline_line_numbers():
    text = (
        HEADER + "\r\n"
        'C1,91440300568520498A,,"服装\r\n鞋帽",合格,2026-10-01\r\n'
        "C2,91440300568520498A,, 家电 ,不合格,2026-10-02\r\n"
    )
    out = rows(text.encode("gbk"))
    assert [r.line for r in out] == [2, 4]
    assert out[0].values["product_category"] == "服装\n鞋帽"
    assert out[1].values["product_category"] == "家电"  # trimmed


def test_gb18030_rare_character_survives():
    text = HEADER + "\nC1,91440300568520498A,,䶮牌,合格,2026-10-01\n"
    out = rows(text.encode("gb18030"))
    assert out[0].values["product_category"] == "䶮牌"


def test_undecodable_bytes_are_malformed_and_the_rest_survives():
    data = (
        (HEADER + "\n").encode("gbk")
        + b"C1,\xff\xff,,x,\xba\xcf\xb8\xf1,2026-10-01\n"
        + "C2,91440300568520498A,,家电,合格,2026-10-02\n".encode("gbk")
    )
    out = rows(data)
    assert out[0].values is None and "undecodable" in out[0].malformed
    assert out[1].values["check_no"] == "C2"


def test_wrong_field_count_blank_line_and_lone_cr():
    text = HEADER + "\nC1,x\n\nC3,91440300568520498A,,a\rb,合格,2026-10-01"
    out = rows(text.encode("gbk"))
    assert [r.line for r in out] == [2, 3, 4]
    assert out[0].values is None and "2 fields" in out[0].malformed
    assert out[1].values is None and out[1].malformed == "blank line"
    assert out[2].values["product_category"] == "a\rb"  # a lone CR ends nothing; no final LF is fine


@pytest.mark.parametrize("marker", ["—", "―", "— —", "/", "无", "", "  ", "― ―"])
def test_null_markers(marker):
    text = HEADER + f"\nC1,91440300568520498A,,{marker},合格,2026-10-01\n"
    assert rows(text.encode("gbk"))[0].values["product_category"] is None


def test_bom_is_stripped_declared_or_not():
    cac = feed("cac", "pi_violations.csv")
    body = "记录编号,统一社会信用代码,证件号码,主体名称,违规类型,发现日期,整改状态\nR1,91440300568520498A,,某店,个人信息泄露,2026/10/01,已整改\n"
    for data in (body.encode("utf-8-sig"), body.encode("utf-8")):
        out = rows(data, cac)
        assert out[0].values["record_no"] == "R1"


def test_count_rows_matches_records(tmp_path):
    p = tmp_path / "spot_checks.csv"
    p.write_bytes((HEADER + "\n" + 'C1,a,,"x\ny",合格,2026-10-01\n\nC3,b,,z,合格,2026-10-01\n').encode("gbk"))
    assert parse.count_rows(str(p), SPOT) == 3  # the quoted newline is one record; the blank line is a row


def test_schema_drift_and_extra_columns(tmp_path):
    p = tmp_path / "spot_checks.csv"
    p.write_bytes("抽查编号,统一社会信用代码,证件号码,商品类别,抽查日期,备注\n".encode("gbk"))
    h = parse.read_header(str(p), SPOT)
    assert h.missing == ["抽查结果"] and h.extra == ["备注"]


def test_jsonl_rows():
    cases = feed("psb", "cases.jsonl")
    lines = [
        json.dumps(
            {
                "case_id": "P1",
                "uscc": "91440300568520498A",
                "case_type": "网络诈骗",
                "filed_at": "2026-10-01T20:00:00Z",
                "status": None,
            },
            ensure_ascii=False,
        ),
        "{not json",
        "",
        json.dumps({"case_id": "P4", "uscc": {"nested": 1}}),
        json.dumps([1, 2]),
    ]
    out = rows("\r\n".join(lines).encode("utf-8"), cases)
    assert [r.line for r in out] == [1, 2, 3, 4, 5]
    assert out[0].values["status"] is None and out[0].values["case_id"] == "P1"
    assert [r.values is None for r in out] == [False, True, True, True, True]


def check(f, values, delivery_date=D):
    base = {c.name: None for c in f.columns}
    base.update(values)
    return checks.check_row(f, base, delivery_date, "k")


GOOD_SPOT = {"check_no": "C1", "uscc": "91440300568520498A", "result": "合格", "check_date": "2026-10-01"}


def test_check_clean_row():
    values, reasons, warnings, key, natural = check(SPOT, GOOD_SPOT)
    assert reasons == [] and key == "91440300568520498A" and not natural
    assert values["check_date"] == "2026-10-01"


@pytest.mark.parametrize(
    "change,code",
    [
        ({"check_no": None}, "MISSING_REQUIRED"),
        ({"uscc": None}, "MISSING_REQUIRED"),
        ({"uscc": "91440300568520498B"}, "BAD_USCC"),
        ({"result": "优秀"}, "BAD_ENUM"),
        ({"check_date": "2026/10/01"}, "BAD_DATE"),
        ({"check_date": "2026-02-30"}, "BAD_DATE"),
        ({"check_date": "2026-11-02"}, "BAD_DATE"),  # after the delivery date
    ],
)
def test_check_reason_codes(change, code):
    _, reasons, *_ = check(SPOT, {**GOOD_SPOT, **change})
    assert reasons == [code]


def test_natural_person_key_and_no_id_in_values():
    body = "44010619800101001"
    from ecredit.core import ids

    id_no = body + ids.id_check_char(body)
    values, reasons, _, key, natural = check(SPOT, {**GOOD_SPOT, "uscc": None, "id_no": id_no})
    assert reasons == [] and natural and key == ids.np_key(id_no, "k")
    assert "id_no" not in values and id_no not in json.dumps(values)


def test_numbers_and_districts():
    ev = feed("commerce", "evaluations.csv")
    good = {
        "platform": "P",
        "uscc": "91440300568520498A",
        "eval_month": "2026-10",
        "overall_satisfaction": "90",
        "product_quality": "80.5",
        "brand_reputation": "70",
        "after_sales": "60",
        "review_count": "12",
    }
    assert check(ev, good)[1] == []
    assert check(ev, {**good, "overall_satisfaction": "105"})[1] == ["BAD_NUMBER"]
    assert check(ev, {**good, "review_count": "1.5"})[1] == ["BAD_NUMBER"]
    assert check(ev, {**good, "eval_month": "2026-12"})[1] == ["BAD_DATE"]
    ops = feed("amr", "operators.csv")
    op = {"uscc": "91440300568520498A", "district_code": "440106"}
    assert check(ops, op)[1] == []
    assert check(ops, {**op, "district_code": "310101"})[1] == ["BAD_DISTRICT"]
    assert check(ops, {**op, "district_code": "440102"})[2] == ["RETIRED_DISTRICT"]


def test_psb_timestamp_shanghai_date():
    cases = feed("psb", "cases.jsonl")
    v = {"case_id": "P1", "uscc": "91440300568520498A", "case_type": "网络诈骗"}
    values, reasons, *_ = check(cases, {**v, "filed_at": "2026-10-01T20:00:00Z"})
    assert reasons == [] and values["filed_at_date"] == "2026-10-02"  # 04:00 next day in Shanghai
    assert check(cases, {**v, "filed_at": "2026-10-01T20:00:00"})[1] == ["BAD_DATE"]  # no offset
    assert check(cases, {**v, "filed_at": "2026-10-31T16:30:00.123+00:00"}, D)[1] == []
    assert check(cases, {**v, "filed_at": "2026-10-31T16:30:00+00:00"}, dt.date(2026, 10, 31))[1] == ["BAD_DATE"]


def test_psb_timestamp_is_extended_iso_with_an_offset():
    """Decision 97: YYYY-MM-DD, T or a space, HH:MM[:SS[.1-9 digits]], Z or ±HH:MM; nothing else
    that datetime.fromisoformat would read; never an exception out of the row check."""
    cases = feed("psb", "cases.jsonl")
    v = {"case_id": "P1", "uscc": "91440300568520498A", "case_type": "网络诈骗"}
    good = {
        "2026-10-01 20:00+08:00": ("2026-10-01T12:00:00Z", "2026-10-01"),
        "2026-10-01T20:00:00.5-01:30": ("2026-10-01T21:30:00.500000Z", "2026-10-02"),
        "2026-10-01T20:00:00.123456789Z": ("2026-10-01T20:00:00.123456Z", "2026-10-02"),  # cut to microseconds
        "2024-02-29T00:00:00+23:59": ("2024-02-28T00:01:00Z", "2024-02-28"),
    }
    for sent, (utc, day) in good.items():
        values, reasons, *_ = check(cases, {**v, "filed_at": sent})
        assert (reasons, values["filed_at"], values["filed_at_date"]) == ([], utc, day), sent
    for sent in (
        "2026-10-01t20:00:00Z",  # fromisoformat reads all of these
        "2026-10-01T20Z",
        "2026-10-01T20:00:00.Z",
        "2026-10-01T20:00:00,5Z",
        "2026-10-01T20:00:00.1234567890Z",
        "2026-10-01T20:00:00+08:60",
        "2026-10-01T20:00:00+0800",
        "2026-10-01T20:00:00+08:00:30",
        "2026-W40-4T20:00:00Z",
        "20261001T200000Z",
        "2023-02-29T00:00:00Z",
        "2026-10-01T24:00:00Z",
        "9999-12-31T23:00:00-05:00",  # its UTC time is in the year 10000: was an OverflowError
        "0001-01-01T07:00:00+08:00",
    ):
        assert check(cases, {**v, "filed_at": sent})[1] == ["BAD_DATE"], sent
        assert checks.parse_timestamp(sent) is None, sent


def test_masked_payload_hides_personal_data():
    comp = feed("amr", "complaints.csv")
    vals = {c.name: None for c in comp.columns}
    vals.update(
        {
            "complaint_no": "X",
            "complainant_name": "张三",
            "complainant_phone": "13800138000",
            "id_no": "11010519491231002X",
        }
    )
    text = json.dumps(checks.masked_payload(comp, [], vals), ensure_ascii=False)
    assert "张三" not in text and "13800138000" not in text and "11010519491231002X" not in text
    assert "X" in text


def test_every_feed_has_its_rules_and_every_code_is_expressed():
    from ecredit.core.feeds import FEEDS

    codes = set()
    for f in FEEDS:
        rules = checks.rules_for(f)
        codes |= {r.code for r in rules}
        required = {c.name for c in f.columns if c.required}
        assert required <= {r.column for r in rules if r.code == "MISSING_REQUIRED"}, f.feed_id
        assert any(r.code == "DUPLICATE_KEY" for r in rules)
        for r in rules:  # every rule has a definition
            checks.value_ok(r, None, D)
    assert codes == set(checks.REASON_CODES) - {"MALFORMED"}  # MALFORMED rows never reach the rules


def test_null_passes_every_rule_but_not_null():
    rule = checks.Rule("BAD_USCC", "expect_column_values_to_be_valid_uscc", "uscc")
    assert checks.value_ok(rule, None, D) and not checks.value_ok(rule, "X", D)
    nn = checks.Rule("MISSING_REQUIRED", "expect_column_values_to_not_be_null", "x")
    assert not checks.value_ok(nn, None, D) and checks.value_ok(nn, "", D)


# ---------------------------------------------------------------- hardening (tests/corpus/ has the end-to-end cases)


def test_a_field_over_the_csv_modules_default_limit_is_data():
    big = "A" * (1 << 20)
    out = rows((HEADER + f"\nC1,91440300568520498A,,{big},合格,2026-10-01\n").encode("gbk"))
    assert out[0].values["product_category"] == big


def test_gb18030_bom_and_utf8_bom_in_a_gbk_file():
    body = HEADER + "\nC1,91440300568520498A,,𠮷,合格,2026-10-01\n"
    for data in ("\ufeff".encode("gb18030") + body.encode("gb18030"), b"\xef\xbb\xbf" + body.encode("utf-8")):
        out = rows(data)
        assert out[0].values["check_no"] == "C1" and out[0].values["product_category"] == "𠮷"


def test_a_nul_character_is_malformed():
    out = rows((HEADER + "\nC1,91440300568520498A,,a\x00b,合格,2026-10-01\n").encode("gbk"))
    assert out[0].values is None and out[0].malformed == "a NUL character in: 商品类别"


def test_json_lines_that_are_not_json_or_no_text():
    cases = feed("psb", "cases.jsonl")
    lines = [
        '{"case_id": ' + "[" * 50_000 + "]" * 50_000 + "}",
        '{"case_id": NaN}',
        '{"case_id": "P\\ud800"}',
        '{"case_id": "P\\u0000"}',
        '{"case_id": "  P5  ", "uscc": 12.50}',
    ]
    out = rows("\n".join(lines).encode("utf-8"), cases)
    assert [r.malformed for r in out[:4]] == [
        "invalid JSON: nested too deeply to read",
        "invalid JSON: NaN is not JSON",
        "a lone surrogate escape (no Unicode character) in: case_id",
        "a NUL character in: case_id",
    ]
    assert out[4].values["case_id"] == "P5" and out[4].values["uscc"] == "12.50"  # trimmed; numbers exact


@pytest.mark.parametrize(
    "amount,ok",
    [
        ("１２００．５０", True),
        ("٣٠٠", False),
        ("1_000", False),
        ("1e30", False),
        ("99999999999999.99", True),
        ("1e-999999999", False),
        ("0.5", True),
    ],
)
def test_amounts_full_width_other_scripts_and_size(amount, ok):
    pen = feed("amr", "penalties.csv")
    values, reasons, *_ = check(
        pen,
        {
            "decision_no": "X1",
            "uscc": "91440300568520498A",
            "violation_type": "其他",
            "decision_date": "２０２６-１０-０１",
            "amount_10k_yuan": amount,
        },
    )
    assert (reasons == []) == ok
    assert values["decision_date"] == "2026-10-01"
    if amount == "１２００．５０":
        assert values["amount_10k_yuan"] == "1200.5"


def test_counts_beyond_the_warehouse_are_bad_numbers():
    ev = feed("commerce", "evaluations.csv")
    good = {
        "platform": "P",
        "uscc": "91440300568520498A",
        "eval_month": "２０２６-１０",
        "overall_satisfaction": "90",
        "product_quality": "80",
        "brand_reputation": "70",
        "after_sales": "60",
        "review_count": "１２",
    }
    values, reasons, *_ = check(ev, good)
    assert reasons == [] and (values["eval_month"], values["review_count"]) == ("2026-10", "12")
    assert check(ev, {**good, "review_count": "9" * 5000})[1] == ["BAD_NUMBER"]
    assert check(ev, {**good, "review_count": "0" * 30 + "7"})[0]["review_count"] == "7"


def test_a_json_object_naming_a_field_twice_is_malformed():
    out = rows(
        b'{"case_id": "P1", "uscc": "91440300568520498A", "uscc": "91440101MA5CXXXX08"}\n', feed("psb", "cases.jsonl")
    )
    assert out[0].values is None and out[0].malformed == 'invalid JSON: the field "uscc" appears twice'
