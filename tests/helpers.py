"""Writing small hand-made deliveries for tests."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ecredit.core.feeds import feed


def write_delivery(landing: Path, dept: str, date: str, files: dict[str, list], manifest: bool = True) -> Path:
    """files: file name -> list of rows; CSV rows are lists of values in header order, JSON rows
    are dicts. Encoded as feeds.md declares; the manifest counts rows and hashes bytes."""
    folder = landing / dept / date
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, rows in files.items():
        f = feed(dept, name)
        if f.fmt == "jsonl":
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        else:
            import csv
            import io

            buf = io.StringIO(newline="")
            w = csv.writer(buf, lineterminator="\n")
            w.writerow([c.source for c in f.columns if not c.optional_in_header])
            for r in rows:
                w.writerow(r)
            text = buf.getvalue()
        data = text.encode(f.encoding)
        (folder / name).write_bytes(data)
        entries.append({"name": name, "rows": len(rows), "sha256": hashlib.sha256(data).hexdigest()})
    if manifest:
        (folder / "manifest.json").write_text(json.dumps({"dept": dept, "date": date, "files": entries}), "utf-8")
    return folder


def gates_accepted(stage: str, got) -> None:
    """``after`` hook of ``pipeline.run_stages``: every department's delivery passed its gate, checked
    before ingest runs."""
    if stage == "gate":
        bad = {dept: g["status"] for dept, g in got.items() if g["status"] != "accepted"}
        assert not bad, bad


PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"


@contextmanager
def new_pg_database(prefix: str) -> Iterator[str]:
    """The URL of a new empty PostgreSQL database on 127.0.0.1:5432, dropped afterwards (skips or,
    in CI, fails when the server is not reachable)."""
    import pytest
    from sqlalchemy import create_engine

    admin = create_engine(PG_SERVER.format(db="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql("SELECT 1")
    except Exception:
        admin.dispose()
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL on 127.0.0.1:5432 is not reachable (CI starts it in .ci/run)")
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable: install and start postgresql to run this case")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_SERVER.format(db=name)
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# which run validated or published a row, and wall-clock times: legitimately different between two
# runs of the same deliveries
RUN_COLUMNS = {"run_id", "attempt_id"}


def warehouse_snapshot(url: str) -> dict:
    """Every published table of the warehouse (not its bookkeeping), as sorted JSON rows, without
    the columns that name a run or a time: two warehouses of the same deliveries compare equal."""
    from sqlalchemy import DateTime, create_engine, select

    from ecredit.warehouse import schema as wh

    out = {}
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            for name, table in wh.metadata.tables.items():
                if name in wh.BOOKKEEPING_TABLES:
                    continue
                cols = [
                    col for col in table.columns if col.name not in RUN_COLUMNS and not isinstance(col.type, DateTime)
                ]
                out[name] = sorted(
                    json.dumps(dict(r._mapping), sort_keys=True, default=str, ensure_ascii=False)
                    for r in c.execute(select(*cols))
                )
    finally:
        engine.dispose()
    return out


def outbox_files(folder: Path) -> dict:
    """Every file under the outbox folder by its path under it: name -> bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
