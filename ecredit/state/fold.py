"""The folded records as of run date D, folded forward (issue 17, decision 0110).

The state at D is the latest-wins fold of every applied delivery dated <= D: per (feed, record key)
the row of the latest delivery, and within one delivery the last line. Latest-wins is associative:
folding the winners of some files together with other files' rows gives the winners of all of
them. So each run keeps its folded rows as a *checkpoint* (``state/<D>/folded/``, one folder per
feed, and ``state/<D>/_folded.json`` written last, naming the files it holds), and the next run
starts from the newest usable checkpoint before it and folds in only the files that checkpoint has
not seen: the day's deliveries, or a late one for an earlier date. Records the new rows do not
touch are copied as they are; only the touched keys are folded again.

A checkpoint is usable when

- its marker exists (written after its rows: a run killed while writing leaves none),
- it was made with the same rules file, PII key and checkpoint format (``fingerprint``): a
  changed rules file or key folds everything again, as ``--full`` does,
- every file it holds is still applied at D (a delivery replaced, withdrawn or rejected since
  makes it unusable: the next older one, or a full fold, is taken),
- its Parquet footers add up to the rows its marker counts (a damaged checkpoint is skipped).

At most ``MAX_CANDIDATES`` (the newest) are judged, each verdict logged. ``ecredit run --date D --full`` ignores them all.

A checkpoint is *full* (every record in force) or a *delta* (decision 0117): only the records the
date's files touched, folded with their versions before, on top of the checkpoints it names in its
``chain`` (a full one, then the deltas of the dates after it, its own last). The records in force at
D are then latest-wins over the chain's rows, and a daily run writes what the day touched, not the
whole state. Each marker carries an ``id``; a chain names each member's, so a member written again
(a rerun, a backfill) or damaged makes the checkpoints built on it unusable. The chain is folded into
a full checkpoint again (compacted) when its deltas would pass ``COMPACT_SHARE`` of the full one's
rows, ``BROADCAST_KEYS_MAX_ROWS``, or ``MAX_DELTAS`` dates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import shutil
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ecredit.core import lake
from ecredit.core.feeds import FEEDS, Feed
from ecredit.core.rules import Rules
from ecredit.core.settings import Settings, pii_key_fingerprint
from ecredit.ingest import load as ingest
from ecredit.quality import verdict as validation

log = logging.getLogger(__name__)

# Bumped when the checkpoint's columns or the fold change: an older checkpoint is then not used.
FORMAT = 2
# A checkpoint of up to this many records is folded with the new rows in one window (a shuffle of
# it all): measured at 20k operators (394k records, 11 dates) 12 s against 15 s for the split below,
# whose fixed costs (a broadcast job and two scans a feed) dominate there. Above it, the records the
# new rows do not touch are split off without a shuffle (not yet measured at 1M: issue 17).
SPLIT_MIN_BASE_ROWS = 5_000_000
# New rows up to this many: their keys are broadcast to split the checkpoint into kept and touched
# records without shuffling it; above, the join shuffles (a history date has no checkpoint anyway).
BROADCAST_KEYS_MAX_ROWS = 2_000_000

# A delta chain is compacted (D's checkpoint written full) when its deltas, D's included, would hold
# more than this share of the full checkpoint's rows (each run reads every delta and sets the full
# one's records they hold aside by their keys: a longer chain costs every day), or more than
# ``MAX_DELTAS`` dates.
COMPACT_SHARE = 0.10
MAX_DELTAS = 15
# Reading a chain: above this many rows in its full checkpoint, the full one's records that no delta
# touches are split off by a broadcast anti-join, not shuffled with the deltas (below, the fixed cost
# of the split's extra scan and broadcast a feed outweighs a small shuffle).
READ_SPLIT_MIN_ROWS = 1_000_000

# At most this many checkpoints (the newest before D) are judged: each marker lists every file it
# holds, so judging all of a long history after a rules change would read years of lists to find
# none usable. An older base would fold a month of files anyway, close to a full fold's cost.
MAX_CANDIDATES = 31

# The columns every feed's folded rows keep besides its own (``feed_id`` is the folder)
META = ["dept", "delivery_date", "source_line", "operator_key", "natural_person", "key_str"]
_FIELDS = {f.name: f for f in ingest.ROW_SCHEMA.fields}
FOLDED_SCHEMA = T.StructType(
    [_FIELDS[c] for c in META] + [_FIELDS[c] for c in ingest.WIDE_COLUMNS] + [_FIELDS["feed_id"]]
)


def fold(rows: DataFrame) -> DataFrame:
    """Latest wins per (feed, record key): the row of the latest delivery, and within one
    delivery the last line. A later version replaces the whole record."""
    w = Window.partitionBy("feed_id", "key_str").orderBy(F.col("delivery_date").desc(), F.col("source_line").desc())
    return rows.withColumn("_rn", F.row_number().over(w)).filter("_rn = 1").drop("_rn")


def own_columns(feed: Feed) -> list[str]:
    """The wide row's columns that ``feed`` fills."""
    return [c for c in ingest.WIDE_COLUMNS if any(c in (col.name, col.name + "_date") for col in feed.columns)]


