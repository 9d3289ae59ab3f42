"""The generator streams: its peak memory does not grow with the number of operators (about a
minute: 1k and 10k operators, two dates)."""

from __future__ import annotations

import datetime as dt
import tracemalloc

from ecredit.generate import generate

DATES = [dt.date(2026, 11, 1), dt.date(2026, 11, 2)]


def _quiet(_line: str) -> None:
    pass


def test_memory_does_not_grow_with_operators(tmp_path):
    def peak(n: int) -> int:
        tracemalloc.start()
        try:
            generate(tmp_path / str(n), n, DATES, 3, progress=_quiet)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(1_000), peak(10_000)
    assert large < 2.5 * small, (small, large)
