"""A plain-text summary of a run date, read back from the warehouse (what `make demo` prints)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from ecredit import settings as settings_mod
from ecredit import warehouse as wh
from ecredit.publish import connect


def summary(run_date: dt.date) -> str:
    cfg = settings_mod.load()
    eng = connect(cfg)
    lines = ["", f"ecredit — state as of {run_date}", "=" * 40]
    with eng.connect() as c:
        n_ops = c.execute(select(func.count()).select_from(wh.dim_operator)).scalar()
        n_np = c.execute(select(func.count()).select_from(wh.dim_operator)
                         .where(wh.dim_operator.c.operator_key.like("NP-%"))).scalar()
        rec = wh.fact_credit_record.c
        n_rec = c.execute(select(func.count()).select_from(wh.fact_credit_record)).scalar()
        n_active = c.execute(select(func.count()).where(rec.active)).scalar()
        n_orphan = c.execute(select(func.count()).where(~rec.in_registry)).scalar()
        lines.append(f"operators: {n_ops} ({n_np} natural persons, shown only by their NP- key)")
        lines.append(f"credit records: {n_rec} ({n_active} active at {run_date}, {n_orphan} about operators "
                     f"not in the registry)")
        lines.append("")
        lines.append("active records by type:")
        for t, n in c.execute(select(rec.record_type, func.count()).where(rec.active)
                              .group_by(rec.record_type).order_by(func.count().desc())):
            lines.append(f"  {t:<26} {n:>7}")
        lines.append("")
        lines.append(f"feed status of {run_date}:")
        fs = wh.feed_status.c
        lines.append(f"  {'dept':<9} {'status':<9} {'rows in':>8} {'loaded':>8} {'quarantined':>12}")
        for r in c.execute(select(wh.feed_status).where(fs.run_date == run_date).order_by(fs.dept)):
            lines.append(f"  {r.dept:<9} {r.status:<9} {r.rows_in:>8} {r.rows_loaded:>8} {r.rows_quarantined:>12}")
        q = wh.quarantine.c
        n_q = c.execute(select(func.count()).select_from(wh.quarantine)).scalar()
        by_reason: dict = {}
        for (reasons,) in c.execute(select(q.reasons)):
            for code in reasons.split(","):
                by_reason[code] = by_reason.get(code, 0) + 1
        lines.append("")
        lines.append(f"rows quarantined in all deliveries so far: {n_q}"
                     + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(by_reason.items())) + ")" if by_reason else ""))
        rejected = c.execute(select(func.count()).select_from(wh.feed_status)
                             .where(wh.feed_status.c.status == "rejected")).scalar()
        lines.append(f"deliveries rejected: {rejected} (see dq_result and the outbox's rejections.csv)")
    lines += ["", "where to look:",
              f"  warehouse   {cfg.warehouse_url}",
              f"  lake        {cfg.lake_dir}",
              f"  outbox      {cfg.outbox_dir}  (rejections.csv per delivery)",
              f"  landing     {cfg.landing_dir}"]
    return "\n".join(lines)
