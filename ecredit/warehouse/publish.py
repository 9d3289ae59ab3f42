"""Publish a run date's gold layer to the warehouse, atomically (one transaction per run date),
and record every attempt in ``pipeline_run`` (outside that transaction).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, delete, func, insert, literal, null, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

from ecredit.core import failpoints, lake, runlock
from ecredit.core import rules as rules_mod
from ecredit.core.feeds import DEPARTMENTS, feeds_of
from ecredit.core.records import DeliveryStatus, Verdict
from ecredit.core.settings import SettingError, Settings
from ecredit.ingest import gate as delivery
from ecredit.ingest import parse
from ecredit.quality import verdict as validation
from ecredit.warehouse import migrations
from ecredit.warehouse import schema as wh

log = logging.getLogger(__name__)


def connect(settings: Settings) -> Engine:
    """The warehouse engine, its schema up to date: pending migrations are applied when the
    URL's role may (always on the embedded default); otherwise, as for an unreachable server,
    a SettingError names the setting."""

    url = settings.warehouse_url
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    eng = wh.engine_for(url)
    try:
        migrations.migrate(eng)
    except OperationalError as e:
        raise SettingError(f"CREDIT_WAREHOUSE_URL: the warehouse cannot be reached ({str(e.orig).strip()}).") from None
    except (migrations.MigrationError, ProgrammingError) as e:
        e = getattr(e, "orig", e)
        raise SettingError(
            f"CREDIT_WAREHOUSE_URL: the warehouse's schema is not up to date and this role cannot "
            f"migrate it; run `ecredit migrate --url <an administrator's URL>` ({e})."
        ) from None
    return eng


def feed_status_rows(settings: Settings, rules, run_date: dt.date) -> tuple[list[dict], list[Verdict]]:
    """feed_status for (D, dept): the department's delivery dated D only (quality.md); and the
    verdicts of every delivery dated <= D without the volume check (for dq_result and quarantine,
    ``publish_validation`` completes the verdicts of the deliveries it publishes)."""
    rows, verdicts = [], []
    for dept in DEPARTMENTS:
        applied = 0
        for d in delivery.delivery_dates(settings, dept, run_date):
            v = validation.verdict(settings, rules, dept, d, with_volume=False)
            if v.status == DeliveryStatus.PENDING:
                raise RuntimeError(
                    f"{dept} {d}: accepted by the gate but never parsed: the ingest stage did not run for this date"
                )
            applied += v.status == validation.APPLIED
            verdicts.append(v)
        today = next((v for v in verdicts if v.dept == dept and v.date == run_date.isoformat()), None)
        row: dict[str, Any] = {
            "run_date": run_date,
            "dept": dept,
            "deliveries_applied": applied,
            "rows_in": 0,
            "rows_loaded": 0,
            "rows_quarantined": 0,
            "status": str(DeliveryStatus.MISSING),
        }
        if today is not None and today.status == DeliveryStatus.REJECTED:
            row["status"] = str(DeliveryStatus.REJECTED)
            folder = delivery.delivery_dir(settings, dept, run_date)
            for f in feeds_of(dept):  # the rows in its files as found; nothing of it is loaded
                if (folder / f.file).is_file():
                    row["rows_in"] += parse.count_rows(str(folder / f.file), f)
        elif today is not None:
            for parsed in today.files:
                for k in ("rows_in", "rows_loaded", "rows_quarantined"):
                    row[k] += getattr(parsed, k)
            row["status"] = str(DeliveryStatus.APPLIED.published(row["rows_quarantined"]))  # a plain str: a column
        rows.append(row)
    return rows, verdicts


def _validation_rows(settings: Settings, v: Verdict, run_id: str):
    ddate = dt.date.fromisoformat(v.date)
    dq = [
        {**c.to_json(), "dept": v.dept, "delivery_date": ddate, "manifest_sha256": v.manifest_sha256, "run_id": run_id}
        for c in v.checks
    ]
    q = []
    if v.status == validation.APPLIED:  # a rejected delivery puts none of its rows in quarantine
        for f in v.files:
            stem = f.feed_id.split(".", 1)[1]
            for r in lake.quarantined_rows(settings, f.info(v.dept, v.date)):
                q.append(
                    {
                        "dept": v.dept,
                        "feed": stem,
                        "delivery_date": ddate,
                        "source_line": r["source_line"],
                        "reasons": ",".join(sorted(r["reasons"])),
                        "payload": r["payload"],
                        "manifest_sha256": v.manifest_sha256,
                        "run_id": run_id,
                    }
                )
    return dq, q


CHECK_COLUMNS = ("feed", "check", "success", "severity", "element_count", "unexpected_count", "detail")


def publish_validation(
    conn: Connection, settings: Settings, rules, verdicts: list[Verdict], run_id: str, run_date: dt.date | None = None
) -> int:
    """dq_result and quarantine rows of every delivery not yet published in its present form
    (keyed by the delivery; validating it again writes the same rows, never duplicates). The
    deliveries dated D are checked again even so: their volume check reads the deliveries before
    them, which a late delivery changes; a backfill reruns every date after a late delivery, so
    each later delivery gets the checks it would have had on time (warehouse.md)."""
    dq = wh.dq_result.c
    published = {
        (r.dept, r.delivery_date, r.manifest_sha256)
        for r in conn.execute(select(dq.dept, dq.delivery_date, dq.manifest_sha256).distinct())
    }
    n = 0
    for v in verdicts:
        if v.manifest_sha256 is None:
            continue
        ddate = dt.date.fromisoformat(v.date)
        done = (v.dept, ddate, v.manifest_sha256) in published
        if done and ddate != run_date:
            continue
        full = validation.verdict(settings, rules, v.dept, ddate)  # with the volume check
        dq_rows, q_rows = _validation_rows(settings, full, run_id)
        if done:
            stored = {
                tuple(r)
                for r in conn.execute(
                    select(*(dq[c] for c in CHECK_COLUMNS)).where((dq.dept == v.dept) & (dq.delivery_date == ddate))
                )
            }
            if stored == {tuple(r[c] for c in CHECK_COLUMNS) for r in dq_rows}:
                continue
        for table in wh.VALIDATION_TABLES:
            conn.execute(delete(table).where((table.c.dept == v.dept) & (table.c.delivery_date == ddate)))
        n += _insert(conn, wh.dq_result, [dq_rows]) + _insert(conn, wh.quarantine, [q_rows])
    return n


def publish_commitment(conn: Connection, rows: list[dict], warnings: list[str]) -> int:
    """draw_commitment is keyed by draw date: a commitment stays with the earliest run date that
    published it (later runs publish the same value); a rerun of that date writes it again. A
    published commitment is never replaced: one that CREDIT_DRAW_SECRET no longer gives is kept,
    with a warning (that draw will make no plan, ``state.inspection_plan``)."""
    t = wh.draw_commitment
    n = 0
    for r in rows:
        have = conn.execute(
            select(t.c.published_run_date, t.c.salt_sha256).where(t.c.draw_date == r["draw_date"])
        ).first()
        if have is None:
            conn.execute(insert(t), [r])
            n += 1
        elif have.salt_sha256 != r["salt_sha256"]:
            warnings.append(
                f"CREDIT_DRAW_SECRET does not give the commitment to the draw of {r['draw_date']} that the "
                f"run of {have.published_run_date} published (was the secret changed?): the published "
                "commitment is kept, and that draw will make no plan"
            )
        elif have.published_run_date >= r["published_run_date"]:
            conn.execute(
                update(t).where(t.c.draw_date == r["draw_date"]).values(published_run_date=r["published_run_date"])
            )
            n += 1
    return n


DRAW_FIELDS = ("salt", "salt_sha256", "seed", "counts")
PLAN_FIELDS = ("operator_key", "seed", "final_class", "inspector_ids", "onsite_required")


def keep_draw_input(conn: Connection, run_date: dt.date, version: int) -> int:
    """Copy what version ``version`` of the draw of D was drawn on, D's published final classes,
    inspectors on duty and operators on the serious-dishonesty list, into ``inspection_draw_input``
    (before a rerun replaces those rows)."""
    t, s, i = wh.inspection_draw_input, wh.operator_score, wh.inspector
    cols = ["run_date", "version", "kind", "item_key", "final_class"]
    n = conn.execute(
        insert(t).from_select(
            cols,
            select(
                s.c.run_date, literal(version, Integer), literal("operator", String), s.c.operator_key, s.c.final_class
            ).where(s.c.run_date == run_date),
        )
    ).rowcount
    n += conn.execute(
        insert(t).from_select(
            cols,
            select(
                i.c.run_date, literal(version, Integer), literal("inspector", String), i.c.inspector_id, null()
            ).where((i.c.run_date == run_date) & i.c.on_duty.is_(True)),
        )
    ).rowcount
    # the operators on the serious-dishonesty list of D: on site whatever their class (lifecycle.md §3)
    sl = wh.serious_dishonest_list
    n += conn.execute(
        insert(t).from_select(
            cols,
            select(sl.c.run_date, literal(version, Integer), literal("listed", String), sl.c.operator_key, null())
            .where(sl.c.run_date == run_date)
            .distinct(),
        )
    ).rowcount
    return n


def publish_draw(
    conn: Connection, settings: Settings, run_date: dt.date, published_at: dt.datetime, warnings: list[str]
) -> dict:
    """The draw of D, versioned (warehouse.md): a plan that differs from the version in force
    (another salt, seed, counts or plan row) is added as version max + 1 and put in force; the
    earlier versions and their plan rows stay. An identical plan adds nothing. Before D's
    operator_score and inspector rows are replaced, a version that is superseded, or that stays in
    force because this run made no plan, gets what it was drawn on copied to
    ``inspection_draw_input`` (once), so that ``verify-plan`` can re-run every version.
    Runs inside publish's transaction, before the per-run tables are replaced."""
    d, p = wh.inspection_draw, wh.inspection_plan
    new = lake.gold_rows(settings, run_date, "inspection_draw", list(DRAW_FIELDS))
    plan = lake.gold_rows(settings, run_date, "inspection_plan", list(PLAN_FIELDS))
    counts = {"inspection_draw": 0, "inspection_plan": 0, "inspection_draw_input": 0}
    cur = conn.execute(select(d).where((d.c.run_date == run_date) & d.c.in_force.is_(True))).mappings().first()
    if cur is not None:
        if new and all(new[0][k] == cur[k] for k in DRAW_FIELDS):
            published = conn.execute(
                select(*[p.c[k] for k in PLAN_FIELDS]).where(
                    (p.c.run_date == run_date) & (p.c.version == cur["version"])
                )
            ).all()
            if {tuple(r) for r in published} == {tuple(r[k] for k in PLAN_FIELDS) for r in plan}:
                return counts  # the plan in force, again
        if not cur["inputs_kept"]:
            counts["inspection_draw_input"] = keep_draw_input(conn, run_date, cur["version"])
        conn.execute(
            update(d)
            .where((d.c.run_date == run_date) & (d.c.version == cur["version"]))
            .values(in_force=not new, inputs_kept=True)
        )
        if not new:
            warnings.append(
                f"inspection plan {run_date}: this run made no plan; version {cur['version']} of "
                f"{run_date}'s plan, published earlier, stays in force"
            )
            return counts
    elif not new:
        return counts
    version = (conn.execute(select(func.max(d.c.version)).where(d.c.run_date == run_date)).scalar() or 0) + 1
    conn.execute(
        insert(d),
        [
            {
                "run_date": run_date,
                "version": version,
                **new[0],
                "in_force": True,
                "inputs_kept": False,
                "published_at": published_at,
            }
        ],
    )
    rows = [{"run_date": run_date, "version": version, **r} for r in plan]
    if conn.dialect.name == "postgresql":
        counts["inspection_plan"] = copy_rows(conn, p.name, [c.name for c in p.columns], [rows])
    else:
        counts["inspection_plan"] = _insert(conn, p, [rows])
    counts["inspection_draw"] = 1
    if cur is not None:
        log.info(
            "inspection plan %s: version %d added and in force; version %d kept", run_date, version, cur["version"]
        )
    return counts


