"""Scores, classes, measures, the serious-dishonesty list and risk alerts (``scoring.md`` §2-4, §6).

Pure Spark transforms over the state as of D (``state.py``): each takes and returns DataFrames
and reads every number from the rules file. All arithmetic is exact: indicators and weights are
decimals, carried as whole numbers (longs, and DecimalType(38, 0) per operator), and every rounding
is half-up on an exact integral quotient (``round_half_up_div``), never on a binary float.

分级分类监管: score (0-1000) = identity 主体身份 (0-100) + evaluation 平台评价 (0-300) + quality
产品服务质量 (0-200) + conduct 信用记录 (0-400); score class A-D; rules R_*; final class.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ecredit.core.rules import SEVERITIES, Rules

CLASSES = ("A", "B", "C", "D")  # best to worst
WHOLE = T.DecimalType(38, 0)  # whole numbers beyond a long (per-operator sums, once per operator)


def _within(c: Column, run_date: dt.date, days: int) -> Column:
    """``c`` within N days of D: (D - N days, D] (scoring.md)."""
    d = F.lit(run_date)
    return (c > F.date_sub(d, int(days))) & (c <= d)


def round_half_up_div(a: Column, b: Column) -> Column:
    """round(a / b), half-up, exactly, for whole numbers a >= 0 and b > 0 (longs or decimals of
    scale 0): (2a + b) div 2b, Spark's integral division (exact on decimals; no binary float)."""
    a, b = a.cast(WHOLE), b.cast(WHOLE)
    return F.call_function("div", a + a + b, b + b)


# ---------------------------------------------------------------- the four dimensions


def identity(ops: DataFrame, rules: Rules, run_date: dt.date) -> DataFrame:
    """operator_key, identity_score: 40 registered (存续/在业, or a natural person) + 30 亮照亮证 +
    30 / 15 for a verification within 180 / 365 days. A null reads as the less favourable value."""
    return ops.select("operator_key", identity_points(rules, run_date).alias("identity_score"))


def identity_points(rules: Rules, run_date: dt.date) -> Column:
    """The identity dimension of an operator row, as a column (``identity``'s one definition)."""
    p, reg = rules.get("identity"), rules.get("registry")
    registered = F.col("registration_status").isin(list(reg["active_statuses"])) | F.col("natural_person")
    verified = F.col("last_verified_date")
    pts = (
        F.when(F.coalesce(registered, F.lit(False)), p["registered_points"]).otherwise(0)
        + F.when(F.col("license_displayed") == "是", p["licence_displayed_points"]).otherwise(0)
        + F.when(_within(verified, run_date, p["verified_recent_days"]), p["verified_recent_points"])
        .when(_within(verified, run_date, p["verified_days"]), p["verified_points"])
        .otherwise(0)
    )
    return pts.cast("int")


def evaluation_window(evals: DataFrame, rules: Rules, run_date: dt.date) -> DataFrame:
    """The evaluation rows whose 评价月份 is one of the N months ending with D's month."""
    months = int(rules.get("evaluation.months"))
    last = run_date.replace(day=1)
    y, m = divmod(last.year * 12 + last.month - 1 - (months - 1), 12)
    first = dt.date(y, m + 1, 1)
    return evals.filter((F.col("eval_month") >= F.lit(first)) & (F.col("eval_month") <= F.lit(last)))


# An indicator of 平台评价 is a decimal with 3 places (the state's DecimalType(7, 3), 0..100): scaled by
# 10^3 it is a whole number below 10^5 (``scaled_indicator``). The weighted sum is carried in longs, exactly, as one sum per
# indicator of value x 评价数, and the weights (decimals) are applied once per operator.
# (DecimalType(38, 10) per row gave the same numbers through java.math.BigDecimal, row by row: most of
# the scoring's time.) 评价数 (at most 14 digits, the INT kind's check) is split in two parts below
# SPLIT, so no product (< 10^12) or per-operator sum leaves a long below 10^6 rows an operator.
INDICATOR = T.DecimalType(7, 3)
INDICATOR_PLACES = 3
SPLIT = 10**7


