"""The lake (``CREDIT_LAKE_DIR``): the one module that knows its layout.

Every path under the lake and every small JSON marker in it is named here; every other module
asks this one (decision 0089). Spark-free: the driver-only tasks (gate, verdict, publish, outbox,
reports) read the lake through it without starting or importing Spark; Parquet is read with
pyarrow, imported when a reader runs.

Layout, under ``CREDIT_LAKE_DIR``::

    parsed/_pii_key.json                          which key pseudonymised the cached rows
    parsed/rows/feed_id=<F>/delivery_date=<D>/file_sha=<SHA>/   the parsed rows of one file (Parquet)
    parsed/done/<F>/<D>/<SHA>.json                the file's done-marker (its counts): never parsed again
    gates/<dept>/<D>/<manifest SHA>.json          the delivery gate's result
    validations/<F>/<D>/<SHA>.json                the GX validation result of one file
    data_docs/<D>/index.html                      the run's Data Docs site
    state/<D>/<table>/                            the canonical state of D (Parquet)
    state/<D>/folded/feed_id=<F>/, state/<D>/_folded.json   D's checkpoint: every record's latest
                                                  version, or those D touched on the chain its marker
                                                  names (decision 117), and its marker, written last
    gold/<D>/<table>/, gold/<D>/warnings.json     what publish takes; gold/<D>/_built.json: the build is whole
    reports/<D>/index.html                        the run report
    (state/<D>/ and gold/<D>/ of the run dates older than the newest CREDIT_LAKE_KEEP_RUN_DATES are
    deleted after a later date's publish, unless a kept checkpoint's chain reads them:
    ``prune_run_dates``, decisions 115 and 117)
    runs/lock.json, runs/lock                     the run lock's lease and its mutex
    runs/unrecorded/<key>.json                    failed attempts kept while the warehouse was down
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, Union

from ecredit.core.files import write_json_atomic


class _HasLake(Protocol):
    @property
    def lake_dir(self) -> Path: ...  # Settings' (a frozen dataclass: read-only)


Where = Union[  # noqa: UP007 - a runtime alias, spelled as the Protocol needs
    _HasLake, Path
]  # Settings, or the lake's folder itself (settings.load checks the key before Settings exist)

PARSED = "parsed"
ROWS = "rows"
DONE = "done"
GATES = "gates"
VALIDATIONS = "validations"
DATA_DOCS = "data_docs"
STATE = "state"
GOLD = "gold"
REPORTS = "reports"
RUNS = "runs"
UNRECORDED = "unrecorded"
PII_KEY_MARK = "_pii_key.json"
FOLDED = "folded"
FOLDED_MARKER = "_folded.json"  # written last: state/<D>/folded/ is whole and says what it holds
SCORED_NOTE = "_scored.json"  # how D's scores were made (issue 17): read by tests and engineers
BUILT_MARKER = "_built.json"  # written last by build: gold/<D>/ is whole (publish refuses it otherwise)
GOLD_WARNINGS = "warnings.json"
LEASE = "lock.json"
INDEX = "index.html"
PARTITION_COLUMNS = ("feed_id", "delivery_date", "file_sha")


def root(where: Where) -> Path:
    return where if isinstance(where, Path) else where.lake_dir


def _day(d: dt.date | str) -> str:
    return d if isinstance(d, str) else d.isoformat()


def _file_key(info: Mapping[str, Any] | Any) -> tuple[str, str, str]:
    """(feed_id, date, sha256) of a delivery file: a dict or a record with those fields."""
    if isinstance(info, Mapping):
        return info["feed_id"], info["date"], info["sha256"]
    return info.feed_id, info.date, info.sha256


# ---------------------------------------------------------------- parsed rows and their markers


def parsed_dir(where: Where) -> Path:
    return root(where) / PARSED


def pii_key_mark(where: Where) -> Path:
    return parsed_dir(where) / PII_KEY_MARK


def rows_dir(where: Where) -> Path:
    """The parsed rows of every file, partitioned by PARTITION_COLUMNS."""
    return parsed_dir(where) / ROWS


def partition_dir(where: Where, info) -> Path:
    feed_id, date, sha = _file_key(info)
    return rows_dir(where) / f"feed_id={feed_id}" / f"delivery_date={date}" / f"file_sha={sha}"


def done_marker(where: Where, info) -> Path:
    feed_id, date, sha = _file_key(info)
    return parsed_dir(where) / DONE / feed_id / date / f"{sha}.json"


def read_done(where: Where, info) -> dict | None:
    """A parsed file's counts (its done-marker), None when it is not parsed."""
    return read_json(done_marker(where, info))


