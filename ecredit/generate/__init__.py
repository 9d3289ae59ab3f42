"""Realistic department deliveries for the demo and the tests (``feeds.md``, ``quality.md``).

``generate(out_dir, operators, dates, seed, dirty_rate=0.0, progress=None) -> dict``

- The first date is the **history load**: the registry of ``operators`` operators (企业, 个体工商户
  and ~15 % natural persons), about 20 records per operator across all feeds with event dates over
  the previous three years, ~2 % of records naming orphans (valid identifiers never registered),
  and the inspectors' roster.
- Every later date is an **increment** of ~1 % of that volume: new records near the delivery
  date, new operators, and earlier records re-sent by key with a change (penalty 撤销, list
  移出日期, ndrc end, psb 撤案, finance 已结清, licence 注销/撤销, 撤销 = 是 / WITHDRAWN = true,
  operator status and verification date, new customs credit versions).
- ``dirty_rate`` of the rows are dirty, spread round-robin over every reason code of
  ``quality.md`` that applies to the feed (never above 20 % of a file when the rate is <= 0.2).

Streaming and derivation: an entity is a pure function of (seed, index); history records of an
entity are a pure function of (seed, history date, entity); an increment's record ``j`` of a
feed is a pure function of (seed, feed, date, j). A later delivery re-sends an earlier record by
deriving it again, so nothing is remembered and memory does not grow with ``operators``.
"""

from .core import generate

__all__ = ["generate"]
