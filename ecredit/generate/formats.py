"""Date rendering in each feed's format, cached per date ordinal (a few thousand dates at most,
whatever the number of operators)."""

from __future__ import annotations

import datetime as dt


class DateCache(dict):
    """ordinal -> rendered string; ``cache[ordinal]``."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def __missing__(self, o: int):
        s = self.fn(dt.date.fromordinal(o))
        self[o] = s
        return s


def _iso(d: dt.date) -> str:
    return d.isoformat()


def _slash(d: dt.date) -> str:
    return f"{d.year:04d}/{d.month:02d}/{d.day:02d}"


def _compact(d: dt.date) -> str:
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def _zh(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _zh_pad(d: dt.date) -> str:
    return f"{d.year}年{d.month:02d}月{d.day:02d}日"


def _zh_mpad(d: dt.date) -> str:
    return f"{d.year}年{d.month:02d}月{d.day}日"


def _zh_dpad(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day:02d}日"


ISO = DateCache(_iso)
SLASH = DateCache(_slash)
COMPACT = DateCache(_compact)
ZH = DateCache(_zh)
_ZH_PAD = DateCache(_zh_pad)
# YYYY年M月D日 with month and day padded or not; 8 entries so that getrandbits(3) picks one.
ZH_VARIANTS = (ZH, ZH, ZH, ZH, _ZH_PAD, _ZH_PAD, DateCache(_zh_mpad), DateCache(_zh_dpad))
YEAR = DateCache(lambda d: d.year)
MONTH_INDEX = DateCache(lambda d: d.year * 12 + d.month - 1)

FORMATS = {"iso": ISO, "slash": SLASH, "compact": COMPACT, "chinese": ZH}


class _MonthCache(dict):
    def __missing__(self, mi: int):
        s = f"{mi // 12:04d}-{mi % 12 + 1:02d}"
        self[mi] = s
        return s


MONTH = _MonthCache()  # month index (year*12 + month-1) -> "YYYY-MM"


def month_last_day(mi: int) -> int:
    """Ordinal of the last day of month index ``mi``."""
    y, m = divmod(mi + 1, 12)
    return dt.date(y, m + 1, 1).toordinal() - 1


def shanghai_timestamp(ev: int, secs: int, variant: float, frac: int) -> str:
    """A psb ``filed_at`` for Shanghai date ``ev`` at ``secs`` seconds after local midnight,
    rendered in +08:00, Z or +00:00 (UTC: the day may be the previous one), with fractional
    seconds when ``frac`` > 0 (milliseconds when < 1000, else microseconds)."""
    if variant < 0.45:
        day, s, off = ev, secs, "+08:00"
    else:
        t = ev * 86400 + secs - 8 * 3600
        day, s = divmod(t, 86400)
        off = "Z" if variant < 0.8 else "+00:00"
    hh, rem = divmod(s, 3600)
    mm, ss = divmod(rem, 60)
    if frac <= 0:
        f = ""
    elif frac < 1000:
        f = f".{frac:03d}"
    else:
        f = f".{frac % 1000000:06d}"
    return f"{ISO[day]}T{hh:02d}:{mm:02d}:{ss:02d}{f}{off}"
