"""The delivery generator: layout, manifests, encodings, headers, formats, validity of clean rows
(checked here with ids.py and feeds.py's own lists, independently of the pipeline's parser),
natural persons and orphans, updates on later dates, dirty rows per reason code, determinism (its
streaming memory: tests/unit/test_generate_memory.py, slower)."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import hashlib
import io
import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest

from ecredit.core import ids
from ecredit.core.checks import REASON_CODES
from ecredit.core.feeds import (
    DATE,
    DATE_FORMATS,
    DECIMAL,
    DEPARTMENTS,
    DISTRICT,
    DISTRICTS,
    ENUM,
    FEEDS,
    ID_NO,
    INT,
    MONTH,
    SCORE,
    TIMESTAMP,
    USCC,
    feed,
    feeds_of,
)
from ecredit.generate import generate, pools

DATES = [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3), dt.date(2026, 11, 5)]
N = 1500
SEED = 20261101
NULLS = {"", "—", "―", "— —", "― ―", "—―", "―—", "— ―", "― —", "/", "无"}
CODEC = {"GBK": "gb18030", "UTF-8 with BOM": "utf-8-sig", "UTF-8": "utf-8"}
SH = dt.timezone(dt.timedelta(hours=8))


def _quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    return out, generate(out, N, DATES, SEED, progress=_quiet)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    out = tmp_path_factory.mktemp("dirty")
    return out, generate(out, N, DATES[:2], SEED, dirty_rate=0.05, progress=_quiet)


# ---------------------------------------------------------------- reading, independently


def read_rows(path: Path, f):
    """(line number, values by source or None when undecodable/not an object) per data row;
    CSV values trimmed and null markers turned into None."""
    data = path.read_bytes()
    if f.fmt == "jsonl":
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        out = []
        for n, raw in enumerate(lines, start=1):
            raw = raw[:-1] if raw.endswith(b"\r") else raw
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                out.append((n, None))
                continue
            if not isinstance(obj, dict):
                out.append((n, None))
                continue
            vals = {}
            for c in f.columns:
                v = obj.get(c.source)
                if isinstance(v, bool):
                    v = "true" if v else "false"
                elif isinstance(v, (int, float)):
                    v = json.dumps(v)
                elif isinstance(v, str) and v.strip() == "":
                    v = None
                vals[c.source] = v
            out.append((n, vals))
        return None, out
    text = data.decode(CODEC[f.declared_encoding], errors="surrogateescape")
    records = list(csv.reader(io.StringIO(text, newline="")))
    header, out = records[0], []
    for n, rec in enumerate(records[1:], start=2):
        if any("\udc80" <= ch <= "\udcff" for field in rec for ch in field) or len(rec) != len(header):
            out.append((n, None))
            continue
        vals = {}
        for h, v in zip(header, rec):
            v = v.strip()
            vals[h] = None if v in NULLS else v
        out.append((n, vals))
    return header, out


def parse_date(v: str, fmt: str):
    m = re.match(DATE_FORMATS[fmt][0], v)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def reasons_of(f, vals: dict, D: dt.date) -> set:
    """quality.md's row rules (all but MALFORMED and DUPLICATE_KEY)."""
    out = set()
    for c in f.columns:
        v = vals.get(c.source)
        if c.kind in (USCC, ID_NO) and v is not None:
            v = ids.normalise(v)
        if v is None:
            if c.required:
                out.add("MISSING_REQUIRED")
            continue
        event = c.name == f.event_date
        if c.kind == USCC and not ids.uscc_valid(v):
            out.add("BAD_USCC")
        elif c.kind == ID_NO and not ids.id_valid(v, D):
            out.add("BAD_ID_NO")
        elif c.kind == ENUM and v not in c.values:
            out.add("BAD_ENUM")
        elif c.kind == DATE:
            d = parse_date(v, f.date_format)
            if d is None or (event and d > D and f.feed_id != "customs.enterprise_credit"):
                out.add("BAD_DATE")
        elif c.kind == MONTH:
            m = re.match(r"^(\d{4})-(\d{2})$", v)
            if not m or not 1 <= int(m.group(2)) <= 12 or dt.date(int(m.group(1)), int(m.group(2)), 1) > D:
                out.add("BAD_DATE")
        elif c.kind == TIMESTAMP:
            try:
                ts = dt.datetime.fromisoformat(v) if "T" in v else None
            except ValueError:
                ts = None
            if ts is None or ts.tzinfo is None or ts.astimezone(SH).date() > D:
                out.add("BAD_DATE")
        elif c.kind in (DECIMAL, SCORE):
            try:
                d = Decimal(v)
                bad = not d.is_finite() or d < 0 or (c.kind == SCORE and d > 100)
            except InvalidOperation:
                bad = True
            if bad:
                out.add("BAD_NUMBER")
        elif c.kind == INT and not re.fullmatch(r"\d+", v):
            out.add("BAD_NUMBER")
        elif c.kind == DISTRICT and not v.startswith("4401"):
            out.add("BAD_DISTRICT")
    if f.identifiers and all(vals.get(f.column(n).source) is None for n in f.identifiers):
        out.add("MISSING_REQUIRED")
    return out


