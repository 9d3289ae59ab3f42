"""An independent oracle for the published `operator_score` table.

scoring.md §1-§3 written out again in plain Python, straight from the landing files: the standard
library (csv-like parsing by hand, json, decimal, fractions, hmac) and PyYAML for the rules file. It
imports nothing from the `ecredit` package, so that it shares no code, and no bug, with the pipeline
under test. Every number (windows, weights, thresholds, points, record types) comes from the rules
file passed in, so the same oracle checks a changed rule set.

Deliveries are folded as feeds.md says (latest delivery date, then latest line, wins per record key)
after a simple re-implementation of the row checks of quality.md (malformed rows, missing required
values, bad identifiers, dates, numbers and enum values) and of the delivery gates (manifest, header,
share of quarantined rows); (dept, date) pairs in `skip` are never applied.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path

import yaml

from tests.expected import CREDIT_KEYS, NULLS, is_withdrawn, norm_id, op_key

try:  # Asia/Shanghai has had no daylight saving since 1991: a fixed +08:00 is the same
    from zoneinfo import ZoneInfo

    SHANGHAI = ZoneInfo("Asia/Shanghai")
except Exception:  # pragma: no cover - no tz database
    SHANGHAI = dt.timezone(dt.timedelta(hours=8))

# ---------------------------------------------------------------------------------------------
# The exchange contract (feeds.md), written out by hand
# ---------------------------------------------------------------------------------------------

YES_NO = {"是", "否"}
ENCODING = {"amr": "gb18030", "post": "gb18030", "cac": "utf-8"}  # a UTF-8 BOM is always allowed

IDS_CSV = ("统一社会信用代码", "证件号码")
IDS_JSON = ("uscc", "id_no")

# (dept, file) -> contract. cols: CSV columns in file order (the optional withdrawal column apart);
# ids: (uscc column, id column or None); key: record key columns ("OP" = operator key);
# event: event-date column; dates: column -> format; enums: column -> allowed values (a null is
# never an enum failure); amounts: non-negative decimals; required: further non-null columns.
FEEDS = {
    ("amr", "operators.csv"): dict(
        cols=[
            "统一社会信用代码",
            "证件号码",
            "主体名称",
            "主体类型",
            "法定代表人",
            "所属区划",
            "电商平台",
            "店铺网址",
            "登记状态",
            "亮照亮证",
            "最近核验日期",
            "成立日期",
        ],
        ids=IDS_CSV,
        key=["OP"],
        event=None,
        dates={"最近核验日期": "ymd", "成立日期": "ymd"},
        enums={
            "主体类型": {"企业", "个体工商户", "自然人"},
            "登记状态": {"存续", "在业", "吊销", "注销", "迁出"},
            "亮照亮证": YES_NO,
        },
    ),
    ("amr", "penalties.csv"): dict(
        cols=[
            "行政处罚决定书文号",
            "统一社会信用代码",
            "证件号码",
            "主体名称",
            "违法行为类型",
            "处罚类别",
            "罚没金额(万元)",
            "处罚决定日期",
            "公示截止期",
            "状态",
        ],
        ids=IDS_CSV,
        event="处罚决定日期",
        dates={"处罚决定日期": "ymd", "公示截止期": "ymd"},
        type_col="违法行为类型",
        enums={
            "违法行为类型": {"侵权假冒", "虚假宣传", "刷单炒信", "恶意评价", "产品质量", "无照经营", "其他"},
            "处罚类别": {
                "警告",
                "通报批评",
                "罚款",
                "没收违法所得",
                "暂扣许可证件",
                "吊销许可证件",
                "责令停产停业",
                "限制从业",
            },
            "状态": {"有效", "撤销"},
        },
        amounts=["罚没金额(万元)"],
    ),
    ("amr", "spot_checks.csv"): dict(
        cols=["抽查编号", "统一社会信用代码", "证件号码", "商品类别", "抽查结果", "抽查日期"],
        ids=IDS_CSV,
        key=["抽查编号"],
        event="抽查日期",
        dates={"抽查日期": "ymd"},
        enums={"抽查结果": {"合格", "不合格"}},
        required=["抽查结果"],
    ),
    ("amr", "complaints.csv"): dict(
        cols=[
            "投诉编号",
            "统一社会信用代码",
            "证件号码",
            "投诉人姓名",
            "投诉人电话",
            "投诉类别",
            "登记日期",
            "办结状态",
            "先行赔付",
        ],
        ids=IDS_CSV,
        key=["投诉编号"],
        event="登记日期",
        dates={"登记日期": "ymd"},
        enums={"办结状态": {"已办结", "办理中"}, "先行赔付": YES_NO},
    ),
    ("amr", "lists.csv"): dict(
        cols=["名单类型", "统一社会信用代码", "证件号码", "主体名称", "列入原因", "列入日期", "移出日期"],
        ids=IDS_CSV,
        event="列入日期",
        dates={"列入日期": "ymd", "移出日期": "ymd"},
        type_col="名单类型",
        enums={"名单类型": {"经营异常名录", "严重违法失信名单"}},
    ),
    ("amr", "inspectors.csv"): dict(
        cols=["执法人员编号", "姓名", "执法证号", "所属单位", "在岗"],
        ids=None,
        key=["执法人员编号"],
        event=None,
        enums={"在岗": YES_NO},
    ),
    ("ndrc", "credit_lists.jsonl"): dict(
        ids=IDS_JSON,
        event="start",
        dates={"start": "ymd", "end": "ymd"},
        type_col="list",
        enums={"list": {"失信联合惩戒对象", "守信联合激励对象"}},
    ),
    ("cac", "pi_violations.csv"): dict(
        cols=["记录编号", "统一社会信用代码", "证件号码", "主体名称", "违规类型", "发现日期", "整改状态"],
        withdraw="撤销",
        ids=IDS_CSV,
        event="发现日期",
        dates={"发现日期": "slash"},
        type_col="违规类型",
        enums={
            "违规类型": {"违规收集个人信息", "违规使用个人信息", "个人信息泄露", "未落实等级保护"},
            "整改状态": {"已整改", "未整改"},
            "撤销": YES_NO,
        },
    ),
    ("psb", "cases.jsonl"): dict(
        ids=IDS_JSON,
        event="filed_at",
        dates={"filed_at": "ts"},
        type_col="case_type",
        enums={
            "case_type": {"网络诈骗", "网络传销", "侵犯公民个人信息", "刷单炒信", "销售假冒商品"},
            "status": {"立案侦查", "移送起诉", "撤案"},
        },
    ),
    ("commerce", "evaluations.csv"): dict(
        cols=[
            "电商平台",
            "统一社会信用代码",
            "证件号码",
            "评价月份",
            "整体满意度",
            "产品质量",
            "品牌信誉",
            "售后服务",
            "评价数",
            "删除评价数",
        ],
        ids=IDS_CSV,
        key=["电商平台", "OP", "评价月份"],
        event="评价月份",
        dates={"评价月份": "month"},
        indicators=["整体满意度", "产品质量", "品牌信誉", "售后服务"],
        counts=["评价数", "删除评价数"],
        required=["整体满意度", "产品质量", "品牌信誉", "售后服务", "评价数"],
    ),
    ("commerce", "breaches.csv"): dict(
        cols=["记录编号", "统一社会信用代码", "证件号码", "违约类型", "认定日期", "涉及金额(元)"],
        withdraw="撤销",
        ids=IDS_CSV,
        event="认定日期",
        dates={"认定日期": "ymd"},
        type_col="违约类型",
        enums={"违约类型": {"服务违约", "预付卡违约", "虚假宣传"}, "撤销": YES_NO},
        amounts=["涉及金额(元)"],
    ),
    ("finance", "finance_risk.csv"): dict(
        cols=["记录编号", "统一社会信用代码", "证件号码", "风险类型", "金额(元)", "认定日期", "状态"],
        ids=IDS_CSV,
        event="认定日期",
        dates={"认定日期": "compact"},
        type_col="风险类型",
        enums={"风险类型": {"非法集资", "贷款逾期", "融资违约", "非法放贷"}, "状态": {"存续", "已结清"}},
        amounts=["金额(元)"],
    ),
    ("gds", "licenses.csv"): dict(
        cols=["行政许可决定书文号", "统一社会信用代码", "证件号码", "许可证名称", "有效期自", "有效期至", "许可状态"],
        ids=IDS_CSV,
        key=["行政许可决定书文号"],
        event="有效期自",
        dates={"有效期自": "ymd", "有效期至": "ymd"},
        enums={"许可状态": {"有效", "注销", "撤销"}},
    ),
    ("post", "express_violations.csv"): dict(
        cols=["记录编号", "统一社会信用代码", "证件号码", "违规类型", "处理日期", "罚款金额(元)"],
        withdraw="撤销",
        ids=IDS_CSV,
        event="处理日期",
        dates={"处理日期": "cn"},
        type_col="违规类型",
        enums={"违规类型": {"虚假发货", "延误投递", "违规收寄", "泄露用户信息"}, "撤销": YES_NO},
        amounts=["罚款金额(元)"],
    ),
    ("customs", "violations.jsonl"): dict(
        ids=("USCC", None),
        event="DECISION_DATE",
        dates={"DECISION_DATE": "compact"},
        type_col="TYPE",
        enums={"TYPE": {"走私", "违规", "跨境电商申报不实"}},
        amounts=["PENALTY_CNY"],
        flags=["WITHDRAWN"],
    ),
    ("customs", "enterprise_credit.jsonl"): dict(
        ids=("USCC", None),
        event="EFFECTIVE_DATE",
        future_event=True,
        dates={"EFFECTIVE_DATE": "compact"},
        type_col="CREDIT_LEVEL",
        enums={"CREDIT_LEVEL": {"高级认证企业", "认证企业", "常规企业", "失信企业", "严重失信企业"}},
    ),
}
for _k, _cols in CREDIT_KEYS.items():
    FEEDS[_k]["key"] = _cols

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"


class Bad(Exception):
    """The row would be quarantined (the reason code is the message)."""


def valid_uscc(v: str) -> bool:
    if len(v) != 18 or any(c not in USCC_ALPHABET for c in v):
        return False
    s = sum(USCC_ALPHABET.index(c) * w for c, w in zip(v[:17], USCC_WEIGHTS))
    return v[17] == USCC_ALPHABET[(31 - s % 31) % 31]


def valid_id_no(v: str, delivery: dt.date) -> bool:
    if len(v) != 18 or not v[:17].isdigit() or not v[:17].isascii():
        return False
    if v[17] != ID_CHECK[sum(int(c) * w for c, w in zip(v[:17], ID_WEIGHTS)) % 11]:
        return False
    try:
        born = dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return False
    return born <= delivery


def parse_date(v, fmt: str) -> dt.date:
    """A date (or the Shanghai date of a timestamp, or the first day of a month); Bad when it does
    not parse in the feed's format."""
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise Bad("BAD_DATE")
    v = str(v).strip()
    pats = {
        "ymd": r"(\d{4})-(\d{2})-(\d{2})",
        "slash": r"(\d{4})/(\d{2})/(\d{2})",
        "compact": r"(\d{4})(\d{2})(\d{2})",
        "cn": r"(\d{4})年(\d{1,2})月(\d{1,2})日",
        "month": r"(\d{4})-(\d{2})()",
    }
    try:
        if fmt == "ts":
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T.+", v, re.ASCII):
                raise ValueError
            t = dt.datetime.fromisoformat(v)
            if t.tzinfo is None:
                raise ValueError
            return t.astimezone(SHANGHAI).date()
        m = re.fullmatch(pats[fmt], v, re.ASCII)
        if not m:
            raise ValueError
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3) or 1))
    except ValueError:
        raise Bad("BAD_DATE") from None


