"""``ecredit scan-pii`` on small hand-made locations: the needles it collects from a landing zone,
a planted value found in each kind of location (warehouse table, outbox CSV, lake Parquet and
JSON, Airflow task log, XCom and rendered fields), nothing on clean data, and a report that never
prints a matched value. Also: the settings never show the secrets, production refuses the demo
ones, and the Spark operator keeps the PII key out of its rendered (stored, shown) fields."""

from __future__ import annotations

import json
import sqlite3
import warnings

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecredit.core import ids
from ecredit.core import settings as settings_mod
from ecredit.ops import cli, scan_pii
from tests.helpers import write_delivery

KEY = "unit-test-pii-key-7f3a-0123456789abcdef"
DRAW = "unit-test-draw-secret-91c2-0123456789abcdef"
USCC = "91440101MA59AAAA0X"  # check character fixed below
NP_ID = "440106199003071234"  # check character fixed below
OWNER_ID = "440104198512120015"
PHONE = "13912345678"
LEGAL_REP = "欧阳志明"  # 4 characters
COMPLAINANT = "陈伟"  # 2 characters: matched as a whole run only
NP_OWN_NAME = "黄晓燕"  # a natural person named by her own name in penalties.csv
SHOP = "华盛服饰小店"  # the natural person's shop (registry name: not personal)
INSPECTOR = "李静"  # staff data, published


def _uscc(first17: str) -> str:
    return first17 + ids.uscc_check_char(first17)


def _id(first17: str) -> str:
    return first17 + ids.id_check_char(first17)


USCC = _uscc(USCC[:17])
NP_ID = _id(NP_ID[:17])
OWNER_ID = _id(OWNER_ID[:17])
OTHER_VALID_ID = _id("44010519770405123")  # in no landing file: found by the pattern


@pytest.fixture()
def landing(tmp_path):
    root = tmp_path / "data"
    land = root / "landing"
    write_delivery(
        land,
        "amr",
        "2026-11-01",
        {
            "operators.csv": [
                [
                    USCC,
                    None,
                    "广州市华盛电子商务有限公司",
                    "企业",
                    LEGAL_REP,
                    "440106",
                    "淘宝",
                    "https://shop1.taobao.com",
                    "存续",
                    "是",
                    "2026-01-01",
                    "2020-01-01",
                ],
                [None, NP_ID, SHOP, "自然人", None, "440104", "抖音", None, None, "是", "2026-01-01", "2021-01-01"],
            ],
            "penalties.csv": [
                [
                    "穗天市监处罚〔2026〕1号",
                    None,
                    NP_ID,
                    NP_OWN_NAME,
                    "虚假宣传",
                    "罚款",
                    "1.5",
                    "2026-10-01",
                    None,
                    "有效",
                ],
                [
                    "穗天市监处罚〔2026〕2号",
                    USCC,
                    OWNER_ID,
                    "广州市华盛电子商务有限公司",
                    "其他",
                    "警告",
                    "0",
                    "2026-10-02",
                    None,
                    "有效",
                ],
            ],
            "complaints.csv": [
                ["1231520260000000001", USCC, None, COMPLAINANT, PHONE, "商品质量", "2026-10-03", "已办结", "否"],
                ["1231520260000000002", USCC, None, INSPECTOR, "13800000000", "商品质量", "2026-10-03", "已办结", "否"],
            ],
            "inspectors.csv": [["44010000001", INSPECTOR, "44123456789", "广州市市场监督管理局", "是"]],
        },
    )
    return root


def cfg_for(root, key=KEY, draw=DRAW):
    return settings_mod.load({"CREDIT_DATA_DIR": str(root), "CREDIT_PII_KEY": key, "CREDIT_DRAW_SECRET": draw})


def af_env(root):
    return {"AIRFLOW_HOME": str(root / "airflow")}


