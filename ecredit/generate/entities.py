"""Operators and orphans as pure functions of (seed, index).

Nothing is remembered: an entity is re-derived whenever it is needed, from ``random.Random``
seeded with a string (never ``hash()``, which is salted per process). Identifiers are unique by
construction, not by luck: a USCC's positions 9-17 and an ID number's birth date and sequence are
an affine bijection of the entity's index, so two entities can never share an identifier (a
shared one would be a DUPLICATE_KEY in a clean file).

- registered operator ``i`` (0 <= i): in ``operators.csv``; indices below ``operators`` are the
  history load, later ones are the new operators of each increment.
- orphan ``o``: referenced by credit records but never registered. Its ID numbers use birthplace
  codes outside Guangzhou and its USCC indices start at 10**12, so it can never equal a registered
  operator.
"""

from __future__ import annotations

import datetime as dt
import math
from random import Random

from ecredit.core import ids
from ecredit.core.feeds import DISTRICTS, RETIRED_DISTRICTS

from . import pools

ENTERPRISE, INDIVIDUAL, NATURAL = "企业", "个体工商户", "自然人"

USCC_ALPHABET = ids.USCC_ALPHABET
_TAIL_MOD = 31**9
ORPHAN_TAIL_OFFSET = 10**12

_BIRTH_LO = dt.date(1950, 1, 1).toordinal()
_BIRTH_DAYS = dt.date(2004, 12, 31).toordinal() - _BIRTH_LO + 1
GZ_ID_AREAS = DISTRICTS + RETIRED_DISTRICTS
OTHER_ID_AREAS = pools.OTHER_AREAS

# Retired district -> the district it was merged into (东山→越秀, 芳村→荔湾, 萝岗→黄埔).
SUCCESSOR = {"440102": "440104", "440107": "440103", "440116": "440112"}

_EST_LO = dt.date(2005, 1, 1).toordinal()
_EST_LO_NP = dt.date(2013, 1, 1).toordinal()