def parse_decimal(v) -> Decimal:
    if isinstance(v, bool):
        raise Bad("BAD_NUMBER")
    try:
        d = Decimal(str(v).strip())
    except InvalidOperation:
        raise Bad("BAD_NUMBER") from None
    if not d.is_finite() or d < 0:
        raise Bad("BAD_NUMBER")
    return d


# ---------------------------------------------------------------------------------------------
# Reading a file: rows (line, dict or None when malformed), by hand
# ---------------------------------------------------------------------------------------------


def _csv_records(text: str):
    """RFC 4180 records of `text`: (first physical line, fields). LF or CRLF ends a record, a lone
    CR ends nothing; a quoted field may hold line breaks."""
    i, n, line = 0, len(text), 1
    while i < n:
        start, fields = line, []
        while True:
            if i < n and text[i] == '"':
                i += 1
                buf = []
                while i < n:
                    c = text[i]
                    if c == '"':
                        if i + 1 < n and text[i + 1] == '"':
                            buf.append('"')
                            i += 2
                            continue
                        i += 1
                        break
                    if c == "\n":
                        line += 1
                    buf.append(c)
                    i += 1
                j = i
                while j < n and text[j] not in ",\n":
                    j += 1
                tail = text[i:j]
                i = j
                field = "".join(buf) + (tail[:-1] if tail.endswith("\r") and j < n else tail)
            else:
                j = i
                while j < n and text[j] not in ",\n":
                    j += 1
                field = text[i:j]
                i = j
                if field.endswith("\r") and j < n:
                    field = field[:-1]
            fields.append(field)
            if i < n and text[i] == ",":
                i += 1
                continue
            if i < n and text[i] == "\n":
                i += 1
                line += 1
            break
        yield start, fields