def clean_locations(root):
    """Every kind of location with legitimate content only: registry names, NP- keys, USCCs,
    record numbers, hashes, dates, timestamps."""
    np_key = ids.np_key(NP_ID, KEY)
    wh = sqlite3.connect(root / "warehouse.db")
    wh.execute("CREATE TABLE dim_operator (operator_key TEXT, uscc TEXT, name TEXT, established_date DATE, n INTEGER)")
    wh.executemany(
        "INSERT INTO dim_operator VALUES (?, ?, ?, ?, ?)",
        [(USCC, USCC, "广州市华盛电子商务有限公司", "2020-01-01", 3), (np_key, None, SHOP, "2021-01-01", 1)],
    )
    wh.execute("CREATE TABLE quarantine (payload TEXT, reasons TEXT)")
    wh.execute(
        "INSERT INTO quarantine VALUES (?, ?)",
        (
            json.dumps({"证件号码": "*" * 18, "投诉人电话": "*" * 11, "主体名称": "*" * 3}, ensure_ascii=False),
            "BAD_ID_NO",
        ),
    )
    wh.commit()
    wh.close()
    out = root / "outbox" / "amr" / "2026-11-01"
    out.mkdir(parents=True)
    (out / "measures.csv").write_text(
        f"operator_key,name,final_class,measure_code\r\n{np_key},{SHOP},D,M1\r\n"
        f"{USCC},广州市华盛电子商务有限公司,C,M2\r\n",
        "utf-8-sig",
    )
    lake = root / "lake" / "gold" / "2026-11-01"
    lake.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "operator_key": [np_key, USCC],
                "name": [SHOP, "广州市华盛电子商务有限公司"],
                "source_line": [1, 2],
                "record_no": [1231520260000000001, 7],
            }
        ),
        lake / "part-0.parquet",
    )
    (lake / "_published.json").write_text(
        json.dumps({"sha256": "9f" * 32, "at": "2026-11-27T11:10:44.123456+08:00", "ms": 1764547200000})
    )
    logs = root / "airflow" / "logs" / "dag_id=x" / "run_id=y" / "task_id=publish"
    logs.mkdir(parents=True)
    (logs / "attempt=1.log").write_text(
        "[2026-11-27T11:10:44.123+0000] {publish.py:12} INFO - published 1520 rows for 2026-11-01; "
        f"file_sha=3f1c{'0' * 11}a{'1' * 18}b, case A440106202600001234, operator {np_key}\n",
        "utf-8",
    )
    af = sqlite3.connect(root / "airflow" / "airflow.db")
    af.execute("CREATE TABLE xcom (dag_id TEXT, key TEXT, value TEXT)")
    af.execute(
        "INSERT INTO xcom VALUES ('ecommerce_credit_daily', 'return_value', ?)",
        (json.dumps({"dept": "amr", "status": "ok", "rows_quarantined": 0}),),
    )
    af.execute("CREATE TABLE rendered_task_instance_fields (task_id TEXT, rendered_fields TEXT)")
    af.execute(
        "INSERT INTO rendered_task_instance_fields VALUES ('ingest', ?)",
        (json.dumps({"application_args": ["--date", "2026-11-01"], "env_vars": None}),),
    )
    af.commit()
    af.close()


def test_a_malformed_row_does_not_make_a_persons_name_pass_for_a_non_personal_value(landing):
    """A row missing fields is read by the header's positions: a person's name may sit under a
    non-personal column there (名单类型 below). It must not join the non-personal values, or the
    name would be searched no more (issue 14: the header tests' shifted rows did exactly that)."""
    write_delivery(
        landing / "landing",
        "amr",
        "2026-11-02",
        {
            "lists.csv": [
                ["严重违法失信名单", None, NP_ID, "司马测试", "刷单炒信", "2026-10-01", None],
                ["司马测试", "刷单炒信", "2026-10-01", None],  # MALFORMED: 4 fields, the header has 7
            ]
        },
    )
    n = scan_pii.collect_needles(cfg_for(landing))
    assert n.names.get("司马测试") == "name:natural_person"


