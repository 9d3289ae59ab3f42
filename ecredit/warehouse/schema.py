"""The shared warehouse's tables (``warehouse.md``), as SQLAlchemy Core metadata.

One definition serves the embedded default (SQLite) and PostgreSQL. Column comments are the data
dictionary departments read.
"""

from __future__ import annotations

import warnings

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from ecredit.core.settings import SettingError

metadata = MetaData()

dim_operator = Table(
    "dim_operator",
    metadata,
    Column(
        "operator_key",
        String(40),
        primary_key=True,
        comment="USCC for organisations; NP- pseudonym for natural persons",
    ),
    Column("uscc", String(18), comment="统一社会信用代码; null for natural persons"),
    Column("name", Text, comment="主体名称; for a natural person the shop's name"),
    Column("subject_type", String(16), comment="主体类型: 企业 / 个体工商户 / 自然人"),
    Column("district_code", String(6), comment="所属区划"),
    Column("platform", Text, comment="电商平台"),
    Column("shop_url", Text, comment="店铺网址"),
    Column("registration_status", String(8), comment="登记状态"),
    Column("license_displayed", String(2), comment="亮照亮证: 是 / 否"),
    Column("last_verified_date", Date, comment="最近核验日期"),
    Column("established_date", Date, comment="成立日期"),
    Column("valid_licenses", Integer, comment="gds licences 有效 with 有效期自 <= D <= 有效期至"),
    Column(
        "updated_run_date",
        Date,
        nullable=False,
        comment="latest date behind the row: its registry version's delivery, its licences' deliveries, a 有效 "
        "licence becoming valid or expiring (up to the run date)",
    ),
    comment="E-commerce operators, state at the latest run date so far",
)

fact_credit_record = Table(
    "fact_credit_record",
    metadata,
    Column("record_key", Text, primary_key=True, comment="<dept>:<feed>:<key parts joined by |>"),
    Column("operator_key", String(40), nullable=False, index=True, comment="operator the record is about"),
    Column("dept", String(10), nullable=False, comment="department that delivered it"),
    Column("record_type", String(40), nullable=False, comment="credit record type (scoring.md §1)"),
    Column("polarity", String(8), nullable=False, comment="negative / positive"),
    Column("severity", Integer, comment="1 minor .. 4 very serious; null for positive records"),
    Column("event_date", Date, nullable=False, comment="event date (Asia/Shanghai)"),
    Column("active_until", Date, comment="last day it counts; null = open-ended or never counts"),
    Column("active", Boolean, nullable=False, comment="counts at the run date"),
    Column("withdrawn", Boolean, nullable=False, comment="withdrawn, revoked, 撤案 or 已结清"),
    Column("amount_yuan", Numeric(20, 2), comment="amount in yuan"),
    Column("in_registry", Boolean, nullable=False, comment="operator is in the registry at the run date"),
    Column("source_delivery_date", Date, nullable=False, comment="delivery the current version came from"),
    Column("source_line", Integer, nullable=False, comment="line in the delivery file"),
    comment="Credit records of the state at the latest run date so far",
)

fact_license = Table(
    "fact_license",
    metadata,
    Column("license_no", Text, primary_key=True, comment="行政许可决定书文号"),
    Column("operator_key", String(40), nullable=False, comment="operator the licence is about (USCC or NP- key)"),
    Column("license_name", Text, comment="许可证名称"),
    Column("valid_from", Date, nullable=False, comment="有效期自"),
    Column("valid_to", Date, comment="有效期至 (null: open-ended)"),
    Column("license_status", String(8), comment="许可状态: 有效 / 注销 / 撤销 (null reads: not 有效)"),
    Column("source_delivery_date", Date, nullable=False, comment="delivery the current version came from"),
    Column("source_line", Integer, nullable=False, comment="line in the delivery file"),
    comment="gds administrative licences (行政许可) of the state at the latest run date so far; not credit records",
)

fact_spot_check = Table(
    "fact_spot_check",
    metadata,
    Column("check_no", Text, primary_key=True, comment="抽查编号"),
    Column("operator_key", String(40), nullable=False, comment="operator checked (USCC or NP- key)"),
    Column("product_category", Text, comment="商品类别"),
    Column("result", String(8), nullable=False, comment="抽查结果: 合格 / 不合格"),
    Column("check_date", Date, nullable=False, comment="抽查日期"),
    Column("source_delivery_date", Date, nullable=False, comment="delivery the current version came from"),
    Column("source_line", Integer, nullable=False, comment="line in the delivery file"),
    comment="amr product spot checks of the state at the latest run date so far (the quality dimension's input)",
)