STAGE_PREFIX = "stage_"


def after_staging(run_date: dt.date) -> None:
    """A seam between staging and swap (the tests inject a failure here)."""


def copy_rows(conn: Connection, name: str, cols: list[str], batches, schema: str | None = None) -> int:
    """PostgreSQL's COPY of ``batches`` (Arrow record batches, or lists of dicts) into the registry
    table ``name`` (or a table of D's rows of it in the schema ``schema``), inside the connection's
    transaction."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    n = 0
    batches = iter(batches)
    first = next(batches, None)
    batches = itertools.chain([first] if first is not None else [], batches)
    cur = conn.connection.cursor()
    col_list = ", ".join(chr(34) + c + chr(34) for c in cols)
    target = f'"{schema}"."{name}"' if schema else f'"{name}"'
    if isinstance(first, pa.RecordBatch):  # gold
        # Arrow's C++ CSV writer is PostgreSQL's CSV: strings quoted (an empty string is "",
        # a NULL nothing), dates ISO, booleans true/false. Row by row in Python capped the
        # COPY at about 100k rows/s (BENCHMARKS.md).
        options = pa_csv.WriteOptions(include_header=False)
        with cur.copy(f"COPY {target} ({col_list}) FROM STDIN WITH (FORMAT csv)") as copy:
            for batch in batches:
                if batch.num_rows:
                    out = pa.BufferOutputStream()
                    pa_csv.write_csv(batch.select(cols), out, options)
                    copy.write(out.getvalue())
                    n += batch.num_rows
        return n
    with cur.copy(f"COPY {target} ({col_list}) FROM STDIN") as copy:
        for rows in batches:
            for r in rows:
                copy.write_row(tuple(r.get(c) for c in cols))
                n += 1
    return n


PARTITIONS = "run_partitions"  # PostgreSQL's schema of the per-run tables' partitions (migration 0007)


def partition_name(table, run_date: dt.date) -> str:
    """The partition of a table holding the rows of D (PostgreSQL), in the schema
    ``run_partitions``: a per-run table's ``<table>_<YYYYMMDD>`` (decision 113), a latest-state
    table's one partition ``<table>_latest`` (decision 114)."""
    return f"{table.name}_latest" if table in wh.LATEST_STATE_TABLES else f"{table.name}_{run_date:%Y%m%d}"