def write_done(where: Where, info, counts: Mapping) -> None:
    write_json_atomic(done_marker(where, info), dict(counts))


def drop_done(where: Where, info) -> None:
    """The file is parsed again by the next ingest."""
    done_marker(where, info).unlink(missing_ok=True)


def _parsed_table(where: Where, info, columns: list[str]):
    import pyarrow.parquet as pq

    part = partition_dir(where, info)
    return pq.read_table(str(part), columns=columns) if part.is_dir() else None


def quarantined_rows(where: Where, info) -> list[dict]:
    """The quarantined rows of one parsed file: source_line, reasons, payload (masked), by line."""
    import pyarrow.compute as pc

    t = _parsed_table(where, info, ["source_line", "reasons", "payload"])
    if t is None:
        return []
    return t.filter(pc.greater(pc.list_value_length(t["reasons"]), 0)).sort_by("source_line").to_pylist()


def warned_rows(where: Where, info) -> list[dict]:
    """The rows of one parsed file that are kept with a warning (RETIRED_DISTRICT): source_line,
    warnings, payload (masked), by line."""
    import pyarrow.compute as pc

    t = _parsed_table(where, info, ["source_line", "reasons", "warnings", "payload"])
    if t is None:
        return []
    kept = pc.and_(pc.equal(pc.list_value_length(t["reasons"]), 0), pc.greater(pc.list_value_length(t["warnings"]), 0))
    return t.filter(kept).sort_by("source_line").select(["source_line", "warnings", "payload"]).to_pylist()


# ---------------------------------------------------------------- gates, validations, data docs


def gate_result(where: Where, dept: str, date: dt.date | str, manifest_sha: str) -> Path:
    return root(where) / GATES / dept / _day(date) / f"{manifest_sha}.json"


def validation_result(where: Where, info) -> Path:
    """The stored GX validation result of one delivery file (JSON, counts only)."""
    feed_id, date, sha = _file_key(info)
    return root(where) / VALIDATIONS / feed_id / date / f"{sha}.json"


def data_docs_dir(where: Where, run_date: dt.date | str) -> Path:
    return root(where) / DATA_DOCS / _day(run_date)


def data_docs_index(where: Where, run_date: dt.date | str) -> Path:
    return data_docs_dir(where, run_date) / INDEX


# ---------------------------------------------------------------- state and gold


def state_dir(where: Where, run_date: dt.date | str) -> Path:
    return root(where) / STATE / _day(run_date)


def state_table(where: Where, run_date: dt.date | str, table: str) -> Path:
    return state_dir(where, run_date) / table


def folded_dir(where: Where, run_date: dt.date | str) -> Path:
    """D's checkpoint: the latest version of every record of the deliveries it holds, by feed."""
    return state_dir(where, run_date) / FOLDED


def folded_marker(where: Where, run_date: dt.date | str) -> Path:
    return state_dir(where, run_date) / FOLDED_MARKER


def scored_note(where: Where, run_date: dt.date | str) -> Path:
    """How D's scores were made: everyone scored (and why) or the touched operators only."""
    return state_dir(where, run_date) / SCORED_NOTE


def checkpoint_dates(where: Where) -> list[dt.date]:
    """The run dates with a checkpoint's marker, newest first."""
    base = root(where) / STATE
    out = []
    for d in base.iterdir() if base.is_dir() else []:
        try:
            day = dt.date.fromisoformat(d.name)
        except ValueError:
            continue
        if (d / FOLDED_MARKER).is_file():
            out.append(day)
    return sorted(out, reverse=True)


def checkpoint_chain(where: Where, run_date: dt.date | str) -> list[dt.date]:
    """The run dates whose folded rows D's checkpoint reads (``chain`` in its marker, decision 117):
    the full checkpoint it starts from, then the daily deltas, D's own last. Empty when there is no
    readable marker."""
    try:
        chain = read_json(folded_marker(where, run_date)).get("chain") or []
        return [dt.date.fromisoformat(m["date"]) for m in chain]
    except (ValueError, OSError, KeyError, TypeError, AttributeError):
        return []