fact_complaint = Table(
    "fact_complaint",
    metadata,
    Column("complaint_no", Text, primary_key=True, comment="投诉编号"),
    Column("operator_key", String(40), nullable=False, comment="operator complained about (USCC or NP- key)"),
    Column("complaint_category", Text, comment="投诉类别"),
    Column("registered_date", Date, nullable=False, comment="登记日期"),
    Column("handling_status", String(8), comment="办结状态: 已办结 / 办理中 (null reads 办理中)"),
    Column("advance_compensation", String(2), comment="先行赔付: 是 / 否 (null reads 否)"),
    Column("source_delivery_date", Date, nullable=False, comment="delivery the current version came from"),
    Column("source_line", Integer, nullable=False, comment="line in the delivery file"),
    comment="amr consumer complaints of the state at the latest run date so far, without the complainant's name or "
    "phone (the quality dimension's input)",
)

feed_status = Table(
    "feed_status",
    metadata,
    Column("run_date", Date, primary_key=True, comment="run date D"),
    Column("dept", String(10), primary_key=True, comment="department code"),
    Column("status", String(10), nullable=False, comment="ok / partial / rejected / missing (delivery dated D)"),
    Column(
        "deliveries_applied",
        Integer,
        nullable=False,
        comment="the department's deliveries dated <= D that the state includes",
    ),
    Column("rows_in", Integer, nullable=False, comment="data rows in the delivery dated D"),
    Column("rows_loaded", Integer, nullable=False, comment="rows applied to the state"),
    Column("rows_quarantined", Integer, nullable=False, comment="rows set aside (see quarantine)"),
    comment="Each department's delivery dated D",
)

pipeline_run = Table(
    "pipeline_run",
    metadata,
    Column("attempt_id", Integer, primary_key=True, autoincrement=True, comment="attempt number, increasing"),
    Column("run_date", Date, comment="run date D (null when the run failed before resolving it)"),
    Column("run_id", String(250), nullable=False, comment="Airflow run id"),
    Column("started_at", DateTime(timezone=True), comment="UTC"),
    Column("finished_at", DateTime(timezone=True), comment="UTC"),
    Column("status", String(10), nullable=False, comment="success / failed"),
    Column("reason", Text, comment="why the attempt failed"),
    Column("warnings", Text, comment="JSON list"),
    Column("rules_version", String(64), comment="SHA-256 of the rules file"),
    Column("counts", Text, comment="JSON object"),
    comment="Every attempt of a run, append-only",
)

published_build = Table(
    "published_build",
    metadata,
    Column("run_date", Date, primary_key=True, comment="run date D"),
    Column(
        "build_id",
        String(32),
        nullable=False,
        comment="id of the build of D whose gold was published (gold/<D>/_built.json)",
    ),
    Column("published_at", DateTime(timezone=True), nullable=False, comment="UTC"),
    comment="Which build of each run date's gold the warehouse holds (the pipeline's bookkeeping)",
)

CHECK_COMMENT = (
    "delivery_gate, quarantined_ratio, volume, rows:<CODE> (rows quarantined per reason code; rows kept "
    "per warning code, RETIRED_DISTRICT), header:<CODE> (a file's header: COLUMNS_REORDERED, EXTRA_COLUMN), "
    "gx:<expectation>(<column>) (the feed's GX suite on the file; gx:expect_table_row_count_to_equal() "
    "counts the rows set aside as MALFORMED before GX ran)"
)
dq_result = Table(
    "dq_result",
    metadata,
    Column(
        "dept",
        String(10),
        primary_key=True,
        comment="department code (amr, ndrc, cac, psb, commerce, finance, gds, post, customs)",
    ),
    Column("feed", String(40), primary_key=True, comment="feed file stem; * for the whole delivery"),
    Column("delivery_date", Date, primary_key=True, comment="date of the delivery (its landing folder)"),
    Column("check", String(200), primary_key=True, comment=CHECK_COMMENT),
    Column(
        "success",
        Boolean,
        nullable=False,
        comment="the check passed; false for a warning that applies (severity warning)",
    ),
    Column(
        "severity",
        String(8),
        nullable=False,
        comment="error (rows quarantined, delivery rejected) / warning (rows and files kept)",
    ),
    Column("element_count", Integer, comment="rows (or files) checked"),
    Column("unexpected_count", Integer, comment="rows (or problems) found"),
    Column("detail", Text, comment="what was found, in one sentence"),
    Column("manifest_sha256", String(64), nullable=False, comment="the delivery's manifest as validated"),
    Column("run_id", String(250), nullable=False, comment="the run that validated the delivery"),
    comment="Validation results of each delivery (quality.md), keyed by the delivery",
)