def partition_bound(table, run_date: dt.date):
    """The bound a loaded table is attached with: the run date, or the one hash partition of all keys."""
    from psycopg import sql

    if table in wh.LATEST_STATE_TABLES:
        return sql.SQL("FOR VALUES WITH (MODULUS 1, REMAINDER 0)")
    return sql.SQL("FOR VALUES IN ({})").format(sql.Literal(run_date))


def load_partition(conn: Connection, table, run_date: dt.date) -> str:
    """A new table for D's rows of ``table`` (``run_partitions.stage_<partition>``): its columns,
    without indexes; a per-run table's with a check that every row is D's (which also spares the
    attach a scan). Returns its name in ``run_partitions``; ``attach_partition`` makes it D's
    partition, or the latest state's."""
    from psycopg import sql

    name = STAGE_PREFIX + partition_name(table, run_date)
    # a publish that died after its loads committed (``preload_partitions``) left this behind
    conn.connection.cursor().execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(PARTITIONS, name)))
    check: sql.Composable = sql.SQL("")
    if table not in wh.LATEST_STATE_TABLES:
        check = sql.SQL(", CONSTRAINT {} CHECK (run_date = {})").format(
            sql.Identifier(name + "_run_date"), sql.Literal(run_date)
        )
    conn.connection.cursor().execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS{})").format(
            sql.Identifier(PARTITIONS, name), sql.Identifier(table.name), check
        )
    )
    return name