def read_file(path: Path, dept: str, fmt: str):
    """(header or None, [(line, raw dict | None)]) - None for a malformed row."""
    data = path.read_bytes()
    if fmt == "jsonl":
        pieces = data.split(b"\n")
        if pieces and pieces[-1] == b"":
            pieces.pop()
        rows = []
        for no, piece in enumerate(pieces, 1):
            if piece.endswith(b"\r"):
                piece = piece[:-1]
            try:
                s = piece.decode("utf-8")
                if no == 1 and s.startswith("\ufeff"):
                    s = s[1:]
                obj = json.loads(s) if s.strip() else None
            except (UnicodeDecodeError, ValueError):
                obj = None
            rows.append((no, obj if isinstance(obj, dict) else None))
        return None, rows
    text = data.decode(ENCODING.get(dept, "utf-8"), errors="surrogateescape")
    if text.startswith("\ufeff"):
        text = text[1:]
    records = list(_csv_records(text))
    if not records:
        return [], []
    header = [h.strip() for h in records[0][1]]
    rows = []
    for line, fields in records[1:]:
        ok = fields != [""] and len(fields) == len(header) and not any(re.search("[\udc80-\udcff]", f) for f in fields)
        rows.append((line, dict(zip(header, fields)) if ok else None))
    return header, rows