def parquet_rows(folder: Path) -> int:
    """The rows of every Parquet file under ``folder`` by their footers (names starting with '.'
    or '_', Spark's staging and markers, are not data). An unreadable file raises
    ``UnreadableParquet`` naming it."""
    import pyarrow.parquet as pq

    files = [
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(x.startswith((".", "_")) for x in p.relative_to(folder).parts)
    ]
    total = 0
    for p in sorted(files):
        try:
            total += pq.read_metadata(str(p)).num_rows
        except Exception as e:  # any unreadable file is named
            raise UnreadableParquet(f"{p} is not a readable Parquet file ({str(e).strip().splitlines()[0]})") from e
    return total


def parquet_values(folder: Path, column: str) -> dict:
    """How many rows of the Parquet files under ``folder`` hold each value of ``column``."""
    import pyarrow.parquet as pq

    if not any(folder.glob("*.parquet")):
        return {}
    counts = pq.ParquetDataset(str(folder)).read(columns=[column]).column(0).value_counts()
    return {v["values"]: v["counts"] for v in counts.to_pylist()}


class UnreadableParquet(ValueError):
    """A file in the lake whose Parquet footer cannot be read; the message names the file."""


def gold_dir(where: Where, run_date: dt.date | str) -> Path:
    return root(where) / GOLD / _day(run_date)


def gold_table(where: Where, run_date: dt.date | str, table: str) -> Path:
    return gold_dir(where, run_date) / table


def built_marker(where: Where, run_date: dt.date | str) -> Path:
    return gold_dir(where, run_date) / BUILT_MARKER


def is_built(where: Where, run_date: dt.date | str) -> bool:
    return built_marker(where, run_date).is_file()


def write_built(where: Where, run_date: dt.date) -> None:
    """``build``: a new id for each build of D, so that publish can tell which build of a date the
    warehouse's latest state came from (``published_build``)."""
    import uuid

    write_json_atomic(built_marker(where, run_date), {"run_date": _day(run_date), "build": uuid.uuid4().hex})


def build_id(where: Where, run_date: dt.date | str) -> str | None:
    """The id of D's finished build, None when D is not built (or was built before builds had ids)."""
    marker = read_json(built_marker(where, run_date))
    return marker.get("build") if isinstance(marker, dict) else None


def run_dates(where: Where) -> list[dt.date]:
    """The run dates with a ``state/<D>/`` or a ``gold/<D>/`` folder, newest first."""
    days = set()
    for kind in (STATE, GOLD):
        base = root(where) / kind
        for d in base.iterdir() if base.is_dir() else []:
            try:
                days.add(dt.date.fromisoformat(d.name))
            except ValueError:
                continue
    return sorted(days, reverse=True)


def prune_run_dates(where: Where, run_date: dt.date, keep: int) -> list[dt.date]:
    """Delete ``state/<X>/`` and ``gold/<X>/`` of every run date X before ``run_date`` that is not
    among the newest ``keep`` run dates; return the dates deleted, oldest first. Called after D's
    publish: D itself, the dates after it and the newest ``keep`` stay (a backfill's next date folds
    forward from the date before it). Each folder loses its marker first (``_folded.json``,
    ``_built.json``), so a deletion cut short leaves no checkpoint or build that looks whole: the
    fold and the scoring then start from an older checkpoint or from nothing, which gives the same
    answer (decision 115). A date that a staying date's checkpoint reads (its ``chain``: the full
    checkpoint and the deltas it is built on, decision 117) stays with it, until a later full
    checkpoint (a compaction) frees it."""
    import shutil

    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    days = run_dates(where)
    kept = {d for d in days if d >= run_date} | set(days[:keep])
    kept |= {member for d in kept for member in checkpoint_chain(where, d)}
    gone = sorted(d for d in days if d not in kept)
    for d in gone:
        for marker in (folded_marker(where, d), built_marker(where, d)):
            marker.unlink(missing_ok=True)
        for folder in (state_dir(where, d), gold_dir(where, d)):
            if folder.exists():
                shutil.rmtree(folder)
    return gone


CHANGES = "changes"  # gold/<D>/changes/: the latest-state tables' change sets (decision 112)
CHANGES_MARKER = "_against.json"  # written last: the change sets are whole; against which build


def changes_dir(where: Where, run_date: dt.date | str) -> Path:
    return gold_dir(where, run_date) / CHANGES