# The folded rows the state is built from: one DataFrame with feed_id a column, or one per feed id
Folded = DataFrame | Mapping[str, DataFrame]


def feed_rows(rows: Folded, feed: Feed) -> DataFrame:
    """One feed's rows with the columns its folded rows keep (feed_id first, then META, its own)."""
    if isinstance(rows, Mapping):
        return rows[feed.feed_id]
    return rows.filter(F.col("feed_id") == feed.feed_id).select("feed_id", *META, *own_columns(feed))


def fold_feed(base: DataFrame | None, new: DataFrame, broadcast_keys: bool = True, split: bool = True) -> DataFrame:
    """One feed's folded rows: ``base`` (a checkpoint's folded rows of the feed, or None) with
    ``new`` (rows not seen by it) folded in, ``fold(base ∪ new)``. With ``split``, the base's
    records whose key the new rows do not hold are kept as they are and only the others are folded
    with the new rows (the key compared null-safely, as the fold's window partitions nulls
    together)."""
    if base is None:
        return fold(new)
    if not split:
        return fold(base.unionByName(new))
    keys = new.select(F.col("key_str").alias("_key")).distinct()
    if broadcast_keys:
        keys = F.broadcast(keys)
    on = base["key_str"].eqNullSafe(keys["_key"])
    kept = base.join(keys, on, "left_anti")
    touched = base.join(keys, on, "left_semi")
    return kept.unionByName(fold(touched.unionByName(new)))


# ---------------------------------------------------------------- parsed rows of the files to fold


class ParsedRowsDamaged(RuntimeError):
    """Parsed rows in the lake cannot be read or do not add up; their done-markers are gone."""


def drop_markers(settings: Settings, files: list[dict], problems: list[str]) -> None:
    """Recovery from damaged parsed rows: the files lose their done-markers, so the next run's
    ingest parses them again from the landing zone (the source of truth) and replaces their rows."""
    for f in files:
        lake.drop_done(settings, f)
    raise ParsedRowsDamaged(
        "parsed rows in the lake are damaged: " + "; ".join(problems) + ". Their done-markers are removed: rerun "
        "the date (`ecredit run --date D`); its ingest parses these files again from the landing zone."
    )


def check_parsed(settings: Settings, files: list[dict]) -> None:
    """Every file's parsed rows are whole (footers readable, rows = its done-marker's count), or
    ``ParsedRowsDamaged`` naming them. Footers only: a few ms per file."""
    bad = [(f, p) for f in files if (p := ingest.parsed_problem(settings, f, f["rows_in"]))]
    if bad:
        drop_markers(settings, [f for f, _ in bad], [p for _, p in bad])


