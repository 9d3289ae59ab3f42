"""The shared warehouse's tables (``warehouse.md``), as SQLAlchemy Core metadata.

One definition serves the embedded default (SQLite) and PostgreSQL. Column comments are the data
dictionary departments read.
"""

from __future__ import annotations

import warnings

from sqlalchemy import (
    Boolean, Column, Date, DateTime, Integer, MetaData, Numeric, String, Table, Text, create_engine,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from ecredit.settings import SettingError

metadata = MetaData()

dim_operator = Table(
    "dim_operator", metadata,
    Column("operator_key", String(40), primary_key=True,
           comment="USCC for organisations; NP- pseudonym for natural persons"),
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
    Column("updated_run_date", Date, nullable=False, comment="run date of the state shown"),
    comment="E-commerce operators, state at the latest run date so far",
)

fact_credit_record = Table(
    "fact_credit_record", metadata,
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

feed_status = Table(
    "feed_status", metadata,
    Column("run_date", Date, primary_key=True, comment="run date D"),
    Column("dept", String(10), primary_key=True, comment="department code"),
    Column("status", String(10), nullable=False, comment="ok / partial / rejected / missing (delivery dated D)"),
    Column("deliveries_applied", Integer, nullable=False,
           comment="the department's deliveries dated <= D that the state includes"),
    Column("rows_in", Integer, nullable=False, comment="data rows in the delivery dated D"),
    Column("rows_loaded", Integer, nullable=False, comment="rows applied to the state"),
    Column("rows_quarantined", Integer, nullable=False, comment="rows set aside (see quarantine)"),
    comment="Each department's delivery dated D",
)

pipeline_run = Table(
    "pipeline_run", metadata,
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

dq_result = Table(
    "dq_result", metadata,
    Column("dept", String(10), primary_key=True, comment="department code (amr, ndrc, cac, psb, commerce, finance, gds, post, customs)"),
    Column("feed", String(40), primary_key=True, comment="feed file stem; * for the whole delivery"),
    Column("delivery_date", Date, primary_key=True, comment="date of the delivery (its landing folder)"),
    Column("check", String(60), primary_key=True, comment="delivery_gate, quarantined_ratio, volume, rows:<CODE>"),
    Column("success", Boolean, nullable=False, comment="the check passed"),
    Column("severity", String(8), nullable=False, comment="error / warning"),
    Column("element_count", Integer, comment="rows (or files) checked"),
    Column("unexpected_count", Integer, comment="rows (or problems) found"),
    Column("detail", Text, comment="what was found, in one sentence"),
    Column("manifest_sha256", String(64), nullable=False, comment="the delivery's manifest as validated"),
    Column("run_id", String(250), nullable=False, comment="the run that validated the delivery"),
    comment="Validation results of each delivery (quality.md), keyed by the delivery",
)

quarantine = Table(
    "quarantine", metadata,
    Column("dept", String(10), primary_key=True, comment="department code (amr, ndrc, cac, psb, commerce, finance, gds, post, customs)"),
    Column("feed", String(40), primary_key=True, comment="feed file stem"),
    Column("delivery_date", Date, primary_key=True, comment="date of the delivery (its landing folder)"),
    Column("source_line", Integer, primary_key=True, comment="physical line in the file, header = 1"),
    Column("reasons", Text, nullable=False, comment="reason codes of quality.md, comma-separated"),
    Column("payload", Text, comment="the row as sent, JSON, personal data masked"),
    Column("manifest_sha256", String(64), nullable=False, comment="the delivery's manifest as validated"),
    Column("run_id", String(250), nullable=False, comment="the run that validated the delivery"),
    comment="Rows set aside by the checks, with every reason; readable by the pipeline's operators only",
)

VALIDATION_TABLES = (dq_result, quarantine)  # keyed by delivery, replaced when it is validated anew
PER_RUN_TABLES = (feed_status,)  # rows keyed by run_date, replaced when a date is rerun
LATEST_STATE_TABLES = (dim_operator, fact_credit_record)  # replaced by a run of the latest date


def engine_for(url: str) -> Engine:
    try:
        eng = create_engine(url, future=True)
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
    out = [f"-- Generated from ecredit/warehouse.py by `python -m ecredit.warehouse {dialect_name}`; do not edit.\n"]
    for table in metadata.sorted_tables:
        out.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";\n")
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            out.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";\n")
    return "\n".join(out)


if __name__ == "__main__":
    import sys

    print(ddl(sys.argv[1] if len(sys.argv) > 1 else "postgresql"), end="")
