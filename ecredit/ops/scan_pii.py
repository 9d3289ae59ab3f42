"""``ecredit scan-pii``: search everything the pipeline writes for personal data and secrets.

What it looks for (the *needles*), collected from the landing zone as the departments sent it
(``feeds.md``):

- every 证件号码 / ``id_no`` value of every feed (normalised: NFKC, trimmed, upper-cased; kept when
  it has the shape of an ID number, 17 digits and a digit or X, valid or not: a dirty one must not
  leak either);
- every 投诉人电话 (the 11 digits of the value);
- every 法定代表人 and 投诉人姓名, and the name a source gives for a natural person (主体名称 or
  ndrc ``name`` on a row with an ID number and no USCC) unless it is the registry's shop name;
- every inspector's 执法证号 (staff data that is never published; when it is 11 digits), in what
  the departments read only: the warehouse but its quarantine, the outbox but amr's
  ``rejections.csv`` (amr sent the roster; the lake keeps it whole);
- the values of ``CREDIT_PII_KEY`` and ``CREDIT_DRAW_SECRET`` (when at least 8 characters long).

And two patterns, whatever the landing zone holds:

- an ID number: 18 characters, not touching a letter or digit on either side, 17 digits then a
  digit or X, whose first two digits are a province code of GB/T 2260 (11-15, 21-23, 31-37,
  41-46, 50-54, 61-65, 71, 81-83), whose digits 7-14 are a calendar date from 1900 to today, and
  whose check character is right (GB 11643). A USCC (18 characters of letters and digits,
  authority code 1-9/A/N/Y then 2 digits) is rarely all digits and then starts 91/92/93/...,
  which is no province; a SHA-256 hex string has letters around its digit runs;
- a mainland mobile number: ``1[3-9]`` and 9 more digits, 11 in all, not touching a letter or
  digit (so never a part of a record number, a timestamp or a hash).

Where (the *locations*): every table and column of the warehouse (``CREDIT_WAREHOUSE_URL``; the
quarantine too), every file of the outbox, every file of the lake (Parquet read column by column
with pyarrow; everything else read as text: JSON, Data Docs and report HTML), the Airflow task
logs under ``$AIRFLOW_HOME/logs``, and every table of the Airflow metadata database
(``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN``, else ``$AIRFLOW_HOME/airflow.db``): XCom, rendered
template fields, DAG-run confs, the log table, ...; plus any extra file given (a captured console).

Names are short (2-4 characters) and the registry's own names are made of the same characters,
so a name is matched within a maximal run of CJK characters: a run equal to a name is a hit, and a
name of 3 characters or more is also a hit anywhere inside a run, unless it occurs inside a
non-personal value of the landing zone (a shop or company name, an inspector's name, a reason:
text the pipeline may publish), in which case only a whole run counts. A name equal to such a
non-personal run (a legal representative who shares an inspector's name) cannot be told apart
and is not searched; the summary counts those. Before matching, text is NFKC-normalised and
``\\uXXXX``, HTML character references and %-escapes are decoded.

The report never prints a matched value: a location, a kind and a masked form (an ID's or
phone's first character and asterisks, a name as asterisks, a secret as its length).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import os
import re
import sys
import unicodedata
import warnings
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from ecredit.core import feeds, ids
from ecredit.core import settings as settings_mod
from ecredit.core.settings import PROJECT_ROOT, Settings
from ecredit.ingest import parse

MIN_SECRET_LEN = 8
MAX_TEXT_FILE = 512 * 1024 * 1024  # larger files are read in pieces
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{11})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_ID_SHAPE = re.compile(r"\d{17}[\dX]")
_PROVINCES = frozenset(
    [
        str(p)
        for p in (
            *range(11, 16),
            *range(21, 24),
            *range(31, 38),
            *range(41, 47),
            *range(50, 55),
            *range(61, 66),
            71,
            81,
            82,
            83,
        )
    ]
)
_UESC = re.compile(r"\\u([0-9a-fA-F]{4})")

# kinds
ID_NO, ID_PATTERN, PHONE, PHONE_PATTERN = "id_no", "id_no(pattern)", "phone", "phone(pattern)"
CERTIFICATE = "inspector_certificate"
NAME_KINDS = {
    "legal_rep": "name:legal_rep",
    "complainant_name": "name:complainant",
    "party_name": "name:natural_person",
}
PII_KEY, DRAW_SECRET = "secret:CREDIT_PII_KEY", "secret:CREDIT_DRAW_SECRET"


def id_pattern(v: str) -> bool:
    """The ID-number pattern of the module docstring (``v`` upper-cased, 18 characters)."""
    if not (v[:2] in _PROVINCES and ids.id_valid(v, as_of=dt.date.today())):
        return False
    born = ids.id_birth_date(v)
    return born is not None and born >= dt.date(1900, 1, 1)


def mask(kind: str, value: str) -> str:
    if kind.startswith("secret:"):
        return f"<{len(value)} characters>"
    if kind.startswith("name:"):
        return "*" * len(value)
    return value[:1] + "*" * (len(value) - 1)


@dataclass
class Needles:
    ids: set = field(default_factory=set)
    phones: set = field(default_factory=set)
    certificates: set = field(default_factory=set)
    names: dict = field(default_factory=dict)  # name -> kind; matched as a whole CJK run
    names_inside: set = field(default_factory=set)  # names also matched inside a run
    secrets: dict = field(default_factory=dict)  # value -> kind
    skipped: Counter = field(default_factory=Counter)  # why a value is not searched

    @property
    def inside_lengths(self) -> list[int]:
        return sorted({len(n) for n in self.names_inside})

    def summary(self) -> str:
        kinds = Counter(self.names.values())
        parts = [
            f"{len(self.ids)} ID numbers",
            f"{len(self.phones)} phone numbers",
            f"{len(self.certificates)} inspectors' certificate numbers",
            f"{len(self.names)} names ({', '.join(f'{k[5:]} {n}' for k, n in sorted(kinds.items()))}; "
            f"{len(self.names_inside)} also inside longer text)",
            " and ".join(k[7:] for k in sorted(self.secrets.values())) or "no secret",
        ]
        out = "searched for " + ", ".join(parts) + ", and the ID-number and mobile-number patterns"
        if self.skipped:
            out += "\nnot searched: " + "; ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        return out


@dataclass
class Hit:
    location: str
    kind: str
    masked: str

    def __str__(self) -> str:
        return f"HIT {self.location}: {self.kind} {self.masked}"


# --------------------------------------------------------------------------------------------------
# Needles, from the landing zone


def _norm(v) -> str | None:
    if v is None:
        return None
    s = unicodedata.normalize("NFKC", str(v)).strip()
    return None if (parse.is_null_marker(s) or s == "-") else s


def _landing_rows(landing: Path) -> Iterator[tuple[feeds.Feed, dict, bool]]:
    """Every row of every delivery file, as {canonical column: value as sent} and whether it is
    sound (a CSV record with as many fields as its header names every column of the feed; a JSON
    line that is an object), best effort: a malformed row still gives the fields it has, by the
    header's positions (then a value may sit under another column's name)."""
    for f in sorted(landing.glob("*/*/*")):
        if not f.is_file() or f.name == "manifest.json":
            continue
        dept = f.parent.parent.name
        try:
            fd = feeds.feed(dept, f.name)
        except Exception:  # noqa: BLE001, S112 - a file the registry does not know
            continue
        text = f.read_bytes().decode(fd.encoding, errors="replace")
        if fd.fmt == "csv":
            reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
            header = next(reader, None)
            if not header:
                continue
            pos = {h.strip(): i for i, h in enumerate(header)}
            cols = [(c.name, pos.get(c.source, i)) for i, c in enumerate(fd.columns)]
            named = all(c.source in pos for c in fd.columns if not c.optional_in_header)
            for rec in reader:
                yield fd, {name: rec[i] for name, i in cols if i < len(rec)}, named and len(rec) == len(header)
        else:
            for line in text.splitlines():
                obj = None
                for attempt in (line, line.replace("'", '"')):
                    try:
                        obj = json.loads(attempt)
                        break
                    except ValueError:
                        continue
                sound = isinstance(obj, dict) and attempt == line
                if not isinstance(obj, dict):
                    obj = dict(re.findall(r"[\"']([A-Za-z_]+)[\"']\s*:\s*[\"']([^\"']*)[\"']", line))
                yield (
                    fd,
                    {c.name: obj.get(c.source) for c in fd.columns if isinstance(obj.get(c.source), (str, int, float))},
                    sound,
                )


def collect_needles(settings: Settings, landing: Path | None = None) -> Needles:
    landing = landing or settings.landing_dir
    n = Needles()
    legit_runs: set[str] = set()  # CJK runs of non-personal values: text the pipeline may publish
    registry_names: set[str] = set()
    candidates: dict[str, str] = {}
    for fd, row, sound in _landing_rows(landing):
        kinds = {c.name: c.kind for c in fd.columns}
        natural = bool(_norm(row.get("id_no"))) and not _norm(row.get("uscc"))
        for col, raw in row.items():
            v = _norm(raw)
            if v is None:
                continue
            kind = kinds.get(col)
            if kind == feeds.ID_NO:
                v = v.upper()
                if _ID_SHAPE.fullmatch(v):
                    n.ids.add(v)
                else:
                    n.skipped["ID values without an ID number's shape"] += 1
            elif col == "complainant_phone":
                digits = re.sub(r"\D", "", v)
                if len(digits) == 11:
                    n.phones.add(digits)
                else:
                    n.skipped["phone values without 11 digits"] += 1
            elif col == "certificate_no":
                if re.fullmatch(r"\d{11}", v):
                    n.certificates.add(v)
                else:
                    n.skipped["certificate numbers not of 11 digits"] += 1
            elif col in ("legal_rep", "complainant_name") or (col == "party_name" and natural):
                candidates.setdefault(v, NAME_KINDS[col])
            elif sound:  # non-personal: may be published (registry names, inspectors, reasons, ...)
                # (never from a malformed row: a person's name shifted under another column would
                # pass for a non-personal value and be searched no more)
                if col == "name" and fd.file == "operators.csv":
                    registry_names.add(v)
                legit_runs.update(_CJK.findall(v))
    # the rules file's labels and the package's own strings reach reports and messages too
    for p in [settings.rules_path, *sorted((PROJECT_ROOT / "ecredit").rglob("*.py"))]:
        if p.is_file():
            legit_runs.update(_CJK.findall(p.read_text("utf-8", errors="replace")))
    lengths = {len(c) for c in candidates if len(c) >= 3}
    legit_windows = {r[i : i + L] for r in legit_runs for L in lengths for i in range(len(r) - L + 1)}
    for name, kind in candidates.items():
        if name in registry_names:
            continue  # a natural person named by the registry's shop name: not personal
        if not _CJK.fullmatch(name):
            n.skipped["names that are not a run of CJK characters"] += 1
            continue
        if name in legit_runs:
            n.skipped["names equal to a non-personal value (e.g. an inspector's name)"] += 1
            continue
        n.names[name] = kind
        if len(name) >= 3 and name not in legit_windows:
            n.names_inside.add(name)
    for value, kind in ((settings.pii_key, PII_KEY), (settings.draw_secret, DRAW_SECRET)):
        if value and len(value) >= MIN_SECRET_LEN:
            n.secrets[value] = kind
        else:
            n.skipped[f"{kind[7:]} shorter than {MIN_SECRET_LEN} characters"] += 1
    return n


# --------------------------------------------------------------------------------------------------
# Matching


_PCT = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_FULLWIDTH = re.compile(r"[\u3000\uff01-\uffef]")


def _decoded(text: str) -> str:
    if "\\u" in text:
        text = _UESC.sub(lambda m: chr(int(m.group(1), 16)), text)
    if "&#" in text:
        text = html.unescape(text)
    if "%" in text:
        text = _PCT.sub(lambda m: unquote(m.group()), text)
    if not text.isascii() and _FULLWIDTH.search(text):
        text = unicodedata.normalize("NFKC", text)
    return text


# Where an inspector's certificate number must not be: what the departments read. The lake keeps
# the roster whole; a quarantined roster row keeps it for amr, who sent it, and the operators.
_PUBLISHED = re.compile(r"(warehouse:(?!quarantine\.)|outbox:(?!amr/[^/]+/rejections\.csv))")


def find(text: str, needles: Needles, published: bool = True) -> Iterator[tuple[str, str]]:
    """(kind, matched value) for each hit in ``text``; ``published``: also the inspectors'
    certificate numbers, which the internal layers keep."""
    if not text:
        return
    t = _decoded(text)
    for secret, kind in needles.secrets.items():
        if secret in t:
            yield kind, secret
    for m in _DIGIT_RUN.finditer(t):
        v = m.group(1).upper()
        if len(v) == 18:
            if v in needles.ids:
                yield ID_NO, v
            elif id_pattern(v):
                yield ID_PATTERN, v
        elif v in needles.phones:
            yield PHONE, v
        elif published and v in needles.certificates:
            yield CERTIFICATE, v
        elif _MOBILE.fullmatch(v):
            yield PHONE_PATTERN, v
    if needles.names and not t.isascii():
        lengths = needles.inside_lengths
        for m in _CJK.finditer(t):
            run = m.group()
            kind = needles.names.get(run)
            if kind:
                yield kind, run
                continue
            for L in lengths:
                for i in range(len(run) - L + 1):
                    w = run[i : i + L]
                    if w in needles.names_inside:
                        yield needles.names[w], w


@dataclass
class Report:
    needles: Needles
    hits: list = field(default_factory=list)
    scanned: dict = field(default_factory=lambda: defaultdict(Counter))  # location -> what -> count
    absent: list = field(default_factory=list)

    def add(self, location: str, text: str, where: str) -> None:
        for kind, value in find(text, self.needles, published=bool(_PUBLISHED.match(where))):
            self.hits.append(Hit(where, kind, mask(kind, value)))

    def render(self, max_groups: int = 60) -> str:
        """Per location what was scanned and its hits; then the hits grouped by place (a file
        or a table column, lines folded) and kind, with a count and one masked example."""
        lines = [self.needles.summary(), ""]
        per_loc = Counter(h.location.split(":", 1)[0] for h in self.hits)
        for loc, what in self.scanned.items():
            lines.append(
                f"{loc:<12} {', '.join(f'{n} {w}' for w, n in what.items()) or 'nothing'}: {per_loc.get(loc, 0)} hits"
            )
        for a in self.absent:
            lines.append(f"{a:<12} not found: not scanned")
        groups: dict = {}
        for h in self.hits:
            m = re.fullmatch(r"(.*?)(?::(\d+))?", h.location)
            assert m is not None  # the pattern matches every string
            g = groups.setdefault((m.group(1), h.kind), [0, h.masked, []])
            g[0] += 1
            if m.group(2) and len(g[2]) < 5:
                g[2].append(m.group(2))
        for i, ((where, kind), (n, example, lines_at)) in enumerate(groups.items()):
            if i == max_groups:
                lines.append(f"... and {len(groups) - max_groups} more places")
                break
            at = f" (lines {', '.join(lines_at)}{', ...' if n > len(lines_at) else ''})" if lines_at else ""
            lines.append(f"HIT {where}{at}: {kind} {example}" + (f" x{n}" if n > 1 else ""))
        lines.append(f"{len(self.hits)} hits" if self.hits else "no personal data or secret found")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Locations


def _cell_text(v) -> str | None:
    if v is None or isinstance(v, (bool, float)):
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        try:
            b = zlib.decompress(b)
        except zlib.error:
            pass
        return b.decode("utf-8", errors="replace")
    if isinstance(v, int):
        return str(v) if abs(v) >= 10**10 else None
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, default=str)
    return None  # dates, decimals: not personal


def scan_database(report: Report, url: str, location: str) -> None:
    from sqlalchemy import MetaData, create_engine, select

    eng = create_engine(url)
    try:
        md = MetaData()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # types the reflection does not know
            md.reflect(eng)
        with eng.connect() as conn:
            for table in md.sorted_tables:
                report.scanned[location]["tables"] += 1
                rows = conn.execution_options(stream_results=True, yield_per=2000).execute(select(table))
                names = [c.name for c in table.columns]
                for row in rows:
                    report.scanned[location]["rows"] += 1
                    for col, v in zip(names, row):
                        s = _cell_text(v)
                        if s:
                            report.add(location, s, f"{location}:{table.name}.{col}")
    finally:
        eng.dispose()


def _scan_parquet(report: Report, path: Path, location: str, where: str) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(str(path))
    report.scanned[location]["parquet files"] += 1
    for name in table.column_names:
        col = table.column(name)
        t = col.type
        if pa.types.is_dictionary(t):
            col = col.cast(t.value_type)
            t = t.value_type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
            values = pc.unique(col).to_pylist()
        elif pa.types.is_integer(t):
            values = [v for v in pc.unique(col).to_pylist() if v is not None and abs(v) >= 10**10]
        elif pa.types.is_nested(t):
            values = [json.dumps(v, ensure_ascii=False, default=str) for v in col.to_pylist() if v is not None]
        else:
            continue
        for v in values:
            s = _cell_text(v)
            if s:
                report.add(location, s, f"{where}:{name}")


def _text_chunks(path: Path) -> Iterator[str]:
    with open(path, "rb") as f:
        while True:
            b = f.read(MAX_TEXT_FILE)
            if not b:
                return
            yield b.decode("utf-8-sig", errors="replace")


def scan_tree(report: Report, root: Path, location: str) -> None:
    if not root.is_dir():
        report.absent.append(f"{location} ({root})")
        return
    report.scanned[location]["files"] += 0
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix == ".crc":
            continue
        where = f"{location}:{p.relative_to(root)}"
        if p.suffix == ".parquet":
            _scan_parquet(report, p, location, where)
            continue
        report.scanned[location]["files"] += 1
        for chunk in _text_chunks(p):
            for i, line in enumerate(chunk.splitlines(), 1) if p.suffix in (".csv", ".log", ".txt") else [(0, chunk)]:
                report.add(location, line, f"{where}:{i}" if i else where)


def scan_file(report: Report, path: Path, location: str = "extra") -> None:
    report.scanned[location]["files"] += 1
    for chunk in _text_chunks(path):
        for i, line in enumerate(chunk.splitlines(), 1):
            report.add(location, line, f"{location}:{path.name}:{i}")


def airflow_locations(env: dict | None = None) -> tuple[Path, str]:
    """(task-log folder, metadata DB URL) as ``ecredit.airflow.env`` sets them."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("AIRFLOW_HOME") or PROJECT_ROOT / ".airflow").expanduser().resolve()
    logs = Path(env.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER") or home / "logs")
    url = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or f"sqlite:///{home / 'airflow.db'}"
    return logs, url


def _sqlite_missing(url: str) -> bool:
    return url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file()


def scan(
    settings: Settings, *, env: dict | None = None, extra: Iterable[Path] = (), needles: Needles | None = None
) -> Report:
    """Collect the needles from the landing zone and search every location; returns the report."""
    report = Report(needles or collect_needles(settings))
    if _sqlite_missing(settings.warehouse_url):
        report.absent.append("warehouse")
    else:
        scan_database(report, settings.warehouse_url, "warehouse")
    scan_tree(report, settings.outbox_dir, "outbox")
    scan_tree(report, settings.lake_dir, "lake")
    logs, af_url = airflow_locations(env)
    scan_tree(report, logs, "airflow-logs")
    if _sqlite_missing(af_url):
        report.absent.append("airflow-db")
    else:
        scan_database(report, af_url, "airflow-db")
    for p in extra:
        scan_file(report, Path(p))
    return report


def run(data_dir: str | None = None, also: Iterable[str] = ()) -> int:
    """``ecredit scan-pii``: exit 0 when nothing is found, 1 on any hit, 2 for a wrong setting."""
    env = dict(os.environ)
    if data_dir:
        env["CREDIT_DATA_DIR"] = str(Path(data_dir).resolve())
        for var in ("CREDIT_LANDING_DIR", "CREDIT_LAKE_DIR", "CREDIT_OUTBOX_DIR", "CREDIT_WAREHOUSE_URL"):
            env.pop(var, None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the demo-key warning: the scan uses the key, never shows it
            cfg = settings_mod.load(env, check_landing=True)
    except settings_mod.SettingError as e:
        print(f"ecredit: {e}", file=sys.stderr)
        return 2
    report = scan(cfg, env=env, extra=[Path(a) for a in also])
    print(report.render())
    return 1 if report.hits else 0