def scaled_indicator(c: Column) -> Column:
    """An indicator (DecimalType(7, 3), 0..100) x 10^3, as a long, exactly. Through a double, because
    Spark multiplies decimals with java.math.BigDecimal (four per row were half the evaluation's
    time): the double nearest v is within 2^-53 x v of it, so 1000 x that double is within 10^-10 of
    the whole number 1000 v, and floor(x + 0.5) gives it back exactly (a unit test checks all 100,001
    values)."""
    return F.floor(c.cast(INDICATOR).cast("double") * F.lit(float(10**INDICATOR_PLACES)) + F.lit(0.5))


def _places(v) -> int:
    """The decimal places of a (finite) number of the rules file."""
    exponent = Decimal(str(v)).normalize().as_tuple().exponent
    assert isinstance(exponent, int), f"{v!r} is finite (rules.SCHEMA)"
    return max(0, -exponent)


def evaluation(evals: DataFrame, rules: Rules, run_date: dt.date) -> DataFrame:
    """operator_key, evaluation_score, evaluation_rows (for R_NEW): round(3 x mean composite
    weighted by 评价数), 180 when the counts sum to 0, minus 20 per row with 删除评价数 > 0, floor 0.

    Exact in whole numbers: with v the indicator x 10^3, n = 评价数 = SPLIT x hi + lo and W the
    weight x 10^ws, the weighted sum x 10^(3 + ws) is sum over indicators of W x (SPLIT x sum(v x hi)
    + sum(v x lo)); it is rounded half-up once per operator, over sum(n) x 10^(3 + ws)."""
    p = rules.get("evaluation")
    ws = max(_places(w) for w in p["weights"].values())
    unit = 10 ** (INDICATOR_PLACES + ws)
    scaled = [int(Decimal(str(w)) * 10**ws) for w in p["weights"].values()]  # W: each weight x 10^ws
    rows = evaluation_window(evals, rules, run_date)
    rows = rows.withColumn("_n", F.coalesce(F.col("review_count"), F.lit(0)).cast("long"))
    hi, lo = F.call_function("div", F.col("_n"), F.lit(SPLIT)), F.col("_n") % F.lit(SPLIT)
    sums, weighted = [], None
    for i, (column, w) in enumerate(zip(p["weights"], scaled)):
        v = F.coalesce(scaled_indicator(F.col(column)), F.lit(0).cast("long"))
        sums += [F.sum(v * hi).alias(f"w{i}_hi"), F.sum(v * lo).alias(f"w{i}_lo")]
        part = (F.col(f"w{i}_hi").cast(WHOLE) * F.lit(SPLIT) + F.col(f"w{i}_lo").cast(WHOLE)) * F.lit(w).cast(WHOLE)
        weighted = part if weighted is None else weighted + part
    assert weighted is not None, "the rules file has evaluation weights (rules.SCHEMA)"
    agg = rows.groupBy("operator_key").agg(
        *sums,
        F.sum(hi).alias("reviews_hi"),
        F.sum(lo).alias("reviews_lo"),
        F.count(F.lit(1)).alias("evaluation_rows"),
        F.sum(F.when(F.coalesce(F.col("deleted_review_count"), F.lit(0)) > 0, 1).otherwise(0)).alias("deleting_rows"),
    )
    reviews = F.col("reviews_hi").cast(WHOLE) * F.lit(SPLIT) + F.col("reviews_lo").cast(WHOLE)
    exact = round_half_up_div(weighted * F.lit(int(p["scale"])), reviews * F.lit(unit))
    # the same quotient in longs when it cannot overflow one (every 评价数 below SPLIT, and few
    # enough in all): one operator's decimal arithmetic above, a million times, cost a second
    weighted_long: Column | None = None
    for i, w in enumerate(scaled):
        part = F.col(f"w{i}_lo") * F.lit(w)
        weighted_long = part if weighted_long is None else weighted_long + part
    assert weighted_long is not None, "the rules file has evaluation weights (rules.SCHEMA)"
    # weighted <= 10^ws x 10^5 x reviews (the weights add up to 1), so 2 x scale x weighted + 2 x
    # reviews x unit stays below a long's top while reviews <= long_safe
    long_safe = (2**63 - 1) // (2 * 10**ws * (2 * 10**5 * int(p["scale"]) + 2 * 10**INDICATOR_PLACES))
    a, b = weighted_long * F.lit(int(p["scale"])), F.col("reviews_lo") * F.lit(unit)
    fast = F.call_function("div", a + a + b, b + b)
    base = (
        F.when((F.col("reviews_hi") == 0) & (F.col("reviews_lo") == 0), F.lit(int(p["no_reviews_score"])))
        .when((F.col("reviews_hi") == 0) & (F.col("reviews_lo") <= F.lit(long_safe)), fast)
        .when(reviews > 0, exact)
        .otherwise(F.lit(int(p["no_reviews_score"])))
    )
    score = F.greatest(
        F.lit(0),
        F.least(F.lit(int(p["max"])), base) - F.col("deleting_rows") * F.lit(int(p["deleted_reviews_penalty"])),
    )
    return agg.select("operator_key", score.cast("int").alias("evaluation_score"), "evaluation_rows")