def clean(raw: dict, fmt: str) -> dict:
    if fmt == "jsonl":
        return {k: (None if v in ("", None) else v) for k, v in raw.items()}
    return {k: (None if v.strip() in NULLS else v.strip()) for k, v in raw.items()}


def check_row(spec: dict, r: dict, delivery: dt.date) -> dict:
    """The row with parsed values (`_op`, `_event`, `_dates`, `_num`), or Bad."""
    out = dict(r)
    ids = spec.get("ids")
    if ids:
        uscc = norm_id(r.get(ids[0])) if isinstance(r.get(ids[0]), str) else r.get(ids[0])
        id_no = (norm_id(r.get(ids[1])) if isinstance(r.get(ids[1]), str) else r.get(ids[1])) if ids[1] else None
        if uscc is None and id_no is None:
            raise Bad("MISSING_REQUIRED")
        if uscc is not None and not (isinstance(uscc, str) and valid_uscc(uscc)):
            raise Bad("BAD_USCC")
        if id_no is not None and not (isinstance(id_no, str) and valid_id_no(id_no, delivery)):
            raise Bad("BAD_ID_NO")
        out["_uscc"], out["_id_no"] = uscc, id_no
    for col in spec.get("key", []):
        if col != "OP" and r.get(col) is None:
            raise Bad("MISSING_REQUIRED")
    for col in [spec.get("event"), spec.get("type_col"), *spec.get("required", [])]:
        if col and r.get(col) is None:
            raise Bad("MISSING_REQUIRED")
    for col, allowed in spec.get("enums", {}).items():
        if r.get(col) is not None and r.get(col) not in allowed:
            raise Bad("BAD_ENUM")
    for col in spec.get("flags", []):
        if r.get(col) is not None and not isinstance(r.get(col), bool):
            raise Bad("BAD_ENUM")
    dates = {}
    for col, fmt in spec.get("dates", {}).items():
        if r.get(col) is not None:
            dates[col] = parse_date(r[col], fmt)
    ev = spec.get("event")
    if ev and not spec.get("future_event") and dates[ev] > delivery:
        raise Bad("BAD_DATE")
    num = {}
    for col in spec.get("amounts", []):
        if r.get(col) is not None:
            num[col] = parse_decimal(r[col])
    for col in spec.get("indicators", []):
        if r.get(col) is not None:
            num[col] = parse_decimal(r[col])
            if num[col] > 100:
                raise Bad("BAD_NUMBER")
    for col in spec.get("counts", []):
        if r.get(col) is not None:
            num[col] = parse_decimal(r[col])
            if num[col] != num[col].to_integral_value():
                raise Bad("BAD_NUMBER")
    district = r.get("所属区划") if spec is FEEDS[("amr", "operators.csv")] else None
    if district is not None and not (
        len(str(district)) == 6 and str(district)[:4] == "4401" and str(district).isdigit() and str(district).isascii()
    ):
        raise Bad("BAD_DISTRICT")
    out["_dates"], out["_num"] = dates, num
    out["_event"] = dates.get(ev) if ev else None
    return out


# ---------------------------------------------------------------------------------------------
# The fold: state as of D
# ---------------------------------------------------------------------------------------------


