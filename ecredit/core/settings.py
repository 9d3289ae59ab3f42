"""Settings: the environment variables of ``operations.md``, typed and validated.

``load()`` never raises a bare stack trace for a wrong setting: it raises ``SettingError`` whose
message is one sentence naming the variable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ecredit.core import lake as lake_mod

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEMO_PII_KEY = "ecredit-demo-pii-key-not-for-production"
DEMO_DRAW_SECRET = "ecredit-demo-draw-secret-not-for-production"  # noqa: S105 - the demo's, refused in production
DEFAULT_RULES = PROJECT_ROOT / "rules" / "default.yaml"
# production secrets: 32 hex characters (128 bits) or more, e.g. `openssl rand -hex 32` (SECURITY.md)
MIN_SECRET_LENGTH = 32
PII_KEY_MARK = lake_mod.PII_KEY_MARK  # in lake/parsed: which key pseudonymised the cached rows
DEFAULT_LOCK_TIMEOUT = 3600  # seconds a run waits for another run's lock on its lake and warehouse
MAX_LOCK_TIMEOUT = 6 * 3600  # the DAG's take_lock task is given this long (and a margin) to wait
# run dates whose state/ and gold/ folders the lake keeps (decision 115): a month of cheap backfills
DEFAULT_LAKE_KEEP_RUN_DATES = 31
MAX_LAKE_KEEP_RUN_DATES = 3660


class SettingError(ValueError):
    """A configuration value is wrong; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    landing_dir: Path
    lake_dir: Path
    warehouse_url: str
    outbox_dir: Path
    pii_key: str = field(repr=False)  # secrets: never in a repr, a log line or a traceback's locals
    draw_secret: str = field(repr=False)
    env: str
    manifest_deadline: str  # HH:MM
    rules_path: Path
    spark_master: str
    lock_timeout: int = DEFAULT_LOCK_TIMEOUT  # seconds
    lake_keep_run_dates: int = DEFAULT_LAKE_KEEP_RUN_DATES
    # where spark-submit's JVMs keep their class-data archive (decision 118); None: no archive
    jvm_cache_dir: Path | None = None

    @property
    def uses_demo_pii_key(self) -> bool:
        return self.pii_key == DEMO_PII_KEY

    @property
    def uses_demo_draw_secret(self) -> bool:
        return self.draw_secret == DEMO_DRAW_SECRET

    def as_env(self) -> dict[str, str]:
        """The settings as environment variables, for a child process (spark-submit)."""
        return {
            "CREDIT_LANDING_DIR": str(self.landing_dir),
            "CREDIT_LAKE_DIR": str(self.lake_dir),
            "CREDIT_WAREHOUSE_URL": self.warehouse_url,
            "CREDIT_OUTBOX_DIR": str(self.outbox_dir),
            "CREDIT_PII_KEY": self.pii_key,
            "CREDIT_DRAW_SECRET": self.draw_secret,
            "CREDIT_ENV": self.env,
            "CREDIT_MANIFEST_DEADLINE": self.manifest_deadline,
            "CREDIT_RULES": str(self.rules_path),
            "SPARK_MASTER": self.spark_master,
            "CREDIT_LOCK_TIMEOUT": str(self.lock_timeout),
            "CREDIT_LAKE_KEEP_RUN_DATES": str(self.lake_keep_run_dates),
            "CREDIT_JVM_CACHE_DIR": str(self.jvm_cache_dir) if self.jvm_cache_dir else JVM_CACHE_OFF,
        }


def _path(env: dict, name: str, default: str) -> Path:
    raw = env.get(name) or default
    p = Path(raw)
    return p if p.is_absolute() else (Path.cwd() / p).resolve()


JVM_CACHE_OFF = "off"


def default_jvm_cache_dir(env: dict) -> str:
    """The user's cache folder (``$XDG_CACHE_HOME``, else ``~/.cache``) + ``ecredit/jvm``: shared by
    every data folder on the machine, since the archive depends on the JDK and Spark's jars only."""
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return str(Path(base) / "ecredit" / "jvm")