def operator_key(f, vals: dict):
    u = ids.normalise(vals.get("统一社会信用代码", vals.get("uscc", vals.get("USCC"))))
    i = ids.normalise(vals.get("证件号码", vals.get("id_no")))
    return u if u else (f"NP:{i}" if i else None)


def record_key(f, vals: dict):
    parts = []
    for name in f.key:
        if name == "operator_key":
            parts.append(operator_key(f, vals))
        else:
            v = vals.get(f.column(name).source)
            parts.append(ids.normalise(v) if f.column(name).kind == USCC else v)
    return tuple(parts)


def validate(root: Path, f, D: dt.date):
    """Counter of reason codes over the file, like quality.md would quarantine."""
    _header, rows = read_rows(root / f.dept / D.isoformat() / f.file, f)
    found = collections.Counter()
    keys = collections.Counter()
    for _n, vals in rows:
        if vals is None:
            found["MALFORMED"] += 1
            continue
        rs = reasons_of(f, vals, D)
        found.update(rs)
        if not rs:
            keys[record_key(f, vals)] += 1
    for _k, n in keys.items():
        if n > 1:
            found["DUPLICATE_KEY"] += n - 1
    return found


def all_rows(root: Path, dept_file: str, D: dt.date):
    dept, file = dept_file.split("/")
    f = feed(dept, file)
    return [v for _n, v in read_rows(root / dept / D.isoformat() / file, f)[1] if v is not None]


# ---------------------------------------------------------------- layout, manifests, bytes


