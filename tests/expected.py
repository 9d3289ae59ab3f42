"""Expected warehouse contents computed straight from the generated files, independently of the
pipeline's parser, checks and Spark code: the standard library's csv and json readers, the
contract's keys written out again by hand, latest wins by delivery date then line."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import unicodedata
from pathlib import Path

NULLS = {"", "—", "―", "— —", "― ―", "/", "无"}

# (dept, file, encoding) -> key columns ("OP" = operator key); dates in keys as sent -> ISO
CREDIT_KEYS = {
    ("amr", "penalties.csv"): ["行政处罚决定书文号"],
    ("amr", "lists.csv"): ["名单类型", "OP", "列入日期"],
    ("ndrc", "credit_lists.jsonl"): ["list", "OP", "start"],
    ("cac", "pi_violations.csv"): ["记录编号"],
    ("psb", "cases.jsonl"): ["case_id"],
    ("commerce", "breaches.csv"): ["记录编号"],
    ("finance", "finance_risk.csv"): ["记录编号"],
    ("post", "express_violations.csv"): ["记录编号"],
    ("customs", "violations.jsonl"): ["DECISION_NO"],
    ("customs", "enterprise_credit.jsonl"): ["USCC", "EFFECTIVE_DATE"],
}
ENCODING = {"amr": "gb18030", "post": "gb18030", "cac": "utf-8-sig"}


def norm_id(v):
    if v is None:
        return None
    v = unicodedata.normalize("NFKC", v).strip().upper()
    return v or None


def op_key(uscc, id_no, pii_key):
    uscc, id_no = norm_id(uscc), norm_id(id_no)
    if uscc:
        return uscc
    return "NP-" + hmac.new(pii_key.encode(), id_no.encode(), hashlib.sha256).hexdigest()[:16]


def read_rows(path: Path, dept: str):
    """Dicts of cleaned values (None for null), in file order."""
    data = path.read_bytes()
    if path.suffix == ".jsonl":
        for line in data.decode("utf-8").splitlines():
            obj = json.loads(line)
            yield {k: (None if v in ("", None) else v) for k, v in obj.items()}
        return
    text = data.decode(ENCODING.get(dept, "utf-8"))
    if text.startswith("\ufeff"):
        text = text[1:]
    for row in csv.DictReader(io.StringIO(text, newline="")):
        yield {k: (None if (v or "").strip() in NULLS else v.strip()) for k, v in row.items()}


def iso(v: str) -> str:
    return f"{v[:4]}-{v[4:6]}-{v[6:8]}" if len(v) == 8 and v.isdigit() else v


def expected_state(landing: Path, dates: list[str], up_to: str, pii_key: str, skip: set = frozenset()) -> dict:
    """operators: set of keys; records: record_key -> latest row (dict); manifests: dept -> rows of up_to."""
    operators = set()
    latest: dict[str, tuple] = {}
    manifest_rows = {}
    for d in sorted(x for x in dates if x <= up_to):
        for dept_dir in sorted(landing.iterdir()):
            folder = dept_dir / d
            if not (folder / "manifest.json").exists() or (dept_dir.name, d) in skip:
                continue
            manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
            if d == up_to:
                manifest_rows[dept_dir.name] = sum(f["rows"] for f in manifest["files"])
            for entry in manifest["files"]:
                name = entry["name"]
                rows = list(read_rows(folder / name, dept_dir.name))
                if (dept_dir.name, name) == ("amr", "operators.csv"):
                    operators |= {op_key(r["统一社会信用代码"], r["证件号码"], pii_key) for r in rows}
                keys = CREDIT_KEYS.get((dept_dir.name, name))
                if not keys:
                    continue
                for r in rows:
                    uscc = r.get("统一社会信用代码", r.get("uscc", r.get("USCC")))
                    parts = [
                        op_key(uscc, r.get("证件号码", r.get("id_no")), pii_key) if k == "OP" else iso(r[k])
                        for k in keys
                    ]
                    rk = f"{dept_dir.name}:{name.rsplit('.', 1)[0]}:" + "|".join(parts)
                    latest[rk] = r  # later delivery, later line wins
    records = {
        k: v
        for k, v in latest.items()
        if not (k.startswith("customs:enterprise_credit:") and v["CREDIT_LEVEL"] == "常规企业")
    }
    return {"operators": operators, "records": records, "manifest_rows": manifest_rows}


def is_withdrawn(record_key: str, r: dict) -> bool:
    feed = ":".join(record_key.split(":")[:2])
    return {
        "amr:penalties": r.get("状态") == "撤销",
        "psb:cases": r.get("status") == "撤案",
        "finance:finance_risk": r.get("状态") == "已结清",
        "cac:pi_violations": r.get("撤销") == "是",
        "commerce:breaches": r.get("撤销") == "是",
        "post:express_violations": r.get("撤销") == "是",
        "customs:violations": r.get("WITHDRAWN") is True,
    }.get(feed, False)