def test_needles_are_the_personal_values_of_the_landing_zone(landing):
    n = scan_pii.collect_needles(cfg_for(landing))
    assert n.ids == {NP_ID, OWNER_ID}
    assert n.phones == {PHONE, "13800000000"}
    assert n.certificates == {"44123456789"}  # the inspector's 执法证号: never published
    assert n.names == {LEGAL_REP: "name:legal_rep", COMPLAINANT: "name:complainant", NP_OWN_NAME: "name:natural_person"}
    # the company's name in penalties.csv and the natural person's shop name are not personal
    assert SHOP not in n.names and "广州市华盛电子商务有限公司" not in n.names
    # a complainant who shares the inspector's (published) name cannot be told apart: counted
    assert INSPECTOR not in n.names
    assert n.skipped["names equal to a non-personal value (e.g. an inspector's name)"] == 1
    assert n.names_inside == {LEGAL_REP, NP_OWN_NAME}  # 3+ characters; 陈伟 only as a whole run
    assert set(n.secrets.values()) == {scan_pii.PII_KEY, scan_pii.DRAW_SECRET}


def test_nothing_found_in_clean_locations(landing):
    clean_locations(landing)
    report = scan_pii.scan(cfg_for(landing), env=af_env(landing))
    assert report.hits == []
    assert report.absent == []
    assert report.scanned["warehouse"]["tables"] == 2 and report.scanned["airflow-db"]["tables"] == 2
    assert report.scanned["lake"]["parquet files"] == 1 and report.scanned["airflow-logs"]["files"] == 1
    assert report.scanned["outbox"]["files"] == 1


def _planted(landing, location, plant) -> list:
    clean_locations(landing)
    plant(landing)
    report = scan_pii.scan(cfg_for(landing), env=af_env(landing))
    return [(h.location, h.kind) for h in report.hits]


def _sql(path, sql, *params):
    c = sqlite3.connect(path)
    c.execute(sql, params)
    c.commit()
    c.close()


def test_id_number_in_a_parquet_file(landing):
    def plant(root):
        pq.write_table(
            pa.table({"payload": [json.dumps({"证件号码": NP_ID})], "n": [1]}),
            root / "lake" / "gold" / "2026-11-01" / "part-1.parquet",
        )

    assert _planted(landing, "lake", plant) == [("lake:gold/2026-11-01/part-1.parquet:payload", "id_no")]


def test_phone_in_an_outbox_csv(landing):
    def plant(root):
        p = root / "outbox" / "amr" / "2026-11-01" / "rejections.csv"
        p.write_text(
            f'file,line,reasons,content\r\ncomplaints.csv,2,BAD_DATE,"{{""投诉人电话"": ""{PHONE}""}}"\r\n', "utf-8-sig"
        )

    assert _planted(landing, "outbox", plant) == [("outbox:amr/2026-11-01/rejections.csv:2", "phone")]


def test_name_in_an_airflow_task_log(landing):
    def plant(root):
        log = next((root / "airflow" / "logs").rglob("*.log"))
        log.write_text(
            log.read_text("utf-8") + f"WARNING - legal representative {LEGAL_REP} is missing\n"
            f"INFO - complainant {COMPLAINANT}, own name inside text: 当事人{NP_OWN_NAME}经营\n",
            "utf-8",
        )

    got = _planted(landing, "logs", plant)
    where = "airflow-logs:dag_id=x/run_id=y/task_id=publish/attempt=1.log"
    assert got == [
        (f"{where}:2", "name:legal_rep"),
        (f"{where}:3", "name:complainant"),
        (f"{where}:3", "name:natural_person"),
    ]


def test_name_and_id_in_an_xcom_row_and_the_key_in_rendered_fields(landing):
    def plant(root):
        db = root / "airflow" / "airflow.db"
        _sql(
            db, "INSERT INTO xcom VALUES ('d', 'return_value', ?)", json.dumps({"party": NP_OWN_NAME, "id": OWNER_ID})
        )  # ensure_ascii: \\u escapes are decoded
        _sql(
            db,
            "INSERT INTO rendered_task_instance_fields VALUES ('ingest', ?)",
            json.dumps({"env_vars": {"CREDIT_PII_KEY": KEY}}),
        )

    got = _planted(landing, "airflow-db", plant)
    assert sorted(got) == [
        ("airflow-db:rendered_task_instance_fields.rendered_fields", "secret:CREDIT_PII_KEY"),
        ("airflow-db:xcom.value", "id_no"),
        ("airflow-db:xcom.value", "name:natural_person"),
    ]


