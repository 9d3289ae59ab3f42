"""The single-node baseline of ``make bench``: scoring.md §2-3 (four dimensions, total, score class,
class rules, final class) as hand-written DuckDB SQL over the same canonical Parquet that the Spark
scoring stage reads (``state/<D>/operators``, ``gold/<D>/fact_credit_record``,
``state/<D>/evaluations``, ``state/<D>/spot_checks``, ``state/<D>/complaints``).

This is what a user would write instead of the Spark stage. Every number comes from the rules file
(``ecredit.core.rules.load``): ``baseline_sql`` generates the SQL from it. The arithmetic is exact: the
evaluation's weighted mean is carried in 128-bit integers (decimal weights and scores scaled to
integers), and every rounding is half-up on an exact integer quotient, as scoring.md requires; no
binary floating point is involved (DuckDB's ``/`` on decimals returns a DOUBLE, so it is not used).

The reasons JSON of ``operator_score`` is not built here: the baseline is the scoring (numbers and
classes), which is what its classes are compared on.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from pathlib import Path

from ecredit.core.rules import Rules

CLASSES = ("A", "B", "C", "D")  # best to worst
INPUTS = ("operators", "records", "evaluations", "spot_checks", "complaints")
RESULT_COLUMNS = [
    "operator_key",
    "identity_score",
    "evaluation_score",
    "quality_score",
    "conduct_score",
    "total_score",
    "score_class",
    "rules_applied",
    "final_class",
]


def input_paths(settings, run_date: dt.date) -> dict[str, Path]:
    """Where the Spark scoring stage's inputs of D are (written by ``state.build``)."""
    from ecredit.core import lake

    return {
        "operators": lake.state_table(settings, run_date, "operators"),
        "records": lake.gold_table(settings, run_date, "fact_credit_record"),
        **{name: lake.state_table(settings, run_date, name) for name in ("evaluations", "spot_checks", "complaints")},
    }


def _q(s: str) -> str:
    """A SQL string literal."""
    return "'" + str(s).replace("'", "''") + "'"


def _in(values) -> str:
    return "(" + ", ".join(_q(v) for v in values) + ")"


def _date(d: dt.date) -> str:
    return f"DATE '{d.isoformat()}'"


def _within(col: str, run_date: dt.date, days: int) -> str:
    """``col`` within N days of D: (D - N days, D]."""
    return f"({col} > {_date(run_date - dt.timedelta(days=int(days)))} AND {col} <= {_date(run_date)})"


def _floor_div(a: str, b: str) -> str:
    """floor(a / b) for integers, b > 0 (DuckDB's ``//`` truncates toward zero)."""
    return f"(CASE WHEN ({a}) >= 0 THEN ({a}) // ({b}) ELSE -((-({a}) + ({b}) - 1) // ({b})) END)"


def _round_half_up(a: str, b: str) -> str:
    """round(a / b) half-up, exactly, for integers a and b > 0: floor((2a + b) / 2b)."""
    return _floor_div(f"2 * ({a}) + ({b})", f"2 * ({b})")


def _scale_of(values) -> int:
    """The number of decimal places needed to write every value as an integer."""
    return max([0] + [-Decimal(str(v)).normalize().as_tuple().exponent for v in values])


def _source(path) -> str:
    """A Spark output folder (part files) or a single Parquet file."""
    p = Path(path)
    return _q(str(p / "*.parquet") if p.is_dir() else str(p))