def quality(spot: DataFrame, complaints: DataFrame, rules: Rules, run_date: dt.date) -> DataFrame:
    """operator_key, quality_score, spot_checks, complaints: spot-check part (150 without checks
    within 1095 days, else round(200 x passed / total)) minus the complaint deduction (capped)."""
    p = rules.get("quality_score")
    checks = (
        spot.filter(_within(F.col("check_date"), run_date, p["spot_check_days"]))
        .groupBy("operator_key")
        .agg(
            F.count(F.lit(1)).alias("spot_checks"),
            F.sum(F.when(F.col("result") == p["passed_result"], 1).otherwise(0)).alias("passed"),
        )
    )
    done = F.col("handling_status") == "已办结"  # null = 办理中 (the conservative reading)
    compensated = F.col("advance_compensation") == "是"  # null = 否
    points = (
        F.when(
            F.coalesce(done, F.lit(False)) & F.coalesce(compensated, F.lit(False)),
            p["complaint_done_with_compensation"],
        )
        .when(F.coalesce(done, F.lit(False)), p["complaint_done_without_compensation"])
        .otherwise(p["complaint_in_progress"])
    )
    compl = (
        complaints.filter(_within(F.col("registered_date"), run_date, p["complaint_days"]))
        .groupBy("operator_key")
        .agg(F.count(F.lit(1)).alias("complaints"), F.sum(points).alias("deduction"))
    )
    spot_part = F.when(
        F.coalesce(F.col("spot_checks"), F.lit(0)) == 0, F.lit(int(p["no_spot_check_points"]))
    ).otherwise(
        F.expr(f"(2 * passed * {int(p['spot_check_scale'])} + spot_checks) div (2 * spot_checks)")
    )  # exact half-up in integers
    deduction = F.least(F.coalesce(F.col("deduction"), F.lit(0)), F.lit(int(p["complaint_cap"])))
    return checks.join(compl, "operator_key", "full").select(
        "operator_key",
        F.greatest(F.lit(0), spot_part - deduction).cast("int").alias("quality_score"),
        F.coalesce("spot_checks", F.lit(0)).alias("spot_checks"),
        F.coalesce("complaints", F.lit(0)).alias("complaints"),
    )


def record_points(records: DataFrame, rules: Rules) -> DataFrame:
    """The active records of each operator with the points each takes off (or the positive
    bonus's marker): the credit-record part of the reasons."""
    pts = rules.get("conduct.points_by_severity")
    table = F.create_map(*[x for s in SEVERITIES for x in (F.lit(s), F.lit(int(pts[s])))])
    return (
        records.filter(F.col("active"))
        .withColumn("points", F.when(F.col("polarity") == "negative", -table[F.col("severity")]).otherwise(F.lit(0)))
        .select("operator_key", "record_key", "record_type", "polarity", "severity", "dept", "event_date", "points")
    )