def _delivery(folder: Path, dept: str, max_ratio: Fraction, pii_key: str):
    """{file: [(line, checked row)]} of an applicable delivery, or None when it is rejected."""
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    delivery = dt.date.fromisoformat(folder.name)
    out = {}
    for entry in manifest["files"]:
        name = entry["name"]
        path = folder / name
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            return None
        spec = FEEDS.get((dept, name))
        if spec is None:
            continue
        fmt = "jsonl" if name.endswith(".jsonl") else "csv"
        header, rows = read_file(path, dept, fmt)
        if len(rows) != entry["rows"]:
            return None
        if fmt == "csv" and any(c not in header for c in spec["cols"]):
            return None  # schema drift
        good, bad = [], 0
        for line, raw in rows:
            try:
                if raw is None:
                    raise Bad("MALFORMED")
                r = check_row(spec, clean(raw, fmt), delivery)
            except Bad:
                bad += 1
                continue
            if spec.get("ids"):
                r["_op"] = op_key(r["_uscc"], r["_id_no"], pii_key)
            good.append((line, r))
        if rows and Fraction(bad, len(rows)) > max_ratio:
            return None
        out[name] = good
    return out


def fold(landing: Path, dates: list[str], run_date: str, pii_key: str, rules: dict, skip=frozenset()) -> dict:
    """(dept, file) -> {record key: latest checked row}, over the deliveries dated <= run_date."""
    max_ratio = Fraction(str((rules.get("quality") or {}).get("max_quarantined_ratio", "0.20")))
    state: dict = {}
    for d in sorted(x for x in dates if x <= run_date):
        for dept_dir in sorted(p for p in landing.iterdir() if p.is_dir()):
            folder = dept_dir / d
            if (dept_dir.name, d) in skip or not (folder / "manifest.json").exists():
                continue
            files = _delivery(folder, dept_dir.name, max_ratio, pii_key)
            if files is None:
                continue
            for name, rows in files.items():
                spec = FEEDS[(dept_dir.name, name)]
                table = state.setdefault((dept_dir.name, name), {})
                for line, r in rows:
                    r["_line"], r["_delivery"] = line, dt.date.fromisoformat(d)  # the current version's origin
                    parts = []
                    for k in spec["key"]:
                        if k == "OP" or (spec.get("ids") and k == spec["ids"][0]):  # customs: USCC = the key
                            parts.append(r["_op"])
                        elif k in r["_dates"]:
                            v = r["_dates"][k]
                            parts.append(v.isoformat()[:7] if spec["dates"][k] == "month" else v.isoformat())
                        else:
                            parts.append(str(r[k]))
                    rk = f"{dept_dir.name}:{name.rsplit('.', 1)[0]}:" + "|".join(parts)
                    table[rk] = r  # later delivery, then later line, wins
    return state


# ---------------------------------------------------------------------------------------------
# Scoring (scoring.md §1-§3)
# ---------------------------------------------------------------------------------------------


def half_up(x) -> int:
    """Round half up (away from zero on a tie), exactly."""
    x = Fraction(x)
    if x < 0:
        return -half_up(-x)
    f = x + Fraction(1, 2)
    return f.numerator // f.denominator


def within(x: dt.date | None, d: dt.date, days: int) -> bool:
    """x in (D - days, D]."""
    return x is not None and d - dt.timedelta(days=days) < x <= d


def in_window(e: dt.date, d: dt.date, days: int) -> bool:
    """A record with a `days`-day window from E is active on D when E <= D < E + days."""
    return e <= d < e + dt.timedelta(days=days)


