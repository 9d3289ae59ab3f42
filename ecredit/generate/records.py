"""Credit records, one builder per feed, each a pure function of (entity, its Random, key serial,
event date): calling it again with the same arguments gives the same record, which is how a later
delivery re-sends (updates, withdraws) an earlier record without remembering it.

Builders return rows with ``None`` for a null; ``FeedOut`` decides how a null is written.
"""

from __future__ import annotations

from random import Random
from typing import Any

from ecredit.core.feeds import FEEDS

from . import pools
from .entities import Entity, ids_for_record, person_name
from .formats import COMPACT, ISO, MONTH, MONTH_INDEX, SLASH, YEAR, ZH_VARIANTS, month_last_day, shanghai_timestamp

OPS, PEN, SPOT, COMP, LIST, INSP = (
    "amr.operators",
    "amr.penalties",
    "amr.spot_checks",
    "amr.complaints",
    "amr.lists",
    "amr.inspectors",
)
NDRC, CAC, PSB, EVAL, BREACH = (
    "ndrc.credit_lists",
    "cac.pi_violations",
    "psb.cases",
    "commerce.evaluations",
    "commerce.breaches",
)
FIN, GDS, POST, CCREDIT, CVIOL = (
    "finance.finance_risk",
    "gds.licenses",
    "post.express_violations",
    "customs.enterprise_credit",
    "customs.violations",
)

# The column order the builders write; checked against feeds.py before generating.
EXPECTED_COLUMNS = {
    OPS: (
        "uscc",
        "id_no",
        "name",
        "subject_type",
        "legal_rep",
        "district_code",
        "platform",
        "shop_url",
        "registration_status",
        "license_displayed",
        "last_verified_date",
        "established_date",
    ),
    PEN: (
        "decision_no",
        "uscc",
        "id_no",
        "party_name",
        "violation_type",
        "penalty_category",
        "amount_10k_yuan",
        "decision_date",
        "publicity_end",
        "status",
    ),
    SPOT: ("check_no", "uscc", "id_no", "product_category", "result", "check_date"),
    COMP: (
        "complaint_no",
        "uscc",
        "id_no",
        "complainant_name",
        "complainant_phone",
        "complaint_category",
        "registered_date",
        "handling_status",
        "advance_compensation",
    ),
    LIST: ("list_type", "uscc", "id_no", "party_name", "reason", "listed_date", "removed_date"),
    INSP: ("inspector_id", "name", "certificate_no", "unit", "on_duty"),
    NDRC: ("uscc", "id_no", "party_name", "list_type", "basis", "start_date", "end_date"),
    CAC: (
        "record_no",
        "uscc",
        "id_no",
        "party_name",
        "violation_type",
        "found_date",
        "rectification_status",
        "withdrawn",
    ),
    PSB: ("case_id", "uscc", "id_no", "case_type", "filed_at", "status"),
    EVAL: (
        "platform",
        "uscc",
        "id_no",
        "eval_month",
        "overall_satisfaction",
        "product_quality",
        "brand_reputation",
        "after_sales",
        "review_count",
        "deleted_review_count",
    ),
    BREACH: ("record_no", "uscc", "id_no", "breach_type", "decided_date", "amount_yuan", "withdrawn"),
    FIN: ("record_no", "uscc", "id_no", "risk_type", "amount_yuan", "decided_date", "status"),
    GDS: ("licence_no", "uscc", "id_no", "licence_name", "valid_from", "valid_to", "licence_status"),
    POST: ("record_no", "uscc", "id_no", "violation_type", "handled_date", "amount_yuan", "withdrawn"),
    CCREDIT: ("uscc", "customs_code", "credit_level", "effective_date"),
    CVIOL: ("decision_no", "uscc", "violation_type", "amount_yuan", "decision_date", "withdrawn"),
}


def check_registry() -> list[str]:
    """Feeds whose columns differ from what the builders write (empty when all agree)."""
    problems = []
    for f in FEEDS:
        want = EXPECTED_COLUMNS.get(f.feed_id)
        got = tuple(c.name for c in f.columns)
        if want is None:
            problems.append(f"{f.feed_id}: no builder in ecredit.generate (header-only file)")
        elif want != got:
            problems.append(f"{f.feed_id}: feeds.py columns {got} differ from the builder's {want}")
    return problems