def parsed_rows(spark: SparkSession, settings: Settings, files: list[dict]) -> DataFrame:
    """The loaded (not quarantined) parsed rows of ``files`` (checked whole first)."""
    check_parsed(settings, files)
    paths = [str(p) for f in files if (p := lake.partition_dir(settings, f)).is_dir()]
    if not paths:
        return spark.createDataFrame([], ingest.ROW_SCHEMA)
    df = spark.read.option("basePath", str(lake.rows_dir(settings))).schema(ingest.ROW_SCHEMA).parquet(*paths)
    return df.filter(F.size("reasons") == 0)


# ---------------------------------------------------------------- checkpoints


def file_key(info: dict) -> str:
    return f"{info['feed_id']}/{info['date']}/{info['sha256']}"


def fingerprint(settings: Settings, rules: Rules) -> dict:
    """What a checkpoint depends on besides its files: the rules file, the PII key (the NP- keys
    of natural persons), the checkpoint's format and columns."""
    columns = hashlib.sha256(FOLDED_SCHEMA.json().encode()).hexdigest()[:16]
    return {
        "format": FORMAT,
        "columns": columns,
        "rules": rules.version,
        "pii_key": pii_key_fingerprint(settings.pii_key),
    }


@dataclass(frozen=True)
class Base:
    """A usable checkpoint: its run date, the files it holds, the rows of its own folder, and its
    chain (the run dates whose folders hold its records, the full checkpoint first, with their
    marker ids and rows)."""

    run_date: dt.date
    files: frozenset[str]
    rows: int
    chain: tuple[dict, ...] = ()

    @property
    def full_rows(self) -> int:
        """The rows of the chain's full checkpoint."""
        return int(self.chain[0]["rows"]) if self.chain else self.rows

    @property
    def delta_rows(self) -> int:
        """The rows of the chain's deltas."""
        return sum(int(m["rows"]) for m in self.chain[1:])


def _unusable(settings: Settings, day: dt.date, want: dict, applied: set[str]) -> tuple[str | None, dict | None]:
    """Why the checkpoint of ``day`` cannot be the base (None when it can), and its marker."""
    try:
        marker = lake.read_json(lake.folded_marker(settings, day))
        if isinstance(marker, dict) and marker.get("fingerprint") != want:
            changed = sorted(k for k in want if (marker.get("fingerprint") or {}).get(k) != want[k])
            return f"it was made with another {', '.join(changed)}", None
        files, rows = set(marker["files"]), int(marker["rows"])
        chain = [(dt.date.fromisoformat(m["date"]), m["id"], int(m["rows"])) for m in marker["chain"]]
    except (ValueError, OSError, KeyError, TypeError) as e:
        return f"its marker cannot be read ({e})", None
    gone = sorted(files - applied)
    if gone:
        return f"{len(gone)} file(s) it holds are no longer applied (first: {gone[0]})", None
    if not chain or chain[-1] != (day, marker.get("id"), rows):
        return "its chain does not end with itself", None
    for member, member_id, member_rows in chain:
        if member != day:
            try:
                theirs = lake.read_json(lake.folded_marker(settings, member))
            except (ValueError, OSError) as e:
                return f"the checkpoint of {member} it is built on cannot be read ({e})", None
            if theirs.get("id") != member_id:
                return f"the checkpoint of {member} it is built on was written again since", None
        try:
            found = lake.parquet_rows(lake.folded_dir(settings, member))
        except (lake.UnreadableParquet, OSError) as e:
            return f"the rows of the checkpoint of {member} cannot be read ({e})", None
        if found != member_rows:
            return f"the checkpoint of {member}'s Parquet files hold {found} rows, its marker says {member_rows}", None
    return None, marker