def _coprime_multiplier(r: Random, m: int) -> int:
    while True:
        a = r.randrange(max(2, m // 3), m) if m > 3 else 1
        if math.gcd(a, m) == 1:
            return a


class IdentifierMaker:
    """Bijections index -> USCC tail and index -> (area, birth date, sequence), seeded."""

    def __init__(self, seed: int):
        r = Random(f"{seed}|identifiers")
        self.tail_a = _coprime_multiplier(r, _TAIL_MOD)
        self.tail_b = r.randrange(_TAIL_MOD)
        self.gz_mod = len(GZ_ID_AREAS) * _BIRTH_DAYS * 1000
        self.gz_a, self.gz_b = _coprime_multiplier(r, self.gz_mod), r.randrange(self.gz_mod)
        self.ot_mod = len(OTHER_ID_AREAS) * _BIRTH_DAYS * 1000
        self.ot_a, self.ot_b = _coprime_multiplier(r, self.ot_mod), r.randrange(self.ot_mod)

    def uscc(self, prefix2: str, division: str, n: int) -> str:
        x = (self.tail_a * n + self.tail_b) % _TAIL_MOD
        tail = []
        for _ in range(9):
            x, d = divmod(x, 31)
            tail.append(USCC_ALPHABET[d])
        first17 = prefix2 + division + "".join(tail)
        return first17 + ids.uscc_check_char(first17)

    def id_no(self, n: int, orphan: bool) -> str:
        if orphan:
            x = (self.ot_a * n + self.ot_b) % self.ot_mod
            areas = OTHER_ID_AREAS
        else:
            x = (self.gz_a * n + self.gz_b) % self.gz_mod
            areas = GZ_ID_AREAS
        x, seq = divmod(x, 1000)
        area, day = divmod(x, _BIRTH_DAYS)
        b = dt.date.fromordinal(_BIRTH_LO + day)
        first17 = f"{areas[area]}{b.year:04d}{b.month:02d}{b.day:02d}{seq:03d}"
        return first17 + ids.id_check_char(first17)


def person_name(r: Random) -> str:
    rnd = r.random
    s = pools.SURNAMES[int(rnd() * len(pools.SURNAMES))]
    g = pools.GIVEN
    if rnd() < 0.7:
        return s + g[int(rnd() * len(g))] + g[int(rnd() * len(g))]
    return s + g[int(rnd() * len(g))]


class Entity:
    __slots__ = (
        "orphan",
        "idx",
        "tag",
        "serial_base",
        "stype",
        "np",
        "uscc",
        "idno",
        "name",
        "person",
        "district",
        "dabbr",
        "dname",
        "platform",
        "platforms",
        "url",
        "status",
        "shown",
        "verified",
        "est",
        "risk",
        "quality",
        "volume",
        "customs_code",
    )
    orphan: bool
    idx: int
    tag: str
    serial_base: int
    stype: str  # 企业 / 个体工商户 / 自然人
    np: bool  # a natural person (自然人)
    uscc: str | None
    idno: str
    name: str
    person: str  # a person's name (personal data: never published)
    district: str
    dabbr: str
    dname: str
    platform: str
    platforms: tuple[str, ...]
    url: str | None
    status: str | None
    shown: str | None
    verified: int | None  # date ordinals
    est: int
    risk: float
    quality: float
    volume: int
    customs_code: str | None

    def operator_row(self, iso) -> list:
        """The operators.csv row (nulls as None), columns in feeds.py order."""
        np = self.np
        return [
            self.uscc,
            self.idno if np else None,
            self.name,
            self.stype,
            None if np else self.person,
            self.district,
            self.platform,
            self.url,
            self.status,
            self.shown,
            iso[self.verified] if self.verified else None,
            iso[self.est],
        ]


def make_entity(seed: int, idm: IdentifierMaker, orphan: bool, idx: int, anchor: int, new: bool = False) -> Entity:
    """Operator ``idx`` (or orphan ``idx``) as of its anchor date (the ordinal of the delivery
    that first registers it). ``new``: registered in an increment (established recently)."""
    r = Random(f"{seed}|{'orphan' if orphan else 'op'}|{idx}")
    rnd = r.random
    e = Entity()
    e.orphan = orphan
    e.idx = idx
    e.tag = f"{'x' if orphan else 'o'}{idx}"
    e.serial_base = (2 * idx + (1 if orphan else 0)) * 64
    x = rnd()
    if x < 0.55:
        stype = ENTERPRISE
    elif x < (0.80 if orphan else 0.85):
        stype = INDIVIDUAL
    else:
        stype = NATURAL
    e.stype = stype
    e.np = np = stype == NATURAL
    if rnd() < 0.015:
        district = RETIRED_DISTRICTS[int(rnd() * len(RETIRED_DISTRICTS))]
    else:
        district = DISTRICTS[int(rnd() * len(DISTRICTS))]
    e.district = district
    e.dname, e.dabbr = pools.DISTRICT_NAMES[district]
    tail_index = idx + (ORPHAN_TAIL_OFFSET if orphan else 0)
    division = SUCCESSOR.get(district, district)  # a USCC carries a current division code
    e.uscc = None if np else idm.uscc("91" if stype == ENTERPRISE else "92", division, tail_index)
    e.idno = idm.id_no(idx, orphan)
    e.person = person_name(r)
    trade = pools.TRADE
    t2 = trade[int(rnd() * len(trade))] + trade[int(rnd() * len(trade))]
    if stype == ENTERPRISE:
        ind = pools.INDUSTRIES[int(rnd() * len(pools.INDUSTRIES))]
        suf = pools.COMPANY_SUFFIX[int(rnd() * len(pools.COMPANY_SUFFIX))]
        e.name = ("广州市" if rnd() < 0.6 else "广州") + t2 + ind + suf
    elif stype == INDIVIDUAL:
        goods = pools.SHOP_GOODS[int(rnd() * len(pools.SHOP_GOODS))]
        suf = pools.PERSONAL_SUFFIX[int(rnd() * len(pools.PERSONAL_SUFFIX))]
        e.name = f"广州市{e.dname}区{t2}{goods}{suf}"
    else:
        goods = pools.SHOP_GOODS[int(rnd() * len(pools.SHOP_GOODS))]
        suf = pools.SHOP_SUFFIX[int(rnd() * len(pools.SHOP_SUFFIX))]
        e.name = t2 + goods + suf
    p = pools.PLATFORM_POOL[int(rnd() * len(pools.PLATFORM_POOL))]
    e.platform = p
    if rnd() < 0.2:
        p2 = pools.PLATFORM_POOL[int(rnd() * len(pools.PLATFORM_POOL))]
        e.platforms = (p,) if p2 == p else (p, p2)
    else:
        e.platforms = (p,)
    e.url = pools.PLATFORMS[p][1].format(n=r.randrange(10**6, 10**10)) if rnd() > 0.02 else None
    # dates
    if new:
        est = anchor - int(rnd() * 60)
    elif rnd() < 0.05:
        est = anchor - int(rnd() * 180)
    else:
        lo = _EST_LO_NP if np else _EST_LO
        hi = anchor - 180
        est = lo + int(rnd() * max(1, hi - lo))
    e.est = est
    e.verified = None if rnd() < 0.03 else max(est, anchor - int(rnd() * 730))
    e.status = None if np else pools.REG_STATUS_W[int(rnd() * len(pools.REG_STATUS_W))]
    if new and e.status in ("吊销", "注销", "迁出"):
        e.status = "存续"
    y = rnd()
    e.shown = "是" if y < 0.8 else ("否" if y < 0.97 else None)
    risk = r.expovariate(1.0)
    e.risk = risk if risk < 8.0 else 8.0
    q = 93.0 - 4.0 * e.risk + (rnd() - 0.5) * 12.0
    e.quality = 40.0 if q < 40.0 else (99.0 if q > 99.0 else q)
    e.volume = int(r.lognormvariate(4.0, 1.2)) + 1
    e.customs_code = (
        f"4401{'39'[int(rnd() * 2)]}{'1236'[int(rnd() * 4)]}{r.randrange(10000):04d}"
        if stype == ENTERPRISE and rnd() < 0.12
        else None
    )
    return e


def ids_for_record(e: Entity, r: Random) -> tuple[str | None, str | None]:
    """(USCC, ID number) as a credit record names the entity: a natural person by ID number only;
    a 个体工商户 sometimes with its owner's ID number as well."""
    if e.np:
        return None, e.idno
    if e.stype == INDIVIDUAL and r.random() < 0.15:
        return e.uscc, e.idno
    return e.uscc, None