def credit_records(state: dict, rules: dict, d: dt.date) -> list[dict]:
    """Every active, non-withdrawn credit record at D: key, op, type, severity (None = positive)."""
    rt = rules["record_types"]
    default = {int(k): int(v) for k, v in rules["windows"]["default_by_severity"].items()}
    pen, lists, cac, cus = rules["penalties"], rules["lists"], rules["cac"], rules["customs_violations"]
    out = []

    def emit(rk, r, feed, value, active_fn, sev_fn=lambda s: s):
        spec = rt.get(feed, {}).get(value)
        if spec is None:
            return
        positive = spec.get("polarity") == "positive"
        sev = None if positive else min(4, int(sev_fn(int(spec["severity"]))))
        if active_fn(sev):
            out.append(
                {
                    "key": rk,
                    "op": r["_op"],
                    "type": spec["type"],
                    "severity": sev,
                    "positive": positive,
                    "event": r["_event"],
                }
            )

    def default_window(r):
        return lambda sev: in_window(r["_event"], d, default[sev] if sev is not None else default[1])

    for (dept, name), table in state.items():
        feed = f"{dept}.{name.rsplit('.', 1)[0]}"
        if (dept, name) not in CREDIT_KEYS:
            continue
        for rk, r in table.items():
            if is_withdrawn(rk, r):
                continue
            e = r["_event"]
            if feed == "amr.penalties":
                cat = r.get("处罚类别")
                amount = r["_num"].get("罚没金额(万元)")

                def sev_fn(s, cat=cat, amount=amount):
                    if cat in pen["light_categories"]:
                        s = int(pen["light_severity"])
                    elif cat in pen["heavy_categories"]:
                        s = int(pen["heavy_severity"])
                    if amount is not None and amount * 10000 >= Decimal(str(pen["large_amount_yuan"])):
                        s += int(pen["large_amount_severity_bump"])
                    return min(4, s)

                end = r["_dates"].get("公示截止期")
                if end is not None:
                    act = lambda sev, e=e, end=end: e <= d <= end
                else:
                    days = pen["light_window_days"] if cat in pen["light_categories"] else pen["window_days"]
                    act = lambda sev, e=e, days=days: in_window(e, d, int(days))
                emit(rk, r, feed, r["违法行为类型"], act, sev_fn)
            elif feed == "amr.lists":
                rem = r["_dates"].get("移出日期")
                kind = r["名单类型"]
                serious = rt["amr.lists"].get(kind, {}).get("type") == "LIST_SERIOUS"

                def act(sev, e=e, rem=rem, serious=serious):
                    listed = e <= d and (rem is None or rem > d)
                    return listed and (not serious or d < e + dt.timedelta(days=int(lists["serious_max_days"])))

                emit(rk, r, feed, kind, act)
            elif feed == "ndrc.credit_lists":
                end = r["_dates"].get("end")
                emit(rk, r, feed, r["list"], lambda sev, e=e, end=end: e <= d and (end is None or end > d))
            elif feed == "cac.pi_violations":
                rectified = r.get("整改状态") == "已整改"  # null reads 未整改
                if rectified:
                    emit(
                        rk, r, feed, r["违规类型"], lambda sev, e=e: in_window(e, d, int(cac["rectified_window_days"]))
                    )
                else:
                    emit(
                        rk,
                        r,
                        feed,
                        r["违规类型"],
                        lambda sev, e=e: e <= d,
                        lambda s: s + int(cac["unrectified_severity_bump"]),
                    )
            elif feed == "customs.violations":
                amount = r["_num"].get("PENALTY_CNY")
                big = amount is not None and amount >= Decimal(str(cus["large_amount_yuan"]))
                emit(
                    rk,
                    r,
                    feed,
                    r["TYPE"],
                    default_window(r),
                    lambda s, big=big: s + (int(cus["large_amount_severity_bump"]) if big else 0),
                )
            elif feed == "customs.enterprise_credit":
                continue  # below: one level in force per enterprise
            else:
                type_col = {
                    "psb.cases": "case_type",
                    "commerce.breaches": "违约类型",
                    "finance.finance_risk": "风险类型",
                    "post.express_violations": "违规类型",
                }[feed]
                emit(rk, r, feed, r[type_col], default_window(r))

    # customs credit: the version with the latest EFFECTIVE_DATE <= D is in force (常规企业: none)
    in_force: dict[str, tuple] = {}
    for rk, r in state.get(("customs", "enterprise_credit.jsonl"), {}).items():
        if r["_event"] <= d and (r["_op"] not in in_force or r["_event"] > in_force[r["_op"]][1]["_event"]):
            in_force[r["_op"]] = (rk, r)
    for rk, r in in_force.values():
        emit(rk, r, "customs.enterprise_credit", r["CREDIT_LEVEL"], lambda sev: True)
    return out