LOAD_CONNECTIONS = 2  # COPYs at once into D's tables (each a connection, a core of the server)


def preload_partitions(eng: Engine, run_date: dt.date, loads: list) -> dict:
    """D's rows of each ``(table, rows)`` of ``loads`` COPYed into its table of D
    (``load_partition``), up to LOAD_CONNECTIONS tables at once, each load on its own connection
    and committed (decision 116). The tables are in ``run_partitions``, which departments cannot
    read, and attached by the publish transaction only: until its commit no reader sees them. A
    failure drops every one of them; a crash leaves them to the next publish, which drops each
    before loading it again. Returns the rows loaded per table name."""
    from concurrent.futures import ThreadPoolExecutor

    def one(item) -> tuple[str, int]:
        table, rows = item
        cols = [c.name for c in table.columns]
        with eng.begin() as conn:
            loaded = load_partition(conn, table, run_date)
            return table.name, copy_rows(conn, loaded, cols, rows, schema=PARTITIONS)

    drop_leftover_loads(eng)
    # the biggest first, so the last to finish is a small one
    order = sorted(loads, key=lambda item: -LOAD_WEIGHT.get(item[0].name, 1))
    try:
        with ThreadPoolExecutor(max_workers=LOAD_CONNECTIONS, thread_name_prefix="publish-load") as pool:
            return dict(pool.map(one, order))
    except BaseException:
        drop_preloaded(eng, run_date, [t for t, _ in loads])
        raise


# rows x width of a table's rows at 100k operators (BENCHMARKS.md), to start the longest loads first
LOAD_WEIGHT = {
    "operator_score": 50,
    "fact_credit_record": 30,
    "supervision_measure": 25,
    "dim_operator": 20,
    "fact_license": 15,
    "fact_complaint": 12,
    "fact_spot_check": 10,
    "risk_alert": 5,
}