def test_id_number_and_phone_patterns_in_a_warehouse_table(landing):
    def plant(root):
        # values in no landing file: found by the ID-number and mobile patterns; full-width digits too
        _sql(
            root / "warehouse.db",
            "INSERT INTO dim_operator VALUES (?, ?, ?, ?, ?)",
            "x",
            None,
            f"店主{OTHER_VALID_ID.translate(str.maketrans('0123456789', '０１２３４５６７８９'))}",
            None,
            15012345678,
        )

    assert sorted(_planted(landing, "warehouse", plant)) == [
        ("warehouse:dim_operator.n", "phone(pattern)"),
        ("warehouse:dim_operator.name", "id_no(pattern)"),
    ]


def test_quarantine_with_an_unmasked_legal_rep_and_the_draw_secret_in_the_lake(landing):
    def plant(root):
        _sql(
            root / "warehouse.db",
            "INSERT INTO quarantine VALUES (?, ?)",
            json.dumps({"法定代表人": LEGAL_REP}, ensure_ascii=False),
            "BAD_DATE",
        )
        (root / "lake" / "gold" / "2026-11-01" / "draw.json").write_text(json.dumps({"secret": DRAW}))

    assert sorted(_planted(landing, "quarantine", plant)) == [
        ("lake:gold/2026-11-01/draw.json", "secret:CREDIT_DRAW_SECRET"),
        ("warehouse:quarantine.payload", "name:legal_rep"),
    ]


def test_inspector_certificate_in_the_inspector_table(landing):
    def plant(root):
        _sql(root / "warehouse.db", "CREATE TABLE inspector (inspector_id TEXT, name TEXT, cert TEXT)")
        _sql(root / "warehouse.db", "INSERT INTO inspector VALUES (?, ?, ?)", "44010000001", INSPECTOR, "44123456789")

    assert _planted(landing, "warehouse", plant) == [("warehouse:inspector.cert", "inspector_certificate")]


def test_legitimate_lookalikes_are_not_hits():
    n = scan_pii.Needles(ids={NP_ID}, phones={PHONE}, names={"陈伟": "name:complainant"})
    sha = "a" + "1" * 18 + "b" + "13912345678".join("cd")  # digit runs inside a hash touch letters
    all_digit_uscc = _uscc("91440101" + "123456789")  # a USCC of digits only: 91 is no province
    assert ids.uscc_valid(all_digit_uscc)
    for text in (
        sha,
        all_digit_uscc,
        "1231520260000000001",
        "2026-11-01T02:00:00+08:00 1764547200000",
        "陈伟华盛有限公司",
        "NP-" + "1" * 16,
        "4401" + "1" * 7,
        "9" + NP_ID,
        NP_ID[:17] + "1" + "2",
    ):
        assert list(scan_pii.find(text, n)) == [], text
    assert [k for k, _ in scan_pii.find(f"({NP_ID})", n)] == ["id_no"]
    assert [k for k, _ in scan_pii.find("投诉人：陈伟。", n)] == ["name:complainant"]
    # a wrong check character or an impossible date is not an ID number by pattern
    bad = OTHER_VALID_ID[:17] + ("1" if OTHER_VALID_ID[17] != "1" else "2")
    assert not scan_pii.id_pattern(bad) and not scan_pii.id_pattern(_id("44010519770231123"))
    assert scan_pii.id_pattern(OTHER_VALID_ID)