def conduct(active: DataFrame, rules: Rules) -> DataFrame:
    """operator_key, conduct_score: 400 - points of active negative records + 50 if a positive
    one is active, clamped to 0..400; plus the flags the class rules read."""
    p, r = rules.get("conduct"), rules.get("class_rules")
    serious = list(r["R_SERIOUS"]["record_types"])
    negative = F.col("polarity") == "negative"
    agg = active.groupBy("operator_key").agg(
        F.sum("points").alias("negative_points"),
        F.max(F.when(F.col("polarity") == "positive", 1).otherwise(0)).alias("has_positive"),
        F.max(F.when(F.col("record_type").isin(serious), 1).otherwise(0)).alias("r_serious"),
        F.max(
            F.when(
                negative & (F.col("severity") == int(r["R_SEV4"]["severity"])) & ~F.col("record_type").isin(serious), 1
            ).otherwise(0)
        ).alias("r_sev4"),
        F.max(F.when(F.col("record_type").isin(list(r["R_ABNORMAL"]["record_types"])), 1).otherwise(0)).alias(
            "r_abnormal"
        ),
        F.count(F.lit(1)).alias("active_records"),
        F.to_json(
            F.sort_array(
                F.collect_list(
                    F.struct(
                        F.col("points").alias("points"),
                        "record_type",
                        "severity",
                        "dept",
                        F.col("event_date").cast("string").alias("event_date"),
                        "record_key",
                    )
                )
            ),
            {"ignoreNullFields": "false"},
        ).alias("record_reasons"),  # the records of ``operator_score.reasons``, as JSON
    )
    score = F.lit(int(p["base"])) + F.col("negative_points") + F.col("has_positive") * F.lit(int(p["positive_bonus"]))
    return agg.withColumn("conduct_score", F.greatest(F.lit(0), F.least(F.lit(int(p["max"])), score)).cast("int"))


# ---------------------------------------------------------------- classes