def expected_scores(
    landing: Path, dates: list[str], run_date: str, pii_key: str, rules_path: Path, skip: set = frozenset()
) -> dict[str, dict]:
    """operator key -> the expected operator_score row at run_date, for every classified operator
    (registered at run_date, 登记状态 not 注销/迁出): identity_score, evaluation_score, quality_score,
    conduct_score, total_score, score_class, final_class, rules_applied (comma-separated, sorted),
    and, for the reasons, active_records: sorted (record key, record type, severity or None for a
    positive record)."""
    rules = yaml.safe_load(Path(rules_path).read_text("utf-8"))
    d = dt.date.fromisoformat(run_date)
    state = fold(Path(landing), dates, run_date, pii_key, rules, skip)
    reg, ident, ev, q, cd = (
        rules["registry"],
        rules["identity"],
        rules["evaluation"],
        rules["quality_score"],
        rules["conduct"],
    )

    registry = {r["_op"]: r for r in state.get(("amr", "operators.csv"), {}).values()}
    classified = {k: r for k, r in registry.items() if r.get("登记状态") not in reg["unclassified_statuses"]}

    records: dict[str, list] = {}
    for rec in credit_records(state, rules, d):
        records.setdefault(rec["op"], []).append(rec)

    # evaluations: the 12 months ending with D's month
    months = set()
    y, m = d.year, d.month
    for _ in range(int(ev["months"])):
        months.add(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    evals: dict[str, list] = {}
    for r in state.get(("commerce", "evaluations.csv"), {}).values():
        if r["_event"].isoformat()[:7] in months:
            evals.setdefault(r["_op"], []).append(r)
    wcols = {
        "overall_satisfaction": "整体满意度",
        "product_quality": "产品质量",
        "brand_reputation": "品牌信誉",
        "after_sales": "售后服务",
    }
    weights = {wcols[k]: Fraction(str(v)) for k, v in ev["weights"].items()}

    spot: dict[str, list] = {}
    for r in state.get(("amr", "spot_checks.csv"), {}).values():
        if within(r["_event"], d, int(q["spot_check_days"])):
            spot.setdefault(r["_op"], []).append(r)
    compl: dict[str, list] = {}
    for r in state.get(("amr", "complaints.csv"), {}).values():
        if within(r["_event"], d, int(q["complaint_days"])):
            compl.setdefault(r["_op"], []).append(r)

    points = {int(k): int(v) for k, v in cd["points_by_severity"].items()}
    thresholds = sorted(((int(v), c) for c, v in rules["classes"]["thresholds"].items()), reverse=True)
    all_classes = sorted(set(rules["classes"].get("labels", {})) | {c for _, c in thresholds} | {"D"})
    lowest = [c for c in all_classes if c not in {c for _, c in thresholds}][-1]
    cr = rules["class_rules"]
    serious_types = set(cr["R_SERIOUS"]["record_types"])

    out = {}
    for k, o in classified.items():
        # identity
        natural = o["_uscc"] is None and o["_id_no"] is not None
        identity = 0
        if natural or o.get("登记状态") in reg["active_statuses"]:
            identity += int(ident["registered_points"])
        if o.get("亮照亮证") == "是":
            identity += int(ident["licence_displayed_points"])
        verified = o["_dates"].get("最近核验日期")
        if within(verified, d, int(ident["verified_recent_days"])):
            identity += int(ident["verified_recent_points"])
        elif within(verified, d, int(ident["verified_days"])):
            identity += int(ident["verified_points"])

        # evaluation
        rows = evals.get(k, [])
        n = sum(int(r["_num"]["评价数"]) for r in rows)
        if n == 0:
            evaluation = int(ev["no_reviews_score"])
        else:
            total = sum(
                sum(w * Fraction(r["_num"][c]) for c, w in weights.items()) * int(r["_num"]["评价数"]) for r in rows
            )
            evaluation = half_up(Fraction(str(ev["scale"])) * total / n)
        deleted = sum(1 for r in rows if (r["_num"].get("删除评价数") or 0) > 0)
        evaluation = max(0, min(int(ev["max"]), evaluation - int(ev["deleted_reviews_penalty"]) * deleted))

        # quality
        checks = spot.get(k, [])
        if not checks:
            part = int(q["no_spot_check_points"])
        else:
            passed = sum(1 for r in checks if r["抽查结果"] == q["passed_result"])
            part = half_up(Fraction(int(q["spot_check_scale"]) * passed, len(checks)))
        deduction = 0
        for r in compl.get(k, []):
            if r.get("办结状态") != "已办结":  # null reads 办理中
                deduction += int(q["complaint_in_progress"])
            elif r.get("先行赔付") == "是":
                deduction += int(q["complaint_done_with_compensation"])
            else:
                deduction += int(q["complaint_done_without_compensation"])
        quality = max(0, part - min(int(q["complaint_cap"]), deduction))

        # conduct
        recs = records.get(k, [])
        conduct = int(cd["base"]) - sum(points[r["severity"]] for r in recs if not r["positive"])
        if any(r["positive"] for r in recs):
            conduct += int(cd["positive_bonus"])
        conduct = max(0, min(int(cd["max"]), conduct))

        total_score = identity + evaluation + quality + conduct
        score_class = next((c for t, c in thresholds if total_score >= t), lowest)

        # rules
        applied, effects = [], []
        rn = cr.get("R_NEW")
        est = o["_dates"].get("成立日期")
        if rn and within(est, d, int(rn["established_days"])) and not recs and not rows:
            applied.append("R_NEW")
        base = rn["base_class"] if "R_NEW" in applied else score_class
        types = {r["type"] for r in recs}
        if types & serious_types:
            applied.append("R_SERIOUS")
            effects.append(cr["R_SERIOUS"]["class"])
        if "R_REVOKED" in cr and o.get("登记状态") == reg["revoked_status"]:
            applied.append("R_REVOKED")
            effects.append(cr["R_REVOKED"]["class"])
        if "R_SEV4" in cr and any(
            not r["positive"] and r["severity"] >= int(cr["R_SEV4"]["severity"]) and r["type"] not in serious_types
            for r in recs
        ):
            applied.append("R_SEV4")
            effects.append(cr["R_SEV4"]["class"])
        if "R_ABNORMAL" in cr and types & set(cr["R_ABNORMAL"]["record_types"]):
            applied.append("R_ABNORMAL")
            effects.append(cr["R_ABNORMAL"]["class"])
        final_class = max([base, *effects])  # A best ... D worst

        out[k] = {
            "identity_score": identity,
            "evaluation_score": evaluation,
            "quality_score": quality,
            "conduct_score": conduct,
            "total_score": total_score,
            "score_class": score_class,
            "final_class": final_class,
            "rules_applied": ",".join(sorted(applied)),
            "active_records": sorted((r["key"], r["type"], r["severity"]) for r in recs),
        }
    return out


# ---------------------------------------------------------------------------------------------
# Measures (lifecycle.md §3) and the three published fact tables (warehouse.md)
# ---------------------------------------------------------------------------------------------


def expected_measures(
    landing: Path,
    dates: list[str],
    run_date: str,
    pii_key: str,
    rules_path: Path,
    skip: set = frozenset(),
    scores: dict | None = None,
) -> dict[tuple[str, str], dict]:
    """(operator key, measure code) -> the expected supervision_measure row at run_date: final_class,
    responsible_dept, basis, legal_basis, under_objection. lifecycle.md §3 written out again: every
    classified operator gets its final class's measures; one with an active record of a
    serious-dishonesty-list type gets the list's measures too, whatever its class, and every one of
    its measures rests on those records (basis: their keys, sorted by code point, comma-joined);
    otherwise the basis is `class:<final class>`. The measures, departments and legal texts are the
    rules file's; `scores` may pass expected_scores' result for run_date to save its time."""
    rules = yaml.safe_load(Path(rules_path).read_text("utf-8"))
    if scores is None:
        scores = expected_scores(landing, dates, run_date, pii_key, rules_path, skip)
    m = rules["measures"]
    list_types = set(rules["dishonest_list"]["record_types"])
    out = {}
    for k, s in scores.items():
        listed = sorted({key for key, rtype, _sev in s["active_records"] if rtype in list_types})
        codes = set(m["classes"][s["final_class"]]["measures"])
        if listed:
            codes |= set(m["serious_list"])
        for code in codes:
            out[(k, code)] = {
                "final_class": s["final_class"],
                "responsible_dept": m["codes"][code]["dept"],
                "basis": ",".join(listed) if listed else f"class:{s['final_class']}",
                "legal_basis": m["codes"][code]["legal_basis"],
                "under_objection": False,
            }
    return out


# (dept, file) -> (table, key column, {warehouse column: feed column}); the identifiers become
# operator_key, and the complainant's name and phone are not published at all
FACTS = {
    ("gds", "licenses.csv"): (
        "fact_license",
        "license_no",
        {
            "license_no": "行政许可决定书文号",
            "license_name": "许可证名称",
            "valid_from": "有效期自",
            "valid_to": "有效期至",
            "license_status": "许可状态",
        },
    ),
    ("amr", "spot_checks.csv"): (
        "fact_spot_check",
        "check_no",
        {"check_no": "抽查编号", "product_category": "商品类别", "result": "抽查结果", "check_date": "抽查日期"},
    ),
    ("amr", "complaints.csv"): (
        "fact_complaint",
        "complaint_no",
        {
            "complaint_no": "投诉编号",
            "complaint_category": "投诉类别",
            "registered_date": "登记日期",
            "handling_status": "办结状态",
            "advance_compensation": "先行赔付",
        },
    ),
}


def expected_facts(
    landing: Path, dates: list[str], run_date: str, pii_key: str, rules_path: Path, skip: set = frozenset()
) -> dict[str, dict[str, dict]]:
    """table -> key -> the expected row of fact_license, fact_spot_check and fact_complaint at
    run_date: the latest version of every licence, spot check and complaint delivered up to then
    (rows that pass the checks), with operator_key for the identifiers, the feed's other columns
    (dates parsed), source_delivery_date and source_line; no complainant's name or phone."""
    rules = yaml.safe_load(Path(rules_path).read_text("utf-8"))
    state = fold(Path(landing), dates, run_date, pii_key, rules, skip)
    out: dict[str, dict[str, dict]] = {}
    for feed, (table, key, columns) in FACTS.items():
        rows = out.setdefault(table, {})
        for r in state.get(feed, {}).values():
            row = {
                col: r["_dates"].get(src) if src in r["_dates"] or src in FEEDS[feed].get("dates", {}) else r.get(src)
                for col, src in columns.items()
            }
            row.update(operator_key=r["_op"], source_delivery_date=r["_delivery"], source_line=r["_line"])
            rows[row[key]] = row
    return out
