"""The delivery generator: ``generate(out_dir, operators, dates, seed, ...)``.

The first date is the history load; every later date is an increment (see the package docstring).
Everything is streamed: per date, the sixteen files are open at once, entities are derived one at
a time from (seed, index), their records are written as they are made, and nothing about an
entity is kept once it is written. Memory is O(1) in the number of operators: a bounded entity
cache, per-file write buffers and a few per-date tables.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from random import Random

from ecredit.core.checks import REASON_CODES, RETIRED_DISTRICT
from ecredit.core.feeds import DEPARTMENTS, FEEDS

from .entities import IdentifierMaker, _coprime_multiplier, make_entity
from .formats import ISO
from .output import FeedOut
from .records import (
    CCREDIT,
    HISTORY_DAYS,
    INCREMENT_RATES,
    INSP,
    OPS,
    UPDATABLE,
    build_new,
    check_registry,
    history_bundle,
    inspector_row,
    new_customs_version,
    update,
    update_inspector,
)

EPOCH = dt.date(2000, 1, 1).toordinal()
ORPHAN_SHARE = 0.02  # orphans per registered operator (records naming them are ~2 %)
NEW_OPERATORS_SHARE = 0.001  # new operators per increment, per history operator
TOUCHED_SHARE = 0.005  # history entities whose records an increment re-sends
TOUCHED_MIN = 100
UPDATE_DELAYS = 7  # an increment's record may be re-sent 1..7 deliveries later
UPDATE_EVERY = 70  # ... one record in UPDATE_EVERY / UPDATE_DELAYS = 10 %


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class _Generator:
    def __init__(
        self,
        out_dir: Path,
        operators: int,
        dates: list[dt.date],
        seed: int,
        dirty_rate: float,
        progress: Callable[[str], None],
        history_days: int = HISTORY_DAYS,
    ):
        if not 0 <= operators <= 50_000_000:
            raise ValueError("operators must be between 0 and 50,000,000 (key serials are 33-bit)")
        if not dates:
            raise ValueError("dates must hold at least one date")
        if any(b <= a for a, b in zip(dates, dates[1:])):
            raise ValueError("dates must be strictly increasing (the first one is the history load)")
        if not 0.0 <= dirty_rate <= 1.0:
            raise ValueError("dirty_rate must be between 0 and 1")
        if not 1 <= history_days <= HISTORY_DAYS:
            raise ValueError(f"history_days must be between 1 and {HISTORY_DAYS}")
        self.history_days = history_days
        problems = [p for p in check_registry() if "no builder" not in p]
        if problems:
            raise RuntimeError("ecredit.generate is out of step with feeds.py: " + "; ".join(problems))
        self.out = Path(out_dir)
        self.N = operators
        self.dates = list(dates)
        self.d = [x.toordinal() for x in dates]
        self.seed = seed
        self.dirty_rate = dirty_rate
        self.progress = progress
        self.idm = IdentifierMaker(seed)
        self.M = int(round(operators * ORPHAN_SHARE)) if operators else 0
        if operators and not self.M:
            self.M = 1
        self.c = max(1, int(round(operators * NEW_OPERATORS_SHARE))) if operators else 0
        self.R0 = max(20, operators // 50)
        S0 = self.N + self.M
        self.S0 = S0
        r = Random(f"{seed}|touched")
        self.tA = _coprime_multiplier(r, S0) if S0 > 1 else 1
        self.tB = r.randrange(S0) if S0 else 0
        self.U = min(S0, max(TOUCHED_MIN, math.ceil(TOUCHED_SHARE * S0)))
        self._plans: dict = {}
        self.entity = lru_cache(maxsize=1024)(self._entity)
        self.summary_rows: dict = {dept: {} for dept in DEPARTMENTS}
        self.dirty = {c: 0 for c in REASON_CODES}
        self.dirty_files: dict = {}  # dept -> file -> date -> {code: rows}
        self.retired = 0
        self.files = 0
        self.rows_total = 0

    # ---- entities ----
    def _entity(self, orphan: bool, idx: int):
        if orphan or idx < self.N:
            return make_entity(self.seed, self.idm, orphan, idx, self.d[0])
        k = 1 + (idx - self.N) // self.c
        return make_entity(self.seed, self.idm, False, idx, self.d[k], new=True)

    def registered_at(self, k: int) -> int:
        return self.N + k * self.c

    def entity_at(self, k: int, p: int):
        nk = self.registered_at(k)
        return self.entity(False, p) if p < nk else self.entity(True, p - nk)

    # ---- increments: which records ----
    def plan(self, fid: str, k: int):
        key = (fid, k)
        got = self._plans.get(key)
        if got is None:
            r = Random(f"{self.seed}|{fid}|{ISO[self.d[k]]}|plan")
            S = self.registered_at(k) + self.M
            n = min(S, int(INCREMENT_RATES[fid] * S + r.random())) if S else 0
            if n >= 10**7:
                raise ValueError("too many operators: an increment's key serials would overlap")
            a = _coprime_multiplier(r, S) if S > 1 else 1
            b = r.randrange(S) if S else 0
            got = self._plans[key] = (n, a, b, S)
        return got

    def new_record(self, fid: str, k: int, j: int):
        n, a, b, S = self.plan(fid, k)
        e = self.entity_at(k, (a * j + b) % S)
        D = self.d[k]
        r = Random(f"{self.seed}|{fid}|{ISO[D]}|{j}")
        serial = 10**11 + (D - EPOCH) * 10**7 + j  # above every history serial
        return build_new(fid, e, r, serial, D, self.d[k - 1])

    # ---- one date ----
    def run(self) -> dict:
        t0 = time.monotonic()
        for k, D in enumerate(self.d):
            outs = self._open(D)
            if k == 0:
                self._history(outs)
            else:
                self._increment(k, outs)
            self._close(D, outs)
        self.entity.cache_clear()
        secs = time.monotonic() - t0
        rate = self.rows_total / secs if secs > 0 else 0.0
        dirty = ", ".join(f"{c} {n:,}" for c, n in self.dirty.items() if n) or "none"
        self.progress(
            f"generate: done: {self.files} files, {self.rows_total:,} rows in {secs:.1f} s "
            f"({rate:,.0f} rows/s); dirty rows: {dirty}"
        )
        return {
            "out_dir": str(self.out),
            "seed": self.seed,
            "operators": self.N,
            "orphans": self.M,
            "dates": [x.isoformat() for x in self.dates],
            "files": self.files,
            "manifests": len(DEPARTMENTS) * len(self.dates),
            "rows": self.summary_rows,
            "rows_total": self.rows_total,
            "dirty_rate": self.dirty_rate,
            "dirty": dict(self.dirty),
            "dirty_total": sum(self.dirty.values()),
            "dirty_files": self.dirty_files,
            "warnings": {RETIRED_DISTRICT: self.retired},
            "seconds": round(secs, 3),
        }

    def _open(self, D: int) -> dict:
        outs = {}
        for dept in DEPARTMENTS:
            folder = self.out / dept / ISO[D]
            folder.mkdir(parents=True, exist_ok=True)
            stale = folder / "manifest.json"
            if stale.exists():  # a rewrite in progress must not look complete
                stale.unlink()
        for f in FEEDS:
            outs[f.feed_id] = FeedOut(f, self.out / f.dept / ISO[D], self.seed, D, self.dirty_rate)
        return outs

    def _close(self, D: int, outs: dict) -> None:
        date = ISO[D]
        for dept in DEPARTMENTS:
            entries = []
            for f in FEEDS:
                if f.dept != dept:
                    continue
                out = outs[f.feed_id]
                rows, sha = out.close()
                entries.append({"name": f.file, "rows": rows, "sha256": sha})
                self.summary_rows[dept].setdefault(f.file, {})[date] = rows
                self.rows_total += rows
                self.files += 1
                for c, n in out.dirty_counts.items():
                    self.dirty[c] += n
                if any(out.dirty_counts.values()):
                    self.dirty_files.setdefault(dept, {}).setdefault(f.file, {})[date] = {
                        c: n for c, n in out.dirty_counts.items() if n
                    }
                self.retired += out.retired
                self.progress(f"generate: {dept} {date} {f.file} {rows:,} rows")
            manifest = {"dept": dept, "date": date, "files": entries}
            path = self.out / dept / date / "manifest.json"
            tmp = path.with_name("manifest.json.tmp")
            tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", "utf-8")
            os.replace(tmp, path)  # last, and atomically

    def _history(self, outs: dict) -> None:
        seed, D, N, M = self.seed, self.d[0], self.N, self.M
        emit = {fid: out.emit for fid, out in outs.items()}
        ops = emit[OPS]
        step = max(1, N // 20)
        o = 0
        next_orphan = ((o + 1) * N) // M - 1 if M else -1
        date = ISO[D]
        t0 = time.monotonic()
        for i in range(N):
            e = make_entity(seed, self.idm, False, i, D)
            ops(e.operator_row(ISO))
            for fid, row, _ev in history_bundle(seed, D, e, self.history_days):
                emit[fid](row)
            while o < M and i == next_orphan:
                oe = make_entity(seed, self.idm, True, o, D)
                for fid, row, _ev in history_bundle(seed, D, oe, self.history_days):
                    emit[fid](row)
                o += 1
                next_orphan = ((o + 1) * N) // M - 1
            if (i + 1) % step == 0 and N >= 1000:
                rows = sum(out.rows for out in outs.values())
                secs = time.monotonic() - t0
                self.progress(
                    f"generate: {date} history {i + 1:,}/{N:,} operators "
                    f"({100 * (i + 1) // N}%), {rows:,} rows, {secs:.1f} s"
                )
        insp = emit[INSP]
        for n in range(self.R0):
            insp(inspector_row(seed, n))

    def _increment(self, k: int, outs: dict) -> None:
        seed, D, Dp, d0 = self.seed, self.d[k], self.d[k - 1], self.d[0]
        emit = {fid: out.emit for fid, out in outs.items()}
        date = ISO[D]
        # 1. new operators
        base = self.registered_at(k - 1)
        for i in range(base, base + self.c):
            emit[OPS](self.entity(False, i).operator_row(ISO))
        # 2. history entities re-sent: operator updates, withdrawals, removals, new customs levels
        S0 = self.S0
        for t in range((k - 1) * self.U, k * self.U):
            p = (self.tA * (t % S0) + self.tB) % S0
            e = self.entity(False, p) if p < self.N else self.entity(True, p - self.N)
            ur = Random(f"{seed}|upd|{date}|{e.tag}")
            if not e.orphan and ur.random() < 0.6:
                emit[OPS](_operator_update(e, ur, D))
            for fid, row, ev in history_bundle(seed, d0, e, self.history_days):
                if fid in UPDATABLE and ur.random() < 0.5:
                    new = update(fid, row, ev, ur, D)
                    if new is not None:
                        emit[fid](new)
            if e.customs_code and ur.random() < 0.7:
                emit[CCREDIT](new_customs_version(e, ur, D, Dp)[0])
        # 3. records of earlier increments re-sent
        for kk in range(max(1, k - UPDATE_DELAYS), k):
            for fid in INCREMENT_RATES:
                if fid not in UPDATABLE:
                    continue
                n = self.plan(fid, kk)[0]
                for j in range(k - kk - 1, n, UPDATE_EVERY):
                    got = self.new_record(fid, kk, j)
                    if got is None:
                        continue
                    ur = Random(f"{seed}|{fid}|{date}|update|{ISO[self.d[kk]]}|{j}")
                    new = update(fid, got[0], got[1], ur, D)
                    if new is not None:
                        emit[fid](new)
        # 4. new records
        for fid in INCREMENT_RATES:
            out = emit[fid]
            for j in range(self.plan(fid, k)[0]):
                got = self.new_record(fid, k, j)
                if got is not None:
                    out(got[0])
        # 5. inspectors: some go on or off duty, now and then a new one
        r_prev, r_now = self.R0 + (k - 1) // 5, self.R0 + k // 5
        r = Random(f"{seed}|amr|inspectors|{date}")
        for n in sorted(r.sample(range(r_prev), min(r_prev, max(1, r_prev // 50)))):
            emit[INSP](update_inspector(inspector_row(seed, n)))
        for n in range(r_prev, r_now):
            emit[INSP](inspector_row(seed, n))


def _operator_update(e, ur: Random, D: int) -> list:
    rnd = ur.random
    row = e.operator_row(ISO)
    if not e.np and e.status in ("存续", "在业") and rnd() < 0.2:
        row[8] = ("吊销", "注销", "注销", "迁出")[int(rnd() * 4)]
    if rnd() < 0.7:
        row[10] = ISO[D - int(rnd() * 7)]
    if row[9] != "是" and rnd() < 0.3:
        row[9] = "是"
    return row


def generate(
    out_dir: Path,
    operators: int,
    dates: list[dt.date],
    seed: int,
    dirty_rate: float = 0.0,
    progress: Callable[[str], None] | None = None,
    history_days: int = HISTORY_DAYS,
) -> dict:
    """Write every department's delivery for each date under ``out_dir/<dept>/<YYYY-MM-DD>/``,
    ``manifest.json`` last. The first date is the history load of ``operators`` operators; each
    later date an increment. Same arguments, byte-identical files. Returns a summary: files, rows
    per dept/file/date, dirty rows injected per reason code, warnings. ``history_days``: how far
    back the history load's records go (at most the default, three years; fewer days, fewer
    records; the increments are the same size)."""
    g = _Generator(
        Path(out_dir), int(operators), list(dates), int(seed), float(dirty_rate), progress or _stderr, int(history_days)
    )
    return g.run()


__all__ = ["generate"]
