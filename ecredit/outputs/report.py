"""A plain-text summary of a run date, read back from the warehouse (what `make demo` prints)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from ecredit.core import lake
from ecredit.core import settings as settings_mod
from ecredit.core.feeds import DEPARTMENTS
from ecredit.core.records import DeliveryStatus
from ecredit.warehouse import schema as wh
from ecredit.warehouse.publish import connect


def summary(run_date: dt.date) -> str:
    cfg = settings_mod.load()
    eng = connect(cfg)
    lines = ["", f"ecredit — state as of {run_date}", "=" * 40]
    with eng.connect() as c:
        n_ops = c.execute(select(func.count()).select_from(wh.dim_operator)).scalar()
        n_np = c.execute(
            select(func.count()).select_from(wh.dim_operator).where(wh.dim_operator.c.operator_key.like("NP-%"))
        ).scalar()
        rec = wh.fact_credit_record.c
        n_rec = c.execute(select(func.count()).select_from(wh.fact_credit_record)).scalar()
        n_active = c.execute(select(func.count()).where(rec.active)).scalar()
        n_orphan = c.execute(select(func.count()).where(~rec.in_registry)).scalar()
        lines.append(f"operators: {n_ops} ({n_np} natural persons, shown only by their NP- key)")
        lines.append(
            f"credit records: {n_rec} ({n_active} active at {run_date}, {n_orphan} about operators not in the registry)"
        )
        sc = wh.operator_score.c
        classes: dict[str, int] = dict(
            c.execute(
                select(sc.final_class, func.count()).where(sc.run_date == run_date).group_by(sc.final_class)
            ).all()
        )
        alerts = c.execute(
            select(func.count()).select_from(wh.risk_alert).where(wh.risk_alert.c.run_date == run_date)
        ).scalar()  # the levels are the rules file's
        lines.append(
            "supervision classes at "
            + str(run_date)
            + ": "
            + ", ".join(f"{k} {classes.get(k, 0)}" for k in "ABCD")
            + f" (risk alerts: {alerts})"
        )
        lines.append("")
        lines.append("active records by type:")
        for t, n in c.execute(
            select(rec.record_type, func.count())
            .where(rec.active)
            .group_by(rec.record_type)
            .order_by(func.count().desc())
        ):
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
        lines.append(
            f"rows quarantined in all deliveries so far: {n_q}"
            + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(by_reason.items())) + ")" if by_reason else "")
        )
        rejected = c.execute(
            select(func.count())
            .select_from(wh.feed_status)
            .where(wh.feed_status.c.status == str(DeliveryStatus.REJECTED))
        ).scalar()
        lines.append(f"deliveries rejected: {rejected} (see dq_result and the outbox's rejections.csv)")
    lines += [
        "",
        "where to look:",
        f"  warehouse   {cfg.warehouse_url}",
        f"  lake        {cfg.lake_dir}",
        f"  outbox      {cfg.outbox_dir}  (rejections.csv per delivery; list changes and measures per run)",
        f"  data docs   {lake.data_docs_index(cfg, run_date)}",
        f"  landing     {cfg.landing_dir}",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- the run report (HTML)

CLASS_COLOURS = {"A": "#2e7d32", "B": "#9ccc65", "C": "#f9a825", "D": "#c62828"}
STATUS_COLOURS: dict[str, str] = {
    DeliveryStatus.OK: "#c8e6c9",
    DeliveryStatus.PARTIAL: "#fff59d",
    DeliveryStatus.REJECTED: "#ef9a9a",
    DeliveryStatus.MISSING: "#e0e0e0",
}


report_path = lake.report_index


def _bars(current: dict, previous: dict | None) -> str:
    """An inline SVG bar chart of the classes at D beside the run date before (no script, no CDN)."""
    top = max([*current.values(), *(previous or {}).values(), 1])
    w, h, bar = 520, 220, 34
    parts = [f'<svg width="{w}" height="{h + 40}" role="img" aria-label="class distribution">']
    for i, c in enumerate("ABCD"):
        x = 30 + i * 120
        for j, (counts, opacity, label) in enumerate(((previous, 0.35, "before"), (current, 1.0, "now"))):
            if counts is None:
                continue
            n = counts.get(c, 0)
            bh = int(h * n / top)
            parts.append(
                f'<rect x="{x + j * (bar + 4)}" y="{h - bh + 10}" width="{bar}" height="{bh}" '
                f'fill="{CLASS_COLOURS[c]}" fill-opacity="{opacity}"><title>{c} {label}: {n}</title></rect>'
            )
            parts.append(
                f'<text x="{x + j * (bar + 4) + bar / 2}" y="{h - bh + 5}" font-size="11" '
                f'text-anchor="middle">{n}</text>'
            )
        parts.append(f'<text x="{x + bar + 2}" y="{h + 28}" font-size="14" text-anchor="middle">{c}</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_report(run_date: dt.date):
    """The run's report: class distribution and its change as a chart, the feed-status matrix of
    departments x dates, the largest class changes with their reasons, links to the Data Docs.
    Written to ``lake/reports/<D>/index.html`` from the warehouse alone; returns the path."""
    import json
    import os
    from html import escape

    cfg = settings_mod.load()
    eng = connect(cfg)
    s, fs = wh.operator_score.c, wh.feed_status.c
    with eng.connect() as c:
        current: dict[str, int] = dict(
            c.execute(select(s.final_class, func.count()).where(s.run_date == run_date).group_by(s.final_class)).all()
        )
        prev_date = c.execute(select(func.max(s.run_date)).where(s.run_date < run_date)).scalar()
        previous: dict[str, int] | None = (
            dict(
                c.execute(
                    select(s.final_class, func.count()).where(s.run_date == prev_date).group_by(s.final_class)
                ).all()
            )
            if prev_date
            else None
        )
        dates = [
            r[0]
            for r in c.execute(
                select(fs.run_date).distinct().where(fs.run_date <= run_date).order_by(fs.run_date.desc()).limit(14)
            )
        ][::-1]
        matrix = {(r.dept, r.run_date): r for r in c.execute(select(wh.feed_status).where(fs.run_date.in_(dates)))}
        rank = {k: i for i, k in enumerate("ABCD")}
        changes = [
            r
            for r in c.execute(
                select(
                    s.operator_key, s.previous_class, s.final_class, s.total_score, s.rules_applied, s.reasons
                ).where((s.run_date == run_date) & s.previous_class.isnot(None) & (s.previous_class != s.final_class))
            )
        ]
        names = dict(
            c.execute(
                select(wh.dim_operator.c.operator_key, wh.dim_operator.c.name).where(
                    wh.dim_operator.c.operator_key.in_([r.operator_key for r in changes])
                )
            ).all()
        )
        run = c.execute(
            select(wh.pipeline_run)
            .where(wh.pipeline_run.c.run_date == run_date)
            .order_by(wh.pipeline_run.c.attempt_id.desc())
            .limit(1)
        ).first()
        dq = wh.dq_result.c
        dq_warnings = c.execute(
            select(dq.dept, dq.feed, dq.check, dq.element_count, dq.unexpected_count, dq.detail)
            .where((dq.delivery_date == run_date) & (dq.severity == "warning") & ~dq.success)
            .order_by(dq.dept, dq.feed, dq.check)
        ).all()
    changes.sort(key=lambda r: (-abs(rank[r.final_class] - rank[r.previous_class]), r.operator_key))
    out = report_path(cfg, run_date)
    out.parent.mkdir(parents=True, exist_ok=True)
    docs = lake.data_docs_index(cfg, run_date)
    docs_link = os.path.relpath(docs, out.parent) if docs.exists() else None

    def why(r) -> str:
        reasons = json.loads(r.reasons)
        parts = [f"{x['rule']} → {x['effect']}" for x in reasons.get("rules", [])]
        parts += [
            f"{x['record_type']} (severity {x['severity']}, {x['points']})"
            for x in sorted(reasons.get("records", []), key=lambda x: x["points"])[:3]
            if x["points"] < 0
        ]
        return "; ".join(parts) or "dimensions: " + ", ".join(
            f"{k.split('_')[0]} {v}" for k, v in reasons["dimensions"].items()
        )

    rows = "".join(
        f"<tr><td><code>{escape(r.operator_key)}</code></td><td>{escape(names.get(r.operator_key) or '')}</td>"
        f"<td>{r.previous_class} → <b style='color:{CLASS_COLOURS[r.final_class]}'>{r.final_class}</b></td>"
        f"<td>{r.total_score}</td><td>{escape(why(r))}</td></tr>"
        for r in changes[:20]
    )
    head = "".join(f"<th>{d:%m-%d}</th>" for d in dates)
    body = ""
    for dept in DEPARTMENTS:
        cells = ""
        for d in dates:
            r = matrix.get((dept, d))
            st = r.status if r else ""
            tip = f"{r.rows_in} in, {r.rows_loaded} loaded, {r.rows_quarantined} quarantined" if r else ""
            cells += f'<td style="background:{STATUS_COLOURS.get(st, "#fff")}" title="{tip}">{st}</td>'
        body += f"<tr><th>{dept}</th>{cells}</tr>"
    total = sum(current.values())
    delta = (
        "".join(
            f"<li>{c}: {current.get(c, 0)} ({current.get(c, 0) - (previous or {}).get(c, 0):+d})</li>" for c in "ABCD"
        )
        if previous is not None
        else "".join(f"<li>{c}: {current.get(c, 0)}</li>" for c in "ABCD")
    )
    warnings = json.loads(run.warnings) if run is not None and run.warnings else []
    dq_rows = "".join(
        f"<tr><td>{escape(r.dept)}</td><td>{escape(r.feed)}</td><td><code>{escape(r.check)}</code></td>"
        f"<td>{r.unexpected_count} of {r.element_count}</td><td>{escape(r.detail or '')}</td></tr>"
        for r in dq_warnings
    )
    dq_section = (
        f"<table><tr><th>dept</th><th>feed</th><th>check</th><th>found</th><th>detail</th></tr>{dq_rows}</table>"
        if dq_warnings
        else "<p>None.</p>"
    )
    html = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>ecredit run report {run_date}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:.5em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}}h2{{margin-top:1.5em}}</style></head>
<body><h1>ecredit — run of {run_date}</h1>
<p>Run status: <b>{escape(run.status if run is not None else "not published")}</b>
{f"(rules {run.rules_version[:12]})" if run is not None and run.rules_version else ""}.
{f'Data quality: <a href="{escape(docs_link)}">Data Docs of the deliveries dated {run_date}</a>.' if docs_link else "No Data Docs for this date."}</p>
{"<ul>" + "".join(f"<li>{escape(w)}</li>" for w in warnings) + "</ul>" if warnings else ""}
<h2>Supervision classes ({total} operators classified)</h2>
<p>Bars: the run date before ({prev_date or "none"}, pale) and {run_date}.</p>
{_bars(current, previous)}
<ul>{delta}</ul>
<h2>Data-quality warnings of the deliveries dated {run_date} ({len(dq_warnings)})</h2>
<p>What was kept though it is not as feeds.md says (<code>dq_result</code>, severity warning; each row and
file is listed in the department's <code>rejections.csv</code>, severity warning).</p>
{dq_section}
<h2>Feed status, departments × run dates</h2>
<table><tr><th></th>{head}</tr>{body}</table>
<h2>Largest class changes since {prev_date or "the run date before"} ({len(changes)} in all)</h2>
<table><tr><th>operator</th><th>name</th><th>class</th><th>score</th><th>main reasons</th></tr>{rows}</table>
</body></html>
"""
    tmp = out.with_suffix(".tmp")
    tmp.write_text(html, "utf-8")
    os.replace(tmp, out)
    return out
