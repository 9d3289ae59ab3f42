"""The rules file: every number of scoring.md in one YAML file, validated on load with a sentence
naming the key, versioned by its SHA-256."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest
import yaml

from ecredit.core import rules as rules_mod
from ecredit.core.settings import DEFAULT_RULES, SettingError


def write(tmp_path, data) -> str:
    p = tmp_path / "rules.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return str(p)


DEFAULT = yaml.safe_load(open(DEFAULT_RULES, encoding="utf-8"))


@pytest.fixture
def data():
    return copy.deepcopy(DEFAULT)


def test_default_rules_hold_the_spec_numbers(default_rules):
    r = default_rules
    assert r.version == hashlib.sha256(open(DEFAULT_RULES, "rb").read()).hexdigest()
    assert r.get("classes.thresholds") == {"A": 850, "B": 700, "C": 550}
    assert r.get("conduct.points_by_severity") == {1: 20, 2: 60, 3: 150, 4: 400}
    assert r.get("evaluation.weights") == {
        "overall_satisfaction": 0.40,
        "product_quality": 0.30,
        "brand_reputation": 0.15,
        "after_sales": 0.15,
    }
    assert {c: m["sampling_ratio"] for c, m in r.get("measures.classes").items()} == {
        "A": "0.03",
        "B": "0.10",
        "C": "0.30",
        "D": "0.80",
    }
    assert r.get("plan.schedule") == "monthly"


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda d: d["conduct"].pop("points_by_severity"), "conduct.points_by_severity"),
        (lambda d: d["classes"].update(thresholds={"A": 700, "B": 850, "C": 550}), "classes.thresholds"),
        (lambda d: d["measures"]["classes"]["D"].update(sampling_ratio="1.5"), "measures.classes.D.sampling_ratio"),
        (lambda d: d["measures"]["classes"]["C"].update(measures=["NO_SUCH_MEASURE"]), "measures.classes.C.measures"),
        (lambda d: d["measures"]["classes"].pop("B"), "measures.classes"),
        (lambda d: d["measures"].update(serious_list=["GOV_FUNDING", "GOV_FUNDING"]), "measures.serious_list"),
        (lambda d: d["measures"]["codes"]["GOV_FUNDING"].update(dept="nowhere"), "measures.codes.GOV_FUNDING.dept"),
        (
            lambda d: d["measures"]["codes"]["NO_COMMITMENT"].pop("legal_basis"),
            "measures.codes.NO_COMMITMENT.legal_basis",
        ),
        (
            lambda d: d["measures"]["codes"]["CUSTOMS_CLEARANCE"].update(legal_basis=" "),
            "measures.codes.CUSTOMS_CLEARANCE.legal_basis",
        ),
        (lambda d: d["measures"].pop("codes"), "measures.codes"),
        (lambda d: d["plan"].update(schedule="weekly"), "plan.schedule"),
        (lambda d: d["class_rules"]["R_SEV4"].update({"class": "E"}), "class_rules.R_SEV4.class"),
        (lambda d: d["identity"].update(verified_days="a year"), "identity.verified_days"),
        (lambda d: d["evaluation"]["weights"].pop("after_sales"), "evaluation.weights"),
    ],
)
def test_a_malformed_file_names_the_key(tmp_path, data, mutate, key):
    mutate(data)
    with pytest.raises(rules_mod.RulesError) as e:
        rules_mod.load(write(tmp_path, data))
    assert key in str(e.value) and "\n" not in str(e.value)


# ---- the whole file against the schema: one sentence naming CREDIT_RULES, the file and the key


def refused(path) -> str:
    with pytest.raises(rules_mod.RulesError) as e:
        rules_mod.load(path)
    msg = str(e.value)
    assert isinstance(e.value, SettingError)  # the run's first task and the command line treat it as a setting
    assert msg.startswith(f"CREDIT_RULES ({path})") and "\n" not in msg and msg.endswith(".")
    return msg


def test_broken_yaml_is_named_with_its_line(tmp_path):
    p = tmp_path / "rules.yaml"
    p.write_text(
        open(DEFAULT_RULES, encoding="utf-8").read().replace("  max: 400\n", "  max: 400\n bad: [\n", 1), "utf-8"
    )
    msg = refused(str(p))
    line = open(p, encoding="utf-8").read().splitlines().index(" bad: [") + 1
    assert "is not valid YAML" in msg and f"line {line}," in msg


@pytest.mark.parametrize(
    "text, said",
    [
        ("", "not an empty file"),
        ("- a\n- b\n", "not a list"),
        ("conduct: {base: 400}\nconduct: {base: 300}\n", "the key 'conduct' is given twice"),
    ],
)
def test_a_file_that_is_no_rule_set(tmp_path, text, said):
    p = tmp_path / "rules.yaml"
    p.write_text(text, "utf-8")
    assert said in refused(str(p))


def test_an_unreadable_file_is_named(tmp_path):
    assert "cannot be read" in refused(str(tmp_path / "absent.yaml"))


@pytest.mark.parametrize(
    "mutate, sentence",
    [
        # unknown keys, at the top level and nested
        (
            lambda d: d.update(bonus_points=5),
            "bonus_points is not a known key at the top level (known: version_label, windows, record_types",
        ),
        (
            lambda d: d["conduct"].update(bonus=50),
            "conduct.bonus is not a known key of conduct (known: base, points_by_severity, positive_bonus, max)",
        ),
        (
            lambda d: d["class_rules"]["R_NEW"].update(days=180),
            "class_rules.R_NEW.days is not a known key of class_rules.R_NEW",
        ),
        (
            lambda d: d["conduct"]["points_by_severity"].update({5: 800}),
            "conduct.points_by_severity.5 is not a known key of conduct.points_by_severity (known: 1, 2, 3, 4)",
        ),
        (
            lambda d: d["record_types"]["amr.penalties"]["侵权假冒"].update(weight=2),
            "record_types.amr.penalties.侵权假冒.weight is not a known key",
        ),
        (
            lambda d: d["record_types"].update({"amr.spot_checks": {}}),
            "record_types.amr.spot_checks is not a known key",
        ),
        # wrong types
        (
            lambda d: d["conduct"]["points_by_severity"].update({3: "abc"}),
            "conduct.points_by_severity.3 must be an integer, not 'abc'.",
        ),
        (
            lambda d: d["windows"]["default_by_severity"].update({1: 0}),
            "windows.default_by_severity.1 must be an integer >= 1, not 0.",
        ),
        (
            lambda d: d["penalties"].update(light_severity=5),
            "penalties.light_severity must be an integer from 1 to 4, not 5.",
        ),
        (
            lambda d: d["quality"].update(max_quarantined_ratio=1.5),
            "quality.max_quarantined_ratio must be a decimal number from 0 to 1, not 1.5.",
        ),
        (
            lambda d: d["quality"].update(max_quarantined_ratio=True),
            "quality.max_quarantined_ratio must be a decimal number",
        ),
        (
            lambda d: d["penalties"].update(large_amount_yuan="lots"),
            "penalties.large_amount_yuan must be a decimal number",
        ),
        (
            lambda d: d["penalties"].update(light_categories="警告"),
            "penalties.light_categories must be a list, not '警告'.",
        ),
        (
            lambda d: d["penalties"].update(light_categories=["警告", "口头批评"]),
            "penalties.light_categories.1 must be one of 警告, 通报批评",
        ),
        (lambda d: d["registry"].update(revoked_status="注消"), "registry.revoked_status must be one of 存续"),
        (
            lambda d: d["record_types"]["psb.cases"].update({"电信诈骗": {"type": "PSB_TELECOM", "severity": 4}}),
            "record_types.psb.cases.电信诈骗 is not a valid key: it must be one of 网络诈骗",
        ),
        (
            lambda d: d["record_types"]["cac.pi_violations"]["个人信息泄露"].pop("severity"),
            "record_types.cac.pi_violations.个人信息泄露.severity is missing",
        ),
        (
            lambda d: d["record_types"]["ndrc.credit_lists"]["守信联合激励对象"].update(severity=1),
            "record_types.ndrc.credit_lists.守信联合激励对象.severity must not be given",
        ),
        (
            lambda d: d["measures"]["classes"]["A"].update(onsite="no"),
            "measures.classes.A.onsite must be true or false, not 'no'.",
        ),
        (
            lambda d: d["plan"].update(inspectors_per_operator=0),
            "plan.inspectors_per_operator must be an integer >= 1, not 0.",
        ),
        (lambda d: d["risk_alerts"]["levels"].update(E="关注"), "risk_alerts.levels.E is not a valid key"),
        # missing keys
        (lambda d: d.pop("lists"), "lists is missing."),
        (lambda d: d["quality_score"].pop("complaint_cap"), "quality_score.complaint_cap is missing."),
        (
            lambda d: d["record_types"].pop("post.express_violations"),
            "record_types.post.express_violations is missing.",
        ),
        (lambda d: d["windows"]["default_by_severity"].pop(4), "windows.default_by_severity.4 is missing."),
        # the parts disagree
        (
            lambda d: d["class_rules"]["R_SERIOUS"]["record_types"].append("LIST_SERIOS"),
            "class_rules.R_SERIOUS.record_types.3 names 'LIST_SERIOS', which is no record type of record_types.",
        ),
        (
            lambda d: d["dishonest_list"]["record_types"].append("NDRC_REWARD"),
            "dishonest_list.record_types.3 names 'NDRC_REWARD', a positive record type.",
        ),
        (
            lambda d: d["penalties"]["heavy_categories"].append("警告"),
            "penalties.heavy_categories must not repeat a light",
        ),
        (
            lambda d: d["evaluation"]["weights"].update(after_sales=0.25),
            "evaluation.weights must add up to 1 exactly, not 1.10",
        ),
    ],
)
def test_the_sentence_names_the_key_path(tmp_path, data, mutate, sentence):
    mutate(data)
    path = write(tmp_path, data)
    msg = refused(path)
    assert msg.startswith(f"CREDIT_RULES ({path}): {sentence}"), msg


def _leaves(node, where=()):
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from _leaves(v, where + (k,))
    else:
        yield where


@pytest.mark.parametrize("where", list(_leaves(DEFAULT)), ids=lambda w: ".".join(map(str, w)))
def test_every_value_of_the_default_file_is_checked(data, where):
    """Each value of the default file, replaced by a mapping (of no key's type), is refused
    naming its key path."""
    node = data
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = {"not": "this"}
    with pytest.raises(rules_mod.RulesError) as e:
        rules_mod.validate(data, "/x/rules.yaml")
    assert str(e.value).startswith(f"CREDIT_RULES (/x/rules.yaml): {'.'.join(map(str, where))} "), str(e.value)


def test_quoted_and_written_decimals_are_exact(tmp_path, data):
    data["quality"]["max_quarantined_ratio"] = "0.25"
    data["evaluation"]["weights"] = {
        "overall_satisfaction": 0.7,
        "product_quality": "0.1",
        "brand_reputation": 0.1,
        "after_sales": 0.1,
    }
    assert 0.7 + 0.1 + 0.1 + 0.1 != 1  # binary floats: 0.9999999999999999
    assert rules_mod.load(write(tmp_path, data)).get("quality.max_quarantined_ratio") == "0.25"


def test_a_file_loaded_again_is_read_again_and_each_load_is_its_own_copy(tmp_path):
    """``rules.load`` keeps what it parsed by path and content: the same bytes give equal rules
    (parsed once), changed bytes are parsed again, and a caller that changes its copy changes no
    other load's."""
    path = tmp_path / "rules.yaml"
    text = Path(DEFAULT_RULES).read_text("utf-8")
    path.write_text(text, "utf-8")
    first = rules_mod.load(path)
    assert first.get("plan.schedule") == "monthly"
    first.data["plan"]["schedule"] = "changed by a caller"
    again = rules_mod.load(path)
    assert again.get("plan.schedule") == "monthly" and again.version == first.version
    path.write_text(text.replace("  schedule: monthly", "  schedule: daily"), "utf-8")
    changed = rules_mod.load(path)
    assert changed.get("plan.schedule") == "daily" and changed.version != first.version
    path.write_text("plan: [not, a, mapping\n", "utf-8")  # broken now: the earlier parse is not used
    with pytest.raises(rules_mod.RulesError):
        rules_mod.load(path)