def baseline_sql(rules: Rules, run_date: dt.date, paths: dict) -> str:
    """The scoring of D as one DuckDB query over the Parquet inputs ``paths`` (keys: INPUTS);
    one row per classified operator with RESULT_COLUMNS."""
    reg, ident = rules.get("registry"), rules.get("identity")
    ev, qs, cd = rules.get("evaluation"), rules.get("quality_score"), rules.get("conduct")
    thresholds, cr = rules.get("classes.thresholds"), rules.get("class_rules")
    rank = {c: i + 1 for i, c in enumerate(CLASSES)}

    # evaluation: composite = sum(w_i * v_i) with v_i decimal(7,3); carried as an integer of scale 10^(ws+3)
    weights = {c: Decimal(str(w)) for c, w in ev["weights"].items()}
    ws = _scale_of(weights.values())
    composite = " + ".join(
        f"{int(w * 10**ws)} * CAST(round(coalesce({c}, 0) * 1000) AS HUGEINT)" for c, w in weights.items()
    )
    unit = 10 ** (ws + 3)
    months = int(ev["months"])
    last = run_date.replace(day=1)
    y, m = divmod(last.year * 12 + last.month - 1 - (months - 1), 12)
    first = dt.date(y, m + 1, 1)

    pts = cd["points_by_severity"]
    points = "CASE severity " + " ".join(f"WHEN {s} THEN {int(pts[s])}" for s in (1, 2, 3, 4)) + " END"
    serious = _in(cr["R_SERIOUS"]["record_types"])
    abnormal = _in(cr["R_ABNORMAL"]["record_types"])

    score_class = (
        f"CASE WHEN total_score >= {int(thresholds['A'])} THEN 'A' "
        f"WHEN total_score >= {int(thresholds['B'])} THEN 'B' "
        f"WHEN total_score >= {int(thresholds['C'])} THEN 'C' ELSE 'D' END"
    )
    flags = {
        "R_NEW": (
            f"coalesce({_within('established_date', run_date, cr['R_NEW']['established_days'])} "
            "AND coalesce(active_records, 0) = 0 AND coalesce(evaluation_rows, 0) = 0, false)"
        ),
        "R_SERIOUS": "coalesce(r_serious, 0) = 1",
        "R_REVOKED": f"coalesce(registration_status = {_q(reg['revoked_status'])}, false)",
        "R_SEV4": "coalesce(r_sev4, 0) = 1",
        "R_ABNORMAL": "coalesce(r_abnormal, 0) = 1",
    }
    base_rank = (
        f"CASE WHEN {flags['R_NEW']} THEN {rank[cr['R_NEW']['base_class']]} "
        "ELSE CASE score_class " + " ".join(f"WHEN '{c}' THEN {i}" for c, i in rank.items()) + " END END"
    )
    effects = [
        f"CASE WHEN {flags[k]} THEN {rank[cr[k]['class']]} ELSE 1 END"
        for k in ("R_SERIOUS", "R_REVOKED", "R_SEV4", "R_ABNORMAL")
    ]
    final_rank = f"greatest({base_rank}, {', '.join(effects)})"
    applied = "concat_ws(',', " + ", ".join(f"CASE WHEN {flags[k]} THEN {_q(k)} END" for k in sorted(flags)) + ")"

    return f"""
WITH
ops AS (
  SELECT operator_key, registration_status, established_date, natural_person, license_displayed, last_verified_date
  FROM read_parquet({_source(paths["operators"])})
  WHERE NOT coalesce(registration_status IN {_in(reg["unclassified_statuses"])}, false)
),
rec AS (
  SELECT operator_key,
         count(*) AS active_records,
         sum(CASE WHEN polarity = 'negative' THEN -({points}) ELSE 0 END) AS negative_points,
         max(CASE WHEN polarity = 'positive' THEN 1 ELSE 0 END) AS has_positive,
         max(CASE WHEN record_type IN {serious} THEN 1 ELSE 0 END) AS r_serious,
         max(CASE WHEN polarity = 'negative' AND severity = {int(cr["R_SEV4"]["severity"])}
                   AND NOT record_type IN {serious} THEN 1 ELSE 0 END) AS r_sev4,
         max(CASE WHEN record_type IN {abnormal} THEN 1 ELSE 0 END) AS r_abnormal
  FROM read_parquet({_source(paths["records"])})
  WHERE active
  GROUP BY operator_key
),
ev AS (
  SELECT operator_key,
         sum(({composite}) * CAST(coalesce(review_count, 0) AS HUGEINT)) AS weighted,
         sum(CAST(coalesce(review_count, 0) AS HUGEINT)) AS reviews,
         count(*) AS evaluation_rows,
         sum(CASE WHEN coalesce(deleted_review_count, 0) > 0 THEN 1 ELSE 0 END) AS deleting_rows
  FROM read_parquet({_source(paths["evaluations"])})
  WHERE eval_month >= {_date(first)} AND eval_month <= {_date(last)}
  GROUP BY operator_key
),
sc AS (
  SELECT operator_key, count(*) AS spot_checks,
         sum(CASE WHEN result = {_q(qs["passed_result"])} THEN 1 ELSE 0 END) AS passed
  FROM read_parquet({_source(paths["spot_checks"])})
  WHERE {_within("check_date", run_date, qs["spot_check_days"])}
  GROUP BY operator_key
),
cp AS (
  SELECT operator_key, count(*) AS complaints,
         sum(CASE WHEN handling_status = '已办结' AND advance_compensation = '是' THEN {int(qs["complaint_done_with_compensation"])}
                  WHEN handling_status = '已办结' THEN {int(qs["complaint_done_without_compensation"])}
                  ELSE {int(qs["complaint_in_progress"])} END) AS deduction
  FROM read_parquet({_source(paths["complaints"])})
  WHERE {_within("registered_date", run_date, qs["complaint_days"])}
  GROUP BY operator_key
),
qual AS (
  SELECT coalesce(sc.operator_key, cp.operator_key) AS operator_key,
         greatest(0, CASE WHEN coalesce(sc.spot_checks, 0) = 0 THEN {int(qs["no_spot_check_points"])}
                          ELSE {_round_half_up(f"sc.passed * {int(qs['spot_check_scale'])}", "sc.spot_checks")} END
                     - least(coalesce(cp.deduction, 0), {int(qs["complaint_cap"])})) AS quality_score
  FROM sc FULL OUTER JOIN cp ON sc.operator_key = cp.operator_key
),
dims AS (
  SELECT o.operator_key, o.registration_status, o.established_date, r.active_records, e.evaluation_rows,
         r.r_serious, r.r_sev4, r.r_abnormal,
         (CASE WHEN coalesce(o.registration_status IN {_in(reg["active_statuses"])} OR o.natural_person, false)
               THEN {int(ident["registered_points"])} ELSE 0 END
          + CASE WHEN o.license_displayed = '是' THEN {int(ident["licence_displayed_points"])} ELSE 0 END
          + CASE WHEN {_within("o.last_verified_date", run_date, ident["verified_recent_days"])} THEN {int(ident["verified_recent_points"])}
                 WHEN {_within("o.last_verified_date", run_date, ident["verified_days"])} THEN {int(ident["verified_points"])}
                 ELSE 0 END) AS identity_score,
         CASE WHEN e.operator_key IS NULL THEN {int(ev["no_reviews_score"])}  -- no evaluation row in the window
              ELSE greatest(0, least({int(ev["max"])},
                      CASE WHEN e.reviews > 0 THEN {_round_half_up(f"{int(ev['scale'])} * e.weighted", f"e.reviews * {unit}")}
                           ELSE {int(ev["no_reviews_score"])} END)
                   - e.deleting_rows * {int(ev["deleted_reviews_penalty"])}) END AS evaluation_score,
         coalesce(q.quality_score, {int(qs["no_spot_check_points"])}) AS quality_score,
         CASE WHEN r.operator_key IS NULL THEN {int(cd["base"])}  -- no active record
              ELSE greatest(0, least({int(cd["max"])},
                      {int(cd["base"])} + r.negative_points + r.has_positive * {int(cd["positive_bonus"])})) END AS conduct_score
  FROM ops o
  LEFT JOIN rec r ON r.operator_key = o.operator_key
  LEFT JOIN ev e ON e.operator_key = o.operator_key
  LEFT JOIN qual q ON q.operator_key = o.operator_key
),
totals AS (
  SELECT *, identity_score + evaluation_score + quality_score + conduct_score AS total_score FROM dims
),
classed AS (
  SELECT *, {score_class} AS score_class FROM totals
)
SELECT operator_key,
       CAST(identity_score AS INTEGER) AS identity_score, CAST(evaluation_score AS INTEGER) AS evaluation_score,
       CAST(quality_score AS INTEGER) AS quality_score, CAST(conduct_score AS INTEGER) AS conduct_score,
       CAST(total_score AS INTEGER) AS total_score, score_class,
       {applied} AS rules_applied,
       ['A', 'B', 'C', 'D'][{final_rank}] AS final_class
FROM classed
"""