def load(env: dict | None = None, *, check_landing: bool = False) -> Settings:
    env = dict(os.environ if env is None else env)
    credit_env = env.get("CREDIT_ENV", "development")
    if credit_env not in ("development", "production"):
        raise SettingError(f"CREDIT_ENV must be 'development' or 'production', not {credit_env!r}.")

    data = _path(env, "CREDIT_DATA_DIR", "./data")
    landing = _path(env, "CREDIT_LANDING_DIR", str(data / "landing"))
    lake = _path(env, "CREDIT_LAKE_DIR", str(data / "lake"))
    outbox = _path(env, "CREDIT_OUTBOX_DIR", str(data / "outbox"))
    warehouse_url = env.get("CREDIT_WAREHOUSE_URL") or f"sqlite:///{data / 'warehouse.db'}"
    if "://" not in warehouse_url:
        raise SettingError(f"CREDIT_WAREHOUSE_URL is not a SQLAlchemy URL (dialect://...): {warehouse_url!r}.")

    pii_key = env.get("CREDIT_PII_KEY") or DEMO_PII_KEY
    draw_secret = env.get("CREDIT_DRAW_SECRET") or DEMO_DRAW_SECRET
    if credit_env == "production":
        if pii_key == DEMO_PII_KEY:
            raise SettingError("CREDIT_PII_KEY must be set to a secret of your own when CREDIT_ENV=production.")
        if draw_secret == DEMO_DRAW_SECRET:
            raise SettingError("CREDIT_DRAW_SECRET must be set to a secret of your own when CREDIT_ENV=production.")
        for name, value in (("CREDIT_PII_KEY", pii_key), ("CREDIT_DRAW_SECRET", draw_secret)):
            if len(value) < MIN_SECRET_LENGTH:
                raise SettingError(
                    f"{name} must be at least {MIN_SECRET_LENGTH} characters when "
                    f"CREDIT_ENV=production (it has {len(value)})."
                )
    if pii_key == DEMO_PII_KEY:
        warnings.warn(
            "CREDIT_PII_KEY is not set: using the DEMO key; natural persons' NP- keys are not secret.", stacklevel=2
        )
    if draw_secret == DEMO_DRAW_SECRET:
        warnings.warn(
            "CREDIT_DRAW_SECRET is not set: using the DEMO secret; anyone can work out the inspection "
            "draws' salts, and so the plans, in advance.",
            stacklevel=2,
        )

    deadline = env.get("CREDIT_MANIFEST_DEADLINE", "06:00")
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", deadline)
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise SettingError(f"CREDIT_MANIFEST_DEADLINE must be a time of day HH:MM, not {deadline!r}.")

    rules = _path(env, "CREDIT_RULES", str(DEFAULT_RULES))
    if not rules.is_file():
        raise SettingError(f"CREDIT_RULES points to {rules}, which is not a readable file.")

    master = env.get("SPARK_MASTER", "local[*]")
    if not re.match(r"^(local(\[(\*|\d+)(,\d+)?\])?|spark://[^\s]+|yarn|k8s://\S+)$", master):
        raise SettingError(f"SPARK_MASTER must be local[*], local[N] or spark://host:port, not {master!r}.")

    raw_timeout = (env.get("CREDIT_LOCK_TIMEOUT") or "").strip() or str(DEFAULT_LOCK_TIMEOUT)
    if not re.fullmatch(r"\d{1,6}", raw_timeout) or int(raw_timeout) > MAX_LOCK_TIMEOUT:
        raise SettingError(
            f"CREDIT_LOCK_TIMEOUT must be a whole number of seconds from 0 to {MAX_LOCK_TIMEOUT}, "
            f"not {env.get('CREDIT_LOCK_TIMEOUT')!r}."
        )

    raw_keep = (env.get("CREDIT_LAKE_KEEP_RUN_DATES") or "").strip() or str(DEFAULT_LAKE_KEEP_RUN_DATES)
    if not re.fullmatch(r"\d{1,4}", raw_keep) or not 1 <= int(raw_keep) <= MAX_LAKE_KEEP_RUN_DATES:
        raise SettingError(
            f"CREDIT_LAKE_KEEP_RUN_DATES must be a whole number of run dates from 1 to {MAX_LAKE_KEEP_RUN_DATES}, "
            f"not {env.get('CREDIT_LAKE_KEEP_RUN_DATES')!r}."
        )

    raw_jvm = (env.get("CREDIT_JVM_CACHE_DIR") or "").strip()
    jvm_cache = (
        None if raw_jvm.lower() == JVM_CACHE_OFF else _path(env, "CREDIT_JVM_CACHE_DIR", default_jvm_cache_dir(env))
    )
    if jvm_cache is not None and jvm_cache.exists() and not jvm_cache.is_dir():
        raise SettingError(f"CREDIT_JVM_CACHE_DIR {jvm_cache} is not a directory (a folder, or 'off').")

    if check_landing and not landing.is_dir():
        raise SettingError(f"CREDIT_LANDING_DIR {landing} is not a readable directory.")
    if check_landing:
        check_lake_key(lake, pii_key)

    return Settings(
        landing_dir=landing,
        lake_dir=lake,
        warehouse_url=warehouse_url,
        outbox_dir=outbox,
        pii_key=pii_key,
        draw_secret=draw_secret,
        env=credit_env,
        manifest_deadline=deadline,
        rules_path=rules,
        spark_master=master,
        lock_timeout=int(raw_timeout),
        lake_keep_run_dates=int(raw_keep),
        jvm_cache_dir=jvm_cache,
    )


def pii_key_fingerprint(pii_key: str) -> str:
    """Names a key without revealing it: 16 hex of HMAC-SHA256 keyed by it over a fixed text."""
    return hmac.new(pii_key.encode("utf-8"), b"ecredit: the key of lake/parsed", hashlib.sha256).hexdigest()[:16]


def check_lake_key(lake: Path, pii_key: str) -> None:
    """The parsed rows cached in ``lake/parsed`` carry natural persons' NP- keys made with the key
    of their first parse: a different CREDIT_PII_KEY would fold two keys for one person. The
    first check after the cache exists records the key's fingerprint; a later one with another
    key is a wrong setting (SECURITY.md: rotating the PII key)."""
    parsed = lake_mod.parsed_dir(lake)
    if not parsed.is_dir():
        return
    mark = lake_mod.pii_key_mark(lake)
    want = pii_key_fingerprint(pii_key)
    try:
        have = json.loads(mark.read_text("utf-8")).get("fingerprint") if mark.is_file() else None
    except (ValueError, OSError, AttributeError):
        have = None
    if have == want:
        return
    if have is not None:
        raise SettingError(
            f"CREDIT_PII_KEY is not the key that pseudonymised the parsed rows in {parsed} "
            "(see SECURITY.md, rotating the PII key: remove that folder, then backfill)."
        )
    lake_mod.write_json(mark, {"fingerprint": want})