def _json(value) -> str:
    """``value`` as compact JSON, as Spark's to_json writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _score_class(total: Column, rules: Rules) -> Column:
    t = rules.get("classes.thresholds")
    return (
        F.when(total >= int(t["A"]), "A").when(total >= int(t["B"]), "B").when(total >= int(t["C"]), "C").otherwise("D")
    )


def _rank(c: Column) -> Column:
    return F.array_position(F.array(*[F.lit(x) for x in CLASSES]), c)


def _worst(*classes: Column) -> Column:
    return F.element_at(
        F.array(*[F.lit(x) for x in CLASSES]),
        F.greatest(*[F.coalesce(_rank(c), F.lit(1)) for c in classes]).cast("int"),
    )


def score(
    ops: DataFrame,
    records: DataFrame,
    evals: DataFrame,
    spot: DataFrame,
    complaints: DataFrame,
    rules: Rules,
    run_date: dt.date,
    previous: DataFrame | None,
    rules_version: str,
) -> DataFrame:
    """``operator_score`` for D: every classified registry operator (not 注销 / 迁出), its four
    dimensions, total, score class, rules applied, final class, previous class and reasons."""
    reg, r = rules.get("registry"), rules.get("class_rules")
    classified = ops.filter(
        ~F.coalesce(F.col("registration_status").isin(list(reg["unclassified_statuses"])), F.lit(False))
    )
    active = record_points(records, rules)
    df = (
        classified.select(
            "operator_key",
            "registration_status",
            "established_date",
            identity_points(rules, run_date).alias("identity_score"),
        )
        .join(evaluation(evals, rules, run_date), "operator_key", "left")
        .join(quality(spot, complaints, rules, run_date), "operator_key", "left")
        .join(conduct(active, rules), "operator_key", "left")
    )
    p_eval, p_q, p_c = rules.get("evaluation"), rules.get("quality_score"), rules.get("conduct")
    df = (
        df.withColumn("evaluation_score", F.coalesce("evaluation_score", F.lit(int(p_eval["no_reviews_score"]))))
        .withColumn("quality_score", F.coalesce("quality_score", F.lit(int(p_q["no_spot_check_points"]))))
        .withColumn("conduct_score", F.coalesce("conduct_score", F.lit(int(p_c["base"]))))
        .withColumn(
            "total_score",
            F.col("identity_score") + F.col("evaluation_score") + F.col("quality_score") + F.col("conduct_score"),
        )
        .withColumn("score_class", _score_class(F.col("total_score"), rules))
    )
    new = (
        _within(F.col("established_date"), run_date, r["R_NEW"]["established_days"])
        & (F.coalesce(F.col("active_records"), F.lit(0)) == 0)
        & (F.coalesce(F.col("evaluation_rows"), F.lit(0)) == 0)
    )
    revoked = F.col("registration_status") == reg["revoked_status"]
    flags = {
        "R_NEW": F.coalesce(new, F.lit(False)),
        "R_SERIOUS": F.coalesce(F.col("r_serious"), F.lit(0)) == 1,
        "R_REVOKED": F.coalesce(revoked, F.lit(False)),
        "R_SEV4": F.coalesce(F.col("r_sev4"), F.lit(0)) == 1,
        "R_ABNORMAL": F.coalesce(F.col("r_abnormal"), F.lit(0)) == 1,
    }
    base = F.when(flags["R_NEW"], F.lit(r["R_NEW"]["base_class"])).otherwise(F.col("score_class"))
    effects = [F.when(flags[k], F.lit(r[k]["class"])) for k in ("R_SERIOUS", "R_REVOKED", "R_SEV4", "R_ABNORMAL")]
    applied = F.concat_ws(",", *[F.when(flags[k], F.lit(k)) for k in sorted(flags)])
    rule_reasons = F.concat_ws(
        ",",
        *[
            F.when(flags[k], F.lit(_json({"rule": k, "effect": r[k].get("class", r[k].get("base_class"))})))
            for k in sorted(flags)
        ],
    )

    def number(c: str) -> Column:
        return F.coalesce(F.col(c), F.lit(0)).cast("string")

    # ``reasons``: the JSON Spark's to_json gave for the struct (dimensions, score_class, records,
    # rules, spot_checks, complaints_in_window, evaluation_rows), written as text around the numbers
    # and the records' JSON (built per operator with records only): to_json over a million nested
    # structs was a third of the scoring's time
    reasons = F.concat(
        F.lit('{"dimensions":{"identity_score":'),
        number("identity_score"),
        F.lit(',"evaluation_score":'),
        number("evaluation_score"),
        F.lit(',"quality_score":'),
        number("quality_score"),
        F.lit(',"conduct_score":'),
        number("conduct_score"),
        F.lit('},"score_class":"'),
        F.col("score_class"),  # one of CLASSES: nothing to escape
        F.lit('","records":'),
        F.coalesce(F.col("record_reasons"), F.lit("[]")),
        F.lit(',"rules":['),
        rule_reasons,
        F.lit('],"spot_checks":'),
        number("spot_checks"),
        F.lit(',"complaints_in_window":'),
        number("complaints"),
        F.lit(',"evaluation_rows":'),
        number("evaluation_rows"),
        F.lit("}"),
    )
    df = df.withColumn("final_class", _worst(base, *effects)).withColumn("reasons", reasons)
    scored = (
        df.withColumn("run_date", F.lit(run_date))
        .withColumn("rules_applied", applied)
        .withColumn("rules_version", F.lit(rules_version))
    )
    return with_previous(scored, previous)


SCORE_COLUMNS = [
    "run_date",
    "operator_key",
    "identity_score",
    "evaluation_score",
    "quality_score",
    "conduct_score",
    "total_score",
    "score_class",
    "final_class",
    "previous_class",
    "rules_applied",
    "reasons",
    "rules_version",
]


def with_previous(scores: DataFrame, previous: DataFrame | None) -> DataFrame:
    """``operator_score``'s columns (``SCORE_COLUMNS``) with ``previous_class``: the final class of
    ``previous`` (the run date last published; null without one, or for an operator it did not
    class)."""
    if previous is not None:
        scores = scores.join(
            previous.select("operator_key", F.col("final_class").alias("previous_class")), "operator_key", "left"
        )
    else:
        scores = scores.withColumn("previous_class", F.lit(None).cast("string"))
    return scores.select(*SCORE_COLUMNS)


# ---------------------------------------------------------------- measures, list, alerts


def measures(scores: DataFrame, records: DataFrame, rules: Rules) -> DataFrame:
    """``supervision_measure`` (lifecycle.md §3): one row per (classified operator, measure). A low
    class raises supervision: the final class's measures (rules ``measures.classes``), resting on
    the class (basis ``class:<class>``). Joint punishment only for the serious-dishonesty list: an
    operator with an active record of the list's types also gets ``measures.serious_list``, whatever
    its class, and every one of its measures rests on those records (basis: their record keys,
    sorted by code point, comma-joined). Each row names the department that applies the measure and
    the provision it rests on (``measures.codes``). ``under_objection`` is false: objections are not
    taken in yet (lifecycle.md §2)."""
    spec = rules.get("measures")
    spark = scores.sparkSession
    codes = spark.createDataFrame(
        [(code, c["dept"], c["legal_basis"]) for code, c in spec["codes"].items()],
        "measure_code string, responsible_dept string, legal_basis string",
    )
    by_class = spark.createDataFrame(
        [(c, code) for c, m in spec["classes"].items() for code in m["measures"]],
        "final_class string, measure_code string",
    )
    on_list = spark.createDataFrame([(code,) for code in spec["serious_list"]], "measure_code string")
    listed = (
        records.filter(F.col("active") & F.col("record_type").isin(list(rules.get("dishonest_list.record_types"))))
        .groupBy("operator_key")
        .agg(F.array_join(F.array_sort(F.collect_set("record_key")), ",").alias("list_basis"))
    )
    ops = scores.select("run_date", "operator_key", "final_class").join(listed, "operator_key", "left")
    rows = (
        ops.join(F.broadcast(by_class), "final_class")
        .unionByName(ops.filter(F.col("list_basis").isNotNull()).crossJoin(F.broadcast(on_list)))
        .dropDuplicates(["operator_key", "measure_code"])
    )
    return rows.join(F.broadcast(codes), "measure_code").select(
        "run_date",
        "operator_key",
        "measure_code",
        "final_class",
        "responsible_dept",
        F.coalesce("list_basis", F.concat(F.lit("class:"), F.col("final_class"))).alias("basis"),
        "legal_basis",
        F.lit(False).alias("under_objection"),
    )


def dishonest_list(records: DataFrame, registry: DataFrame, rules: Rules, run_date: dt.date) -> DataFrame:
    """``serious_dishonest_list`` at D: every active record of the list's types, one row per
    operator and type, classified or not; name from the registry only."""
    types = list(rules.get("dishonest_list.record_types"))
    names = registry.select("operator_key", "name")
    return (
        records.filter(F.col("active") & F.col("record_type").isin(types))
        .groupBy("operator_key", "record_type")
        .agg(
            F.min("event_date").alias("listed_date"), F.min(F.struct("event_date", "dept"))["dept"].alias("source_dept")
        )
        .join(names, "operator_key", "left")
        .select(
            F.lit(run_date).alias("run_date"),
            "operator_key",
            "record_type",
            F.coalesce("name", F.lit("")).alias("name"),
            "source_dept",
            "listed_date",
        )
    )


def list_changes(current: DataFrame, previous: DataFrame | None, run_date: dt.date) -> DataFrame:
    """ADDED / REMOVED against the list of the latest earlier run date (all ADDED on the first)."""
    cur = current.select("operator_key", "record_type").withColumn("now", F.lit(True))
    if previous is None:
        return cur.select(
            F.lit(run_date).alias("run_date"), "operator_key", "record_type", F.lit("ADDED").alias("change")
        )
    prev = previous.select("operator_key", "record_type").withColumn("before", F.lit(True))
    both = cur.join(prev, ["operator_key", "record_type"], "full")
    return both.filter(F.col("now").isNull() | F.col("before").isNull()).select(
        F.lit(run_date).alias("run_date"),
        "operator_key",
        "record_type",
        F.when(F.col("now"), F.lit("ADDED")).otherwise(F.lit("REMOVED")).alias("change"),
    )


def _type_labels(rules: Rules) -> dict:
    """record type -> the Chinese value the department sent for it (e.g. PEN_COUNTERFEIT -> 侵权假冒)."""
    out: dict[str, str] = {}
    for table in rules.get("record_types").values():
        for value, spec in table.items():
            out.setdefault(spec["type"], value)
    return out


def risk_alerts(scores: DataFrame, registry: DataFrame, rules: Rules) -> DataFrame:
    """``risk_alert``: one per operator of final class C (关注) or D (高风险), with a short Chinese
    message from its main reasons (rules first, then the records that cost most points); no
    personal data: the registry's name only (the shop's name for a natural person)."""
    p = rules.get("risk_alerts")
    labels = rules.get("classes.labels")
    rule_text = {k: v.get("label", k) for k, v in rules.get("class_rules").items()}
    types = _type_labels(rules)
    rule_map = F.create_map(*[x for k, v in rule_text.items() for x in (F.lit(k), F.lit(v))])
    type_map = F.create_map(*[x for k, v in types.items() for x in (F.lit(k), F.lit(v))])
    schema = T.StructType(
        [
            T.StructField(
                "records",
                T.ArrayType(
                    T.StructType(
                        [
                            T.StructField("points", T.IntegerType()),
                            T.StructField("record_type", T.StringType()),
                            T.StructField("severity", T.IntegerType()),
                        ]
                    )
                ),
            ),
            T.StructField("rules", T.ArrayType(T.StructType([T.StructField("rule", T.StringType())]))),
        ]
    )
    parsed = F.from_json("reasons", schema)
    rule_parts = F.transform(F.filter(parsed["rules"], lambda s: s["rule"] != "R_NEW"), lambda s: rule_map[s["rule"]])
    record_parts = F.transform(
        F.filter(parsed["records"], lambda s: s["points"] < 0),
        lambda s: F.concat(
            F.coalesce(type_map[s["record_type"]], s["record_type"]),
            F.lit("（严重程度"),
            s["severity"].cast("string"),
            F.lit("）"),
        ),
    )
    parts = F.slice(F.array_distinct(F.concat(rule_parts, record_parts)), 1, int(p["max_reasons"]))
    level = F.create_map(*[x for k, v in p["levels"].items() for x in (F.lit(k), F.lit(v))])
    label = F.create_map(*[x for k, v in labels.items() for x in (F.lit(k), F.lit(v))])
    message = F.concat(
        F.lit("信用等级"),
        F.col("final_class"),
        F.lit("（"),
        label[F.col("final_class")],
        F.lit("），信用分"),
        F.col("total_score").cast("string"),
        F.lit("。"),
        F.when(F.size(parts) > 0, F.concat(F.lit("主要原因："), F.array_join(parts, "；"), F.lit("。"))).otherwise(
            F.lit("主要原因：综合评分偏低。")
        ),
    )
    return (
        scores.filter(F.col("final_class").isin(list(p["levels"])))
        .join(registry.select("operator_key", "name"), "operator_key", "left")
        .select(
            "run_date",
            "operator_key",
            F.coalesce("name", F.lit("")).alias("name"),
            level[F.col("final_class")].alias("level"),
            message.alias("message"),
        )
    )