def connect(threads: int | None = None):
    """A DuckDB connection (in memory); ``threads`` defaults to DuckDB's own (the cores)."""
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def run(con, rules: Rules, run_date: dt.date, paths: dict):
    """Run the baseline; returns (Arrow table of RESULT_COLUMNS, seconds of the query alone,
    materialised into Arrow)."""
    sql = baseline_sql(rules, run_date, paths)
    t0 = time.perf_counter()
    table = con.sql(sql).to_arrow_table()
    return table, time.perf_counter() - t0


def compare(con, baseline, pipeline_scores: Path) -> dict:
    """Compare the baseline's rows with the pipeline's ``operator_score`` of the same date, per
    operator: operators on one side only, and per column the operators whose values differ.
    ``agrees`` is true only when the operator sets and every final class agree."""
    con.register("baseline_result", baseline)
    src = _source(pipeline_scores)
    missing = con.execute(f"""
        SELECT count(*) FILTER (WHERE b.operator_key IS NULL), count(*) FILTER (WHERE p.operator_key IS NULL)
        FROM baseline_result b FULL OUTER JOIN read_parquet({src}) p ON b.operator_key = p.operator_key""").fetchall()[
        0
    ]
    cols = [c for c in RESULT_COLUMNS if c != "operator_key"]
    diffs = con.execute(
        "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE b.{c} IS DISTINCT FROM p.{c})" for c in cols)
        + f" FROM baseline_result b JOIN read_parquet({src}) p ON b.operator_key = p.operator_key"
    ).fetchall()[0]
    n = con.execute("SELECT count(*) FROM baseline_result").fetchall()[0][0]
    con.unregister("baseline_result")
    out = {
        "operators": int(n),
        "only_in_pipeline": int(missing[0]),
        "only_in_baseline": int(missing[1]),
        "differ": {c: int(d) for c, d in zip(cols, diffs)},
    }
    out["class_disagreements"] = out["only_in_pipeline"] + out["only_in_baseline"] + out["differ"]["final_class"]
    out["agrees"] = out["class_disagreements"] == 0
    return out