def choose_base(settings: Settings, rules: Rules, run_date: dt.date, applied: list[dict]) -> Base | None:
    """The newest usable checkpoint dated before ``run_date`` (see the module's docstring), or
    None: everything is folded."""
    want, keys = fingerprint(settings, rules), {file_key(f) for f in applied}
    candidates = [day for day in lake.checkpoint_dates(settings) if day < run_date][:MAX_CANDIDATES]
    for day in candidates:
        why, marker = _unusable(settings, day, want, keys)
        if why is None and marker is not None:
            log.info("fold %s: from the checkpoint of %s", run_date, day)
            return Base(day, frozenset(marker["files"]), int(marker["rows"]), tuple(marker["chain"]))
        log.warning("fold %s: the checkpoint of %s is not used: %s", run_date, day, why)
    log.info(
        "fold %s: no usable checkpoint among the %d newest before it: every applied delivery is folded",
        run_date,
        len(candidates),
    )
    return None


def read_checkpoint(spark: SparkSession, settings: Settings, day: dt.date) -> DataFrame:
    folder = str(lake.folded_dir(settings, day))
    return spark.read.schema(FOLDED_SCHEMA).option("basePath", folder).parquet(folder)


WRITE_THREADS = 4


def write_parquet(frames: dict[Path, DataFrame]) -> None:
    """Write each frame to its path (overwrite), a few at once (a small table's write is mostly the
    driver's planning and the committer's file work, which a second job overlaps); the first
    failure is raised."""

    def one(item):
        path, df = item
        df.write.mode("overwrite").parquet(str(path))

    with ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="write") as pool:
        for _ in pool.map(one, frames.items()):
            pass


def read_chain(spark: SparkSession, settings: Settings, chain: list[dt.date] | tuple[dt.date, ...]) -> dict:
    """The records in force at the chain's last date, by feed id: the full checkpoint's records
    that no delta holds, and the deltas' latest versions. A delta's version of a record was folded
    with the version before it, the full one's included, so it is never older than that one: the
    full checkpoint's touched records need not be read again."""
    full, deltas = read_checkpoint(spark, settings, chain[0]), [read_checkpoint(spark, settings, d) for d in chain[1:]]
    if not deltas:
        return {feed.feed_id: feed_rows(full, feed) for feed in FEEDS}
    split = lake.parquet_rows(lake.folded_dir(settings, chain[0])) > READ_SPLIT_MIN_ROWS
    out = {}
    for feed in FEEDS:
        base, newer = feed_rows(full, feed), _union([feed_rows(d, feed) for d in deltas])
        if not split:
            out[feed.feed_id] = fold(base.unionByName(newer))
            continue
        keys = F.broadcast(newer.select(F.col("key_str").alias("_key")).distinct())
        kept = base.join(keys, base["key_str"].eqNullSafe(keys["_key"]), "left_anti")
        out[feed.feed_id] = kept.unionByName(fold(newer) if len(deltas) > 1 else newer)
    return out


def checkpoint_rows(spark: SparkSession, settings: Settings, day: dt.date) -> DataFrame:
    """The records in force held by D's checkpoint (full or delta), feed_id a column."""
    chain = lake.checkpoint_chain(settings, day)
    if not chain:
        raise ValueError(f"the checkpoint of {day} has no readable marker")
    by_feed = read_chain(spark, settings, chain)
    return _union([by_feed[feed.feed_id] for feed in FEEDS])


def _union(frames: list[DataFrame]) -> DataFrame:
    out = frames[0]
    for df in frames[1:]:
        out = out.unionByName(df, allowMissingColumns=True)
    return out