def drop_leftover_loads(eng: Engine) -> list[str]:
    """Drop every loaded table in ``run_partitions`` that no publish attached (a killed publish's,
    of any date): under the warehouse's lock no other publish is loading. Returns their names."""
    from psycopg import sql

    with eng.begin() as conn:
        names = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %(schema)s AND c.relkind = 'r' AND NOT c.relispartition "
                "AND starts_with(c.relname, %(prefix)s)",
                {"schema": PARTITIONS, "prefix": STAGE_PREFIX},
            )
        ]
        for name in names:
            conn.connection.cursor().execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(PARTITIONS, name)))
    if names:
        log.info("dropped %d loaded table(s) a publish left unattached: %s", len(names), ", ".join(names))
    return names


def drop_preloaded(eng: Engine, run_date: dt.date, tables: list) -> None:
    """Drop the loaded tables of D that no publish attached (best effort: the next publish drops
    what is left)."""
    from psycopg import sql

    try:
        with eng.begin() as conn:
            for table in tables:
                conn.connection.cursor().execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(
                        sql.Identifier(PARTITIONS, STAGE_PREFIX + partition_name(table, run_date))
                    )
                )
    except Exception:
        log.warning("could not drop the loaded tables of %s; the next publish drops them", run_date, exc_info=True)


def attach_partition(conn: Connection, table, run_date: dt.date) -> None:
    """The loaded rows become D's partition of ``table`` (or its latest state's); the partition
    they replace (a rerun's, or the latest state before) is detached and dropped first. The table's
    indexes are built on the partition as it is attached."""
    from psycopg import sql

    part, loaded = partition_name(table, run_date), STAGE_PREFIX + partition_name(table, run_date)
    cur = conn.connection.cursor()
    if conn.execute(select(func.to_regclass(f"{PARTITIONS}.{part}"))).scalar() is not None:
        cur.execute(
            sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                sql.Identifier(table.name), sql.Identifier(PARTITIONS, part)
            )
        )
        cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(PARTITIONS, part)))
    cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(PARTITIONS, loaded), sql.Identifier(part)))
    cur.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(
            sql.Identifier(table.name), sql.Identifier(PARTITIONS, part), partition_bound(table, run_date)
        )
    )


def attach_partitions(conn: Connection, run_date: dt.date, latest: list | None = None) -> None:
    """D's loaded rows become D's partitions of every per-run table, and the partitions of the
    latest-state tables ``latest`` (those replaced whole). The tables are locked first (ACCESS
    EXCLUSIVE, until the commit): attaching a partition alone does not stop a reader that planned
    its query on the partitions before the commit from reading the other tables after it, which
    would show it D's latest state beside the previous run's scores. Readers of these tables wait
    for the attaches (their index builds) and the commit."""
    from psycopg import sql

    tables = list(wh.PER_RUN_TABLES) + list(latest or [])
    names = [sql.Identifier(t.name) for t in tables]
    conn.connection.cursor().execute(
        sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.SQL(", ").join(names))
    )
    for n, table in enumerate(tables):
        attach_partition(conn, table, run_date)
        if n == 0:
            failpoints.hit("publish.swapping")


def stage(conn: Connection, table, batches) -> int:
    """The embedded default's staging: rows into a temporary copy of ``table``
    (``stage_<table>``, executemany), swapped in by ``swap_in``. PostgreSQL stages only the per-run
    tables' rows, by COPY into ``run_partitions`` (``load_partition``)."""
    name = STAGE_PREFIX + table.name
    conn.exec_driver_sql(f'DROP TABLE IF EXISTS temp."{name}"')
    conn.exec_driver_sql(f'CREATE TEMP TABLE "{name}" AS SELECT * FROM "{table.name}" WHERE 0')
    return _insert(conn, Table(name, MetaData(), *[Column(c.name, c.type) for c in table.columns]), batches)


def swap_in(conn: Connection, table) -> int:
    cols = ", ".join(f'"{c.name}"' for c in table.columns)
    return conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM "{STAGE_PREFIX}{table.name}"'
    ).rowcount


def drop_stages(conn: Connection, staged: dict) -> None:
    if conn.dialect.name != "postgresql":  # PostgreSQL drops them at commit (ON COMMIT DROP)
        for name in staged:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS temp."{STAGE_PREFIX}{name}"')
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS temp."{KEYS_PREFIX}{name}"')


def _insert(conn: Connection, table, batches) -> int:
    """executemany of ``batches`` (Arrow record batches, or lists of dicts) into ``table``."""
    import pyarrow as pa

    n = 0
    for rows in batches:
        rows = rows.to_pylist() if isinstance(rows, pa.RecordBatch) else rows
        if rows:
            conn.execute(insert(table), rows)
            n += len(rows)
    return n


