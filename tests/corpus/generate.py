"""The adversarial corpus as a landing zone (issue 8, "Hardening"; see README.md here).

Hand-made files are committed under ``landing/`` as bytes (CRLF, BOMs, truncation matter). This
module adds the ones that are large or whose bytes are easier to read as Python text: the GB18030
files (rare characters, emoji, a GB18030 BOM, a line cut in the middle of a character), the 1 MB
field, JSON nested 100,000 deep. ``lay_out`` copies both into a landing folder and writes each
delivery's manifest with the row counts stated by hand below (what the department claims; never
computed by the pipeline's parser) and the files' SHA-256, except where the manifest itself is the
case.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMITTED = HERE / "landing"

# Valid USCCs (Guangzhou division codes but one) and synthetic resident ID numbers.
U1, U2, U3, U4, U5 = (
    "91440101MA5CXXXX08",
    "91440106MA9W1A2B3X",
    "92440104MA5D0C0D1M",
    "91440111MA9Y7K8L0U",
    "91440113MA5E1F2G3E",
)
U6, U7, U8, U9, U10 = (
    "91440115MA9UAB7C4R",
    "91440300568520498A",
    "91440104MA9XY11A29",
    "91440105MA9QWE3R4A",
    "91440112MA9TYU5P6G",
)
ID1, ID2, ID3 = "440106198001010019", "44010619900202007X", "440104198512310037"
BIG = 1 << 20  # the 1 MB field: this many characters after its prefix

# (dept, date) -> {file: rows the manifest claims}; a missing entry: the manifest is committed or
# built by MANIFESTS.
DELIVERIES = {
    ("amr", "2026-11-01"): {"operators.csv": 9, "penalties.csv": 3},
    ("amr", "2026-11-02"): {"operators.csv": 2, "complaints.csv": 5},
    ("amr", "2026-11-03"): {"lists.csv": 2},
    ("post", "2026-11-01"): {"express_violations.csv": 2},
    ("post", "2026-11-02"): {"express_violations.csv": 2},  # UTF-16
    ("post", "2026-11-03"): {"express_violations.csv": 1},  # a column named twice
    ("gds", "2026-11-01"): {"licenses.csv": 6},
    ("commerce", "2026-11-01"): {"evaluations.csv": 6},
    ("commerce", "2026-11-02"): {"breaches.csv": 0},
    ("cac", "2026-11-01"): {"pi_violations.csv": 0},
    ("finance", "2026-11-01"): {"finance_risk.csv": 3},  # lone-CR line ends: by the contract 0 rows
    ("finance", "2026-11-02"): {"finance_risk.csv": 25},
    ("psb", "2026-11-01"): {"cases.jsonl": 5},
    ("customs", "2026-11-01"): {"violations.jsonl": 12, "enterprise_credit.jsonl": 4},
    ("ndrc", "2026-11-04"): {"credit_lists.jsonl": 5},
}
RUN_DATE = "2026-11-04"  # every delivery is dated on or before it
UPPER_CASE_SHA = {("cac", "2026-11-01")}  # manifests whose SHA-256 is in upper-case hex (PowerShell's Get-FileHash)


def _csv(lines: list[str], eol: str = "\n", final: bool = True) -> str:
    return eol.join(lines) + (eol if final else "")


def generated() -> dict[str, bytes]:
    """Relative path under the landing folder -> bytes."""
    out: dict[str, bytes] = {}
    ops_header = "统一社会信用代码,证件号码,主体名称,主体类型,法定代表人,所属区划,电商平台,店铺网址,登记状态,亮照亮证,最近核验日期,成立日期"
    # amr operators: names with rare CJK (extensions A and B), emoji (ZWJ sequence, flag, variation
    # selector), a CJK compatibility ideograph, full-width letters, hostile strings; identifiers in
    # full-width and lower case; spaces of every kind. GB18030, CRLF.
    out["amr/2026-11-01/operators.csv"] = _csv(
        [
            ops_header,
            f"{U1},,𠮷野家𠀀䶮记,企业,赵测试,440106,某宝,https://shop.example/1,存续,是,2026-10-01,2020-01-01",
            f"{U2},,小店😀👨‍👩‍👧‍👦🇨🇳❤️,企业,钱测试,440104,某东,https://shop.example/2,在业,否,2026-10-02,2021-02-02",
            "９２４４０１０４ｍａ５ｄ０ｃ０ｄ１ｍ,,ＡＢＣ優品\uf9f1\u3000,个体工商户,孙测试,４４０１０５,某宝,https://shop.example/3,存续,是,２０２６-１０-０３,2019-03-03",
            f"{U4},,'; DROP TABLE dim_operator; --,企业,李测试,440111,某宝,https://shop.example/4,存续,是,2026-10-04,2018-04-04",
            f'{U5},,"=HYPERLINK(""http://x.example"",""y"")",企业,周测试,440113,某宝,"https://shop.example/5?a=1,b=2",存续,是,2026-10-05,2017-05-05',
            ",４４０１０６１９９００２０２００７ｘ,  我的小铺  ,自然人,,440106,某宝,https://shop.example/6,,是,2026-10-06,",
            f"  {U6}  , ,\t 空格商行 \u3000,企业,吴测试, 440115 ,某宝, https://shop.example/7 ,存续,是,2026-10-07,2016-06-06",
            f"{U7},,<script>alert('x')</script>&amp;,企业,郑测试,440103,某宝,https://shop.example/8,存续,是,2026-10-08,2015-07-07",
            f"{U8},,@SUM(1+1)*cmd|' /C calc'!A0,企业,冯测试,440112,某宝,https://shop.example/9,存续,是,2026-10-09,2014-08-08",
        ],
        eol="\r\n",
    ).encode("gb18030")
    # amr penalties: a hostile decision number (the record key), a formula as a key, a lower-case
    # full-width USCC, a natural person's own name (PII: never stored). GB18030, LF.
    out["amr/2026-11-01/penalties.csv"] = _csv(
        [
            "行政处罚决定书文号,统一社会信用代码,证件号码,主体名称,违法行为类型,处罚类别,罚没金额(万元),处罚决定日期,公示截止期,状态",
            "'; DROP TABLE fact_credit_record; --,９２４４０１０４ｍａ５ｄ０ｃ０ｄ１ｍ,,Robert'); DROP TABLE students;--,虚假宣传,罚款,１.５,2026-10-15,2027-10-15,有效",
            f"穗市监罚〔2026〕1号,,{ID1},张测试,刷单炒信,警告,,2026-10-16,,有效",
            f'"=HYPERLINK(""http://x.example"",""y"")",{U5},,=1+1,其他,罚款,2,2026-10-17,—,有效',
        ]
    ).encode("gb18030")
    # amr operators of 11-02: a 1 MB field (the shop URL) and an ordinary row.
    out["amr/2026-11-02/operators.csv"] = _csv(
        [
            ops_header,
            f"{U9},,大字段商行,企业,陈测试,440106,某宝,https://shop.example/?q={'A' * BIG},存续,是,2026-11-01,2020-01-01",
            f"{U10},,普通商行,企业,陈测试,440106,某宝,https://shop.example/10,存续,是,2026-11-01,2020-01-01",
        ]
    ).encode("gb18030")
    # amr complaints: the last line is cut in the middle of a two-byte GBK character (no final LF).
    complaints = _csv(
        [
            "投诉编号,统一社会信用代码,证件号码,投诉人姓名,投诉人电话,投诉类别,登记日期,办结状态,先行赔付",
            f"T1,{U1},,王测试,13800000000,质量问题,2026-10-20,已办结,否",
            f"T2,{U2},,王测试,13800000001,虚假宣传,2026-10-21,办理中,是",
            f"T3,,{ID3},王测试,13800000002,物流,2026-10-22,已办结,否",
            f"T4,{U4},,王测试,13800000003,售后,2026-10-23,已办结,否",
        ]
    ).encode("gb18030")
    out["amr/2026-11-02/complaints.csv"] = (
        complaints + f"T5,{U5},,王测试,13800000004,质量问".encode("gb18030") + "题".encode("gb18030")[:1]
    )
    # amr lists: GB18030's own BOM (84 31 95 33) and characters only GB18030 has (4-byte sequences).
    out["amr/2026-11-03/lists.csv"] = "\ufeff".encode("gb18030") + _csv(
        [
            "名单类型,统一社会信用代码,证件号码,主体名称,列入原因,列入日期,移出日期",
            f"经营异常名录,{U1},,𠮷野家,通过登记的住所无法联系𪚥😀,2026-11-02,",
            f"严重违法失信名单,{U2},,某公司,䶮,2026-11-01,2026-11-03",
        ]
    ).encode("gb18030")
    # post: declared GBK, sent as UTF-8 with a BOM (Excel's "CSV UTF-8").
    out["post/2026-11-01/express_violations.csv"] = b"\xef\xbb\xbf" + _csv(
        [
            "记录编号,统一社会信用代码,证件号码,违规类型,处理日期,罚款金额(元)",
            f"E1,{U1},,虚假发货,2026年10月5日,500",
            f"E2,{U2},,延误投递,2026年9月30日,1200.00",
        ]
    ).encode("utf-8")
    # post 11-02: Excel's "Unicode text", UTF-16 LE with its BOM.
    post = [
        "记录编号,统一社会信用代码,证件号码,违规类型,处理日期,罚款金额(元)",
        f"E1,{U1},,虚假发货,2026年10月5日,500",
        f"E2,{U2},,延误投递,2026年9月30日,1200.00",
    ]
    out["post/2026-11-02/express_violations.csv"] = _csv(post, eol="\r\n").encode("utf-16")
    # post 11-03: the header names 统一社会信用代码 twice (which one is the operator?).
    out["post/2026-11-03/express_violations.csv"] = _csv(
        [
            "记录编号,统一社会信用代码,证件号码,违规类型,处理日期,罚款金额(元),统一社会信用代码",
            f"E1,{U1},,虚假发货,2026年10月5日,500,{U2}",
        ]
    ).encode("gb18030")
    # customs credit levels: a value nested 100,000 deep, a nested USCC, a number where a string is.
    out["customs/2026-11-01/enterprise_credit.jsonl"] = _csv(
        [
            json.dumps(
                {"USCC": U1, "CUSTOMS_CODE": "4401234567", "CREDIT_LEVEL": "认证企业", "EFFECTIVE_DATE": "20261001"},
                ensure_ascii=False,
            ),
            '{"USCC": ' + "[" * 100_000 + "]" * 100_000 + "}",
            json.dumps(
                {"USCC": {"value": U2}, "CREDIT_LEVEL": "失信企业", "EFFECTIVE_DATE": "20261001"}, ensure_ascii=False
            ),
            json.dumps(
                {"USCC": U2, "CUSTOMS_CODE": 4401234568, "CREDIT_LEVEL": "失信企业", "EFFECTIVE_DATE": "20261201"},
                ensure_ascii=False,
            ),
        ]
    ).encode("utf-8")
    return out


def _entry(folder: Path, name: str, rows) -> dict:
    return {"name": name, "rows": rows, "sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest()}


def lay_out(landing: Path) -> None:
    """The whole corpus as deliveries under ``landing`` (a new folder)."""
    shutil.copytree(COMMITTED, landing, dirs_exist_ok=True)
    for rel, data in generated().items():
        (landing / rel).parent.mkdir(parents=True, exist_ok=True)
        (landing / rel).write_bytes(data)
    for (dept, date), files in DELIVERIES.items():
        folder = landing / dept / date
        manifest = {"dept": dept, "date": date, "files": [_entry(folder, n, r) for n, r in files.items()]}
        if (dept, date) in UPPER_CASE_SHA:
            for e in manifest["files"]:
                e["sha256"] = e["sha256"].upper()
        (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
    # ndrc 2026-11-01: the committed manifest is cut off (not valid JSON).
    # ndrc 2026-11-02: JSON nested 100,000 deep.
    (landing / "ndrc/2026-11-02/manifest.json").write_text(
        '{"dept": "ndrc", "date": "2026-11-02", "files": ' + "[" * 100_000 + "]" * 100_000 + "}", "utf-8"
    )
    # gds 2026-11-02: one file listed twice (its rows would be read twice).
    folder = landing / "gds/2026-11-02"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "licenses.csv").write_bytes(
        (
            "行政许可决定书文号,统一社会信用代码,证件号码,许可证名称,有效期自,有效期至,许可状态\n"
            f"L9,{U1},,食品经营许可证,2026-01-01,2031-01-01,有效\n"
        ).encode()
    )
    (folder / "manifest.json").write_text(
        json.dumps({"dept": "gds", "date": "2026-11-02", "files": [_entry(folder, "licenses.csv", 1)] * 2}), "utf-8"
    )
    # ndrc 2026-11-03: the right SHA-256, but the row count as a string.
    folder = landing / "ndrc/2026-11-03"
    (folder / "manifest.json").write_text(
        json.dumps({"dept": "ndrc", "date": "2026-11-03", "files": [_entry(folder, "credit_lists.jsonl", "1")]}),
        "utf-8",
    )


if __name__ == "__main__":
    import sys

    lay_out(Path(sys.argv[1]))