# Evaluation indicator x/10 for x in 0..1000, one decimal.
SCORES = tuple(f"{x // 10}.{x % 10}" if x % 10 else f"{x // 10}" for x in range(1001))
P = pools


def _pick(pool, rnd):
    return pool[int(rnd() * len(pool))]


def _money(rnd, lo_cents: int, hi_cents: int) -> str:
    c = lo_cents + int(rnd() * rnd() * (hi_cents - lo_cents))
    return f"{c // 100}.{c % 100:02d}" if c % 100 else str(c // 100)


def _withdrawn_csv(rnd):
    return "否" if rnd() < 0.15 else None


def _party_name(e: Entity, rnd) -> str:
    # a source may name a natural person by the person's own name (PII)
    return e.person if (e.np and rnd() < 0.5) else e.name


# ---------------------------------------------------------------- builders (row = list / dict)


def b_penalty(e: Entity, r: Random, serial: int, ev: int, D: int) -> list:
    rnd = r.random
    u, i = ids_for_record(e, r)
    cat = _pick(P.PENALTY_CAT_W, rnd)
    if cat in ("警告", "通报批评"):
        amount = None if rnd() < 0.5 else "0"
    else:
        h = int(r.lognormvariate(4.0, 1.6)) + 1  # hundreds of yuan
        amount = f"{h // 100}.{h % 100:02d}" if h % 100 else str(h // 100)
    pub = None if rnd() < 0.55 else ev + (90, 180, 365, 1095)[int(rnd() * 4)]
    x = rnd()
    status = "有效" if x < 0.93 else (None if x < 0.98 else "撤销")
    return [
        f"穗{e.dabbr}市监处罚〔{YEAR[ev]}〕{serial}号",
        u,
        i,
        _party_name(e, rnd),
        _pick(P.VIOLATION_W, rnd),
        cat,
        amount,
        ISO[ev],
        ISO[pub] if pub else None,
        status,
    ]


def b_spot(e: Entity, r: Random, serial: int, ev: int, D: int) -> list:
    rnd = r.random
    u, i = ids_for_record(e, r)
    cat = _pick(P.PRODUCT_CATEGORIES, rnd) if rnd() > 0.02 else None
    return [f"GZCC{YEAR[ev]}{serial:09d}", u, i, cat, "合格" if rnd() < 0.86 else "不合格", ISO[ev]]


def b_complaint(e: Entity, r: Random, serial: int, ev: int, D: int) -> list:
    rnd = r.random
    u, i = ids_for_record(e, r)
    phone = f"1{'3456789'[int(rnd() * 7)]}{r.randrange(10**9):09d}"
    x = rnd()
    st: str | None
    if D - ev < 30:
        st = "办理中" if x < 0.5 else "已办结"
    else:
        st = "已办结" if x < 0.96 else "办理中"
    if rnd() < 0.02:
        st = None
    comp = "是" if (st == "已办结" and rnd() < 0.3) else ("否" if rnd() < 0.85 else None)
    return [
        f"12315{YEAR[ev]}{serial:010d}",
        u,
        i,
        person_name(r),
        phone,
        _pick(P.COMPLAINT_CATEGORIES, rnd),
        ISO[ev],
        st,
        comp,
    ]


def b_list(e: Entity, r: Random, ltype: str, ev: int, removed) -> list:
    rnd = r.random
    u, i = ids_for_record(e, r)
    reason = _pick(P.ABNORMAL_REASONS if ltype == "经营异常名录" else P.SERIOUS_REASONS, rnd)
    if rnd() < 0.15:
        reason += "\n" + _pick(P.LIST_BASIS, rnd)  # a quoted field with a line break
    return [ltype, u, i, _party_name(e, rnd), reason, ISO[ev], ISO[removed] if removed else None]


def b_ndrc(e: Entity, r: Random, ltype: str, ev: int, end) -> dict:
    rnd = r.random
    u, i = ids_for_record(e, r)
    basis = _pick(P.NDRC_PUNISH_BASIS if ltype == "失信联合惩戒对象" else P.NDRC_REWARD_BASIS, rnd)
    return {
        "uscc": u,
        "id_no": i,
        "name": _party_name(e, rnd),
        "list": ltype,
        "basis": basis,
        "start": ISO[ev],
        "end": ISO[end] if end else None,
    }


def b_cac(e: Entity, r: Random, serial: int, ev: int, D: int) -> list:
    rnd = r.random
    u, i = ids_for_record(e, r)
    x = rnd()
    rect = ("已整改" if x < (0.75 if D - ev > 60 else 0.2) else "未整改") if rnd() > 0.05 else None
    return [
        f"WX{YEAR[ev]}{serial:09d}",
        u,
        i,
        _party_name(e, rnd),
        _pick(P.CAC_W, rnd),
        SLASH[ev],
        rect,
        _withdrawn_csv(rnd),
    ]


def b_psb(e: Entity, r: Random, serial: int, ev: int, D: int) -> dict:
    rnd = r.random
    u, i = ids_for_record(e, r)
    secs = r.randrange(86400)
    x = rnd()
    frac = 0 if x < 0.7 else (1 + int(rnd() * 998) if x < 0.9 else 1000 + r.randrange(999000))
    ts = shanghai_timestamp(ev, secs, rnd(), frac)
    y = rnd()
    status = "立案侦查" if y < 0.6 else ("移送起诉" if y < 0.9 else ("撤案" if y < 0.95 else None))
    return {
        "case_id": f"A{e.district}{YEAR[ev]}{serial:08d}",
        "uscc": u,
        "id_no": i,
        "case_type": _pick(P.PSB_W, rnd),
        "filed_at": ts,
        "status": status,
    }


def b_eval(e: Entity, r: Random, platform: str, mi: int) -> list:
    rnd = r.random
    u, i = ids_for_record(e, r)
    q = e.quality * 10.0
    row = [platform, u, i, MONTH[mi]]
    for _ in range(4):
        v = int(q + (rnd() - 0.5) * 80.0)
        row.append(SCORES[0 if v < 0 else (1000 if v > 1000 else v)])
    c = 0 if rnd() < 0.03 else int(e.volume * (0.3 + 1.4 * rnd()))
    x = rnd()
    deleted = "0" if x < 0.86 else (None if x < 0.97 else str(1 + int(rnd() * 20)))
    row.append(str(c))
    row.append(deleted)
    return row


def b_breach(e: Entity, r: Random, serial: int, ev: int, D: int) -> list:
    rnd = r.random
    u, i = ids_for_record(e, r)
    amount = _money(rnd, 5000, 5_000_000) if rnd() > 0.1 else None
    return [f"SW{YEAR[ev]}{serial:09d}", u, i, _pick(P.BREACH_W, rnd), ISO[ev], amount, _withdrawn_csv(rnd)]


def b_finance(e: Entity, r: Random, serial: int, ev: int, D: int) -> list:
    rnd = r.random
    u, i = ids_for_record(e, r)
    amount = _money(rnd, 100_000, 200_000_000) if rnd() > 0.05 else None
    x = rnd()
    if x < 0.04:
        st = None
    elif D - ev > 365:
        st = "已结清" if x < 0.5 else "存续"
    else:
        st = "已结清" if x < 0.12 else "存续"
    return [f"JR{YEAR[ev]}{serial:09d}", u, i, _pick(P.FIN_W, rnd), amount, COMPACT[ev], st]


def b_licence(e: Entity, r: Random, serial: int, ev: int, D: int) -> list:
    rnd = r.random
    u, i = ids_for_record(e, r)
    x = rnd()
    to = ev + 5 * 365 if x < 0.85 else (ev + 3 * 365 if x < 0.95 else None)
    y = rnd()
    if to is not None and to < D:
        st = "注销" if y < 0.6 else "有效"
    elif y < 0.95:
        st = "有效"
    elif y < 0.97:
        st = "注销"
    elif y < 0.98:
        st = "撤销"
    else:
        st = None
    return [
        f"穗{e.dabbr}政数许〔{YEAR[ev]}〕{serial}号",
        u,
        i,
        _pick(P.LICENCE_NAMES, rnd),
        ISO[ev],
        ISO[to] if to else None,
        st,
    ]


def b_post(e: Entity, r: Random, serial: int, ev: int, D: int) -> list:
    rnd = r.random
    u, i = ids_for_record(e, r)
    amount = str(500 * (1 + int(rnd() * rnd() * 60))) if rnd() > 0.1 else None
    return [
        f"YZ{YEAR[ev]}{serial:09d}",
        u,
        i,
        _pick(P.POST_W, rnd),
        ZH_VARIANTS[r.getrandbits(3)][ev],
        amount,
        _withdrawn_csv(rnd),
    ]


def b_ccredit(e: Entity, r: Random, level: str, eff: int) -> dict:
    return {"USCC": e.uscc, "CUSTOMS_CODE": e.customs_code, "CREDIT_LEVEL": level, "EFFECTIVE_DATE": COMPACT[eff]}


def b_cviol(e: Entity, r: Random, serial: int, ev: int, D: int) -> dict:
    rnd = r.random
    yuan = int(r.lognormvariate(9.5, 1.5)) + 100
    x = rnd()
    amount: int | float | str | None
    if x < 0.5:
        amount = yuan
    elif x < 0.75:
        amount = yuan + 0.5  # a float
    elif x < 0.95:
        amount = f"{yuan}.5"  # a number sent as a string
    else:
        amount = None
    row = {
        "DECISION_NO": f"穗关缉违字〔{YEAR[ev]}〕{serial}号",
        "USCC": e.uscc,
        "TYPE": _pick(P.CUSTOMS_TYPE_W, rnd),
        "PENALTY_CNY": amount,
        "DECISION_DATE": COMPACT[ev],
    }
    y = rnd()
    if y < 0.25:
        row["WITHDRAWN"] = False
    elif y < 0.3:
        row["WITHDRAWN"] = None
    return row


SERIAL_BUILDERS = {
    PEN: b_penalty,
    SPOT: b_spot,
    COMP: b_complaint,
    CAC: b_cac,
    PSB: b_psb,
    BREACH: b_breach,
    FIN: b_finance,
    GDS: b_licence,
    POST: b_post,
    CVIOL: b_cviol,
}


# ---------------------------------------------------------------- history: one entity's records


def history_serial(n: int) -> int:
    """Key serial of an entity's n-th history record of a feed (n = serial_base + k): a bijection
    onto 1..2**33, so keys stay unique but do not show the entity order. Increment serials start
    at 10**11 (see ``core``), above every history serial."""
    return ((n * 0x9E3779B1 + 0x2545F491) & 0x1FFFFFFFF) + 1


HISTORY_DAYS = 1095  # the history load's records go back three years by default


def history_bundle(seed: int, D: int, e: Entity, days: int = HISTORY_DAYS) -> list:
    """Every record of entity ``e`` in the history load dated ``D`` whose event falls in the
    ``days`` before it: [(feed_id, row, event)]."""
    r = Random(f"{seed}|hist|{ISO[D]}|{e.tag}")
    rnd = r.random
    lo = e.est if e.est > D - (days - 1) else D - (days - 1)
    span = D - lo + 1
    act = span / 1095.0
    rk = e.risk * act
    sb = e.serial_base
    out: list[tuple[str, Any, int]] = []
    ap = out.append

    def n_of(rate: float) -> int:
        n = int(rate + rnd())
        return n if n < 60 else 60

    # amr
    for k in range(n_of(0.45 * rk)):
        ev = D - int(rnd() * span)
        ap((PEN, b_penalty(e, r, history_serial(sb + k), ev, D), ev))
    for k in range(n_of(1.3 * act)):
        ev = D - int(rnd() * span)
        ap((SPOT, b_spot(e, r, history_serial(sb + k), ev, D), ev))
    for k in range(n_of(1.4 * act * (0.5 + 0.5 * e.risk))):
        ev = D - int(rnd() * span)
        ap((COMP, b_complaint(e, r, history_serial(sb + k), ev, D), ev))
    if rnd() < min(0.8, 0.12 * rk):
        ev = D - int(rnd() * span)
        removed = ev + 30 + int(rnd() * (D - ev)) if rnd() < 0.4 and D - ev > 40 else None
        ap((LIST, b_list(e, r, "经营异常名录", ev, removed if removed and removed <= D else None), ev))
    if rnd() < min(0.5, 0.03 * rk):
        ev = D - int(rnd() * span)
        ap((LIST, b_list(e, r, "严重违法失信名单", ev, None), ev))
    # ndrc
    if rnd() < min(0.5, 0.03 * rk):
        ev = D - int(rnd() * span)
        end = ev + 365 * (1 + int(rnd() * 3)) if rnd() < 0.4 else None
        ap((NDRC, b_ndrc(e, r, "失信联合惩戒对象", ev, end), ev))
    if rnd() < 0.04 * act / (0.5 + e.risk):
        ev = D - int(rnd() * span)
        ap((NDRC, b_ndrc(e, r, "守信联合激励对象", ev, ev + 3 * 365 if rnd() < 0.5 else None), ev))
    # cac, psb
    for k in range(n_of(0.25 * rk)):
        ev = D - int(rnd() * span)
        ap((CAC, b_cac(e, r, history_serial(sb + k), ev, D), ev))
    for k in range(n_of(0.06 * rk)):
        ev = D - int(rnd() * span)
        ap((PSB, b_psb(e, r, history_serial(sb + k), ev, D), ev))
    # commerce: monthly evaluations over the 12 months before D's month, then breaches
    md = MONTH_INDEX[D]
    me = MONTH_INDEX[e.est]
    first = md - 12 if md - 12 > me else me
    for p in e.platforms:
        for mi in range(first, md):
            if rnd() < 0.88:
                ap((EVAL, b_eval(e, r, p, mi), mi))
        if rnd() < 0.3 and me <= md:
            ap((EVAL, b_eval(e, r, p, md), md))
    for k in range(n_of(0.35 * rk)):
        ev = D - int(rnd() * span)
        ap((BREACH, b_breach(e, r, history_serial(sb + k), ev, D), ev))
    # finance, gds, post
    for k in range(n_of(0.25 * rk)):
        ev = D - int(rnd() * span)
        ap((FIN, b_finance(e, r, history_serial(sb + k), ev, D), ev))
    for k in range(n_of(1.2 * act)):
        ev = D - int(rnd() * span)
        ap((GDS, b_licence(e, r, history_serial(sb + k), ev, D), ev))
    for k in range(n_of(0.35 * rk)):
        ev = D - int(rnd() * span)
        ap((POST, b_post(e, r, history_serial(sb + k), ev, D), ev))
    # customs: credit versions (distinct effective dates, perhaps one announced for the future)
    if e.customs_code:
        nv = 1 + int(rnd() * 2.5)
        offs = sorted(r.sample(range(span), min(nv, span)), reverse=True)
        for o in offs:
            ap((CCREDIT, b_ccredit(e, r, _pick(P.CUSTOMS_LEVEL_W, rnd), D - o), D - o))
        if rnd() < 0.1:
            eff = D + 1 + int(rnd() * 60)
            ap((CCREDIT, b_ccredit(e, r, _pick(P.CUSTOMS_LEVEL_W, rnd), eff), eff))
    if e.uscc:
        for k in range(n_of((0.2 if e.customs_code else 0.04) * rk)):
            ev = D - int(rnd() * span)
            ap((CVIOL, b_cviol(e, r, history_serial(sb + k), ev, D), ev))
    return out


# ---------------------------------------------------------------- updates (re-sent records)

UPDATABLE = frozenset({PEN, COMP, LIST, NDRC, CAC, PSB, BREACH, FIN, GDS, POST, CVIOL})


def update(fid: str, row, ev: int, r: Random, D: int):
    """The record re-sent on delivery ``D`` with a change (withdrawal, removal, status), or None
    when nothing applies. ``row`` is a freshly regenerated copy and is changed in place."""
    rnd = r.random
    if fid == PEN:
        if row[9] == "撤销":
            return None
        if rnd() < 0.8:
            row[9] = "撤销"
        else:
            row[8] = ISO[D + 30 + int(rnd() * 60)]  # publicity end corrected
        return row
    if fid == LIST:
        if row[6] is not None:
            return None
        row[6] = ISO[max(ev + 1, D - int(rnd() * 5))]
        return row
    if fid == NDRC:
        end = row.get("end")
        if end is not None and end <= ISO[D]:
            return None
        row["end"] = ISO[max(ev + 1, D - int(rnd() * 3))]
        return row
    if fid == CAC:
        if row[7] == "是":
            return None
        if row[6] != "已整改" and rnd() < 0.5:
            row[6] = "已整改"
        else:
            row[7] = "是"
        return row
    if fid == PSB:
        st = row.get("status")
        if st == "撤案":
            return None
        row["status"] = "移送起诉" if (st != "移送起诉" and rnd() < 0.4) else "撤案"
        return row
    if fid in (BREACH, POST):
        if row[6] == "是":
            return None
        row[6] = "是"
        return row
    if fid == FIN:
        if row[6] == "已结清":
            return None
        row[6] = "已结清"
        return row
    if fid == GDS:
        if row[6] in ("注销", "撤销"):
            return None
        row[6] = "注销" if rnd() < 0.7 else "撤销"
        return row
    if fid == CVIOL:
        if row.get("WITHDRAWN") is True:
            return None
        row["WITHDRAWN"] = True
        return row
    if fid == COMP:
        if row[7] == "已办结" and row[8] is not None:
            return None
        row[7] = "已办结"
        row[8] = "是" if rnd() < 0.4 else "否"
        return row
    return None


# ---------------------------------------------------------------- increments: new records

# Expected new records per entity of the space, per increment (about 1 % of the history volume).
INCREMENT_RATES = {
    PEN: 0.0045,
    SPOT: 0.012,
    COMP: 0.02,
    LIST: 0.002,
    NDRC: 0.001,
    CAC: 0.0025,
    PSB: 0.0008,
    EVAL: 0.10,
    BREACH: 0.0035,
    FIN: 0.0025,
    GDS: 0.012,
    POST: 0.0035,
    CVIOL: 0.0015,
}


def build_new(fid: str, e: Entity, r: Random, serial: int, D: int, Dprev: int):
    """A new record of an increment dated ``D`` (previous delivery ``Dprev``): (row, event) or
    None when the entity cannot carry it (customs needs a USCC). Event dates are near D; for the
    feeds keyed by (type, operator, date) they fall in (Dprev, D], so they can never collide with
    an earlier record re-sent in the same file."""
    rnd = r.random
    if fid in SERIAL_BUILDERS:
        if fid == CVIOL and not e.uscc:
            return None
        back = int(rnd() * rnd() * 15)
        ev = D - back
        if ev < e.est:
            ev = e.est if e.est <= D else D
        return SERIAL_BUILDERS[fid](e, r, serial, ev, D), ev
    gap = D - Dprev
    ev = D - int(rnd() * min(gap, 7))
    if fid == LIST:
        return b_list(e, r, "严重违法失信名单" if rnd() < 0.15 else "经营异常名录", ev, None), ev
    if fid == NDRC:
        if rnd() < 0.6:
            end = ev + 365 * (1 + int(rnd() * 3)) if rnd() < 0.3 else None
            return b_ndrc(e, r, "失信联合惩戒对象", ev, end), ev
        return b_ndrc(e, r, "守信联合激励对象", ev, ev + 3 * 365 if rnd() < 0.5 else None), ev
    if fid == EVAL:
        mi = MONTH_INDEX[D] - 1
        if e.est > month_last_day(mi):
            mi += 1
        return b_eval(e, r, e.platform, mi), mi
    return None


def new_customs_version(e: Entity, r: Random, D: int, Dprev: int):
    rnd = r.random
    if rnd() < 0.5:
        eff = D + 1 + int(rnd() * 90)  # announced before it takes effect
    else:
        eff = D - int(rnd() * min(D - Dprev, 7))
    return b_ccredit(e, r, _pick(P.CUSTOMS_LEVEL_W, rnd), eff), eff


# ---------------------------------------------------------------- inspectors


def inspector_row(seed: int, n: int) -> list:
    r = Random(f"{seed}|amr|inspector|{n}")
    rnd = r.random
    if rnd() < 0.2:
        unit = P.INSPECTOR_UNITS_CITY
    else:
        code = _pick(tuple(P.DISTRICT_NAMES)[:11], rnd)
        unit = f"广州市{P.DISTRICT_NAMES[code][0]}区市场监督管理局"
    x = rnd()
    on = "是" if x < 0.9 else ("否" if x < 0.98 else None)
    return [f"4401{n + 1:07d}", person_name(r), f"44{r.randrange(10**9):09d}", unit, on]


def update_inspector(row: list) -> list:
    row[4] = "否" if row[4] == "是" else "是"
    return row