quarantine = Table(
    "quarantine",
    metadata,
    Column(
        "dept",
        String(10),
        primary_key=True,
        comment="department code (amr, ndrc, cac, psb, commerce, finance, gds, post, customs)",
    ),
    Column("feed", String(40), primary_key=True, comment="feed file stem"),
    Column("delivery_date", Date, primary_key=True, comment="date of the delivery (its landing folder)"),
    Column("source_line", Integer, primary_key=True, comment="physical line in the file, header = 1"),
    Column("reasons", Text, nullable=False, comment="reason codes of quality.md, comma-separated"),
    Column("payload", Text, comment="the row as sent, JSON, personal data masked"),
    Column("manifest_sha256", String(64), nullable=False, comment="the delivery's manifest as validated"),
    Column("run_id", String(250), nullable=False, comment="the run that validated the delivery"),
    comment="Rows set aside by the checks, with every reason; readable by the pipeline's operators only",
)

operator_score = Table(
    "operator_score",
    metadata,
    Column("run_date", Date, primary_key=True, comment="run date D"),
    Column("operator_key", String(40), primary_key=True, comment="operator key (dim_operator)"),
    Column("identity_score", Integer, nullable=False, comment="主体身份 0-100"),
    Column("evaluation_score", Integer, nullable=False, comment="平台评价 0-300"),
    Column("quality_score", Integer, nullable=False, comment="产品服务质量 0-200"),
    Column("conduct_score", Integer, nullable=False, comment="信用记录 0-400"),
    Column("total_score", Integer, nullable=False, comment="0-1000, the sum of the four dimensions"),
    Column(
        "score_class", String(1), nullable=False, comment="class by score alone: A >= 850, B >= 700, C >= 550, else D"
    ),
    Column(
        "final_class", String(1), nullable=False, comment="分级: the worst of the base class and every rule's effect"
    ),
    Column(
        "previous_class",
        String(1),
        comment="final class at the latest earlier published run date; null if not classified then",
    ),
    Column("rules_applied", Text, nullable=False, comment="rule codes whose condition holds, comma-separated, sorted"),
    Column(
        "reasons",
        Text,
        nullable=False,
        comment="JSON: each active record (type, severity, points), each rule, the dimensions",
    ),
    Column("rules_version", String(64), nullable=False, comment="SHA-256 of the rules file"),
    comment="Score and supervision class of every classified operator, per run date (scoring.md §2-3)",
)

supervision_measure = Table(
    "supervision_measure",
    metadata,
    Column("run_date", Date, primary_key=True, comment="run date D"),
    Column("operator_key", String(40), primary_key=True, comment="operator key"),
    Column(
        "measure_code",
        String(40),
        primary_key=True,
        comment="measure (lifecycle.md §3), e.g. ONSITE_INSPECTION; the rules file's measures.codes",
    ),
    Column("final_class", String(1), nullable=False, comment="the operator's final class at D"),
    Column("responsible_dept", String(10), nullable=False, comment="department that applies the measure"),
    Column(
        "basis",
        Text,
        nullable=False,
        comment="what the measure rests on: for an operator on the serious-dishonesty list the record_keys of its "
        "active list records, sorted, comma-joined (for every one of its measures); otherwise "
        "class:<final class> (class:D)",
    ),
    Column(
        "legal_basis",
        Text,
        comment="the provision the measure rests on (the rules file's text for the measure code); null only on "
        "rows published before legal bases were recorded (migration 0004)",
    ),
    Column(
        "under_objection",
        Boolean,
        nullable=False,
        comment="every record of its basis is under objection (never for class:D); false until objections are "
        "taken in (lifecycle.md §2)",
    ),
    comment="What each department must do about each operator (分级分类监管; 联合惩戒 only for the serious-dishonesty "
    "list), on what basis and legal provision, per run date (lifecycle.md §3)",
)

inspection_plan = Table(
    "inspection_plan",
    metadata,
    Column("run_date", Date, primary_key=True, comment="draw date D"),
    Column(
        "version",
        Integer,
        primary_key=True,
        autoincrement=False,
        comment="version of the draw of D (inspection_draw) this row belongs to",
    ),
    Column("operator_key", String(40), primary_key=True, comment="selected operator"),
    Column("seed", String(64), nullable=False, comment="the draw's seed: SHA-256 of '<D>|<salt>'"),
    Column("final_class", String(1), nullable=False, comment="the operator's final class at D"),
    Column(
        "inspector_ids",
        Text,
        nullable=False,
        comment="执法人员编号 of the drawn inspectors, comma-separated, draw order",
    ),
    Column("onsite_required", Boolean, nullable=False, comment="on-site inspection required (class D by default)"),
    comment="Double-random inspection plan (双随机): the operators drawn and their two inspectors",
)