def test_every_file_and_manifest(clean):
    root, summary = clean
    for dept in DEPARTMENTS:
        for D in DATES:
            folder = root / dept / D.isoformat()
            manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
            assert manifest["dept"] == dept and manifest["date"] == D.isoformat()
            assert [e["name"] for e in manifest["files"]] == [f.file for f in feeds_of(dept)]
            for entry in manifest["files"]:
                f = feed(dept, entry["name"])
                data = (folder / entry["name"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == entry["sha256"]
                assert len(read_rows(folder / entry["name"], f)[1]) == entry["rows"]
                assert summary["rows"][dept][entry["name"]][D.isoformat()] == entry["rows"]
            # the manifest is written last
            newest = max((folder / e["name"]).stat().st_mtime_ns for e in manifest["files"])
            assert (folder / "manifest.json").stat().st_mtime_ns >= newest
    assert summary["files"] == len(FEEDS) * len(DATES)
    assert summary["dirty_total"] == 0


def test_history_volume_and_increments(clean):
    root, summary = clean
    per_date = collections.Counter()
    for fs in summary["rows"].values():
        for by_date in fs.values():
            per_date.update(by_date)
    history = per_date[DATES[0].isoformat()]
    assert 15 * N <= history <= 25 * N  # about 20 rows per operator
    for D in DATES[1:]:
        assert 0.003 * history <= per_date[D.isoformat()] <= 0.03 * history  # about 1 %
    for f in FEEDS:  # every feed has history rows
        assert summary["rows"][f.dept][f.file][DATES[0].isoformat()] > 0, f.feed_id


def test_determinism(clean, tmp_path):
    root, _ = clean
    again = tmp_path / "again"
    generate(again, N, DATES, SEED, progress=_quiet)
    other = tmp_path / "other"
    generate(other, N, DATES[:1], SEED + 1, progress=_quiet)
    for dept in DEPARTMENTS:
        for D in DATES:
            a = (root / dept / D.isoformat() / "manifest.json").read_bytes()
            assert a == (again / dept / D.isoformat() / "manifest.json").read_bytes()
            for f in feeds_of(dept):
                assert (root / dept / D.isoformat() / f.file).read_bytes() == (
                    again / dept / D.isoformat() / f.file
                ).read_bytes()
        for f in feeds_of(dept):
            d1 = DATES[0].isoformat()
            assert (root / dept / d1 / f.file).read_bytes() != (other / dept / d1 / f.file).read_bytes()


def test_encodings_and_headers(clean):
    root, _ = clean
    for f in FEEDS:
        data = (root / f.dept / DATES[0].isoformat() / f.file).read_bytes()
        if f.declared_encoding == "GBK":
            data.decode("gb18030")
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
        elif f.declared_encoding == "UTF-8 with BOM":
            assert data.startswith(b"\xef\xbb\xbf")
            data.decode("utf-8")
        else:
            assert not data.startswith(b"\xef\xbb\xbf")
            data.decode("utf-8")
        if f.fmt == "csv":
            header, _ = read_rows(root / f.dept / DATES[0].isoformat() / f.file, f)
            assert header == [c.source for c in f.columns]  # including the optional 撤销


def test_pools_are_gbk():
    for pool in pools.ALL_TEXT:
        for s in pool:
            s.encode("gbk")


# ---------------------------------------------------------------- content


def test_clean_rows_are_all_valid(clean):
    root, _ = clean
    for D in DATES:
        for f in FEEDS:
            assert validate(root, f, D) == collections.Counter(), (f.feed_id, D)


def test_identifiers_pass_ids_after_normalising(clean):
    root, _ = clean
    variants = collections.Counter()
    for D in DATES:
        for f in FEEDS:
            for _n, vals in read_rows(root / f.dept / D.isoformat() / f.file, f)[1]:
                for c in f.columns:
                    v = vals.get(c.source)
                    if v is None or c.kind not in (USCC, ID_NO):
                        continue
                    n = ids.normalise(v)
                    assert ids.uscc_valid(n) if c.kind == USCC else ids.id_valid(n, D), (f.feed_id, v)
                    if n != v:
                        variants[
                            "full-width"
                            if any(ord(ch) > 0xFF00 for ch in v)
                            else "lower"
                            if v != v.upper()
                            else "spaces"
                        ] += 1
    assert variants["full-width"] and variants["lower"] and variants["spaces"], variants


def test_date_formats(clean):
    root, _ = clean
    post = all_rows(root, "post/express_violations.csv", DATES[0])
    days = [r["处理日期"] for r in post]
    assert all(parse_date(d, "chinese") for d in days)
    assert any(re.search(r"年\d月", d) for d in days) and any(re.search(r"年0\d月", d) for d in days)
    cac = all_rows(root, "cac/pi_violations.csv", DATES[0])
    assert all(re.fullmatch(r"\d{4}/\d{2}/\d{2}", r["发现日期"]) for r in cac)
    fin = all_rows(root, "finance/finance_risk.csv", DATES[0])
    assert all(re.fullmatch(r"\d{8}", r["认定日期"]) for r in fin)
    evals = all_rows(root, "commerce/evaluations.csv", DATES[0])
    months = {r["评价月份"] for r in evals}
    assert all(re.fullmatch(r"\d{4}-\d{2}", m) for m in months) and len(months) >= 12
    stamps = [r["filed_at"] for r in all_rows(root, "psb/cases.jsonl", DATES[0])]
    assert {s[-6:] for s in stamps if not s.endswith("Z")} == {"+08:00", "+00:00"}
    assert any(s.endswith("Z") for s in stamps) and any("." in s for s in stamps)
    differs = [
        s for s in stamps if dt.datetime.fromisoformat(s).date() != dt.datetime.fromisoformat(s).astimezone(SH).date()
    ]
    assert differs  # UTC date != Shanghai date
    credit = all_rows(root, "customs/enterprise_credit.jsonl", DATES[0])
    assert any(parse_date(r["EFFECTIVE_DATE"], "compact") > DATES[0] for r in credit)  # announced ahead
    raw = (root / "customs" / DATES[0].isoformat() / "violations.jsonl").read_text("utf-8")
    amounts = [json.loads(line).get("PENALTY_CNY") for line in raw.splitlines()]
    assert any(isinstance(a, str) for a in amounts) and any(isinstance(a, float) for a in amounts)


def test_null_markers_and_padding(clean):
    root, _ = clean
    text = (root / "amr" / DATES[0].isoformat() / "penalties.csv").read_bytes().decode("gb18030")
    fields = [v for rec in csv.reader(io.StringIO(text, newline="")) for v in rec]
    seen = set(fields)
    for marker in ("—", "―", "— —", "/", "无", ""):
        assert marker in seen, marker
    assert any(v != v.strip() and v.strip() for v in fields)  # padded values
    lists = (root / "amr" / DATES[0].isoformat() / "lists.csv").read_bytes().decode("gb18030")
    assert any("\n" in v for rec in csv.reader(io.StringIO(lists, newline="")) for v in rec)  # quoted line break
    ndrc = (root / "ndrc" / DATES[0].isoformat() / "credit_lists.jsonl").read_text("utf-8").splitlines()
    objs = [json.loads(line) for line in ndrc]
    assert (
        any("id_no" not in o for o in objs)
        and any(o.get("id_no") == "" for o in objs)
        and any("id_no" in o and o["id_no"] is None for o in objs)
    )


def test_operators_registry(clean):
    root, _ = clean
    ops = all_rows(root, "amr/operators.csv", DATES[0])
    assert len(ops) == N
    natural = [r for r in ops if r["主体类型"] == "自然人"]
    assert 0.10 <= len(natural) / N <= 0.20
    for r in natural:
        assert r["统一社会信用代码"] is None and r["登记状态"] is None and r["法定代表人"] is None
        idn = ids.normalise(r["证件号码"])
        assert ids.id_valid(idn, DATES[0])
        assert 1950 <= ids.id_birth_date(idn).year <= 2004
        assert not re.fullmatch(r"[\u4e00-\u9fff]{2,3}", r["主体名称"])  # a shop name, not a person
    orgs = [r for r in ops if r["主体类型"] != "自然人"]
    for r in orgs:
        u = ids.normalise(r["统一社会信用代码"])
        assert u[0] == "9" and u[1] in "12" and u[2:8] in DISTRICTS and r["证件号码"] is None
    statuses = collections.Counter(r["登记状态"] for r in orgs)
    assert statuses["存续"] + statuses["在业"] > 0.85 * len(orgs)
    assert statuses["吊销"] and statuses["注销"] and statuses["迁出"]
    recent = [r for r in ops if parse_date(r["成立日期"], "iso") > DATES[0] - dt.timedelta(days=180)]
    assert recent
    verified = [parse_date(r["最近核验日期"], "iso") for r in ops if r["最近核验日期"]]
    assert all(DATES[0] - dt.timedelta(days=731) <= v <= DATES[0] for v in verified)
    assert {r["所属区划"] for r in ops} & {"440102", "440107", "440116"}  # retired: a warning
    inspectors = all_rows(root, "amr/inspectors.csv", DATES[0])
    assert len(inspectors) == max(20, N // 50)


def test_natural_persons_orphans_and_both_identifiers(clean):
    root, _ = clean
    registry = set()
    for D in DATES:
        f = feed("amr", "operators.csv")
        registry |= {operator_key(f, v) for v in all_rows(root, "amr/operators.csv", D)}
    total = orphans = natural = both = 0
    for f in FEEDS:
        if f.table != "credit_records" or not f.identifiers:
            continue
        for D in DATES:
            for v in all_rows(root, f"{f.dept}/{f.file}", D):
                key = operator_key(f, v)
                total += 1
                orphans += key not in registry
                natural += key.startswith("NP:")
                has_id = "id_no" in [c.name for c in f.columns] and v.get(f.column("id_no").source) is not None
                both += has_id and not key.startswith("NP:")
    assert 0.005 <= orphans / total <= 0.06
    assert natural > 0.05 * total
    assert both > 0


def test_updates_and_revocations_on_later_dates(clean):
    root, _ = clean
    seen = collections.Counter()

    def by_key(dept_file, D, key_fn):
        return {key_fn(v): v for v in all_rows(root, dept_file, D)}

    earlier = {}
    for k, D in enumerate(DATES):
        cur = {
            "pen": by_key("amr/penalties.csv", D, lambda v: v["行政处罚决定书文号"]),
            "list": by_key("amr/lists.csv", D, lambda v: (v["名单类型"], operator_key(None, v), v["列入日期"])),
            "ndrc": by_key("ndrc/credit_lists.jsonl", D, lambda v: (v["list"], operator_key(None, v), v["start"])),
            "psb": by_key("psb/cases.jsonl", D, lambda v: v["case_id"]),
            "fin": by_key("finance/finance_risk.csv", D, lambda v: v["记录编号"]),
            "gds": by_key("gds/licenses.csv", D, lambda v: v["行政许可决定书文号"]),
            "cac": by_key("cac/pi_violations.csv", D, lambda v: v["记录编号"]),
            "breach": by_key("commerce/breaches.csv", D, lambda v: v["记录编号"]),
            "post": by_key("post/express_violations.csv", D, lambda v: v["记录编号"]),
            "cviol": by_key("customs/violations.jsonl", D, lambda v: v["DECISION_NO"]),
            "ops": by_key("amr/operators.csv", D, lambda v: operator_key(None, v)),
            "ccredit": by_key(
                "customs/enterprise_credit.jsonl", D, lambda v: (ids.normalise(v["USCC"]), v["EFFECTIVE_DATE"])
            ),
        }
        if k:
            for kind, rows in cur.items():
                for key, v in rows.items():
                    old = earlier.get(kind, {}).get(key)
                    if kind == "ccredit":
                        if parse_date(v["EFFECTIVE_DATE"], "compact") > D:
                            seen["ccredit_future"] += 1
                        continue
                    if old is None:
                        continue
                    if kind == "pen" and v["状态"] == "撤销" and old["状态"] != "撤销":
                        seen["penalty_revoked"] += 1
                    if kind == "list" and v["移出日期"] and not old["移出日期"]:
                        seen["list_removed"] += 1
                    if kind == "ndrc" and v["end"] and v["end"] != old["end"]:
                        seen["ndrc_end"] += 1
                    if kind == "psb" and v["status"] == "撤案" and old["status"] != "撤案":
                        seen["psb_dropped"] += 1
                    if kind == "fin" and v["状态"] == "已结清" and old["状态"] != "已结清":
                        seen["finance_settled"] += 1
                    if kind == "gds" and v["许可状态"] in ("注销", "撤销") and old["许可状态"] == "有效":
                        seen["licence_cancelled"] += 1
                    if kind in ("cac", "breach", "post") and v["撤销"] == "是":
                        seen["withdrawn_csv"] += 1
                    if kind == "cviol" and v["WITHDRAWN"] == "true":
                        seen["withdrawn_customs"] += 1
                    if kind == "ops":
                        if v["登记状态"] in ("吊销", "注销", "迁出") and old["登记状态"] in ("存续", "在业"):
                            seen["operator_status"] += 1
                        if v["最近核验日期"] and v["最近核验日期"] != old["最近核验日期"]:
                            seen["operator_verified"] += 1
        for kind, rows in cur.items():
            earlier.setdefault(kind, {}).update(rows)
    for what in (
        "penalty_revoked",
        "list_removed",
        "ndrc_end",
        "psb_dropped",
        "finance_settled",
        "licence_cancelled",
        "withdrawn_csv",
        "withdrawn_customs",
        "operator_status",
        "operator_verified",
        "ccredit_future",
    ):
        assert seen[what] > 0, (what, seen)
    # new operators in increments, established recently
    new_ops = set(earlier["ops"]) - set(by_key("amr/operators.csv", DATES[0], lambda v: operator_key(None, v)))
    assert new_ops
    lists = [v["名单类型"] for D in DATES for v in all_rows(root, "amr/lists.csv", D)]
    assert "严重违法失信名单" in lists and "经营异常名录" in lists
    ndrc = {v["list"] for D in DATES for v in all_rows(root, "ndrc/credit_lists.jsonl", D)}
    assert ndrc == {"失信联合惩戒对象", "守信联合激励对象"}


def test_increment_event_dates_are_recent(clean):
    root, _ = clean
    D = DATES[1]
    for dept_file, column in (
        ("amr/penalties.csv", "处罚决定日期"),
        ("amr/complaints.csv", "登记日期"),
        ("gds/licenses.csv", "有效期自"),
    ):
        days = [parse_date(v[column], "iso") for v in all_rows(root, dept_file, D)]
        assert all(d <= D for d in days)
        assert any(D - dt.timedelta(days=15) <= d for d in days), dept_file


# ---------------------------------------------------------------- dirty rows


def test_dirty_rows_every_reason_code(dirty):
    root, summary = dirty
    injected = summary["dirty"]
    assert set(injected) == set(REASON_CODES)
    for code in REASON_CODES:
        assert injected[code] >= 1, (code, injected)
    found = collections.Counter()
    for D in DATES[:2]:
        for f in FEEDS:
            got = validate(root, f, D)
            rows = summary["rows"][f.dept][f.file][D.isoformat()]
            assert sum(got.values()) <= 0.2 * rows, (f.feed_id, D, got)  # never a rejected file
            found.update(got)
    assert found == collections.Counter({c: n for c, n in injected.items() if n})
    total = sum(n for fs in summary["rows"].values() for by in fs.values() for n in by.values())
    assert 0.02 * total <= summary["dirty_total"] <= 0.06 * total


def test_dirty_bytes_are_undecodable(dirty):
    root, _ = dirty
    bad = 0
    for f in FEEDS:
        for line in (root / f.dept / DATES[0].isoformat() / f.file).read_bytes().split(b"\n"):
            try:
                line.decode("gb18030" if f.declared_encoding == "GBK" else "utf-8")
            except UnicodeDecodeError:
                bad += 1
    assert bad > 0


# ---------------------------------------------------------------- progress, arguments, memory


def test_progress_lines(tmp_path):
    lines = []
    generate(tmp_path, 30, DATES[:2], 1, progress=lines.append)
    assert any(re.fullmatch(r"generate: amr 2026-11-01 penalties\.csv [\d,]+ rows", x) for x in lines)
    assert len([x for x in lines if x.endswith(" rows")]) == 2 * len(FEEDS)
    assert lines[-1].startswith("generate: done: ")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path, 10, [DATES[1], DATES[0]], 1, progress=_quiet)
    with pytest.raises(ValueError):
        generate(tmp_path, 10, [], 1, progress=_quiet)
    with pytest.raises(ValueError, match="history_days"):
        generate(tmp_path, 10, [DATES[0]], 1, progress=_quiet, history_days=0)
    with pytest.raises(ValueError, match="history_days"):
        generate(tmp_path, 10, [DATES[0]], 1, progress=_quiet, history_days=1096)


def test_a_shorter_history_has_fewer_records_and_the_same_increments(clean, tmp_path):
    """``history_days`` (make bench's --history-years): the history load's events go back that far
    and no further, so it holds fewer records; the increments are as many rows (the daily work)."""
    root, summary = clean
    short = generate(tmp_path, N, DATES[:2], SEED, progress=_quiet, history_days=365)
    per_date: dict = {"full": collections.Counter(), "short": collections.Counter()}
    for name, got in (("full", summary), ("short", short)):
        for fs in got["rows"].values():
            for by_date in fs.values():
                per_date[name].update(by_date)
    history, increment = DATES[0].isoformat(), DATES[1].isoformat()
    assert per_date["short"][history] < 0.9 * per_date["full"][history]  # (evaluations: the last months)
    assert 0.8 <= per_date["short"][increment] / per_date["full"][increment] <= 1.25
    first = DATES[0] - dt.timedelta(days=364)
    for dept_file, column in (("amr/penalties.csv", "处罚决定日期"), ("amr/complaints.csv", "登记日期")):
        days = [parse_date(v[column], "iso") for v in all_rows(tmp_path, dept_file, DATES[0])]
        assert days and all(first <= d <= DATES[0] for d in days if d is not None), dept_file
    full_days = [parse_date(v["处罚决定日期"], "iso") for v in all_rows(root, "amr/penalties.csv", DATES[0])]
    assert any(d is not None and d < first for d in full_days)