def test_report_and_cli_never_print_a_matched_value(landing, capsys, monkeypatch):
    clean_locations(landing)
    _sql(
        landing / "warehouse.db",
        "INSERT INTO dim_operator VALUES (?, ?, ?, ?, ?)",
        KEY,
        OWNER_ID,
        f"{LEGAL_REP} {PHONE}",
        None,
        None,
    )
    monkeypatch.setenv("AIRFLOW_HOME", str(landing / "airflow"))
    monkeypatch.setenv("CREDIT_PII_KEY", KEY)
    monkeypatch.setenv("CREDIT_DRAW_SECRET", DRAW)
    for var in (
        "CREDIT_LANDING_DIR",
        "CREDIT_LAKE_DIR",
        "CREDIT_OUTBOX_DIR",
        "CREDIT_WAREHOUSE_URL",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER",
    ):
        monkeypatch.delenv(var, raising=False)
    assert cli.main(["scan-pii", "--data-dir", str(landing)]) == 1
    out = capsys.readouterr().out
    for value in (KEY, OWNER_ID, LEGAL_REP, PHONE):
        assert value not in out
    assert f"HIT warehouse:dim_operator.operator_key: secret:CREDIT_PII_KEY <{len(KEY)} characters>" in out
    assert "HIT warehouse:dim_operator.uscc: id_no 4*****************" in out
    assert "HIT warehouse:dim_operator.name: name:legal_rep ****" in out
    assert "HIT warehouse:dim_operator.name: phone 1**********" in out
    assert out.rstrip().endswith("4 hits")
    _sql(landing / "warehouse.db", "DELETE FROM dim_operator WHERE operator_key = ?", KEY)
    assert cli.main(["scan-pii", "--data-dir", str(landing)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("no personal data or secret found")


def test_settings_never_show_the_secrets_and_production_refuses_the_demo_ones(tmp_path):
    s = settings_mod.load({"CREDIT_DATA_DIR": str(tmp_path), "CREDIT_PII_KEY": KEY, "CREDIT_DRAW_SECRET": DRAW})
    assert KEY not in repr(s) and DRAW not in repr(s) and KEY not in str(s)
    for env in (
        {"CREDIT_PII_KEY": settings_mod.DEMO_PII_KEY, "CREDIT_DRAW_SECRET": DRAW},
        {"CREDIT_PII_KEY": KEY, "CREDIT_DRAW_SECRET": settings_mod.DEMO_DRAW_SECRET},
        {"CREDIT_PII_KEY": "", "CREDIT_DRAW_SECRET": DRAW},
    ):
        with pytest.raises(settings_mod.SettingError) as e:
            settings_mod.load({"CREDIT_ENV": "production", **env})
        assert settings_mod.DEMO_PII_KEY not in str(e.value) and settings_mod.DEMO_DRAW_SECRET not in str(e.value)
    assert (
        settings_mod.load({"CREDIT_ENV": "production", "CREDIT_PII_KEY": KEY, "CREDIT_DRAW_SECRET": DRAW}).pii_key
        == KEY
    )


def test_spark_operator_keeps_the_pii_key_out_of_its_rendered_fields(airflow_home, tmp_path, monkeypatch):
    """The settings reach spark-submit's environment through the hook only: the templated field
    ``env_vars`` (stored in rendered_task_instance_fields, shown as "Rendered Template") stays
    the DAG author's, also after an attempt (a retry in the same process re-renders the same
    object). Airflow's masker would not hide a key named CREDIT_PII_KEY."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
    from airflow.sdk._shared.secrets_masker import should_hide_value_for_key
    from airflow.sdk.execution_time.task_runner import _serialize_rendered_fields

    from ecredit.airflow.operators import EcreditSparkSubmitOperator

    assert not should_hide_value_for_key("CREDIT_PII_KEY")  # why the key must stay out of the fields
    for k, v in {"CREDIT_DATA_DIR": str(tmp_path), "CREDIT_PII_KEY": KEY, "CREDIT_DRAW_SECRET": DRAW}.items():
        monkeypatch.setenv(k, v)
    submitted = []
    monkeypatch.setattr(SparkSubmitHook, "submit", lambda self, application="", **kw: submitted.append(self._env_vars))
    op = EcreditSparkSubmitOperator(task_id="ingest", job="ingest.py", run_date="2026-11-01", env_vars={"MY_VAR": "1"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _attempt in (1, 2):
            try:
                op.execute({})
            except Exception:
                pass
    assert submitted and all(env["CREDIT_PII_KEY"] == KEY and env["MY_VAR"] == "1" for env in submitted)
    rendered = json.dumps(_serialize_rendered_fields(op))
    assert KEY not in rendered and DRAW not in rendered
    assert json.loads(rendered)["env_vars"] == {"MY_VAR": "1"}


def test_a_pii_key_other_than_the_parse_caches_is_a_wrong_setting(tmp_path):
    """The parsed rows cached in the lake carry NP- keys of the key that parsed them: a run with
    another key would give one person two keys. The first check records the key's fingerprint."""
    env = {"CREDIT_DATA_DIR": str(tmp_path), "CREDIT_PII_KEY": KEY}
    (tmp_path / "landing").mkdir()
    settings_mod.load(env, check_landing=True)  # no cache yet: nothing recorded
    mark = tmp_path / "lake" / "parsed" / settings_mod.PII_KEY_MARK
    assert not mark.exists()
    mark.parent.mkdir(parents=True)
    settings_mod.load(env, check_landing=True)
    assert KEY not in mark.read_text("utf-8") and json.loads(mark.read_text("utf-8"))["fingerprint"]
    settings_mod.load(env, check_landing=True)  # the same key: fine
    settings_mod.load({**env, "CREDIT_PII_KEY": "another-key-entirely"})  # a load that reads no lake: fine
    with pytest.raises(settings_mod.SettingError, match="^CREDIT_PII_KEY is not the key") as e:
        settings_mod.load({**env, "CREDIT_PII_KEY": "another-key-entirely"}, check_landing=True)
    assert "another-key-entirely" not in str(e.value) and KEY not in str(e.value)


def test_inspector_certificate_may_stay_where_the_sender_reads_it(landing):
    """A quarantined roster row keeps its 执法证号 for amr (who sent it) and the operators."""

    def plant(root):
        _sql(
            root / "warehouse.db",
            "INSERT INTO quarantine VALUES (?, ?)",
            json.dumps({"执法证号": "44123456789"}),
            "BAD_ENUM",
        )
        p = root / "outbox" / "amr" / "2026-11-01" / "rejections.csv"
        p.write_text(
            'file,line,reasons,content\r\ninspectors.csv,2,BAD_ENUM,"{""执法证号"": ""44123456789""}"\r\n', "utf-8-sig"
        )
        (root / "outbox" / "ndrc" / "2026-11-01").mkdir(parents=True)
        p.replace(root / "outbox" / "ndrc" / "2026-11-01" / "measures.csv")
        p.write_text(
            'file,line,reasons,content\r\ninspectors.csv,2,BAD_ENUM,"{""执法证号"": ""44123456789""}"\r\n', "utf-8-sig"
        )

    assert _planted(landing, "quarantine", plant) == [
        ("outbox:ndrc/2026-11-01/measures.csv:2", "inspector_certificate")
    ]


def test_tasks_register_the_secrets_with_airflows_masker(airflow_home, tmp_path, monkeypatch):
    from airflow.sdk._shared.secrets_masker import redact

    from ecredit.airflow.callbacks import setting_errors_fail_fast

    key, draw, password = "masker-only-key-3b9d", "masker-only-draw-8e2f", "pw-unit-7c1e"  # new to this process
    for k, v in {
        "CREDIT_DATA_DIR": str(tmp_path),
        "CREDIT_PII_KEY": key,
        "CREDIT_DRAW_SECRET": draw,
        "CREDIT_WAREHOUSE_URL": f"postgresql+psycopg://ecredit_pipeline:{password}@db:5432/ecredit",
    }.items():
        monkeypatch.setenv(k, v)
    line = f"key {key}, secret {draw}, url postgresql+psycopg://ecredit_pipeline:{password}@db"
    assert redact(line) == line  # unknown to the masker until a task registers them
    with setting_errors_fail_fast():  # what every Python task of the DAG runs in
        pass
    assert redact(line) == "key ***, secret ***, url postgresql+psycopg://ecredit_pipeline:***@db"
