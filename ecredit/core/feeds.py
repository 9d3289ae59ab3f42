"""The feed registry: ``feeds.md`` as data.

Every department file the pipeline reads is described here once: its file name, format, encoding,
date format, columns in file order (Chinese header or JSON field, canonical English name, kind),
record key, event date and the column that decides the record type. The generator, the parser, the
quality rules and the canonical mapping all read this registry; adding a department touches this
file, its suite and the generator, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

# Column kinds. A kind says how a raw value is parsed and checked.
STR = "str"  # free text
USCC = "uscc"  # 统一社会信用代码
ID_NO = "id_no"  # 证件号码 (PII: never leaves ingestion)
DATE = "date"  # a date in the feed's date format
MONTH = "month"  # YYYY-MM (评价月份)
TIMESTAMP = "timestamp"  # ISO-8601 with offset (psb filed_at)
DECIMAL = "decimal"  # non-negative decimal amount
INT = "int"  # non-negative integer count
SCORE = "score"  # evaluation indicator 0..100 (decimal)
ENUM = "enum"  # one of ``values``
PII = "pii"  # personal data that is dropped at the door (consumer names, phones, legal reps)
DISTRICT = "district"  # 6-digit division code, 4401xx

# The canonical tables that feeds map to.
OPERATORS = "operators"
CREDIT = "credit_records"
EVALUATIONS = "evaluations"
SPOT_CHECKS = "spot_checks"
COMPLAINTS = "complaints"
LICENCES = "licences"
INSPECTORS = "inspectors"

YES_NO = ("是", "否")


@dataclass(frozen=True)
class Column:
    source: str  # the CSV header or JSON field, exactly as sent
    name: str  # canonical English name
    kind: str = STR
    values: tuple[str, ...] = ()  # for ENUM
    required: bool = False  # MISSING_REQUIRED when null (key, event date, type-deciding, ...)
    optional_in_header: bool = False  # may be absent from the header (the 撤销 column)


@dataclass(frozen=True)
class Feed:
    dept: str
    file: str
    fmt: str  # "csv" or "jsonl"
    encoding: str  # python codec used to decode: "gb18030", "utf-8-sig", "utf-8"
    declared_encoding: str  # what feeds.md declares: "GBK", "UTF-8 with BOM", "UTF-8"
    date_format: str  # key of DATE_FORMATS
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # canonical names; "operator_key" is the derived operator key
    table: str
    event_date: str | None = None
    type_column: str | None = None  # the column that decides the record type
    status_column: str | None = None
    identifiers: tuple[str, ...] = ("uscc", "id_no")  # columns that name the operator
    names_natural_person: str | None = None  # a name column that may be a person's own

    @property
    def stem(self) -> str:
        return self.file.rsplit(".", 1)[0]

    @property
    def feed_id(self) -> str:
        return f"{self.dept}.{self.stem}"

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.feed_id} has no column {name!r}")

    @property
    def required_sources(self) -> tuple[str, ...]:
        """Header fields that must be present (schema drift otherwise)."""
        return tuple(c.source for c in self.columns if not c.optional_in_header)


# Date formats: regular expression with groups (year, month, day) and a label for messages.
DATE_FORMATS = {
    "iso": (r"^(\d{4})-(\d{2})-(\d{2})$", "YYYY-MM-DD"),
    "slash": (r"^(\d{4})/(\d{2})/(\d{2})$", "YYYY/MM/DD"),
    "compact": (r"^(\d{4})(\d{2})(\d{2})$", "YYYYMMDD"),
    "chinese": (r"^(\d{4})年(\d{1,2})月(\d{1,2})日$", "YYYY年M月D日"),
}

_ID = (Column("统一社会信用代码", "uscc", USCC), Column("证件号码", "id_no", ID_NO))
_WITHDRAWN = Column("撤销", "withdrawn", ENUM, YES_NO, optional_in_header=True)

VIOLATION_TYPES = ("侵权假冒", "虚假宣传", "刷单炒信", "恶意评价", "产品质量", "无照经营", "其他")
PENALTY_CATEGORIES = (
    "警告",
    "通报批评",
    "罚款",
    "没收违法所得",
    "暂扣许可证件",
    "吊销许可证件",
    "责令停产停业",
    "限制从业",
)
LIST_TYPES = ("经营异常名录", "严重违法失信名单")
REGISTRATION_STATUSES = ("存续", "在业", "吊销", "注销", "迁出")
SUBJECT_TYPES = ("企业", "个体工商户", "自然人")
NDRC_LISTS = ("失信联合惩戒对象", "守信联合激励对象")
CAC_TYPES = ("违规收集个人信息", "违规使用个人信息", "个人信息泄露", "未落实等级保护")
PSB_TYPES = ("网络诈骗", "网络传销", "侵犯公民个人信息", "刷单炒信", "销售假冒商品")
PSB_STATUSES = ("立案侦查", "移送起诉", "撤案")
BREACH_TYPES = ("服务违约", "预付卡违约", "虚假宣传")
FIN_TYPES = ("非法集资", "贷款逾期", "融资违约", "非法放贷")
POST_TYPES = ("虚假发货", "延误投递", "违规收寄", "泄露用户信息")
CUSTOMS_LEVELS = ("高级认证企业", "认证企业", "常规企业", "失信企业", "严重失信企业")
CUSTOMS_TYPES = ("走私", "违规", "跨境电商申报不实")

FEEDS: tuple[Feed, ...] = (
    # ---- amr 市市场监管局 (GBK CSV, YYYY-MM-DD) ----
    Feed(
        "amr",
        "operators.csv",
        "csv",
        "gb18030",
        "GBK",
        "iso",
        (
            *_ID,
            Column("主体名称", "name"),
            Column("主体类型", "subject_type", ENUM, SUBJECT_TYPES),
            Column("法定代表人", "legal_rep", PII),
            Column("所属区划", "district_code", DISTRICT),
            Column("电商平台", "platform"),
            Column("店铺网址", "shop_url"),
            Column("登记状态", "registration_status", ENUM, REGISTRATION_STATUSES),
            Column("亮照亮证", "license_displayed", ENUM, YES_NO),
            Column("最近核验日期", "last_verified_date", DATE),
            Column("成立日期", "established_date", DATE),
        ),
        key=("operator_key",),
        table=OPERATORS,
    ),
    Feed(
        "amr",
        "penalties.csv",
        "csv",
        "gb18030",
        "GBK",
        "iso",
        (
            Column("行政处罚决定书文号", "decision_no", required=True),
            *_ID,
            Column("主体名称", "party_name", PII),
            Column("违法行为类型", "violation_type", ENUM, VIOLATION_TYPES, required=True),
            Column("处罚类别", "penalty_category", ENUM, PENALTY_CATEGORIES),
            Column("罚没金额(万元)", "amount_10k_yuan", DECIMAL),
            Column("处罚决定日期", "decision_date", DATE, required=True),
            Column("公示截止期", "publicity_end", DATE),
            Column("状态", "status", ENUM, ("有效", "撤销")),
        ),
        key=("decision_no",),
        table=CREDIT,
        event_date="decision_date",
        type_column="violation_type",
        status_column="status",
        names_natural_person="party_name",
    ),
    Feed(
        "amr",
        "spot_checks.csv",
        "csv",
        "gb18030",
        "GBK",
        "iso",
        (
            Column("抽查编号", "check_no", required=True),
            *_ID,
            Column("商品类别", "product_category"),
            Column("抽查结果", "result", ENUM, ("合格", "不合格"), required=True),
            Column("抽查日期", "check_date", DATE, required=True),
        ),
        key=("check_no",),
        table=SPOT_CHECKS,
        event_date="check_date",
    ),
    Feed(
        "amr",
        "complaints.csv",
        "csv",
        "gb18030",
        "GBK",
        "iso",
        (
            Column("投诉编号", "complaint_no", required=True),
            *_ID,
            Column("投诉人姓名", "complainant_name", PII),
            Column("投诉人电话", "complainant_phone", PII),
            Column("投诉类别", "complaint_category"),
            Column("登记日期", "registered_date", DATE, required=True),
            Column("办结状态", "handling_status", ENUM, ("已办结", "办理中")),
            Column("先行赔付", "advance_compensation", ENUM, YES_NO),
        ),
        key=("complaint_no",),
        table=COMPLAINTS,
        event_date="registered_date",
    ),
    Feed(
        "amr",
        "lists.csv",
        "csv",
        "gb18030",
        "GBK",
        "iso",
        (
            Column("名单类型", "list_type", ENUM, LIST_TYPES, required=True),
            *_ID,
            Column("主体名称", "party_name", PII),
            Column("列入原因", "reason"),
            Column("列入日期", "listed_date", DATE, required=True),
            Column("移出日期", "removed_date", DATE),
        ),
        key=("list_type", "operator_key", "listed_date"),
        table=CREDIT,
        event_date="listed_date",
        type_column="list_type",
        names_natural_person="party_name",
    ),
    Feed(
        "amr",
        "inspectors.csv",
        "csv",
        "gb18030",
        "GBK",
        "iso",
        (
            Column("执法人员编号", "inspector_id", required=True),
            Column("姓名", "name"),
            Column("执法证号", "certificate_no"),
            Column("所属单位", "unit"),
            Column("在岗", "on_duty", ENUM, YES_NO),
        ),
        key=("inspector_id",),
        table=INSPECTORS,
        identifiers=(),
    ),
    # ---- ndrc 市发展改革委 (JSON Lines) ----
    Feed(
        "ndrc",
        "credit_lists.jsonl",
        "jsonl",
        "utf-8",
        "UTF-8",
        "iso",
        (
            Column("uscc", "uscc", USCC),
            Column("id_no", "id_no", ID_NO),
            Column("name", "party_name", PII),
            Column("list", "list_type", ENUM, NDRC_LISTS, required=True),
            Column("basis", "basis"),
            Column("start", "start_date", DATE, required=True),
            Column("end", "end_date", DATE),
        ),
        key=("list_type", "operator_key", "start_date"),
        table=CREDIT,
        event_date="start_date",
        type_column="list_type",
        names_natural_person="party_name",
    ),
    # ---- cac 市委网信办 (UTF-8 with BOM CSV, YYYY/MM/DD) ----
    Feed(
        "cac",
        "pi_violations.csv",
        "csv",
        "utf-8-sig",
        "UTF-8 with BOM",
        "slash",
        (
            Column("记录编号", "record_no", required=True),
            *_ID,
            Column("主体名称", "party_name", PII),
            Column("违规类型", "violation_type", ENUM, CAC_TYPES, required=True),
            Column("发现日期", "found_date", DATE, required=True),
            Column("整改状态", "rectification_status", ENUM, ("已整改", "未整改")),
            _WITHDRAWN,
        ),
        key=("record_no",),
        table=CREDIT,
        event_date="found_date",
        type_column="violation_type",
        names_natural_person="party_name",
    ),
    # ---- psb 市公安局 (JSON Lines) ----
    Feed(
        "psb",
        "cases.jsonl",
        "jsonl",
        "utf-8",
        "UTF-8",
        "iso",
        (
            Column("case_id", "case_id", required=True),
            Column("uscc", "uscc", USCC),
            Column("id_no", "id_no", ID_NO),
            Column("case_type", "case_type", ENUM, PSB_TYPES, required=True),
            Column("filed_at", "filed_at", TIMESTAMP, required=True),
            Column("status", "status", ENUM, PSB_STATUSES),
        ),
        key=("case_id",),
        table=CREDIT,
        event_date="filed_at",
        type_column="case_type",
        status_column="status",
    ),
    # ---- commerce 市商务局 (UTF-8 CSV) ----
    Feed(
        "commerce",
        "evaluations.csv",
        "csv",
        "utf-8",
        "UTF-8",
        "iso",
        (
            Column("电商平台", "platform", required=True),
            *_ID,
            Column("评价月份", "eval_month", MONTH, required=True),
            Column("整体满意度", "overall_satisfaction", SCORE, required=True),
            Column("产品质量", "product_quality", SCORE, required=True),
            Column("品牌信誉", "brand_reputation", SCORE, required=True),
            Column("售后服务", "after_sales", SCORE, required=True),
            Column("评价数", "review_count", INT, required=True),
            Column("删除评价数", "deleted_review_count", INT),
        ),
        key=("platform", "operator_key", "eval_month"),
        table=EVALUATIONS,
        event_date="eval_month",
    ),
    Feed(
        "commerce",
        "breaches.csv",
        "csv",
        "utf-8",
        "UTF-8",
        "iso",
        (
            Column("记录编号", "record_no", required=True),
            *_ID,
            Column("违约类型", "breach_type", ENUM, BREACH_TYPES, required=True),
            Column("认定日期", "decided_date", DATE, required=True),
            Column("涉及金额(元)", "amount_yuan", DECIMAL),
            _WITHDRAWN,
        ),
        key=("record_no",),
        table=CREDIT,
        event_date="decided_date",
        type_column="breach_type",
    ),
    # ---- finance 市金融局 (UTF-8 CSV, YYYYMMDD) ----
    Feed(
        "finance",
        "finance_risk.csv",
        "csv",
        "utf-8",
        "UTF-8",
        "compact",
        (
            Column("记录编号", "record_no", required=True),
            *_ID,
            Column("风险类型", "risk_type", ENUM, FIN_TYPES, required=True),
            Column("金额(元)", "amount_yuan", DECIMAL),
            Column("认定日期", "decided_date", DATE, required=True),
            Column("状态", "status", ENUM, ("存续", "已结清")),
        ),
        key=("record_no",),
        table=CREDIT,
        event_date="decided_date",
        type_column="risk_type",
        status_column="status",
    ),
    # ---- gds 市政数局 (UTF-8 CSV) ----
    Feed(
        "gds",
        "licenses.csv",
        "csv",
        "utf-8",
        "UTF-8",
        "iso",
        (
            Column("行政许可决定书文号", "licence_no", required=True),
            *_ID,
            Column("许可证名称", "licence_name"),
            Column("有效期自", "valid_from", DATE, required=True),
            Column("有效期至", "valid_to", DATE),
            Column("许可状态", "licence_status", ENUM, ("有效", "注销", "撤销")),
        ),
        key=("licence_no",),
        table=LICENCES,
        event_date="valid_from",
    ),
    # ---- post 市邮政管理局 (GBK CSV, YYYY年M月D日) ----
    Feed(
        "post",
        "express_violations.csv",
        "csv",
        "gb18030",
        "GBK",
        "chinese",
        (
            Column("记录编号", "record_no", required=True),
            *_ID,
            Column("违规类型", "violation_type", ENUM, POST_TYPES, required=True),
            Column("处理日期", "handled_date", DATE, required=True),
            Column("罚款金额(元)", "amount_yuan", DECIMAL),
            _WITHDRAWN,
        ),
        key=("record_no",),
        table=CREDIT,
        event_date="handled_date",
        type_column="violation_type",
    ),
    # ---- customs 广州海关 (JSON Lines, YYYYMMDD) ----
    Feed(
        "customs",
        "enterprise_credit.jsonl",
        "jsonl",
        "utf-8",
        "UTF-8",
        "compact",
        (
            Column("USCC", "uscc", USCC, required=True),
            Column("CUSTOMS_CODE", "customs_code"),
            Column("CREDIT_LEVEL", "credit_level", ENUM, CUSTOMS_LEVELS, required=True),
            Column("EFFECTIVE_DATE", "effective_date", DATE, required=True),
        ),
        key=("uscc", "effective_date"),
        table=CREDIT,
        event_date="effective_date",
        type_column="credit_level",
        identifiers=("uscc",),
    ),
    Feed(
        "customs",
        "violations.jsonl",
        "jsonl",
        "utf-8",
        "UTF-8",
        "compact",
        (
            Column("DECISION_NO", "decision_no", required=True),
            Column("USCC", "uscc", USCC, required=True),
            Column("TYPE", "violation_type", ENUM, CUSTOMS_TYPES, required=True),
            Column("PENALTY_CNY", "amount_yuan", DECIMAL),
            Column("DECISION_DATE", "decision_date", DATE, required=True),
            Column("WITHDRAWN", "withdrawn", ENUM, ("true", "false"), optional_in_header=True),
        ),
        key=("decision_no",),
        table=CREDIT,
        event_date="decision_date",
        type_column="violation_type",
        identifiers=("uscc",),
    ),
)

DEPARTMENTS: dict[str, str] = {
    "amr": "市市场监管局 Market Regulation",
    "ndrc": "市发展改革委 Development and Reform",
    "cac": "市委网信办 Cyberspace Affairs",
    "psb": "市公安局 Public Security",
    "commerce": "市商务局 Commerce",
    "finance": "市金融局 Local Financial Regulation",
    "gds": "市政数局 Government Services and Data",
    "post": "市邮政管理局 Postal Administration",
    "customs": "广州海关 Guangzhou Customs",
}

# Districts of Guangzhou (所属区划). Retired codes still appear in old registrations (a warning).
DISTRICTS = (
    "440103",
    "440104",
    "440105",
    "440106",
    "440111",
    "440112",
    "440113",
    "440114",
    "440115",
    "440117",
    "440118",
)
RETIRED_DISTRICTS = ("440102", "440107", "440116")


def feeds_of(dept: str) -> tuple[Feed, ...]:
    return tuple(f for f in FEEDS if f.dept == dept)


def feed(dept: str, file: str) -> Feed:
    for f in FEEDS:
        if f.dept == dept and (f.file == file or f.stem == file):
            return f
    raise KeyError(f"no feed {dept}/{file} in feeds.md")


assert set(DEPARTMENTS) == {f.dept for f in FEEDS}