def folded_state(spark: SparkSession, settings: Settings, rules: Rules, run_date: dt.date, full: bool = False) -> dict:
    """Write D's checkpoint (the newest usable one before D plus the files it has not seen, or with
    ``full`` every applied file) and return ``{"rows": its folded rows (a DataFrame, or one per feed
    id), "base": the base's date or None, "files_folded": how many files were read, "touched": the
    operator keys of the rows folded in and of the versions they replace (None without a base)}``.
    D's checkpoint is a delta on the base's chain when the chain stays short (``COMPACT_SHARE``,
    ``MAX_DELTAS``), else full. The marker goes first and comes back last."""
    applied = validation.applied_files(settings, rules, run_date)
    base = None if full else choose_base(settings, rules, run_date, applied)
    todo = applied if base is None else [f for f in applied if file_key(f) not in base.files]
    new = parsed_rows(spark, settings, todo)
    new_rows = sum(int(f["rows_in"]) for f in todo)
    chain = [dt.date.fromisoformat(m["date"]) for m in base.chain] if base else []
    delta = (
        base is not None
        and len(chain) <= MAX_DELTAS
        and base.delta_rows + new_rows <= min(COMPACT_SHARE * base.full_rows, BROADCAST_KEYS_MAX_ROWS)
    )
    # every version the chain holds (superseded ones too: folding is latest-wins, so folding them
    # again with the new rows gives the same records)
    held = [read_checkpoint(spark, settings, d) for d in chain]
    folder = lake.folded_dir(settings, run_date)
    frames = {}
    for feed in FEEDS:
        mine = feed_rows(new, feed)
        if delta:
            prior = _union([feed_rows(h, feed) for h in held])
            keys = F.broadcast(mine.select(F.col("key_str").alias("_key")).distinct())
            touched = prior.join(keys, prior["key_str"].eqNullSafe(keys["_key"]), "left_semi")
            out = fold(touched.unionByName(mine))
        elif held:
            newer = [feed_rows(h, feed) for h in held[1:]] + [mine]
            broadcast = base is not None and base.delta_rows + new_rows <= BROADCAST_KEYS_MAX_ROWS
            split = base is not None and base.full_rows > SPLIT_MIN_BASE_ROWS
            out = fold_feed(feed_rows(held[0], feed), _union(newer), broadcast, split)
        else:
            out = fold(mine)
        frames[folder / f"feed_id={feed.feed_id}"] = out.drop("feed_id")
    lake.folded_marker(settings, run_date).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    write_parquet(frames)
    rows = lake.parquet_rows(folder)
    me = {"date": run_date.isoformat(), "id": uuid.uuid4().hex, "rows": rows}
    lake.write_json(
        lake.folded_marker(settings, run_date),
        {
            "run_date": run_date.isoformat(),
            "id": me["id"],
            "kind": "delta" if delta else "full",
            "fingerprint": fingerprint(settings, rules),
            "base": base.run_date.isoformat() if base else None,
            "rows": rows,
            "chain": [*base.chain, me] if delta and base else [me],
            "files": sorted(file_key(f) for f in applied),
        },
    )
    log.info(
        "fold %s: %d records %s from %s and %d file(s)",
        run_date,
        rows,
        f"(a delta on {len(chain)} checkpoint(s) from {chain[0]})" if delta else "(a full checkpoint)",
        f"the checkpoint of {base.run_date}" if base else "nothing",
        len(todo),
    )
    by_feed = read_chain(spark, settings, [*chain, run_date]) if delta else None
    return {
        "rows": by_feed if by_feed is not None else read_checkpoint(spark, settings, run_date),
        "base": base.run_date if base else None,
        "files_folded": len(todo),
        "touched": touched_rows(_union(held), new, new_rows <= BROADCAST_KEYS_MAX_ROWS) if held else None,
    }


def touched_rows(old: DataFrame, new: DataFrame, broadcast_keys: bool = True) -> DataFrame:
    """``operator_key`` of every row folded in and of every version of the base it replaces (a
    record delivered again under another operator touches both operators)."""
    keys = new.select(F.col("feed_id").alias("_feed"), F.col("key_str").alias("_key")).distinct()
    if broadcast_keys:
        keys = F.broadcast(keys)
    on = (old["feed_id"] == keys["_feed"]) & old["key_str"].eqNullSafe(keys["_key"])
    replaced = old.join(keys, on, "left_semi").select("operator_key")
    return new.select("operator_key").unionByName(replaced)