# A change set is one table: the table's columns and CHANGE, which says what publish does with
# the row: "new" (insert it), "changed" (delete the key, insert the row), "gone" (delete the key;
# the other columns are null)
CHANGE = "_change"
CHANGE_INSERTS = ("new", "changed")
CHANGE_DELETES = ("changed", "gone")


def change_table(table: str) -> str:
    """The gold-relative name of a latest-state table's change set."""
    return f"{CHANGES}/{table}"


def changes_marker(where: Where, run_date: dt.date | str) -> Path:
    return changes_dir(where, run_date) / CHANGES_MARKER


def drop_built(where: Where, run_date: dt.date | str) -> None:
    built_marker(where, run_date).unlink(missing_ok=True)


def gold_warnings_file(where: Where, run_date: dt.date | str) -> Path:
    return gold_dir(where, run_date) / GOLD_WARNINGS


def read_gold_warnings(where: Where, run_date: dt.date | str) -> list[str]:
    return read_json(gold_warnings_file(where, run_date)) or []


def write_gold_warnings(where: Where, run_date: dt.date | str, warnings: list[str]) -> None:
    write_json_atomic(gold_warnings_file(where, run_date), list(warnings))


GOLD_BATCH = 5000


def gold_arrow_batches(
    where: Where, run_date: dt.date, table: str, columns: list[str], only: tuple[str, tuple] | None = None
) -> Iterator:
    """The rows of a gold table of D as Arrow record batches, ``columns`` in that order (pyarrow
    on the driver: the readers of gold, publish, the outbox and the draw check, need no Spark);
    with ``only`` = (column, values) the rows whose column is one of the values."""
    import pyarrow.parquet as pq

    path = gold_table(where, run_date, table)
    if not path.exists():
        raise RuntimeError(f"{path} is missing: the build_state stage did not run for {run_date}")
    if not any(path.glob("*.parquet")):  # an empty table (no plan on this date)
        return
    try:
        filters = [(only[0], "in", list(only[1]))] if only else None
        batches = pq.ParquetDataset(str(path), filters=filters).read(columns=columns).to_batches(GOLD_BATCH)
    except Exception as e:
        for p in sorted(path.glob("*.parquet")):
            try:
                pq.read_table(str(p), columns=columns)
            except Exception:  # noqa: BLE001
                path = p
                break
        raise RuntimeError(
            f"{path} cannot be read ({str(e).strip().splitlines()[0]}): the gold of {run_date} is "
            "damaged; it is derived, so rerun the date (build_state writes it again)"
        ) from e
    yield from batches


def gold_batches(where: Where, run_date: dt.date, table: str, columns: list[str]) -> Iterator[list[dict]]:
    """The same as lists of dicts, a batch at a time."""
    for batch in gold_arrow_batches(where, run_date, table, columns):
        yield batch.to_pylist()


def gold_rows(where: Where, run_date: dt.date, table: str, columns: list[str]) -> list[dict]:
    return [r for rows in gold_batches(where, run_date, table, columns) for r in rows]


# ---------------------------------------------------------------- reports and runs


def report_index(where: Where, run_date: dt.date | str) -> Path:
    return root(where) / REPORTS / _day(run_date) / INDEX


def runs_dir(where: Where) -> Path:
    return root(where) / RUNS


def lease_file(where: Where) -> Path:
    """The run lock's lease (JSON); its mutex is ``lease_mutex`` beside it."""
    return runs_dir(where) / LEASE


def lease_mutex(where: Where) -> Path:
    return runs_dir(where) / "lock"


def unrecorded_dir(where: Where) -> Path:
    """Failed attempts that could not be written to ``pipeline_run`` (the warehouse was down)."""
    return runs_dir(where) / UNRECORDED


def unrecorded_file(where: Where, key: str) -> Path:
    return unrecorded_dir(where) / f"{key}.json"


def unrecorded_files(where: Where) -> list[Path]:
    folder = unrecorded_dir(where)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


# ---------------------------------------------------------------- small JSON files


def read_json(path: Path):
    """A marker's content, None when there is none (written whole by write_json_atomic)."""
    return json.loads(path.read_text("utf-8")) if path.is_file() else None


def write_json(path: Path, obj, *, pretty: bool = False) -> None:
    write_json_atomic(path, obj, pretty=pretty)
