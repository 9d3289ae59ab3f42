"""Hostile text end to end: operator and enterprise names, decision and case numbers, an inspector,
a list reason, a run id and a delivery's extra column header that read as SQL or as spreadsheet
formulas go through the delivery gates, ingest (with the GX suites), the state build and publish
to the embedded SQLite warehouse and to PostgreSQL (127.0.0.1:5432, a database created and
dropped here), then the outbox, in-process on the session's SparkSession. They must arrive in the
warehouse unchanged (every statement binds its values), every table must still be there with the
expected rows, and in the outbox exactly the cells starting with = + - @ (or a tab or CR) are
prefixed with ' (line numbers, written as numbers, are never touched)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json

import pytest
from sqlalchemy import create_engine, inspect, select

from ecredit import pipeline
from ecredit.core import feeds, ids
from ecredit.core import rules as rules_mod
from ecredit.core import settings as settings_mod
from ecredit.outputs import outbox
from ecredit.warehouse import migrations, publish
from ecredit.warehouse import schema as wh
from tests.helpers import write_delivery

D = dt.date(2026, 11, 1)
DROP = "'; DROP TABLE operator_score; --"
DELETE = "Robert'); DELETE FROM quarantine;--"
HYPERLINK = '=HYPERLINK("http://evil","x")'
PLUS, MINUS, AT = "+1+1", "-2+3", "@SUM(A1)"
QUOTES = 'O\'Brien "the" back\\slash\x07bell 100%s :x ?'  # quotes, backslash, a control char, paramstyles
HOSTILE_NAMES = [DROP, DELETE, HYPERLINK, PLUS, MINUS, AT, QUOTES]
FORMULA = (HYPERLINK, PLUS, MINUS, AT)
CASE_ID = "A1'); DROP TABLE fact_credit_record; --"
DECISION = "穗天市监处罚〔2026〕1号'; DELETE FROM dim_operator WHERE '1'='1"
RUN_ID = "manual__x'); DROP TABLE pipeline_run; --"
INSPECTOR_NAME = "=cmd|' /C calc'!A0"
INSPECTOR_ID = "4401'; DROP TABLE inspector; --"
HEADER = 'x"; DROP TABLE dim_operator; --'


def _uscc(n: int) -> str:
    first17 = "91440106" + "".join(ids.USCC_ALPHABET[(n * 7 + k) % 31] for k in range(9))
    return first17 + ids.uscc_check_char(first17)


USCCS = [_uscc(i) for i in range(len(HOSTILE_NAMES) + 3)]
PLAIN = ["广州市华盛电子商务有限公司", "广州市恒信服饰有限公司", "广州市南粤食品有限公司"]
# personal data, clean and dirty, for the scan at the end


def _idno(first17: str) -> str:
    return first17 + ids.id_check_char(first17)


NP_ID = _idno("44010619900307123")
BAD_ID = NP_ID[:17] + ("1" if NP_ID[17] != "1" else "2")  # wrong check character: BAD_ID_NO
NP_SHOP, NP_OWN_NAME, LEGAL_REP = "晓燕好物小店", "黄晓燕", "欧阳志明"
COMPLAINANTS = [
    ("陈伟华", "13912345678"),
    ("李敏", "13800138000"),
    ("周丽娟", "13700001111"),
    ("郭建国", "15012340000"),
    ("叶思琪", "18612345678"),
    ("马超", "17700007777"),
]


def _landing(root):
    land = root / "landing"
    names = HOSTILE_NAMES + PLAIN
    ops = [
        [
            u,
            None,
            n,
            "企业",
            LEGAL_REP if i == 0 else "张三",
            "440106",
            "淘宝",
            f"https://shop{i}.taobao.com",
            "存续",
            "是",
            "2026-01-01",
            "2020-01-01",
        ]
        for i, (u, n) in enumerate(zip(USCCS, names))
    ]
    ops += [
        [None, NP_ID, NP_SHOP, "自然人", None, "440104", "抖音", None, None, "是", "2026-01-01", "2021-01-01"],
        [None, BAD_ID, "星辰家居好物", "自然人", None, "440104", "抖音", None, None, "是", "2026-01-01", "2021-01-01"],
    ]
    lists = [
        ["严重违法失信名单", u, None, n, f"{DELETE} 因刷单炒信受到较重行政处罚", "2026-10-01", None]
        for u, n in zip(USCCS, HOSTILE_NAMES)
    ]
    penalties = [
        [DECISION, USCCS[-1], None, PLAIN[-1], "虚假宣传", "罚款", "1.5", "2026-10-01", None, "有效"],
        # quarantined (a date that is none): its hostile decision number goes to rejections.csv
        [f"{HYPERLINK}〔2026〕2号", USCCS[-2], None, PLAIN[-2], "虚假宣传", "罚款", "1", "2026-13-45", None, "有效"],
        ["穗天市监处罚〔2026〕3号", None, NP_ID, NP_OWN_NAME, "虚假宣传", "警告", "0", "2026-10-02", None, "有效"],
    ]
    # clean rows enough to keep each file's quarantined share at or under 20 % (else rejected)
    penalties += [
        [f"穗天市监处罚〔2026〕{4 + i}号", u, None, n, "其他", "警告", "0", "2026-10-02", None, "有效"]
        for i, (u, n) in enumerate(zip(USCCS[-3:], PLAIN))
    ]
    complaints = [
        [
            f"12315202600000000{i:02d}",
            USCCS[-1],
            None,
            name,
            phone,
            "商品质量",
            "2026-02-30" if i == 1 else "2026-10-03",
            "已办结",
            "否",
        ]  # one quarantined (BAD_DATE)
        for i, (name, phone) in enumerate(COMPLAINANTS)
    ]
    inspectors = [
        [INSPECTOR_ID, INSPECTOR_NAME, "44123456789", f"{AT} 广州市市场监督管理局", "是"],
        ["4401000002", "李静", "44123456780", "广州市市场监督管理局", "是"],
        ["4401000003", "王强", "44123456781", "广州市市场监督管理局", "是"],
    ]
    write_delivery(
        land,
        "amr",
        D.isoformat(),
        {
            "operators.csv": ops,
            "lists.csv": lists,
            "penalties.csv": penalties,
            "inspectors.csv": inspectors,
            "complaints.csv": complaints,
        },
    )
    write_delivery(
        land,
        "psb",
        D.isoformat(),
        {
            "cases.jsonl": [
                {
                    "case_id": CASE_ID,
                    "uscc": USCCS[-3],
                    "id_no": None,
                    "case_type": "刷单炒信",
                    "filed_at": "2026-10-05T10:00:00+08:00",
                    "status": "立案侦查",
                }
            ]
        },
    )
    # cac: an extra column whose header is hostile (ignored with a warning)
    f = feeds.feed("cac", "pi_violations.csv")
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([*f.required_sources, HEADER])
    w.writerow(["WX2026000000001", USCCS[-1], None, PLAIN[-1], "个人信息泄露", "2026/10/03", "未整改", "x"])
    data = buf.getvalue().encode("utf-8-sig")
    folder = land / "cac" / D.isoformat()
    folder.mkdir(parents=True)
    (folder / "pi_violations.csv").write_bytes(data)
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "dept": "cac",
                "date": D.isoformat(),
                "files": [{"name": "pi_violations.csv", "rows": 1, "sha256": hashlib.sha256(data).hexdigest()}],
            }
        ),
        "utf-8",
    )


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, spark):
    root = tmp_path_factory.mktemp("injection")
    _landing(root)
    cfg = settings_mod.load({"CREDIT_DATA_DIR": str(root), "CREDIT_PII_KEY": "injection-test-key"})
    rule_set = rules_mod.load(cfg.rules_path)

    def three_accepted(stage, got):
        if stage == "gate":
            gates = {dept: g["status"] for dept, g in got.items()}
            assert [d for d, s in gates.items() if s == "accepted"] == ["amr", "cac", "psb"], gates

    pipeline.run_stages(spark, cfg, D, run_id=RUN_ID, rules=rule_set, after=three_accepted)
    return {"cfg": cfg, "root": root}


def _rows(url, table):
    with create_engine(url).connect() as c:
        return [dict(r._mapping) for r in c.execute(select(wh.metadata.tables[table]))]


EXPECTED_COUNTS = {
    "dim_operator": len(HOSTILE_NAMES) + len(PLAIN) + 1,
    "fact_credit_record": len(HOSTILE_NAMES) + 5 + 1 + 1,
    "serious_dishonest_list": len(HOSTILE_NAMES),
    "dishonest_list_change": len(HOSTILE_NAMES),
    "inspector": 3,
    "quarantine": 3,
    "pipeline_run": 1,
    "feed_status": len(feeds.DEPARTMENTS),
    "operator_score": len(HOSTILE_NAMES) + len(PLAIN) + 1,
}


def check_warehouse(url):
    tables = set(inspect(create_engine(url)).get_table_names())
    assert set(wh.metadata.tables) <= tables  # nothing dropped
    counts = {t: len(_rows(url, t)) for t in EXPECTED_COUNTS}
    assert counts == EXPECTED_COUNTS
    assert sorted(r["name"] for r in _rows(url, "dim_operator")) == sorted(HOSTILE_NAMES + PLAIN + [NP_SHOP])
    assert sorted(r["name"] for r in _rows(url, "serious_dishonest_list")) == sorted(HOSTILE_NAMES)
    measures = [r["operator_key"] for r in _rows(url, "supervision_measure")]
    assert all(measures.count(u) == 9 for u in USCCS[: len(HOSTILE_NAMES)])  # on the serious list: all nine
    assert {r["name"] for r in _rows(url, "risk_alert")} >= set(HOSTILE_NAMES)
    keys = {r["record_key"] for r in _rows(url, "fact_credit_record")}
    assert f"amr:penalties:{DECISION}" in keys and f"psb:cases:{CASE_ID}" in keys
    insp = {r["inspector_id"]: r for r in _rows(url, "inspector")}
    assert insp[INSPECTOR_ID]["name"] == INSPECTOR_NAME and insp[INSPECTOR_ID]["unit"].startswith(AT)
    assert [r["run_id"] for r in _rows(url, "pipeline_run")] == [RUN_ID]
    warnings = json.loads(_rows(url, "pipeline_run")[0]["warnings"])
    assert any(repr(HEADER) in w for w in warnings), warnings
    [q] = [q for q in _rows(url, "quarantine") if q["feed"] == "penalties"]
    assert json.loads(q["payload"])["行政处罚决定书文号"] == f"{HYPERLINK}〔2026〕2号"


def test_hostile_text_arrives_unchanged_in_sqlite(hostile):
    check_warehouse(hostile["cfg"].warehouse_url)


@pytest.mark.postgres
def test_hostile_text_arrives_unchanged_in_postgresql(hostile):
    from tests.integration.test_warehouse_postgres import ADMIN, PIPELINE, _server_up, drop_database, new_database

    if not _server_up():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable; install and start postgresql")
    name = new_database()
    try:
        migrations.migrate(wh.engine_for(ADMIN.format(db=name)))
        url = PIPELINE.format(db=name)
        cfg = settings_mod.load(
            {
                "CREDIT_DATA_DIR": str(hostile["root"]),
                "CREDIT_PII_KEY": "injection-test-key",
                "CREDIT_WAREHOUSE_URL": url,
            }
        )
        publish.publish_run(cfg, D, RUN_ID)  # COPY into the staging tables, then the swap
        check_warehouse(url)
        publish.publish_run(cfg, D, RUN_ID)  # and again: D's rows replaced, nothing doubled
        assert len(_rows(url, "dim_operator")) == EXPECTED_COUNTS["dim_operator"]
        assert len(_rows(url, "pipeline_run")) == 2
    finally:
        drop_database(name)


def _cells(path):
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))


def test_outbox_cells_are_neutralised_exactly_when_they_start_a_formula(hostile):
    out = hostile["cfg"].outbox_dir
    files = sorted(out.rglob("*.csv"))
    assert len(files) == len(feeds.DEPARTMENTS) * 2 + 3  # changes + measures for each, 3 rejections.csv
    for p in files:
        for row in _cells(p):
            for cell in row:
                assert not cell.startswith(outbox.FORMULA_START), (p.name, cell)
    changes = _cells(out / "ndrc" / D.isoformat() / "serious_dishonest_changes.csv")
    assert changes[0] == ["operator_key", "name", "record_type", "change"]
    want = {u: ("'" + n if n in FORMULA else n) for u, n in zip(USCCS, HOSTILE_NAMES)}
    assert {r[0]: r[1] for r in changes[1:]} == want  # every name, neutralised or kept verbatim
    measures = _cells(out / "amr" / D.isoformat() / "measures.csv")
    assert {r[0]: r[1] for r in measures[1:] if r[0] in want} == want
    assert all([r[0] for r in measures[1:]].count(u) == 3 for u in want)  # amr's three class-D measures
    header, *rows = _cells(out / "amr" / D.isoformat() / "rejections.csv")
    assert header == ["file", "line", "severity", "reasons", "content"] and len(rows) == 3
    [rejected] = [r for r in rows if r[0] == "penalties.csv"]
    assert rejected[:4] == ["penalties.csv", "3", "error", "BAD_DATE"]  # the line number is a number, untouched
    assert json.loads(rejected[4])["行政处罚决定书文号"] == f"{HYPERLINK}〔2026〕2号"  # inside JSON: not a formula
    # the extra column's hostile header: a warning at line 1, inside JSON, neutralised by nothing
    [extra] = _cells(out / "cac" / D.isoformat() / "rejections.csv")[1:]
    assert (
        extra[:4] == ["pi_violations.csv", "1", "warning", "EXTRA_COLUMN"]
        and repr(HEADER) in json.loads(extra[4])["detail"]
    )


def test_neutralise_rules():
    n = outbox.neutralise
    for s in ("=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "-5", "＝1+1", "＋1", "－1", "＠SUM(A1)"):
        assert n(s) == "'" + s
    for s in ("", "a=1", " =1", "'=1", '{"a": "=1"}', "NP-0123", "91440106MA59AAAA0X"):
        assert n(s) == s
    # numbers written as numbers (the line column) are never prefixed, negative ones included
    assert n(3) == "3" and n(-5) == "-5" and n(None) == ""


def test_no_personal_data_leaks_from_the_dirty_rows(hostile):
    """The same in-process run holds personal data, clean and dirty (an ID number with a wrong
    check character, complainants' names and phones in a quarantined row, a natural person named
    by her own name, a legal representative): `scan-pii` over its warehouse, lake (Data Docs
    included) and outbox finds none of it."""
    from ecredit.ops import scan_pii
    from ecredit.quality import expectations

    cfg = hostile["cfg"]
    expectations.build_docs(cfg, D)
    report = scan_pii.scan(cfg, env={"AIRFLOW_HOME": str(hostile["root"] / "no-airflow")})
    n = report.needles
    assert n.ids == {NP_ID, BAD_ID} and n.phones == {p for _, p in COMPLAINANTS}
    assert {NP_OWN_NAME, LEGAL_REP, "张三", *(c for c, _ in COMPLAINANTS)} <= set(n.names)
    assert [k for k, _ in scan_pii.find(f" {BAD_ID} ", n)] == ["id_no"]  # not by pattern
    assert report.scanned["lake"]["parquet files"] > 5 and report.scanned["outbox"]["files"] > 10
    assert any(p.suffix == ".html" for p in (cfg.lake_dir / "data_docs").rglob("*"))
    assert report.hits == [], report.render()


def test_rotating_the_pii_key_as_security_md_says(hostile, spark):
    """Last in this module (it re-keys the run): a new CREDIT_PII_KEY is refused while the parse
    cache holds the old key's NP- keys; after removing lake/parsed and rerunning the date, every
    natural person has the new key and the old one is gone from the warehouse."""
    import shutil

    from ecredit.core.settings import SettingError

    root, old = hostile["root"], hostile["cfg"]
    env = {"CREDIT_DATA_DIR": str(root), "CREDIT_PII_KEY": "injection-test-key-rotated"}
    settings_mod.load({"CREDIT_DATA_DIR": str(root), "CREDIT_PII_KEY": old.pii_key}, check_landing=True)  # fine
    with pytest.raises(SettingError, match="^CREDIT_PII_KEY is not the key"):
        settings_mod.load(env, check_landing=True)
    shutil.rmtree(old.lake_dir / "parsed")  # the procedure: remove the cache, backfill with the new key
    cfg = settings_mod.load(env, check_landing=True)
    pipeline.run_stages(spark, cfg, D, run_id="rotation", stages=("ingest", "build", "publish"))
    old_key, new_key = ids.np_key(NP_ID, old.pii_key), ids.np_key(NP_ID, cfg.pii_key)
    ops = {r["operator_key"]: r["name"] for r in _rows(cfg.warehouse_url, "dim_operator")}
    assert ops[new_key] == NP_SHOP and old_key not in ops
    for table in ("fact_credit_record", "operator_score"):
        keys = {r["operator_key"] for r in _rows(cfg.warehouse_url, table)}
        assert new_key in keys and old_key not in keys, table
    settings_mod.load(env, check_landing=True)  # the new key is now the cache's