def latest_published_date(conn: Connection) -> dt.date | None:
    """The run date whose state the latest-state tables hold: the latest date published
    (``feed_status``, written by every publish's transaction)."""
    return conn.execute(select(func.max(wh.feed_status.c.run_date))).scalar()


def change_sets_apply(
    settings: Settings, conn: Connection, run_date: dt.date, latest: dt.date | None
) -> tuple[bool, str]:
    """(whether D's change sets can be applied to the warehouse's latest state, why): they can when
    they were taken against the build of the latest date that the warehouse holds (decision 112)."""
    marker = lake.read_json(lake.changes_marker(settings, run_date))
    if latest is None:
        return False, "the warehouse holds no state yet"
    if marker is None:
        return False, f"the build of {run_date} has no change sets"
    if latest >= run_date or marker["against"] != latest.isoformat():
        return False, f"its change sets are against {marker['against']}, the warehouse holds {latest}"
    pb = wh.published_build
    held = conn.execute(select(pb.c.build_id).where(pb.c.run_date == latest)).scalar()
    if held != marker["build"]:
        return False, f"the warehouse holds another build of {latest} than its change sets are against"
    return True, f"changes against {latest}"


def record_build(conn: Connection, settings: Settings, run_date: dt.date, published_at: dt.datetime) -> None:
    pb = wh.published_build
    conn.execute(delete(pb).where(pb.c.run_date == run_date))
    build = lake.build_id(settings, run_date)
    if build is not None:
        conn.execute(insert(pb).values(run_date=run_date, build_id=build, published_at=published_at))


KEYS_PREFIX = "keys_"


def stage_keys(conn: Connection, table, key: str, batches) -> int:
    """The keys to delete from ``table`` into a temporary table ``keys_<table>`` (COPY on
    PostgreSQL, dropped at commit; executemany on the embedded default)."""
    name = KEYS_PREFIX + table.name
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f'CREATE TEMP TABLE "{name}" ON COMMIT DROP AS SELECT "{key}" FROM "{table.name}" WITH NO DATA'
        )
        n = copy_rows(conn, name, [key], batches)
        conn.exec_driver_sql(f'ANALYZE "{name}"')
        return n
    conn.exec_driver_sql(f'DROP TABLE IF EXISTS temp."{name}"')
    conn.exec_driver_sql(f'CREATE TEMP TABLE "{name}" AS SELECT "{key}" FROM "{table.name}" WHERE 0')
    return _insert(conn, Table(name, MetaData(), Column(key, table.c[key].type)), batches)


def delete_keys(conn: Connection, table, key: str) -> int:
    name = KEYS_PREFIX + table.name
    if conn.dialect.name == "postgresql":
        sql = f'DELETE FROM "{table.name}" t USING "{name}" k WHERE t."{key}" = k."{key}"'
    else:
        sql = f'DELETE FROM "{table.name}" WHERE "{key}" IN (SELECT "{key}" FROM temp."{name}")'
    return conn.exec_driver_sql(sql).rowcount


def previous_published_date(conn: Connection, run_date: dt.date) -> dt.date | None:
    """The latest run date before D whose rows are in the warehouse: the run date whose published
    rows give D its previous state (previous_class, list changes; warehouse.md). Read from
    ``feed_status``, which publish's transaction writes for every run date (one row per department):
    a date is published exactly when its transaction committed, whatever happened after."""
    fs = wh.feed_status
    return conn.execute(select(func.max(fs.c.run_date)).where(fs.c.run_date < run_date)).scalar()


