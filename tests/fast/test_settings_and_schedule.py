"""Settings errors name the setting; the run date of scheduled and by-hand runs; the manifest
deadline."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ecredit import pipeline
from ecredit.core import settings
from ecredit.ingest import gate as delivery

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    "env,name",
    [
        ({"CREDIT_ENV": "production"}, "CREDIT_PII_KEY"),
        ({"CREDIT_ENV": "production", "CREDIT_PII_KEY": "k" * 32}, "CREDIT_DRAW_SECRET"),
        ({"CREDIT_ENV": "production", "CREDIT_PII_KEY": "s3cret", "CREDIT_DRAW_SECRET": "d" * 32}, "CREDIT_PII_KEY"),
        (
            {"CREDIT_ENV": "production", "CREDIT_PII_KEY": "k" * 32, "CREDIT_DRAW_SECRET": "d" * 31},
            "CREDIT_DRAW_SECRET",
        ),
        ({"CREDIT_ENV": "staging"}, "CREDIT_ENV"),
        ({"CREDIT_WAREHOUSE_URL": "warehouse.db"}, "CREDIT_WAREHOUSE_URL"),
        ({"CREDIT_MANIFEST_DEADLINE": "25:00"}, "CREDIT_MANIFEST_DEADLINE"),
        ({"CREDIT_RULES": "/no/such/rules.yaml"}, "CREDIT_RULES"),
        ({"SPARK_MASTER": "mesos://x"}, "SPARK_MASTER"),
    ],
)
def test_a_wrong_setting_names_itself(env, name):
    with pytest.raises(settings.SettingError, match=name):
        settings.load(env)


def test_missing_landing_dir_named(tmp_path):
    with pytest.raises(settings.SettingError, match="CREDIT_LANDING_DIR"):
        settings.load({"CREDIT_LANDING_DIR": str(tmp_path / "nope")}, check_landing=True)


def test_defaults_and_production_with_real_secrets(tmp_path):
    s = settings.load({"CREDIT_DATA_DIR": str(tmp_path)})
    assert s.landing_dir == tmp_path / "landing" and s.spark_master == "local[*]"
    assert s.warehouse_url == f"sqlite:///{tmp_path / 'warehouse.db'}" and s.uses_demo_pii_key
    p = settings.load({"CREDIT_ENV": "production", "CREDIT_PII_KEY": "a" * 32, "CREDIT_DRAW_SECRET": "b" * 32})
    assert not p.uses_demo_pii_key


def test_run_date_param_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("CREDIT_DATA_DIR", str(tmp_path))
    (tmp_path / "landing").mkdir()
    assert pipeline.resolve_run_date("2026-11-03", None) == {"run_date": "2026-11-03", "scheduled": False}
    with pytest.raises(settings.SettingError, match="run_date"):
        pipeline.resolve_run_date("3 Nov", None)


@pytest.mark.parametrize(
    "logical,expected",
    [
        (dt.datetime(2026, 11, 4, 2, 0, tzinfo=SH), "2026-11-03"),  # 02:00 Shanghai on X -> X - 1
        (dt.datetime(2026, 11, 3, 18, 0, tzinfo=dt.UTC), "2026-11-03"),  # = 02:00 on the 4th in Shanghai
        (dt.datetime(2026, 11, 3, 15, 59, tzinfo=dt.UTC), "2026-11-02"),  # 23:59 on the 3rd in Shanghai
    ],
)
def test_scheduled_run_date_is_the_day_before_in_shanghai(tmp_path, monkeypatch, logical, expected):
    monkeypatch.setenv("CREDIT_DATA_DIR", str(tmp_path))
    (tmp_path / "landing").mkdir()
    assert pipeline.resolve_run_date(None, logical) == {"run_date": expected, "scheduled": True}


def test_manifest_wait_until_the_deadline(tmp_path):
    s = settings.load({"CREDIT_DATA_DIR": str(tmp_path), "CREDIT_MANIFEST_DEADLINE": "06:00"})
    D = dt.date(2026, 11, 3)
    before = dt.datetime(2026, 11, 4, 5, 59, tzinfo=SH)
    after = dt.datetime(2026, 11, 4, 6, 0, tzinfo=SH)
    assert not delivery.manifest_ready(s, "amr", D, scheduled=True, now=before)
    assert delivery.manifest_ready(s, "amr", D, scheduled=True, now=after)  # late: goes on, missing
    assert delivery.manifest_ready(s, "amr", D, scheduled=False, now=before)  # by hand: no wait
    folder = tmp_path / "landing" / "amr" / "2026-11-03"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    assert delivery.manifest_ready(s, "amr", D, scheduled=True, now=before)