inspection_draw = Table(
    "inspection_draw",
    metadata,
    Column("run_date", Date, primary_key=True, comment="draw date D"),
    Column(
        "version",
        Integer,
        primary_key=True,
        autoincrement=False,
        comment="1, 2, ...: a rerun of D whose plan differs from the one in force adds a version",
    ),
    Column(
        "salt", String(64), nullable=False, comment="the draw's salt, revealed (HMAC-SHA256 of D with the draw secret)"
    ),
    Column("salt_sha256", String(64), nullable=False, comment="SHA-256 of the salt: equals the earlier commitment"),
    Column("seed", String(64), nullable=False, comment="SHA-256 of '<D>|<salt>'"),
    Column("counts", Text, nullable=False, comment="JSON per class: operators, ratio, drawn"),
    Column("in_force", Boolean, nullable=False, comment="the version in force for D (exactly one per draw date)"),
    Column(
        "inputs_kept",
        Boolean,
        nullable=False,
        comment="true: the classes and inspectors this version was drawn on are in inspection_draw_input (a rerun "
        "of D replaced D's operator_score and inspector rows since); false: they are those rows",
    ),
    Column(
        "published_at",
        DateTime(timezone=True),
        comment="UTC time of the publish that added the version (null: published before migration 0003 "
        "by a run that recorded no success)",
    ),
    comment="Each draw revealed (一公开), every version kept: anyone can re-run it from the published tables "
    "(ecredit verify-plan)",
)

inspection_draw_input = Table(
    "inspection_draw_input",
    metadata,
    Column("run_date", Date, primary_key=True, comment="draw date D"),
    Column("version", Integer, primary_key=True, autoincrement=False, comment="version of the draw of D"),
    Column("kind", String(10), primary_key=True, comment="operator / inspector / listed"),
    Column(
        "item_key",
        String(40),
        primary_key=True,
        comment="operator key (kind operator: drawn among its class; kind listed: on the serious-dishonesty list "
        "of D, on site whatever its class) or 执法人员编号 of an inspector on duty (kind inspector)",
    ),
    Column("final_class", String(1), comment="the operator's final class the draw used; null for an inspector"),
    comment="What a draw version was drawn on, kept when a rerun of D replaces D's operator_score and "
    "inspector rows (a version superseded, or kept in force by a rerun that made no plan): "
    "verify-plan re-runs such a version from these rows",
)

draw_commitment = Table(
    "draw_commitment",
    metadata,
    Column("draw_date", Date, primary_key=True, comment="the next draw date after the run date that published it"),
    Column("salt_sha256", String(64), nullable=False, comment="SHA-256 of that draw's salt, committed in advance"),
    Column("published_run_date", Date, nullable=False, comment="the run date whose run published the commitment"),
    comment="Commitments to future draws' salts, published before the draw",
)

inspector = Table(
    "inspector",
    metadata,
    Column("run_date", Date, primary_key=True, comment="run date D"),
    Column("inspector_id", String(40), primary_key=True, comment="执法人员编号"),
    Column("name", Text, comment="姓名 of the inspector (a public official acting in office)"),
    Column("unit", Text, comment="所属单位"),
    Column("on_duty", Boolean, nullable=False, comment="在岗 at D (null in the roster reads 否)"),
    comment="The inspectors' roster as of D: the pool of the inspector draw",
)

serious_dishonest_list = Table(
    "serious_dishonest_list",
    metadata,
    Column("run_date", Date, primary_key=True, comment="run date D"),
    Column("operator_key", String(40), primary_key=True, comment="operator key"),
    Column(
        "record_type", String(40), primary_key=True, comment="LIST_SERIOUS / NDRC_JOINT_PUNISH / CUS_SERIOUS_DISHONEST"
    ),
    Column("name", Text, nullable=False, comment="主体名称 from the registry; empty for an operator not in it"),
    Column("source_dept", String(10), nullable=False, comment="department whose record lists it"),
    Column("listed_date", Date, nullable=False, comment="earliest event date among its active records of that type"),
    comment="严重失信主体名单 at D",
)