def publish_run(settings: Settings, run_date: dt.date, run_id: str, started_at: dt.datetime | None = None) -> dict:
    started_at = started_at or dt.datetime.now(dt.UTC)
    rule_set = rules_mod.load(settings.rules_path)
    eng = connect(settings)
    gold = lake.gold_dir(settings, run_date)
    if not lake.is_built(settings, run_date):
        raise RuntimeError(
            f"{gold} is not a finished build (no {lake.BUILT_MARKER}): the build_state stage did not "
            f"finish for {run_date}; rerun the date"
        )
    status_rows, verdicts = feed_status_rows(settings, rule_set, run_date)
    counts: dict = {}
    warnings = [
        f"{r['dept']}: delivery of {run_date} is {r['status']}"
        for r in status_rows
        if r["status"] in (delivery.MISSING, delivery.REJECTED)
    ]
    warnings += lake.read_gold_warnings(settings, run_date)
    warnings += [
        f"{dept} {run_date}: {w}"
        for dept in DEPARTMENTS
        for w in validation.verdict(settings, rule_set, dept, run_date).warnings
    ]
    preloaded: list = []  # tables of D loaded on connections of their own (preload_partitions)
    try:
        # one transaction: D's rows appear all at once or not at all; one run's at a time (runlock)
        with runlock.writing_warehouse(eng, run_id, run_date.isoformat(), settings.lock_timeout) as conn:
            # first: a superseded draw version keeps the operator_score and inspector rows replaced below
            counts.update(publish_draw(conn, settings, run_date, dt.datetime.now(dt.UTC), warnings))
            latest = latest_published_date(conn)
            replace_state = latest is None or run_date >= latest
            # the latest state: D's change sets applied when they are against what the warehouse holds
            by_changes, how = change_sets_apply(settings, conn, run_date, latest) if replace_state else (False, "")
            if not replace_state:
                warnings.append(
                    f"dim_operator and fact_credit_record keep the state of {latest}, the latest run date so far"
                )
            else:
                counts["latest_state"] = how if by_changes else f"replaced ({how})"

            def key(table) -> str:
                (k,) = [c.name for c in table.primary_key.columns]
                return k

            def new_rows(table):
                if table is wh.feed_status:
                    return [status_rows]
                cols = [c.name for c in table.columns]
                if by_changes and table in latest_tables:
                    only = (lake.CHANGE, lake.CHANGE_INSERTS)
                    return lake.gold_arrow_batches(settings, run_date, lake.change_table(table.name), cols, only)
                return lake.gold_arrow_batches(settings, run_date, table.name, cols)

            def deleted_keys(table):
                only = (lake.CHANGE, lake.CHANGE_DELETES)
                return lake.gold_arrow_batches(settings, run_date, lake.change_table(table.name), [key(table)], only)

            # draw_commitment is upserted by draw date, not replaced by run date
            latest_tables = list(wh.LATEST_STATE_TABLES) if replace_state else []
            tables = list(wh.PER_RUN_TABLES) + latest_tables

            def clear(table):  # D's rows, the latest state's replaced and gone rows, or the whole latest state
                if table not in wh.LATEST_STATE_TABLES:
                    conn.execute(delete(table).where(table.c.run_date == run_date))
                elif by_changes:
                    counts[table.name + "_deleted"] = delete_keys(conn, table, key(table))
                else:
                    conn.execute(delete(table))

            staged: dict = {}
            if conn.dialect.name == "postgresql":
                # Readers keep seeing the previous state until this transaction commits. A per-run
                # table's rows of D are COPYed into a table of their own without indexes, which is then
                # attached as the run date's partition (decision 113); so are the latest-state tables'
                # rows when they are replaced whole (decision 114); those loads run two at a time on
                # connections of their own (decision 116). Change sets go through the tables.
                loads = [(t, new_rows(t)) for t in tables if t in wh.PER_RUN_TABLES or not by_changes]
                preloaded[:] = [t for t, _ in loads]
                counts.update(preload_partitions(eng, run_date, loads))
                for table in tables:
                    cols = [c.name for c in table.columns]
                    if table in preloaded:
                        continue
                    stage_keys(conn, table, key(table), deleted_keys(table))
                    clear(table)
                    counts[table.name] = copy_rows(conn, table.name, cols, new_rows(table))
                after_staging(run_date)
                failpoints.hit("publish.staged")
            else:
                # the embedded default: 1. stage every table's rows into a temporary table, 2. swap
                for table in tables:
                    staged[table.name] = stage(conn, table, new_rows(table))
                    if by_changes and table in latest_tables:
                        stage_keys(conn, table, key(table), deleted_keys(table))
                after_staging(run_date)
                failpoints.hit("publish.staged")
                for n, table in enumerate(tables):
                    clear(table)
                    counts[table.name] = swap_in(conn, table)
                    if n == 0:
                        failpoints.hit("publish.swapping")
            counts["draw_commitment"] = publish_commitment(
                conn,
                lake.gold_rows(settings, run_date, "draw_commitment", [c.name for c in wh.draw_commitment.columns]),
                warnings,
            )
            counts["validation_rows"] = publish_validation(conn, settings, rule_set, verdicts, run_id, run_date)
            record_build(conn, settings, run_date, dt.datetime.now(dt.UTC))
            if conn.dialect.name == "postgresql":
                # last: the tables attached are locked from here to the commit
                attach_partitions(conn, run_date, [] if by_changes else latest_tables)
            drop_stages(conn, staged)
    except BaseException:
        if preloaded:  # committed by their loads; not attached, since this transaction rolled back
            drop_preloaded(eng, run_date, preloaded)
        raise

    # committed: D is published (the next run date's previous state reads it from the warehouse)
    failpoints.hit("publish.committed")
    counts.update({s["dept"] + "_status": s["status"] for s in status_rows})
    record_attempt(eng, run_date, run_id, started_at, "success", None, warnings, rule_set.version, counts)
    flush_unrecorded(settings, eng)
    log.info("published %s: %s", run_date, counts)
    return {"run_date": run_date.isoformat(), "counts": counts, "warnings": warnings}


