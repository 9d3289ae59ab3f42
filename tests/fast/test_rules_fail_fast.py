"""Issue 14 item 2: a malformed rules file (CREDIT_RULES) is a wrong setting. The run's first task,
``resolve_run_date``, loads and validates the whole file and stops with one sentence naming
CREDIT_RULES, the file and the key; ``ecredit run`` and ``ecredit backfill`` exit 2 with that
sentence before any task starts. (The DAG-level test: ``tests/integration/test_rules_stop_the_dag.py``.)"""

from __future__ import annotations

import os

import pytest

from ecredit import pipeline
from ecredit.core import settings
from ecredit.core.settings import DEFAULT_RULES
from ecredit.ops import cli

DEFAULT_TEXT = open(DEFAULT_RULES, encoding="utf-8").read()

# each kind of malformed file: (edit of the default file's text, the sentence after "CREDIT_RULES (<path>): ")
KINDS = {
    "broken YAML": (("  base: 400\n", "  base: 400\n  oops: [\n"), "is not valid YAML: line "),
    "unknown top-level key": (
        ("version_label:", "bonus_points: 5\nversion_label:"),
        ": bonus_points is not a known key at the top level",
    ),
    "unknown nested key": (
        ("  positive_bonus: 50\n", "  positive_bonus: 50\n  bonus: 5\n"),
        ": conduct.bonus is not a known key of conduct",
    ),
    "wrong type": (
        ("{1: 20, 2: 60, 3: 150, 4: 400}", "{1: 20, 2: 60, 3: abc, 4: 400}"),
        ": conduct.points_by_severity.3 must be an integer, not 'abc'.",
    ),
    "missing key": (("  complaint_cap: 100\n", ""), ": quality_score.complaint_cap is missing."),
    "misspelt section": (
        ("lists:\n  serious_max_days: 1095", "listz:\n  serious_max_days: 1095"),
        ": listz is not a known key",
    ),
    "wrong value": (("schedule: monthly", "schedule: weekly"), ": plan.schedule must be one of monthly, daily"),
}


def malformed(tmp_path, kind: str) -> tuple[str, str]:
    (old, new), said = KINDS[kind]
    assert DEFAULT_TEXT.count(old) == 1, old
    p = tmp_path / "rules.yaml"
    p.write_text(DEFAULT_TEXT.replace(old, new), "utf-8")
    return str(p), said


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A data folder of its own and no CREDIT_* setting from outside."""
    for k in [k for k in os.environ if k.startswith("CREDIT_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("CREDIT_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data" / "landing").mkdir(parents=True)
    return monkeypatch


@pytest.mark.parametrize("kind", KINDS)
def test_resolve_run_date_stops_with_one_sentence(tmp_path, env, kind):
    path, said = malformed(tmp_path, kind)
    env.setenv("CREDIT_RULES", path)
    with pytest.raises(settings.SettingError) as e:
        pipeline.resolve_run_date("2026-11-03", None)
    msg = str(e.value)
    assert msg.startswith(f"CREDIT_RULES ({path})") and said in msg and "\n" not in msg, msg


def test_resolve_run_date_passes_with_the_default_file(env):
    assert pipeline.resolve_run_date("2026-11-03", None) == {"run_date": "2026-11-03", "scheduled": False}


@pytest.mark.parametrize(
    "command", [["run", "--date", "2026-11-03"], ["backfill", "--from", "2026-11-01", "--to", "2026-11-03"]]
)
@pytest.mark.parametrize("kind", ["broken YAML", "wrong type"])
def test_ecredit_run_exits_2_with_the_sentence_before_any_task(tmp_path, env, capsys, command, kind):
    from ecredit.airflow import env as airflow_env
    from ecredit.airflow import runner

    path, said = malformed(tmp_path, kind)
    env.setenv("CREDIT_RULES", path)
    started = []
    env.setattr(airflow_env, "prepare_airflow_env", lambda *a, **k: started.append("env"))
    env.setattr(runner, "run_dag_for_date", lambda *a, **k: started.append("run") or True)
    env.setattr(runner, "backfill", lambda *a, **k: started.append("backfill") or True)
    assert cli.main(command) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ecredit: CREDIT_RULES ({path})") and said in err and err.count("\n") == 1, err
    assert started == []