dishonest_list_change = Table(
    "dishonest_list_change",
    metadata,
    Column("run_date", Date, primary_key=True, comment="run date D"),
    Column("operator_key", String(40), primary_key=True, comment="operator key"),
    Column("record_type", String(40), primary_key=True, comment="list record type"),
    Column("change", String(8), nullable=False, comment="ADDED / REMOVED against the latest earlier run date"),
    comment="Changes of the serious-dishonesty list, pushed to all nine departments",
)

risk_alert = Table(
    "risk_alert",
    metadata,
    Column("run_date", Date, primary_key=True, comment="run date D"),
    Column("operator_key", String(40), primary_key=True, comment="operator key"),
    Column("name", Text, nullable=False, comment="主体名称 from the registry (shop name for a natural person)"),
    Column("level", String(8), nullable=False, comment="关注 (class C) / 高风险 (class D)"),
    Column("message", Text, nullable=False, comment="short Chinese message from the main reasons; no personal data"),
    comment="Risk alerts for consumers (消费者风险提示)",
)

# lookups departments make: an operator's history, a department's own rows, a record's operator
Index("ix_operator_score_operator", operator_score.c.operator_key, operator_score.c.run_date)
Index("ix_supervision_measure_dept", supervision_measure.c.responsible_dept, supervision_measure.c.run_date)
Index("ix_fact_credit_record_operator", fact_credit_record.c.operator_key)
Index("ix_dishonest_list_change_run", dishonest_list_change.c.run_date)
Index("ix_fact_license_operator", fact_license.c.operator_key)
Index("ix_fact_spot_check_operator", fact_spot_check.c.operator_key)
Index("ix_fact_complaint_operator", fact_complaint.c.operator_key)
Index(
    "ux_inspection_draw_in_force",
    inspection_draw.c.run_date,
    unique=True,
    sqlite_where=inspection_draw.c.in_force,
    postgresql_where=inspection_draw.c.in_force,
)

VALIDATION_TABLES = (dq_result, quarantine)  # keyed by delivery, replaced when it is validated anew
# rows keyed by run_date, replaced when a date is rerun (draw_commitment: by published_run_date)
PER_RUN_TABLES = (
    feed_status,
    operator_score,
    supervision_measure,
    inspector,
    serious_dishonest_list,
    dishonest_list_change,
    risk_alert,
)
# versions of a draw date's plan: added, never replaced (publish.publish_draw)
DRAW_TABLES = (inspection_draw, inspection_plan, inspection_draw_input)
# replaced by a run of the latest date
LATEST_STATE_TABLES = (dim_operator, fact_credit_record, fact_license, fact_spot_check, fact_complaint)
# the pipeline's bookkeeping: its attempts and the builds it published, not a function of the deliveries
BOOKKEEPING_TABLES = ("pipeline_run", "published_build")


# SQLite: how long a connection waits for another process's write (a run migrating or publishing
# the embedded warehouse) before "database is locked"; pysqlite's default, 5 s, was too short for
# two runs started together on a fresh warehouse on a busy machine.
SQLITE_BUSY_TIMEOUT_S = 120


def engine_for(url: str) -> Engine:
    from sqlalchemy.pool import NullPool

    try:
        # SQLite: a connection per use (no pool), so a failed publish's temporary stage tables
        # die with its connection
        sqlite = {"poolclass": NullPool, "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
        eng = create_engine(url, future=True, **(sqlite if url.startswith("sqlite") else {}))
    except (ArgumentError, NoSuchModuleError, ValueError) as e:
        raise SettingError(f"CREDIT_WAREHOUSE_URL is not a usable SQLAlchemy URL ({e}).") from None
    if eng.dialect.name == "sqlite":
        warnings.filterwarnings("ignore", message=".*Decimal objects natively.*")
    return eng


def ddl(dialect_name: str) -> str:
    """CREATE statements of every table for a dialect (``sql/warehouse.<dialect>.sql``)."""
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    dialect = {"postgresql": postgresql.dialect(), "sqlite": sqlite.dialect()}[dialect_name]
    from sqlalchemy.schema import SetColumnComment, SetTableComment

    out = [f"-- Generated from ecredit/warehouse/schema.py by `python -m ecredit.warehouse.schema {dialect_name}`.\n"]
    for table in metadata.sorted_tables:
        out.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";\n")
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            out.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";\n")
        if dialect_name == "postgresql":  # the data dictionary departments read
            out.append(str(SetTableComment(table).compile(dialect=dialect)).strip() + ";")
            out.extend(str(SetColumnComment(c).compile(dialect=dialect)).strip() + ";" for c in table.columns)
            out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    import sys

    print(ddl(sys.argv[1] if len(sys.argv) > 1 else "postgresql"), end="")