def record_attempt(eng: Engine, run_date, run_id, started_at, status, reason, warnings, rules_version, counts) -> None:
    with eng.begin() as conn:
        conn.execute(
            insert(wh.pipeline_run).values(
                run_date=run_date,
                run_id=run_id,
                started_at=started_at,
                finished_at=dt.datetime.now(dt.UTC),
                status=status,
                reason=reason,
                warnings=json.dumps(warnings or [], ensure_ascii=False),
                rules_version=rules_version,
                counts=json.dumps(counts or {}, ensure_ascii=False),
            )
        )


def unrecorded_dir(settings: Settings) -> Path:
    """Failed attempts that could not be written to ``pipeline_run`` (the warehouse was down)."""
    return lake.unrecorded_dir(settings)


def record_failed_run(settings: Settings, run_date: str | None, run_id: str, reason: str) -> None:
    """Append a failed attempt to ``pipeline_run``. When the warehouse cannot be reached (it may be
    what failed), the attempt is kept in ``lake/runs/unrecorded/`` and written to ``pipeline_run``
    by the next attempt that reaches it; never raises."""
    import uuid

    try:
        version = rules_mod.load(settings.rules_path).version
    except Exception:  # noqa: BLE001 - the rules file may be what failed
        version = None
    now = dt.datetime.now(dt.UTC)
    try:
        eng = connect(settings)
        record_attempt(
            eng,
            dt.date.fromisoformat(run_date) if run_date else None,
            run_id,
            None,
            "failed",
            reason[:4000],
            [],
            version,
            {},
        )
        flush_unrecorded(settings, eng)
    except (SQLAlchemyError, SettingError) as e:
        try:
            folder = unrecorded_dir(settings)
            key = f"{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
            lake.write_json(
                lake.unrecorded_file(settings, key),
                {
                    "run_date": run_date,
                    "run_id": run_id,
                    "finished_at": now.isoformat(),
                    "reason": reason[:4000],
                    "rules_version": version,
                    "key": key,
                },
            )
            log.error(
                "could not record the failed run in pipeline_run (%s); kept in %s until the warehouse is back",
                e,
                folder,
            )
        except OSError as e2:
            log.error("could not record the failed run in pipeline_run (%s) nor in the lake (%s)", e, e2)


def flush_unrecorded(settings: Settings, eng: Engine) -> int:
    """Write the failed attempts kept in the lake while the warehouse was down to ``pipeline_run``
    (oldest first; each once: its key is in ``counts``), then remove them."""
    n = 0
    for p in lake.unrecorded_files(settings):
        try:  # never fails the attempt that flushes: a file that cannot be written stays for a look
            r = json.loads(p.read_text("utf-8"))
            counts = json.dumps({"recorded_late": r["key"]})
            t = wh.pipeline_run
            with eng.begin() as conn:
                if (
                    conn.execute(
                        select(func.count()).select_from(t).where((t.c.run_id == r["run_id"]) & (t.c.counts == counts))
                    ).scalar()
                    == 0
                ):
                    conn.execute(
                        insert(t).values(
                            run_date=dt.date.fromisoformat(r["run_date"]) if r["run_date"] else None,
                            run_id=r["run_id"],
                            started_at=None,
                            finished_at=dt.datetime.fromisoformat(r["finished_at"]),
                            status="failed",
                            reason=r["reason"],
                            warnings="[]",
                            rules_version=r["rules_version"],
                            counts=counts,
                        )
                    )
                    n += 1
            p.unlink()
        except (OSError, ValueError, KeyError, TypeError, SQLAlchemyError) as e:
            log.warning("could not write the kept failed attempt %s to pipeline_run: %s", p, e)
    return n
